"""The follower: a growing log read once, exactly, across partial lines, rename and
copytruncate rotations, compressed rotated copies, error logs and a SIGKILL mid-write."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys

import duckdb
import pytest

from nasa_autoscale.live.follower import Follower, taken

LINE = (
    '10.0.0.{host} - - [01/Dec/2026:10:{minute:02d}:{second:02d} +0000] "GET /p{n} HTTP/1.1" '
    "200 {n}"
)


def lines(start: int, count: int) -> bytes:
    out = []
    for n in range(start, start + count):
        out.append(LINE.format(host=n % 7, minute=n // 60 % 60, second=n % 60, n=n))
    return ("\n".join(out) + "\n").encode()


def stored(follower: Follower) -> list[tuple]:
    con = duckdb.connect(str(follower.store), read_only=True)
    try:
        return con.sql(
            "SELECT url, source_file, line_number FROM nasa.live_requests ORDER BY bytes"
        ).fetchall()
    finally:
        con.close()


@pytest.fixture
def site(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    return folder, Follower(folder, tmp_path / "live.duckdb", timezone="UTC")


def test_a_growing_file_is_read_once_and_a_partial_line_waits(site):
    folder, follower = site
    log = folder / "access.log"
    log.write_bytes(lines(0, 10) + b'10.0.0.1 - - [01/Dec/2026:11:00:00 +0000] "GET /half')
    first = follower.poll()
    assert (first.lines, first.requests) == (10, 10)
    assert follower.poll().lines == 0  # nothing new: nothing read
    with open(log, "ab") as stream:
        stream.write(b' HTTP/1.1" 200 5000\n' + lines(10, 5))
    second = follower.poll()
    assert (second.lines, second.requests) == (6, 6)
    assert second.bytes_read == len(b'10.0.0.1 - - [01/Dec/2026:11:00:00 +0000] "GET /half') + len(
        b' HTTP/1.1" 200 5000\n' + lines(10, 5)
    )  # only the new bytes
    rows = stored(follower)
    assert len(rows) == 16 and [r[2] for r in rows if r[0] == "/half"] == [11]
    assert sorted(r[2] for r in rows) == list(range(1, 17))  # line numbers as in the file


def test_rotation_by_rename_reads_the_old_file_to_its_end_first(site):
    folder, follower = site
    log = folder / "access.log"
    log.write_bytes(lines(0, 5))
    follower.poll()
    with open(log, "ab") as stream:  # written after the last poll, before the rotation
        stream.write(lines(5, 3))
    log.rename(folder / "access.log.1")
    os.utime(folder / "access.log.1", ns=(1, 1))  # the older file
    log.write_bytes(lines(100, 4))
    result = follower.poll()
    assert result.files_read == ["access.log.1", "access.log"] and result.requests == 7
    rows = stored(follower)
    assert len(rows) == 12 and len({(r[0]) for r in rows}) == 12  # none lost, none twice


def test_copytruncate_and_a_compressed_rotated_copy_are_not_read_twice(site):
    folder, follower = site
    log = folder / "access.log"
    log.write_bytes(lines(0, 6))
    follower.poll()
    with open(log, "ab") as stream:
        stream.write(lines(6, 2))
    shutil.copy(log, folder / "access.log.1")  # copytruncate: copy, then truncate in place
    with open(log, "r+b") as stream:
        stream.truncate(0)
    assert follower.poll().requests == 2  # the copy's new lines only
    log.write_bytes(lines(200, 3))  # the truncated file fills again
    assert follower.poll().requests == 3
    # later the rotated copy is compressed: the same first line, already read
    (folder / "access.log.1.gz").write_bytes(gzip.compress((folder / "access.log.1").read_bytes()))
    (folder / "access.log.1").unlink()
    assert follower.poll().requests == 0
    assert len(stored(follower)) == 11


def test_error_logs_are_not_followed(site):
    folder, follower = site
    (folder / "error.log").write_text("2026/12/01 10:00:00 [error] 1#1: *1 oops\n")
    (folder / "access.log").write_bytes(lines(0, 2))
    assert follower.poll().files_read == ["access.log"]


_FOLLOW = """
import sys
from pathlib import Path
from nasa_autoscale.live.follower import Follower
Follower(Path(sys.argv[1]), Path(sys.argv[2]), timezone="UTC").poll()
"""


@pytest.mark.slow  # subprocesses, one killed inside its transaction
def test_a_sigkill_inside_the_write_loses_nothing_and_doubles_nothing(site):
    folder, follower = site
    (folder / "access.log").write_bytes(lines(0, 50))
    command = [sys.executable, "-c", _FOLLOW, str(folder), str(follower.store)]
    done = subprocess.run(command, env={**os.environ, "NASA_FOLLOWER_CRASH": "1"}, timeout=120)
    assert done.returncode == -9  # killed mid-transaction
    assert stored(follower) == [] if follower.store.exists() else True
    subprocess.run(command, check=True, timeout=120)
    with open(folder / "access.log", "ab") as stream:
        stream.write(lines(50, 10))
    subprocess.run(command, check=True, timeout=120)
    assert len(stored(follower)) == 60 and taken(follower.store, dt.date(2026, 12, 1)) == (60, 0)


def test_the_watermark_follows_the_data_and_the_quiet_clock_then_stops():
    from nasa_autoscale.live.follower import watermark

    t = dt.datetime(2026, 12, 1, 10, 0)
    late, stale = dt.timedelta(seconds=10), dt.timedelta(minutes=5)
    assert watermark(None, None, t, late, stale) is None  # nothing seen: nothing complete
    # data just arrived: complete up to the newest line less the lateness
    assert watermark(t, t, t, late, stale) == t - late
    # quiet for 2 minutes: the clock closes buckets (zero traffic on a live log)
    two = t + dt.timedelta(minutes=2)
    assert watermark(t, t, two, late, stale) == two - late
    # quiet past stale_after: stalled, the watermark stops
    hour = t + dt.timedelta(hours=1)
    assert watermark(t, t, hour, late, stale) == t + stale - late


def test_a_poll_records_the_watermark(site):
    folder, follower = site
    (folder / "access.log").write_bytes(lines(0, 30))  # 10:00:00 .. 10:00:29
    now = dt.datetime(2026, 12, 1, 10, 0, 31)
    result = follower.poll(now=now)
    assert result.watermark == dt.datetime(2026, 12, 1, 10, 0, 21)  # now - 10 s
    later = follower.poll(now=now + dt.timedelta(hours=2))  # quiet, then stalled
    assert later.watermark == now + dt.timedelta(minutes=5) - dt.timedelta(seconds=10)


def test_the_daily_run_reconciles_what_the_follower_took(site, tmp_path):
    from nasa_autoscale import warehouse
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale.live.follower import reconcile

    folder, follower = site
    log = folder / "access.log"
    log.write_bytes(lines(0, 40))
    follower.poll()
    with open(log, "ab") as stream:
        stream.write(lines(40, 20) + b"garbage\n")
    follower.poll()
    day = dt.date(2026, 12, 1)
    assert taken(follower.store, day) == (60, 1)
    con = warehouse.connect(tmp_path / "warehouse.duckdb")
    ingest_days(con, [log], day, day, "real", timezone="UTC")
    outcome = reconcile(follower.store, con, day, day)
    assert outcome == {"2026-12-01": {"follower": 60, "warehouse": 60, "equal": True}}
    assert taken(follower.store, day) == (0, 0)  # the warehouse holds the day now
    con.close()


@pytest.mark.slow  # a subprocess
def test_make_lives_loop_follows_the_site_folder(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "access.log").write_bytes(lines(0, 12))
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASA_")}
    env.update(
        NASA_RAW_DIR=str(folder),
        NASA_DUCKDB_PATH=str(tmp_path / "warehouse.duckdb"),
        NASA_START_DATE="2026-12-01",
    )
    done = subprocess.run(
        [sys.executable, "-m", "nasa_autoscale.live", "--interval", "0.1", "--polls", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "12 lines (12 requests) from access.log" in done.stdout
    assert taken(tmp_path / "warehouse.live.duckdb", dt.date(2026, 12, 1)) == (12, 0)


def test_the_follower_benchmark_counts_every_line_it_wrote():
    from nasa_autoscale.benchmarks.follower import measure

    written = lines(0, 400).splitlines(keepends=True)
    result = measure(written, factor=1000, interval=0.5, polls=3)
    assert result["lines_taken"] == result["lines_written"] > 0
    assert result["share_of_a_core"] > 0 and result["cpu_ms_idle_poll"] > 0


def test_live_observed_gives_complete_buckets_and_quiet_ones_as_zero(site):
    from nasa_autoscale.live.follower import live_observed

    folder, follower = site
    early = lines(0, 10)  # 10:00:00 .. 10:00:09
    late = LINE.format(host=1, minute=12, second=0, n=99).encode() + b"\n"  # 10:12:00
    (folder / "access.log").write_bytes(early + late)
    assert live_observed(follower.store, 5) is None  # no poll yet: nothing known
    follower.poll(now=dt.datetime(2026, 12, 1, 10, 12, 30))
    buckets, mark = live_observed(follower.store, 5)
    assert mark == dt.datetime(2026, 12, 1, 10, 12, 20)  # now - 10 s of lateness
    assert buckets["requests"].tolist() == [10, 0]  # 10:00 and the quiet 10:05; 10:10 is open
    assert not buckets["is_missing"].any()
