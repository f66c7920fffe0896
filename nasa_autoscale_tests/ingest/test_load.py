import datetime as dt
import gzip
import os

import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.ingest.checks import lines_accounted
from nasa_autoscale.ingest.load import ingest_days
from nasa_autoscale.ingest.logfiles import LogFileError
from nasa_autoscale.lake import Lake

JUL1, JUL2 = dt.date(1995, 7, 1), dt.date(1995, 7, 2)
DAY2_LINES = [
    b'a - - [02/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 10',
    b"garbage",
    b'b - - [02/Jul/1995:23:59:59 -0400] "GET /x HTTP/1.0" 404 -',
]


@pytest.fixture(params=["duckdb", "lake"])
def con(request, tmp_path):
    """Each test twice: requests in the DuckDB file, and in a lake of Parquet files (lake.py)."""
    lake = Lake(tmp_path / "lake") if request.param == "lake" else None
    connection = warehouse.connect(tmp_path / "test.duckdb", lake=lake)
    yield connection
    connection.close()


@pytest.fixture
def duck_con(tmp_path):
    """A warehouse without a lake: for the tests that edit nasa.requests in place."""
    connection = warehouse.connect(tmp_path / "test.duckdb")
    yield connection
    connection.close()


def write_log(path, sample_2k: bytes, extra: list[bytes] = DAY2_LINES, gz: bool = True):
    data = sample_2k + b"\n".join(extra) + b"\n"
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def counts(con):
    return con.sql(
        "SELECT (SELECT count(*) FROM nasa.requests), (SELECT count(*) FROM nasa.rejected_lines)"
    ).fetchall()[0]


def test_a_range_lands_whole_and_is_accounted_for(con, tmp_path, sample_2k):
    log = write_log(tmp_path / "access.log.gz", sample_2k)
    summary = ingest_days(con, [log], JUL1, JUL2, "real")
    assert summary.lines_read == 2003
    assert (summary.requests, summary.rejected) == (2002, 1)
    assert counts(con) == (2002, 1)
    passed, metadata = lines_accounted(con, JUL1, JUL2)
    assert passed, metadata
    assert metadata["files_fully_ingested"] == 1
    rejected = con.sql("SELECT * FROM nasa.rejected_lines").df()
    assert rejected.loc[0, ["line_number", "raw_line"]].tolist() == [2002, "garbage"]
    assert str(rejected.loc[0, "day"].date()) == "1995-07-02"


def test_a_one_day_run_writes_only_that_day_and_reruns_replace_it(con, tmp_path, sample_2k):
    log = write_log(tmp_path / "access.log.gz", sample_2k)
    ingest_days(con, [log], JUL2, JUL2, "real")
    assert counts(con) == (2, 1)
    ingest_days(con, [log], JUL2, JUL2, "real")  # idempotent: no duplicates
    assert counts(con) == (2, 1)
    ingest_days(con, [log], JUL1, JUL1, "real")
    assert counts(con) == (2002, 1)
    assert lines_accounted(con, JUL1, JUL2)[0]


def test_unchanged_files_whose_span_misses_the_days_are_not_read(con, tmp_path, sample_2k):
    july = write_log(tmp_path / "a.log", sample_2k, extra=[], gz=False)
    other = write_log(tmp_path / "b.log", b"", extra=DAY2_LINES, gz=False)
    first = ingest_days(con, [july, other], JUL1, JUL2, "real")
    assert first.files_read == ["a.log", "b.log"]
    again = ingest_days(con, [july, other], JUL2, JUL2, "real")
    assert (again.files_read, again.files_skipped) == (["b.log"], ["a.log"])
    os.utime(july, (0, 0))  # a changed file is read again
    assert ingest_days(con, [july, other], JUL2, JUL2, "real").files_read == ["a.log", "b.log"]


