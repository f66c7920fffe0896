"""The user's own formats (an nginx log_format, an Apache LogFormat) and the presets beyond the
Common Log Format family, on fixtures written here and on the real samples of
data/samples/formats (their PROVENANCE.txt): every line a request or a rejection."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from nasa_autoscale.ingest import formats
from nasa_autoscale.ingest.formats import FormatError
from nasa_autoscale.ingest.logfiles import find_log_files, read_lines
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
    assert json.loads(first.extra) == {"remote_user": "alice", "upstream_response_time": "0.030"}
    assert first.duration_ms == pytest.approx(31.0)  # $request_time, in seconds
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
    assert row.duration_ms == pytest.approx(1.234)  # %D, in microseconds
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
    first = con.sql(
        "SELECT ts, ts_utc, tz_offset, duration_ms FROM h_requests ORDER BY line_number"
    )
    ts, ts_utc, offset, duration = first.fetchall()[0]
    assert str(ts) == "2019-02-25 16:19:48.143000" and str(ts_utc) == "2019-02-25 15:19:48.143000"
    assert offset == 100 and duration == 1487  # Tt
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


W3C_LOG = b"""#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2026-12-03 00:00:00
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) sc-status \
sc-bytes time-taken
2026-12-03 00:00:01 10.0.0.1 GET /a x=1 2001:db8::9 Mozilla/5.0+(X11) 200 512 31
2026-12-03 00:00:02 10.0.0.1 GET /b - 192.0.2.7 - 404 0 2
#Fields: date time c-ip cs-method cs-uri-stem sc-status cs-host
2026-12-03 00:00:03 192.0.2.8 POST /c 201 shop.example
2026-12-03 00:00:04 192.0.2.8 POST /d
2026-12-03 25:00:05 192.0.2.8 POST /e 200 shop.example
"""


def test_w3c_fields_follow_each_header_even_when_they_change_mid_file(con):
    parsed, requests, rejected = parse(con, W3C_LOG, zone=UTC, log_format="w3c")
    assert (parsed.n_requests, parsed.n_rejected, parsed.header_lines) == (3, 2, (5,))
    assert requests.url.tolist() == ["/a?x=1", "/b", "/c"]
    assert requests.host.tolist() == ["2001:db8::9", "192.0.2.7", "192.0.2.8"]
    assert requests.user_agent.iloc[0] == "Mozilla/5.0 (X11)" and pd.isna(requests.user_agent[1])
    assert (requests.vhost.iloc[2], requests.status.iloc[2]) == ("shop.example", 201)
    assert json.loads(requests.extra.iloc[0]) == {"s-ip": "10.0.0.1"}
    assert requests.duration_ms.iloc[0] == 31.0 and pd.isna(requests.duration_ms.iloc[2])
    assert str(requests.ts_utc.iloc[0]) == "2026-12-03 00:00:01"  # W3C times are UTC
    assert rejected.reason.tolist() == [
        "5 values, its #Fields header names 7",
        "invalid timestamp: 2026-12-03 25:00:05",
    ]
    before_header = b"2026-12-03 00:00:01 1.1.1.1 GET / 200\n" + W3C_LOG
    _, _, early = parse(con, before_header, zone=UTC, log_format="iis")
    assert early.reason.iloc[0] == "no #Fields header before this line: not w3c log format"


def test_a_w3c_file_ingests_with_its_headers_counted_apart(tmp_path):
    from nasa_autoscale import warehouse
    from nasa_autoscale.ingest.checks import lines_accounted
    from nasa_autoscale.ingest.load import ingest_days

    sample = FORMATS_DIR / "lnav-iis-w3c" / "logfile_w3c_big.0"
    con = warehouse.connect(tmp_path / "w3c.duckdb")
    day = dt.date(2015, 1, 13)
    summary = ingest_days(
        con, [sample], day, day, "real", lambda _: None, timezone="UTC", log_format="iis"
    )
    assert (summary.requests, summary.rejected) == (210, 0)
    lines, headers = con.execute("SELECT lines, header_lines FROM nasa.source_files").fetchall()[0]
    assert (lines, headers) == (254, 44)
    assert lines_accounted(con, day, day)[0]
    # the busy time: the time-taken of the bucket's requests, summed (server-seconds of work)
    from nasa_autoscale.ingest.traffic import write_traffic

    write_traffic(con, day, day)
    busy, taken = con.execute(
        "SELECT (SELECT sum(busy_s) FROM nasa.traffic_5m), "
        "(SELECT sum(duration_ms) / 1000 FROM nasa.requests)"
    ).fetchall()[0]
    assert busy == pytest.approx(taken) and taken > 0
    con.execute("DELETE FROM nasa.requests WHERE line_number = 5")  # a line stored nowhere
    assert not lines_accounted(con, day, day)[0]
    con.close()


@pytest.mark.parametrize(
    "sample, detected, requests, rejected, headers",
    [
        ("basjes-hackers", "combined", 3456, 0, 0),
        ("lnav-haproxy", "haproxy", 13, 4, 0),  # 3 startup lines and an SSL handshake failure
        ("lnav-iis-w3c", "w3c", 210, 0, 44),
        ("lnav-zanbil-shop", "combined", 1000, 0, 0),
        ("usask-sample", "common", 400, 0, 0),
    ],
)
def test_every_real_sample_is_detected_and_read_with_auto(
    con, sample, detected, requests, rejected, headers
):
    (path,) = find_log_files(FORMATS_DIR / sample)  # PROVENANCE.txt is skipped by rule
    lines = read_lines(path)
    parsed = parse_lines(con, lines, "auto", None, "auto")
    assert parsed.log_format == detected
    assert (parsed.n_requests, parsed.n_rejected, parsed.header_lines) == (
        requests,
        rejected,
        (headers,),
    )
    assert parsed.n_requests + parsed.n_rejected + headers == len(lines)
    drop_parsed(con, parsed)


CADDY_LINE = (
    b'{"level":"info","ts":1796292001.52,"logger":"http.log.access.log0","msg":"handled request",'
    b'"request":{"remote_ip":"10.0.0.2","remote_port":"41342","client_ip":"203.0.113.5",'
    b'"proto":"HTTP/2.0","method":"GET","host":"shop.example","uri":"/a?b=1","headers":'
    b'{"User-Agent":["curl/8.5.0"],"Referer":["https://ex.org/"]}},"bytes_read":0,'
    b'"duration":0.0123,"size":10900,"status":200}\n'
)


def test_caddys_json_log_is_detected_and_read(con):
    data = CADDY_LINE + b"not json\n" + CADDY_LINE.replace(b'"status":200', b'"status":null')
    parsed, requests, rejected = parse(con, data, zone=UTC)
    assert (parsed.log_format, parsed.n_requests) == ("caddy", 1)
    row = requests.iloc[0]
    assert (row.host, row.vhost, row.url, row.status, row.bytes) == (
        "203.0.113.5",
        "shop.example",
        "/a?b=1",
        200,
        10900,
    )
    assert (row.user_agent, row.referer) == ("curl/8.5.0", "https://ex.org/")
    assert str(row.ts_utc) == "2026-12-03 10:00:01.520000"
    assert row.duration_ms == pytest.approx(12.3)
    assert rejected.reason.tolist() == [
        "not JSON: not caddy log format",
        "no status or client: not caddy log format",
    ]


def test_an_nginx_json_log_format_compiles_to_json_paths(con):
    spec = """log_format j escape=json '{"time":"$time_iso8601","addr":"$remote_addr",'
        '"req":"$request","status": $status,"bytes":$body_bytes_sent,"http":{"ua":'
        '"$http_user_agent"},"rt":$request_time}';"""
    line = (
        b'{"time":"2026-12-03T10:00:01+03:30","addr":"1.2.3.4","req":"GET /x HTTP/1.1",'
        b'"status": 200,"bytes":12,"http":{"ua":"Moz \\"q\\""},"rt":0.004}\n'
    )
    parsed, requests, _ = parse(con, line, zone=UTC, log_format=spec)
    row = requests.iloc[0]
    assert parsed.log_format == "nginx j" and (row.method, row.url, row.status) == (
        "GET",
        "/x",
        200,
    )
    assert row.user_agent == 'Moz "q"' and str(row.ts_utc) == "2026-12-03 06:30:01"
    assert pd.isna(row.extra) and row.duration_ms == pytest.approx(4.0)
    with pytest.raises(FormatError, match="no time field"):
        formats.resolve("""log_format j escape=json '{"addr":"$remote_addr","s":$status}';""")


def test_the_samples_check_reads_each_samples_zone_and_days(tmp_path):
    from nasa_autoscale.benchmarks.samples import sample_days, sample_zone

    assert sample_zone(FORMATS_DIR / "lnav-zanbil-shop") == "+0330"  # from PROVENANCE.txt
    assert sample_zone(FORMATS_DIR / "lnav-haproxy") == "UTC"  # none given, no offset logged
    (tmp_path / "a.log").write_bytes(
        b'h - - [01/Jun/1995:23:59:59 -0600] "GET / HTTP/1.0" 200 1\n'
        b'h - - [02/Jun/1995:00:00:01 -0600] "GET / HTTP/1.0" 200 1\n'
    )
    assert sample_zone(tmp_path) == "-0600"
    assert sample_days([tmp_path / "a.log"], "-0600") == ("1995-06-01", "1995-06-02")
    assert sample_days([tmp_path / "a.log"], "UTC") == ("1995-06-02", "1995-06-02")
