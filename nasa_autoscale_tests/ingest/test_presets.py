"""Each preset of ingest/formats on fixtures written here in the shape its documentation gives
(AWS ALB, Classic ELB, S3, CloudFront, Squid, Traefik): detected per file where the shape is
its own, every field where the warehouse has a column, the rest in `extra`."""

from __future__ import annotations

import json

import pytest

from nasa_autoscale.ingest.sitezone import SiteZone
from nasa_autoscale_tests.ingest.test_parse import parse

UTC = SiteZone.parse("UTC")
TAB = b"\t"

ALB = (
    b"https 2026-12-03T10:00:01.186641Z app/web/50dc6c495c0c9188 192.0.2.10:2817 10.0.0.1:80 "
    b'0.000 0.041 0.000 200 200 34 366 "GET https://shop.example:443/cart?x=1 HTTP/2.0" '
    b'"curl/8.5.0" ECDHE-RSA-AES128-GCM-SHA256 TLSv1.2 '
    b"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/73e2d6bc24d8a067 "
    b'"Root=1-58337262-36d228ad5d99923122bbe354" "shop.example" "-" 0 '
    b'2026-12-03T10:00:01.145000Z "forward" "-" "-" "10.0.0.1:80" "200" "-" "-"\n'
)
ELB = (
    b"2026-12-03T10:00:02.945958Z web 192.0.2.11:2817 10.0.0.1:80 0.000073 0.001048 0.000057 "
    b'503 - 0 29 "GET http://shop.example:80/ HTTP/1.1" "curl/8.5.0" - -\n'
)
S3 = (
    b"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be media "
    b"[03/Dec/2026:10:00:03 +0000] 192.0.2.12 arn:aws:iam::123456789012:user/u 3E57427F3EXAMPLE "
    b'REST.GET.OBJECT img/a.png "GET /media/img/a.png HTTP/1.1" 200 - 4096 4096 27 12 '
    b'"https://shop.example/" "Mozilla/5.0" - s9lzHYrF= SigV4 ECDHE-RSA-AES128-GCM-SHA256 '
    b"AuthHeader media.s3.eu-west-1.amazonaws.com TLSv1.2 - -\n"
)
SQUID = (
    b"1796292004.050    610 192.0.2.13 TCP_MISS/200 2184 GET http://shop.example/ - "
    b"HIER_DIRECT/203.0.113.1 text/html\n"
)
TRAEFIK = (
    b'192.0.2.14 - - [03/Dec/2026:10:00:05 +0000] "GET /api HTTP/1.1" 200 512 "-" "curl/8.5.0" '
    b'42 "web@docker" "http://172.18.0.3:8080" 7ms\n'
)
CLOUDFRONT = b"\n".join(
    [
        b"#Version: 1.0",
        b"#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
        b"sc-status cs(Referer) cs(User-Agent) cs-uri-query time-taken",
        TAB.join(
            [
                b"2026-12-03",
                b"10:00:06",
                b"FRA56-C1",
                b"1045",
                b"2001:db8::10",
                b"GET",
                b"d111111abcdef8.cloudfront.net",
                b"/index.html",
                b"200",
                b"-",
                b"Mozilla/5.0%20(X11;%20Linux)",
                b"a=b",
                b"0.002",
            ]
        ),
        b"",
    ]
)


