"""Hostile lines: numbers and offsets at their limits, impossible years, lines outside the
site's days, error logs in the log folder. Every line read is a stored request or a stored
rejection, and the run's accounting says so."""

from __future__ import annotations

import datetime as dt

import duckdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasa_autoscale.ingest.checks import lines_accounted
from nasa_autoscale.ingest.load import IngestSummary, ingest_days
from nasa_autoscale.ingest.logfiles import error_log_name, index_lines
from nasa_autoscale.ingest.parse import parse_lines
from nasa_autoscale.ingest.sitezone import SiteZone

JUL1, JUL2, JUL3 = dt.date(1995, 7, 1), dt.date(1995, 7, 2), dt.date(1995, 7, 3)
LINE = 'h - - [{day}/Jul/{year}:10:00:00 {offset}] "GET /x HTTP/1.0" 200 {bytes}'


def line(day="01", year="1995", offset="-0400", size="12") -> str:
    return LINE.format(day=day, year=year, offset=offset, bytes=size)


def ingest(con, log, first, last, site_days, **options):
    """ingest_days of one -0400 common-format file with the site's days given."""
    options = {"timezone": "-0400", "log_format": "common", **options}
    return ingest_days(con, [log], first, last, "real", site_days=site_days, **options)


HOSTILE = [
    line(size="9223372036854775808"),  # 2^63: one past BIGINT
    line(size="99999999999999999999999"),
    line(offset="+9999"),
    line(offset="-2400"),
    line(offset="+1401"),
    line(offset="+0060"),
    line(year="0001"),
    line(year="9999"),
    "garbage after an impossible line",
    line(day="02"),
    line(day="28"),  # a request after the site's last day
    "garbage after a request outside the site's days",
    line(year="1989"),  # a year before any the settings allow
    "",
]


def test_a_hostile_file_has_every_line_stored_once_with_a_reason(con, tmp_path):
    log = tmp_path / "hostile.log"
    log.write_text("\n".join(HOSTILE) + "\n")
    summary = ingest(con, log, JUL1, JUL2, (JUL1, JUL2), reject_threshold=1.0)
    requests = con.sql("SELECT line_number, bytes FROM nasa.requests").fetchall()
    assert requests == [(10, 12)]
    reasons = dict(con.sql("SELECT line_number, reason FROM nasa.rejected_lines").fetchall())
    assert len(reasons) == len(HOSTILE) - 1
    assert reasons[1].startswith("bytes out of range: 9223372036854775808")
    assert reasons[2].startswith("bytes out of range")
    for number in (3, 4, 5, 6):
        assert reasons[number].startswith("impossible UTC offset"), reasons[number]
    for number in (7, 8, 13):
        assert reasons[number].startswith("time outside 1990..2100"), reasons[number]
    assert reasons[11] == "outside the site's days (1995-07-01..1995-07-02): 1995-07-28"
    # every rejection is on one of the site's days: none is stored nowhere
    days = {day for (day,) in con.sql("SELECT DISTINCT day FROM nasa.rejected_lines").fetchall()}
    assert days <= {JUL1, JUL2}
    accounting = summary.accounting()
    assert accounting["balanced"], accounting
    assert accounting["lines_read"] == len(HOSTILE) == accounting["requests_stored"] + len(reasons)
    assert summary.outside_days == 1
    assert lines_accounted(con, JUL1, JUL2)[0]


def test_a_run_of_one_day_counts_the_other_days_lines(con, tmp_path):
    log = tmp_path / "two-days.log"
    log.write_text("\n".join([line(), "junk", line(day="02"), "junk"]) + "\n")
    summary = ingest(con, log, JUL2, JUL2, (JUL1, JUL2), reject_threshold=1.0)
    accounting = summary.accounting()
    assert (accounting["requests_stored"], accounting["rejected_stored"]) == (1, 1)
    assert accounting["lines_of_other_days"] == 2 and accounting["balanced"]


def test_the_accounting_fails_when_a_line_is_stored_nowhere():
    summary = IngestSummary(JUL1, JUL1, lines_read=3, requests=2, rejected=0, lines_nowhere=1)
    assert not summary.accounting()["balanced"]
    summary = IngestSummary(JUL1, JUL1, lines_read=3, requests=2, rejected=0)
    assert not summary.accounting()["balanced"]  # one line in neither table nor another day
    summary = IngestSummary(JUL1, JUL1, lines_read=3, requests=2, rejected=1)
    assert summary.accounting()["balanced"]


def test_requests_outside_the_site_days_do_not_make_a_file_mostly_rejected(con, tmp_path):
    log = tmp_path / "rotated.log"  # yesterday's rotation holds the day before the first one
    log.write_text("\n".join([line(day="01")] * 3 + [line(day="02")]) + "\n")
    summary = ingest(con, log, JUL2, JUL2, (JUL2, JUL3))
    assert summary.mostly_rejected == {} and summary.outside_days == 3
    assert summary.accounting()["balanced"]


def test_error_logs_are_known_by_name():
    for name in ("error.log", "error.log.1", "error.log-20261126.gz", "error_log", "ssl_error_log"):
        assert error_log_name(name), name
    for name in ("access.log", "error-pages.access.log", "terror.log", "access.log-20261126.gz"):
        assert not error_log_name(name), name