def test_a_corrupt_file_fails_clearly_and_leaves_the_warehouse_as_it_was(con, tmp_path, sample_2k):
    good = write_log(tmp_path / "a.log.gz", sample_2k)
    ingest_days(con, [good], JUL1, JUL2, "real")
    before = con.sql("SELECT * FROM nasa.requests ORDER BY line_number").df()
    data = bytearray(good.read_bytes())
    bad = tmp_path / "b.log.gz"
    bad.write_bytes(bytes(data[: len(data) - 40]))  # truncated
    summary = ingest_days(con, [good, bad], JUL1, JUL2, "real")
    error, days = summary.failed["b.log.gz"]
    assert "b.log.gz: truncated gzip file" in error
    assert days == [JUL1, JUL2]  # its name and history say nothing: every day is kept as it was
    assert "b.log.gz" in summary.failure_message() and "2 day(s)" in summary.failure_message()
    after = con.sql("SELECT * FROM nasa.requests ORDER BY line_number").df()
    assert after.equals(before)
    with pytest.raises(LogFileError, match="no such file"):  # a missing file is not a corrupt one
        ingest_days(con, [tmp_path / "gone.log"], JUL1, JUL2, "real")


def test_a_corrupt_daily_file_leaves_its_day_and_the_other_days_land(con, tmp_path, sample_2k):
    day1 = tmp_path / "access-1995-07-01.log.gz"
    day1.write_bytes(gzip.compress(sample_2k))
    day2 = tmp_path / "access-1995-07-02.log.gz"
    day2.write_bytes(gzip.compress(b"\n".join(DAY2_LINES) + b"\n"))
    ingest_days(con, [day1, day2], JUL1, JUL2, "real")
    day2_before = con.sql("SELECT * FROM nasa.requests WHERE day = '1995-07-02'").df()
    assert len(day2_before) == 2
    # day 1 gets a line more, day 2's file is damaged in the middle
    day1.write_bytes(gzip.compress(sample_2k + DAY2_LINES[0].replace(b"02/Jul", b"01/Jul")))
    damaged = bytearray(gzip.compress(b"\n".join(DAY2_LINES * 2000)))
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    day2.write_bytes(bytes(damaged))
    summary = ingest_days(con, [day1, day2], JUL1, JUL2, "real")
    assert list(summary.failed) == [day2.name] and summary.failed[day2.name][1] == [JUL2]
    assert (
        con.sql("SELECT count(*) FROM nasa.requests WHERE day = '1995-07-01'").fetchall()[0][0]
        == 2001
    )
    assert con.sql("SELECT * FROM nasa.requests WHERE day = '1995-07-02'").df().equals(day2_before)
    passed, metadata = lines_accounted(con, JUL1, JUL2)
    assert passed, metadata


def test_the_accounting_check_fails_when_a_row_goes_missing_or_doubles(
    duck_con, tmp_path, sample_2k
):
    log = write_log(tmp_path / "access.log.gz", sample_2k)
    ingest_days(duck_con, [log], JUL1, JUL2, "real")
    duck_con.execute("DELETE FROM nasa.requests WHERE line_number = 7")
    passed, metadata = lines_accounted(duck_con, JUL1, JUL2)
    assert not passed and metadata["file_days_mismatched"] == 1
    ingest_days(duck_con, [log], JUL1, JUL2, "real")
    duck_con.execute("INSERT INTO nasa.rejected_lines SELECT * FROM nasa.rejected_lines")
    passed, metadata = lines_accounted(duck_con, JUL1, JUL2)
    assert not passed and metadata["duplicate_lines"] == 1


