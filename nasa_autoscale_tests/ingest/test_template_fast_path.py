"""The template fast path (ingest/formats/template.py): a plain line is cut with string_split
and must give exactly what the format's regex gives; lines that are not plain take the regex."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasa_autoscale.ingest import formats
from nasa_autoscale.ingest.formats import definition
from nasa_autoscale.ingest.formats.template import fast_path, parse_template
from nasa_autoscale.ingest.sitezone import SiteZone
from nasa_autoscale_tests.ingest.test_custom_formats import FORMATS_DIR, NGINX_TIMED
from nasa_autoscale_tests.ingest.test_parse import parse
from nasa_autoscale_tests.ingest.test_presets import ALB, ELB, S3, TRAEFIK

UTC = SiteZone.parse("UTC")
HAPROXY = (
    b"10.0.0.9:4711 [03/Dec/2026:10:00:01.250] www~ app/srv1 0/0/1/2/31 200 1024 - - ---- "
    b'1/1/0/0/0 0/0 "GET /cart HTTP/1.1"\n'
    b"Dec  3 10:00:02 lb1 haproxy[812]: [2001:db8::5]:4712 [03/Dec/2026:10:00:02.001] www~ "
    b'app/srv2 0/0/1/2/7 404 0 - - ---- 1/1/0/0/0 0/0 "GET /a: b HTTP/1.1"\n'
)
APACHE_TIMED = r'LogFormat "%h %l %u %t \"%r\" %>s %b %D" timed'
APACHE_LINES = (
    b'192.0.2.1 - - [03/Dec/2026:10:00:01 +0100] "GET / HTTP/1.1" 200 512 1500\n'
    b'192.0.2.2 - bob [03/Dec/2026:10:00:02 +0100] "GET /x HTTP/1.1" 304 - 90\n'
)
NGINX_LINES = (
    b'2001:db8::7 - - [03/Dec/2026:10:00:01 +0330] "GET /a HTTP/2.0" 200 512 "-" '
    b'"Mozilla/5.0 (X11)" 0.004 0.003\n'
    b'192.0.2.8 - - [03/Dec/2026:10:00:02 +0330] "GET /b HTTP/1.1" 200 5 "-" "a \\"q\\"" 0.1 -\n'
)
CASES = [
    ("aws_alb", ALB, 1),
    ("aws_elb", ELB, 1),
    ("aws_s3", S3, 1),
    ("traefik", TRAEFIK, 1),
    ("haproxy", HAPROXY, 2),
    (APACHE_TIMED, APACHE_LINES, 2),
    (NGINX_TIMED, NGINX_LINES, 1),  # the escaped quotes of the second: not plain
]


def _plain_count(spec: str, data: bytes) -> int:
    fmt = formats.resolve(spec)
    fast = fast_path(fmt.template, dict(fmt.plain_shapes))
    assert fast is not None
    lines = data.decode().splitlines()
    if fmt.fast_prefix:
        lines = [re.sub(fmt.fast_prefix, "", line, count=1) for line in lines]
    return sum(bool(re.match(fast.pattern, line)) for line in lines)


@pytest.mark.parametrize("spec, data, plain", CASES, ids=[c[0][:12] for c in CASES])
def test_plain_lines_are_cut_as_the_regex_reads_them(con, monkeypatch, spec, data, plain):
    assert _plain_count(spec, data) == plain
    _, fast_rows, fast_rejected = parse(con, data, zone=UTC, log_format=spec)
    monkeypatch.setattr(definition, "fast_path", lambda *args: None)
    _, regex_rows, regex_rejected = parse(con, data, zone=UTC, log_format=spec)
    assert len(fast_rows) == data.count(b"\n") and fast_rejected.empty and regex_rejected.empty
    assert fast_rows.drop(columns="file").equals(regex_rows.drop(columns="file"))


def test_the_comparison_can_fail(con, monkeypatch):
    """A cut that takes the wrong token differs from the regex, and the test above sees it."""
    _, regex_rows, _ = parse(con, TRAEFIK, zone=UTC, log_format="traefik")
    wrong = formats.PRESETS["traefik"]
    swapped = parse_template(
        '$user $_ $host [$time_clf] "$request" $status $bytes "$referer" "$user_agent" '
        '$request_count "$router" "$server_url" ${duration_ms}ms'
    )
    monkeypatch.setitem(
        formats.PRESETS, "traefik", definition.LogFormat(**{**vars(wrong), "template": swapped})
    )
    _, fast_rows, _ = parse(con, TRAEFIK, zone=UTC, log_format="traefik")
    assert list(fast_rows["host"]) == ["-"] != list(regex_rows["host"])


def test_the_real_haproxy_sample_reads_the_same_either_way(con, monkeypatch):
    data = (FORMATS_DIR / "lnav-haproxy/logfile_haproxy.0").read_bytes()
    zone = SiteZone.parse("+0100")
    _, fast_rows, fast_rejected = parse(con, data, zone=zone, log_format="haproxy")
    monkeypatch.setattr(definition, "fast_path", lambda *args: None)
    _, regex_rows, regex_rejected = parse(con, data, zone=zone, log_format="haproxy")
    assert len(fast_rows) == 13 and fast_rows.drop(columns="file").equals(
        regex_rows.drop(columns="file")
    )
    assert fast_rejected.drop(columns="file").equals(regex_rejected.drop(columns="file"))


@pytest.mark.parametrize(
    "text",
    [
        '"$method $url" $status',  # two fields in one quoted value
        "$host:$port/$path $status",  # two separators in one token
        "$host$status",  # nothing between two fields
        '$host "$request',  # an unclosed quote
    ],
)
def test_templates_the_cut_cannot_follow_have_no_fast_path(text):
    assert fast_path(parse_template(text)) is None


def test_a_template_field_missing_from_the_pattern_is_an_error():
    with pytest.raises(formats.FormatError, match="template fields"):
        definition.LogFormat(
            "x",
            r"^(\S+) \[(.*)\] (\d{3})$",
            ("host", "time_clf", "status"),
            template=parse_template("$host [$time_clf] $status $bytes"),
        )


# A plain line with a few characters changed (the ones that decide the cut: space, tab, quote,
# backslash, colon, slash, digits, dash) anywhere: whatever the change, the fast path and the
# regex must read it alike (the same request or the same rejection).
_MUTANTS = b' \t"\\:/-09a[]'
_PLAIN = {
    "traefik": TRAEFIK.rstrip(b"\n"),
    "haproxy": HAPROXY.splitlines()[1],
    "aws_alb": ALB.rstrip(b"\n"),
    APACHE_TIMED: APACHE_LINES.splitlines()[0],
}


def _mutated(line: bytes, edits: list[tuple[int, int, bool]]) -> bytes:
    for position, char, insert in edits:
        at = position % (len(line) + 1)
        new = _MUTANTS[char % len(_MUTANTS) : char % len(_MUTANTS) + 1]
        line = line[:at] + new + line[at + (0 if insert else 1) :]
    return line


_edits = st.lists(
    st.tuples(st.integers(0, 500), st.integers(0, 50), st.booleans()), min_size=1, max_size=3
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=st.sampled_from(sorted(_PLAIN)), edits=st.lists(_edits, min_size=1, max_size=30))
def test_mutated_plain_lines_read_the_same_by_the_cut_and_the_regex(spec, edits):
    import duckdb

    data = b"".join(_mutated(_PLAIN[spec], e) + b"\n" for e in edits)
    con = duckdb.connect()
    _, fast_rows, fast_rejected = parse(con, data, zone=UTC, log_format=spec)
    original = definition.fast_path
    definition.fast_path = lambda *args: None
    try:
        _, regex_rows, regex_rejected = parse(con, data, zone=UTC, log_format=spec)
    finally:
        definition.fast_path = original
    assert fast_rows.drop(columns="file").equals(regex_rows.drop(columns="file"))
    assert list(fast_rejected["line_number"]) == list(regex_rejected["line_number"])
