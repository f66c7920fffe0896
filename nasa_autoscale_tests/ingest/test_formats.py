"""Combined, vhost_combined and what real servers write: each fixture is written here."""

import pandas as pd
import pytest

from nasa_autoscale.ingest.logfiles import index_lines
from nasa_autoscale.ingest.parse import detect_format
from nasa_autoscale.ingest.sitezone import SiteZone
from nasa_autoscale_tests.ingest.test_parse import parse

UTC = SiteZone.parse("UTC")
AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
COMBINED = [
    # (line, expected fields)
    (
        f'203.0.113.9 - - [17/May/2015:10:05:03 +0000] "GET /index.html HTTP/1.1" 200 3023 '
        f'"https://example.org/" "{AGENT}"',
        {
            "host": "203.0.113.9",
            "url": "/index.html",
            "status": 200,
            "bytes": 3023,
            "referer": "https://example.org/",
            "user_agent": AGENT,
        },
    ),
    (
        '2001:db8::1 - frank [17/May/2015:10:05:43 +0000] "GET /a HTTP/2.0" 304 - "-" "-"',
        {
            "host": "2001:db8::1",
            "protocol": "HTTP/2.0",
            "bytes": None,
            "referer": None,
            "user_agent": None,
        },
    ),
    (
        '::1 - - [17/May/2015:10:05:44 +0000] "-" 400 0 "-" "-"',
        {"host": "::1", "method": None, "request": "-", "status": 400},
    ),
    (
        r'h - - [17/May/2015:10:05:45 +0000] "GET /q HTTP/1.1" 200 5 "-" "say \x22hi\x22"',
        {"user_agent": 'say "hi"'},
    ),
    (
        r'h - - [17/May/2015:10:05:46 +0000] "GET /q HTTP/1.1" 200 5 "http://r/?a=\"b\"" "A \"x\""',
        {"referer": 'http://r/?a="b"', "user_agent": 'A "x"'},
    ),
    (
        'h - - [17/May/2015:10:05:47 +0000] "GET /t HTTP/1.1" 200 5 "-" "curl/8" 0.123 "up:80"',
        {"url": "/t", "user_agent": "curl/8", "extra": '0.123 "up:80"'},
    ),
    (
        'h - - [17/May/2015:10:05:48 +0000] "GET /no-agent HTTP/1.1" 200 5',  # common, in between
        {"url": "/no-agent", "referer": None, "user_agent": None},
    ),
    (
        'h - - [17/May/2015:10:05:49 +0000] "GET /a"b HTTP/1.1" 200 5 "-" "ua"',  # quote in request
        {"url": '/a"b', "protocol": "HTTP/1.1", "request": None, "user_agent": "ua"},
    ),
]


def combined_bytes(prefix: str = "") -> bytes:
    return "\n".join(prefix + line for line, _ in COMBINED).encode()


@pytest.mark.parametrize("force_general", [False, True])
def test_combined_lines_are_read_field_by_field(con, force_general):
    parsed, requests, rejected = parse(con, combined_bytes(), force_general, UTC)
    assert parsed.log_format == "combined"
    assert rejected.empty and len(requests) == len(COMBINED)
    for row, (_, expected) in zip(requests.itertuples(), COMBINED, strict=True):
        for field, value in expected.items():
            got = getattr(row, field)
            assert pd.isna(got) if value is None else got == value, (row.line_number, field, got)
    assert (requests["ts_utc"] == requests["ts"]).all()  # UTC site, UTC logs
    assert requests["ts"].iloc[0] == pd.Timestamp("2015-05-17 10:05:03")


def test_the_fast_and_the_general_path_read_combined_lines_alike(con):
    _, fast, _ = parse(con, combined_bytes(), zone=UTC)
    _, general, _ = parse(con, combined_bytes(), True, UTC)
    pd.testing.assert_frame_equal(fast, general)


def test_vhost_combined_lines_keep_the_virtual_host(con):
    parsed, requests, rejected = parse(con, combined_bytes("www.example.org:443 "), zone=UTC)
    assert parsed.log_format == "vhost_combined"
    assert len(requests) == len(COMBINED) - 1  # the common line has no vhost form
    assert rejected["reason"].str.startswith("no status after the request").all()
    assert (requests["vhost"] == "www.example.org:443").all()
    assert requests["host"].iloc[1] == "2001:db8::1"


def test_the_format_is_detected_from_the_first_lines_and_can_be_forced(con, sample_2k):
    assert detect_format(index_lines(sample_2k)) == "common"
    assert detect_format(index_lines(combined_bytes())) == "combined"
    assert detect_format(index_lines(b"\n\ngarbage\n")) == "common"
    # forcing common on combined lines: the line is not common, so it is rejected with a reason
    parsed, _, rejected = parse(con, combined_bytes(), zone=UTC, log_format="common")
    assert parsed.log_format == "common" and parsed.n_rejected >= 6
    assert rejected["reason"].str.contains("not common log format").all()
    with pytest.raises(ValueError, match="NASA_LOG_FORMAT='apache' is none of"):
        parse(con, combined_bytes(), zone=UTC, log_format="apache")


def test_each_line_is_read_at_its_own_offset_in_the_sites_zone(con):
    lines = [
        b'a - - [05/Nov/2023:01:30:00 -0400] "GET / HTTP/1.1" 200 1',  # EDT
        b'b - - [05/Nov/2023:01:30:00 -0500] "GET / HTTP/1.1" 200 1',  # EST, an hour later
        b'c - - [05/Nov/2023:06:30:00 +0000] "GET / HTTP/1.1" 200 1',  # UTC, same as b
    ]
    _, requests, _ = parse(con, b"\n".join(lines), zone=SiteZone.parse("America/New_York"))
    assert requests["ts_utc"].astype(str).tolist() == [
        "2023-11-05 05:30:00",
        "2023-11-05 06:30:00",
        "2023-11-05 06:30:00",
    ]
    assert requests["ts"].astype(str).tolist() == ["2023-11-05 01:30:00"] * 3  # the hour repeats
    _, paris, _ = parse(con, b"\n".join(lines), zone=SiteZone.parse("+01:00"))
    assert paris["ts"].astype(str).tolist()[1] == "2023-11-05 07:30:00"