def test_an_empty_file_is_fine(con, tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    summary = ingest_days(con, [empty], JUL1, JUL1, "real")
    assert (summary.lines_read, summary.requests, summary.rejected) == (0, 0, 0)
    assert lines_accounted(con, JUL1, JUL1)[0]


def test_a_file_of_rejected_lines_is_stored_and_fails_as_mostly_rejected(con, tmp_path):
    # 10 lines a common-format reader cannot read, in a file named for its day: none is lost
    # (NASA_LOG_FORMAT says it is an access log: with auto, such a file is set aside, below)
    log = tmp_path / "access.log-19950705"
    log.write_bytes(
        b"\n".join(b"<14>Jul  5 10:00:0%d app: not an access log" % i for i in range(10)) + b"\n"
    )
    summary = ingest_days(
        con, [log], dt.date(1995, 7, 4), dt.date(1995, 7, 6), "real", log_format="common"
    )
    assert counts(con) == (0, 10)
    days = con.sql("SELECT DISTINCT day FROM nasa.rejected_lines").fetchall()
    assert days == [(dt.date(1995, 7, 5),)]  # from the file's name
    assert summary.rejected == 10
    report = summary.mostly_rejected[log.name]
    assert "10 of 10 lines rejected (100%" in report and "NASA_LOG_FORMAT" in report
    assert "no host and [timestamp]" in report and "<14>Jul  5 10:00:00" in report
    assert "mostly rejected" in summary.failure_message()
    assert lines_accounted(con, dt.date(1995, 7, 4), dt.date(1995, 7, 6))[0]


def test_rejected_lines_of_a_file_without_requests_or_a_dated_name_take_the_first_day(
    con, tmp_path
):
    log = tmp_path / "weird.log"
    log.write_bytes(b"one\ntwo\n")
    summary = ingest_days(con, [log], JUL2, JUL2, "real", reject_threshold=1.0, log_format="common")
    assert summary.mostly_rejected == {}  # threshold 100%: not more than allowed
    assert con.sql("SELECT day FROM nasa.rejected_lines").fetchall() == [(JUL2,), (JUL2,)]


def test_lines_accounted_fails_when_a_stored_line_vanishes(duck_con, tmp_path, sample_2k):
    log = write_log(tmp_path / "access.log.gz", sample_2k)
    ingest_days(duck_con, [log], JUL1, JUL2, "real")
    assert lines_accounted(duck_con, JUL1, JUL2)[0]
    # the old defect: a line stored nowhere and left out of the ledger, so that every per-day
    # count still agrees; the file's stored rows no longer add up to its lines
    duck_con.execute("DELETE FROM nasa.rejected_lines")
    duck_con.execute("UPDATE nasa.ingest_ledger SET rejected = 0")
    passed, metadata = lines_accounted(duck_con, JUL1, JUL2)
    assert not passed and metadata["files_mismatched"] == ["access.log.gz"]
    assert metadata["file_days_mismatched"] == 0
    ingest_days(duck_con, [log], JUL1, JUL2, "real")
    assert lines_accounted(duck_con, JUL1, JUL2)[0]
    duck_con.execute("DELETE FROM nasa.requests WHERE line_number = 5")  # a line lost outright
    passed, metadata = lines_accounted(duck_con, JUL1, JUL2)
    assert not passed and metadata["file_days_mismatched"] == 1
    assert metadata["files_mismatched"] == ["access.log.gz"]


def test_a_failed_partition_keeps_what_it_read_with_its_traffic(con, tmp_path, sample_2k):
    import dataclasses

    from nasa_autoscale.ingest.partition import ingest_partition
    from nasa_autoscale.settings import Settings

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "access-1995-07-01.log.gz").write_bytes(gzip.compress(sample_2k))
    damaged = bytearray(gzip.compress(b"\n".join(DAY2_LINES * 2000)))
    damaged[len(damaged) // 2 : len(damaged) // 2 + 64] = bytes(64)
    (raw / "access-1995-07-02.log.gz").write_bytes(bytes(damaged))
    settings = dataclasses.replace(
        Settings.from_env(), raw_dir=raw, landing_dir=tmp_path / "no-landing", timezone="auto"
    )
    outcome = ingest_partition(con, settings, JUL1, JUL2, progress=lambda _: None)
    assert outcome.failed and list(outcome.summary.failed) == ["access-1995-07-02.log.gz"]
    assert outcome.source.data_source == "real" and len(outcome.source.files) == 2
    # July 1 was read: its requests are stored and add up in its traffic tables
    stored = con.sql("SELECT count(*) FROM nasa.requests WHERE day = '1995-07-01'").fetchall()
    counted = con.sql(
        "SELECT sum(requests) FROM nasa.traffic_5m WHERE CAST(bucket_start AS DATE) = '1995-07-01'"
    ).fetchall()
    assert stored[0][0] == counted[0][0] == 2000


def test_a_rotated_file_under_a_new_name_is_not_counted_twice(con, tmp_path, sample_2k):
    live = write_log(tmp_path / "access.log", sample_2k, gz=False)
    ingest_days(con, [live], JUL1, JUL2, "real")
    assert counts(con) == (2002, 1)
    # logrotate: access.log -> access.log.1 (delaycompress) -> access.log.2.gz; a copy of the
    # rotated file also sits in the landing folder, and today's access.log starts afresh
    rotated = tmp_path / "access.log-19950702.gz"
    rotated.write_bytes(gzip.compress(live.read_bytes()))
    copy = tmp_path / "landing-access.log.1"
    copy.write_bytes(live.read_bytes())
    live.write_bytes(b'c - - [03/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 10\n')
    summary = ingest_days(con, [rotated, copy, live], JUL1, JUL2, "real")
    assert summary.same_lines_as == {copy.name: rotated.name}
    assert counts(con) == (2002, 1)  # not 4004
    passed, metadata = lines_accounted(con, JUL1, JUL2)
    assert passed, metadata
    fingerprints = dict(
        con.sql("SELECT source_file, fingerprint FROM nasa.source_files").fetchall()
    )
    assert fingerprints[rotated.name] != fingerprints[live.name]
    # today's new access.log holds other lines: it is read (its day is outside this range)
    assert summary.files_read == [rotated.name, live.name]


def test_a_day_with_no_file_yet_is_not_an_error(con, tmp_path, sample_2k):
    """A live site's today (or a day whose log has not landed): the ingest succeeds, and every
    bucket of the day is missing, never zero traffic."""
    import dataclasses

    from nasa_autoscale.ingest.partition import ingest_partition
    from nasa_autoscale.ingest.traffic import write_traffic
    from nasa_autoscale.settings import Settings

    raw = tmp_path / "raw"
    raw.mkdir()
    write_log(raw / "access-1995-07-01.log.gz", sample_2k, extra=[])
    settings = dataclasses.replace(
        Settings.from_env(), raw_dir=raw, landing_dir=tmp_path / "none", timezone="auto"
    )
    day = dt.date(1995, 7, 5)
    ingest_partition(con, settings, JUL1, JUL1, progress=lambda _: None)
    outcome = ingest_partition(con, settings, day, day, progress=lambda _: None)
    assert not outcome.failed and outcome.summary.requests == 0
    write_traffic(con, day, day)
    buckets = con.sql(
        "SELECT count(*), count(*) FILTER (WHERE is_missing AND requests IS NULL) "
        "FROM nasa.traffic_5m WHERE CAST(bucket_start AS DATE) = '1995-07-05'"
    ).fetchall()[0]
    assert buckets == (288, 288)
    passed, metadata = lines_accounted(con, day, day)
    assert passed, metadata


def test_lines_accounted_fails_when_a_lake_day_file_vanishes(tmp_path, sample_2k):
    lake = Lake(tmp_path / "lake")
    con = warehouse.connect(tmp_path / "test.duckdb", lake=lake)
    log = write_log(tmp_path / "access.log.gz", sample_2k)
    ingest_days(con, [log], JUL1, JUL2, "real")
    assert lines_accounted(con, JUL1, JUL2)[0]
    assert lake.days("requests", "main") == [JUL1, JUL2]
    lake.day_file("rejected_lines", "main", JUL2).unlink()  # the day's one rejected line
    passed, metadata = lines_accounted(con, JUL1, JUL2)
    assert not passed and metadata["file_days_mismatched"] == 1
    con.close()
