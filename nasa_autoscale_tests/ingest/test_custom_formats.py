"""The user's own formats (an nginx log_format, an Apache LogFormat) and the presets beyond the
Common Log Format family, on fixtures written here and on the real samples of
data/samples/formats (their PROVENANCE.txt): every line a request or a rejection."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nasa_autoscale.ingest import formats
from nasa_autoscale.ingest.formats import FormatError
from nasa_autoscale.ingest.logfiles import read_lines
from nasa_autoscale.ingest.parse import drop_parsed, parse_lines
from nasa_autoscale.ingest.sitezone import SiteZone
from nasa_autoscale.settings import SAMPLES_DIR
from nasa_autoscale_tests.ingest.test_parse import parse

FORMATS_DIR = SAMPLES_DIR / "formats"
UTC = SiteZone.parse("UTC")
NGINX_TIMED = """log_format timed escape=json '$remote_addr - $remote_user [$time_local] '
                    '"$request" $status $body_bytes_sent "$http_referer" '
                    '"$http_user_agent" $request_time $upstream_response_time';"""


def test_an_nginx_log_format_reads_its_variables_and_keeps_the_rest_in_extra(con):
    data = (
        b'2001:db8::7 - alice [03/Dec/2026:10:00:01 +0330] "GET /a?b=1 HTTP/2.0" 200 512 '
        b'"https://ex.org/" "Mozilla/5.0 \\"quoted\\"" 0.031 0.030\n'
        b'10.0.0.1 - - [03/Dec/2026:10:00:02 +0330] "POST /api HTTP/1.1" 503 - "-" "-" 1.5 -\n'
        b"garbage line\n"
    )
    parsed, requests, rejected = parse(con, data, zone=UTC, log_format=NGINX_TIMED)
    assert (parsed.log_format, parsed.n_requests, parsed.n_rejected) == ("nginx timed", 2, 1)
    first = requests.iloc[0]
    assert (first.host, first.method, first.url, first.protocol) == (
        "2001:db8::7",
        "GET",
        "/a?b=1",
        "HTTP/2.0",
    )
    assert str(first.ts_utc) == "2026-12-03 06:30:01" and first.tz_offset == 330
    assert first.user_agent == 'Mozilla/5.0 "quoted"' and first.referer == "https://ex.org/"
    assert json.loads(first.extra) == {
        "remote_user": "alice",
        "duration_s": "0.031",
        "upstream_response_time": "0.030",
    }
    assert pd.isna(requests.iloc[1].bytes) and requests.iloc[1].status == 503
    assert rejected.reason.tolist() == ["not nginx timed log format"]


def test_an_unescaped_quote_inside_a_quoted_field_is_still_a_request(con):
    fmt = 'log_format raw escape=none \'$remote_addr [$time_local] "$request" $status '
    fmt += '$body_bytes_sent "$http_referer" "$http_user_agent"\';'
    line = (
        b'1.2.3.4 [03/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 9 '
        b'"https://ex.org/?title="Big" sale" "Agent "X" 1.0"\n'
    )
    _, requests, rejected = parse(con, line, zone=UTC, log_format=fmt)
    assert rejected.empty and requests.iloc[0].status == 200
    assert requests.iloc[0].user_agent == 'Agent "X" 1.0'


def test_an_apache_logformat_with_time_taken(con):
    spec = r'LogFormat "%v %h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %D" vt'
    line = (
        b'shop.example:443 192.0.2.4 - - [03/Dec/2026:10:00:01 +0100] "GET /x HTTP/1.1" 404 '
        b'128 "-" "curl/8.0" 1234\n'
    )
    parsed, requests, _ = parse(con, line, zone=UTC, log_format=spec)
    row = requests.iloc[0]
    assert parsed.log_format == "apache vt"
    assert (row.vhost, row.host, row.status, row.bytes) == (
        "shop.example:443",
        "192.0.2.4",
        404,
        128,
    )
    assert json.loads(row.extra)["duration_us"] == "1234"
    assert str(row.ts_utc) == "2026-12-03 09:00:01"


def test_iso_and_epoch_times(con):
    iso = "log_format iso '$time_iso8601 $remote_addr \"$request\" $status $body_bytes_sent';"
    data = b'2026-12-03T10:00:01+05:30 1.1.1.1 "GET / HTTP/1.1" 200 5\n'
    _, requests, _ = parse(con, data, zone=UTC, log_format=iso)
    assert str(requests.iloc[0].ts_utc) == "2026-12-03 04:30:01"
    epoch = "log_format ms '$msec $remote_addr \"$request\" $status $body_bytes_sent';"
    line = b'1796292001.250 1.1.1.1 "GET / HTTP/1.1" 200 5\n'
    _, requests, _ = parse(con, line, zone=UTC, log_format=epoch)
    assert str(requests.iloc[0].ts_utc).startswith("2026-12-03 10:00:01.25")


@pytest.mark.parametrize(
    "spec, says",
    [
        ("log_format x '$remote_addr $status';", "no time field"),
        ("log_format x '$remote_addr [$time_local]';", "no status field"),
        ("log_format x escape=html '$remote_addr [$time_local] $status';", "escape=html"),
        ('LogFormat "%h %t" short', "no status field"),
        ("nginx", "is none of"),
    ],
)
def test_a_format_without_a_time_or_status_is_an_error_before_reading(spec, says):
    with pytest.raises(FormatError, match=says):
        formats.resolve(spec)


def test_a_format_file_is_read(tmp_path):
    path = tmp_path / "nginx.conf.part"
    path.write_text(NGINX_TIMED)
    assert formats.resolve(str(path)).name == "nginx timed"


@pytest.mark.parametrize(
    "sample, spec, zone, requests",
    [
        (
            "lnav-zanbil-shop/logfile_shop_access_log.0",
            'log_format shop \'$remote_addr - $remote_user [$time_local] "$request" $status '
            '$body_bytes_sent "$http_referer" "$http_user_agent" "$http_x_forwarded_for"\';',
            None,
            1000,
        ),
        ("lnav-haproxy/logfile_haproxy.0", "haproxy", "+0100", 13),
        (
            "basjes-hackers/hackers-access.log",
            r'"%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\""',
            None,
            3456,
        ),
    ],
)
def test_the_real_samples_are_read_with_every_line_accounted(con, sample, spec, zone, requests):
    lines = read_lines(FORMATS_DIR / sample)
    parsed = parse_lines(con, lines, "s", zone and SiteZone.parse(zone), spec)
    assert parsed.n_requests == requests
    assert parsed.n_requests + parsed.n_rejected == parsed.n_lines == len(lines)
    nulls = con.sql(
        "SELECT count(*) FILTER (ts_utc IS NULL OR host IS NULL OR status IS NULL) "
        f"FROM {parsed.requests_table}"
    ).fetchall()[0][0]
    assert nulls == 0
    drop_parsed(con, parsed)


def test_haproxy_reads_the_accept_date_in_the_sites_zone_and_skips_startup_lines(con):
    lines = read_lines(FORMATS_DIR / "lnav-haproxy/logfile_haproxy.0")
    parsed = parse_lines(con, lines, "h", SiteZone.parse("Europe/Berlin"), "haproxy")
    first = con.sql("SELECT ts, ts_utc, tz_offset, extra FROM h_requests ORDER BY line_number")
    ts, ts_utc, offset, extra = first.fetchall()[0]
    assert str(ts) == "2019-02-25 16:19:48.143000" and str(ts_utc) == "2019-02-25 15:19:48.143000"
    assert offset == 100 and json.loads(extra)["duration_ms"] == "1487"
    reasons = con.sql("SELECT DISTINCT reason FROM h_rejected").fetchall()
    assert reasons == [("not haproxy log format",)] and parsed.n_rejected == 4


def test_combined_lines_with_raw_quotes_or_a_lost_last_quote_are_requests(con):
    """Apache before 2.0.46 and nginx escape=none: raw quotes in the referer and agent; a cut
    line without its last quote. Detected as combined, every line is a request."""
    data = (
        b'1.2.3.4 - - [03/Dec/2026:10:00:01 +0000] "GET / HTTP/1.1" 200 9 '
        b'"https://ex.org/?t="Big" sale" "Agent 1.0"\n'
        b'1.2.3.5 - - [03/Dec/2026:10:00:02 +0000] "GET /b HTTP/1.1" 200 9 "-" "Agent "X" 1.0"\n'
        b'1.2.3.6 - - [03/Dec/2026:10:00:03 +0000] "GET /c HTTP/1.1" 304 - "-" "Mozilla/5.0 (cu\n'
        b'1.2.3.7 - - [03/Dec/2026:10:00:04 +0000] "GET /d HTTP/1.1" 200 9 "-" "ok"\n'
    )
    parsed, requests, rejected = parse(con, data, zone=UTC)
    assert (parsed.log_format, parsed.n_requests, rejected.empty) == ("combined", 4, True)
    assert requests.referer.iloc[0] == 'https://ex.org/?t="Big" sale'
    assert requests.user_agent.tolist()[1:] == ['Agent "X" 1.0', "Mozilla/5.0 (cu", "ok"]
    assert requests.url.tolist() == ["/", "/b", "/c", "/d"]
    # still rejected: a line with no status after the request
    _, _, bad = parse(con, b'1.2.3.8 - - [03/Dec/2026:10:00:05 +0000] "GET /e HTTP/1.1" "x" "y"\n')
    assert bad.reason.str.startswith("no status after the request").all()