NGINX_ERROR = (
    "2026/12/01 10:00:0{i} [error] 1234#0: *5 open() "
    '"/usr/share/nginx/html/favicon.ico" failed (2: No such file or directory)'
)


def test_error_logs_and_other_text_are_set_aside_and_reported(con, tmp_path):
    access = tmp_path / "access.log"
    access.write_text(line() + "\n")
    by_name = tmp_path / "error.log"
    by_name.write_text("\n".join(NGINX_ERROR.format(i=i) for i in range(5)) + "\n")
    by_content = tmp_path / "debug.txt"
    by_content.write_text("Traceback (most recent call last):\n  File x\n")
    summary = ingest_days(con, [access, by_name, by_content], JUL1, JUL1, "real")
    assert summary.files_read == ["access.log"]
    assert set(summary.not_access_logs) == {"error.log", "debug.txt"}
    assert "error log" in summary.not_access_logs["error.log"]
    assert summary.mostly_rejected == {} and not summary.no_access_log
    assert summary.accounting()["balanced"]


def test_a_folder_of_error_logs_alone_fails_naming_them(con, tmp_path):
    log = tmp_path / "error.log"
    log.write_text(NGINX_ERROR.format(i=1) + "\n")
    summary = ingest_days(con, [log], JUL1, JUL1, "real")
    assert summary.no_access_log
    assert "no access log was found" in summary.failure_message()
    assert "error.log" in summary.failure_message()


def test_a_forced_format_reads_a_file_that_auto_sets_aside(con, tmp_path):
    log = tmp_path / "odd.log"
    log.write_text("not a line\n" * 4)
    summary = ingest_days(con, [log], JUL1, JUL1, "real", log_format="common")
    assert summary.not_access_logs == {} and summary.mostly_rejected


_numbers = st.one_of(
    st.integers(0, 2**70).map(str),
    st.sampled_from(["-", "0", str(2**63 - 1), str(2**63), "1" * 40]),
)
_offsets = st.tuples(st.sampled_from("+-"), st.integers(0, 9999)).map(lambda t: f"{t[0]}{t[1]:04d}")
_years = st.one_of(st.integers(1, 9999), st.sampled_from([1989, 1990, 2100, 2101]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(_numbers, _offsets, _years), min_size=1, max_size=12))
def test_fuzz_numbers_offsets_and_years_at_their_limits(rows):
    text = "\n".join(
        line(year=f"{year:04d}", offset=offset, size=size) for size, offset, year in rows
    )
    con = duckdb.connect()
    parsed = parse_lines(
        con,
        index_lines(text.encode() + b"\n"),
        zone=SiteZone.parse("UTC"),
        log_format="common",
        days=(dt.date(1990, 1, 1), dt.date(2100, 12, 31)),
    )
    assert parsed.n_requests + parsed.n_rejected == len(rows)
    stored = con.sql(
        f"SELECT count(*) FROM (SELECT line_number FROM {parsed.requests_table} "
        f"UNION SELECT line_number FROM {parsed.rejected_table})"
    ).fetchall()[0][0]
    assert stored == len(rows)  # each line in one table, once
    for (size, offset, year), number in zip(rows, range(1, len(rows) + 1), strict=True):
        request = con.execute(
            f"SELECT bytes, ts_utc FROM {parsed.requests_table} WHERE line_number = ?", [number]
        ).fetchall()
        minutes = int(offset[1:3]) * 60 + int(offset[3:])
        sane = (
            minutes <= 14 * 60
            and int(offset[3:]) < 60
            and (size == "-" or int(size) < 2**63)
            and 1990 <= year <= 2100
        )
        if not sane:  # July: no offset carries a sane line out of 1990..2100
            assert not request, (size, offset, year)
        else:
            assert request, (size, offset, year)
            assert dt.datetime(1990, 1, 1) <= request[0][1] < dt.datetime(2101, 1, 1)


def test_a_custom_format_rejects_impossible_offsets_and_years_too(con, tmp_path):
    nginx = "log_format iso '$remote_addr [$time_iso8601] \"$request\" $status $body_bytes_sent';"
    log = tmp_path / "iso.log"
    log.write_text(
        "\n".join(
            [
                '1.2.3.4 [1995-07-01T10:00:00-04:00] "GET / HTTP/1.1" 200 5',
                '1.2.3.4 [1995-07-01T10:00:00+99:99] "GET / HTTP/1.1" 200 5',
                '1.2.3.4 [9999-07-01T10:00:00-04:00] "GET / HTTP/1.1" 200 5',
                '1.2.3.4 [1995-07-01T10:00:00-03:30] "GET / HTTP/1.1" 200 5',
            ]
        )
        + "\n"
    )
    summary = ingest_days(
        con, [log], JUL1, JUL1, "real", timezone="-0400", log_format=nginx, reject_threshold=1.0
    )
    assert con.sql("SELECT line_number FROM nasa.requests ORDER BY 1").fetchall() == [(1,), (4,)]
    reasons = dict(con.sql("SELECT line_number, reason FROM nasa.rejected_lines").fetchall())
    assert reasons[2].startswith("impossible UTC offset") and reasons[3].startswith("time outside")
    assert summary.accounting()["balanced"]