@pytest.mark.parametrize(
    "name, data, expected, extra",
    [
        (
            "aws_alb",
            ALB,
            {
                "host": "192.0.2.10",
                "url": "/cart?x=1",  # the origin is cut off: it is the vhost
                "status": 200,
                "bytes": 366,
                "vhost": "shop.example",
                "ts_utc": "2026-12-03 10:00:01.186641",
            },
            {"client_port": "2817", "_duration_ms": 41.0},
        ),
        (
            "aws_elb",
            ELB,
            {
                "host": "192.0.2.11",
                "status": 503,
                "bytes": 29,
                "user_agent": "curl/8.5.0",
                "url": "/",
                "vhost": "shop.example",  # from the URL: a classic ELB logs no domain
            },
            {"backend_status": "-", "_duration_ms": 1.048},
        ),
        (
            "aws_s3",
            S3,
            {
                "host": "192.0.2.12",
                "vhost": "media",
                "url": "/media/img/a.png",
                "bytes": 4096,
                "referer": "https://shop.example/",
            },
            {"operation": "REST.GET.OBJECT", "_duration_ms": 27.0},
        ),
        (
            "squid",
            SQUID,
            {"host": "192.0.2.13", "method": "GET", "url": "http://shop.example/", "bytes": 2184},
            {"result_code": "TCP_MISS", "_duration_ms": 610.0},
        ),
        (
            "traefik",
            TRAEFIK,
            {"host": "192.0.2.14", "url": "/api", "status": 200, "user_agent": "curl/8.5.0"},
            {"router": "web@docker", "_duration_ms": 7.0},
        ),
        (
            "cloudfront",
            CLOUDFRONT,
            {
                "host": "2001:db8::10",
                "url": "/index.html?a=b",
                "user_agent": "Mozilla/5.0 (X11; Linux)",
                "vhost": "d111111abcdef8.cloudfront.net",
                "ts_utc": "2026-12-03 10:00:06",
            },
            {"x-edge-location": "FRA56-C1", "_duration_ms": 2.0},
        ),
    ],
)
def test_each_preset_reads_its_fields_and_keeps_the_rest(con, name, data, expected, extra):
    parsed, requests, rejected = parse(con, data, zone=UTC, log_format=name)
    assert rejected.empty, rejected.reason.tolist()
    assert parsed.n_requests == 1 and parsed.log_format == name
    row = requests.iloc[0]
    for column, value in expected.items():
        got = str(row[column]) if column == "ts_utc" else row[column]
        assert got == value, (column, got)
    extra = dict(extra)
    assert row.duration_ms == pytest.approx(extra.pop("_duration_ms"))  # the time taken, in ms
    kept = json.loads(row.extra)
    assert {k: kept[k] for k in extra} == extra
    # the same line under another format is a rejection with a reason, never lost
    other = "squid" if name != "squid" else "aws_alb"
    wrong, _, refused = parse(con, data, zone=UTC, log_format=other)
    assert wrong.n_requests == 0 and refused.reason.str.contains("not ").all()


@pytest.mark.parametrize(
    "data, detected",
    [
        (ALB, "aws_alb"),
        (ELB, "aws_elb"),
        (S3, "aws_s3"),
        (SQUID, "squid"),
        (TRAEFIK, "traefik"),
        (CLOUDFRONT, "cloudfront"),
    ],
)
def test_presets_are_detected_per_file(con, data, detected):
    parsed, _, rejected = parse(con, data, zone=UTC)
    assert parsed.log_format == detected and parsed.n_requests == 1 and rejected.empty


def test_the_nasa_sample_in_every_format_gives_the_common_log_formats_5_minute_counts():
    from nasa_autoscale.benchmarks.format_logs import RENDERERS, compare_formats
    from nasa_autoscale.ingest.logfiles import read_lines
    from nasa_autoscale.settings import SAMPLES_DIR

    rows = compare_formats(read_lines(SAMPLES_DIR / "nasa_2k.log"), SiteZone.parse("-0400"))
    assert [row["format"] for row in rows] == ["common", *RENDERERS]
    for row in rows:
        assert row["requests"] == 2000 and row["same_5m_counts"], row
        assert row["lines_per_second"] > 0


def test_the_count_comparison_can_fail(con):
    from nasa_autoscale.benchmarks.format_logs import counts_5m

    con.execute("CREATE TABLE a AS SELECT TIMESTAMP '2026-12-03 10:00:00' AS ts_utc")
    con.execute("CREATE TABLE b AS SELECT TIMESTAMP '2026-12-03 10:05:00' AS ts_utc")
    assert counts_5m(con, "a") != counts_5m(con, "b")


GCS = (
    b'"time_micros","c_ip","c_ip_type","c_ip_region","cs_method","cs_uri","sc_status",'
    b'"cs_bytes","sc_bytes","time_taken_micros","cs_host","cs_referer","cs_user_agent",'
    b'"s_request_id","cs_operation","cs_bucket","cs_object"\n'
    b'"1796292007123456","192.0.2.15","1","","GET","/media/a.png","200","0","4096","12000",'
    b'"storage.googleapis.com","","curl/8.5.0","AB12","GET_Object","media","a.png"\n'
    b'"1796292008000000","192.0.2.16","1","","GET","/media/b.png","200","0","10","5",'
    b'"storage.googleapis.com","","Bot ""quoted"" 1.0","AB13","GET_Object","media","b.png"\n'
)


def test_gcs_usage_logs_skip_their_header_and_read_microseconds(con):
    parsed, requests, rejected = parse(con, GCS, zone=UTC)
    assert (parsed.log_format, parsed.n_requests, parsed.header_lines) == ("gcs", 2, (1,))
    assert requests.iloc[1].user_agent == 'Bot "quoted" 1.0'  # CSV's doubled quotes undone
    assert rejected.empty
    row = requests.iloc[0]
    assert str(row.ts_utc) == "2026-12-03 10:00:07.123456" and row.duration_ms == 12.0
    assert (row.host, row.url, row.bytes, row.vhost) == (
        "192.0.2.15",
        "/media/a.png",
        4096,
        "storage.googleapis.com",
    )
    assert json.loads(row.extra)["operation"] == "GET_Object"
