import datetime as dt
import gzip
import os
import shutil
import subprocess
import sys
import time

import pytest

from nasa_autoscale.benchmarks import ingest as bench
from nasa_autoscale.settings import SAMPLES_DIR


def test_both_sides_of_the_ingest_benchmark_read_the_same_lines(tmp_path, malformed_lines):
    log = tmp_path / "access.log"
    shutil.copy(SAMPLES_DIR / "nasa_2k.log", log)
    with log.open("ab") as f:
        f.write(b"\n".join(malformed_lines) + b"\ngarbage\n")
    ours = bench.run_ours([log], "real")
    assert (ours["lines"], ours["requests"], ours["rejected"]) == (2006, 2005, 1)
    assert ours["traffic_rows"]["traffic_5m"] == 62 * 288
    baseline = bench.measure("baseline", [log], "real")  # in a subprocess, as the benchmark runs
    assert baseline["lines"] == 2006 and baseline["peak_mb"] > 0
    # The line-by-line regex needs a quoted request and bytes: it reads the same lines here.
    assert baseline["requests"] == 2005


def test_the_scaling_benchmark_says_what_to_run_first(tmp_path, monkeypatch, capsys):
    from nasa_autoscale import warehouse
    from nasa_autoscale.benchmarks import scaling

    path = tmp_path / "empty.duckdb"
    warehouse.connect(path).close()  # the contract tables, no scaling forecasts yet
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(path))
    assert scaling.main([]) == 1
    assert "make run" in capsys.readouterr().err


def test_the_combined_copy_holds_the_same_requests_in_utc_daily_files(tmp_path, con):
    from nasa_autoscale.benchmarks.combined_logs import main
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale.ingest.logfiles import find_log_files

    source = tmp_path / "source"
    source.mkdir()
    lines = (SAMPLES_DIR / "nasa_2k.log").read_bytes().splitlines()
    # the first lines of Jul 1, one moved to the evening (UTC: the next day), and one garbage
    late = lines[0].replace(b"01/Jul/1995:00:00:01", b"01/Jul/1995:22:00:00")
    (source / "access.log").write_bytes(b"\n".join([*lines[:99], late, b"garbage"]) + b"\n")
    out = tmp_path / "combined"
    assert main([str(out), "--source", str(source), "--shift-days", "10"]) == 0
    names = [p.name for p in find_log_files(out)]
    assert names == ["access.log", "access.log-19950711.gz"]  # the last day is not rotated yet
    summary = ingest_days(
        con, find_log_files(out), dt.date(1995, 7, 11), dt.date(1995, 7, 12), "real", timezone="UTC"
    )
    assert (summary.requests, summary.rejected) == (100, 1)
    assert set(summary.formats.values()) == {"combined"}
    first = con.sql(
        "SELECT ts, user_agent FROM nasa.requests WHERE line_number = 1 "
        "AND source_file <> 'access.log'"
    ).fetchall()[0]
    assert first[0] == dt.datetime(1995, 7, 11, 4, 0, 1) and first[1]  # 00:00:01 -0400 in UTC


def test_the_history_benchmark_moves_every_date_on_by_whole_weeks(tmp_path):
    from nasa_autoscale.benchmarks import history

    text = (SAMPLES_DIR / "nasa_2k.log").read_bytes()
    moved = history.shift_log(text, 63)
    assert moved.count(b"[02/Sep/1995:") == text.count(b"[01/Jul/1995:") > 0
    assert b"/Jul/1995:" not in moved and len(moved) == len(text)
    assert dt.date(1995, 7, 1).weekday() == dt.date(1995, 9, 2).weekday()  # a Saturday still
    assert history.shift_log(text, 0) == text
    with pytest.raises(ValueError, match="onto the trace's own"):
        history.shift_log(text, 30)  # Jul 1 -> Jul 31 would then move again: refused
    assert history.history_range(6) == (dt.date(1995, 7, 1), dt.date(1996, 7, 11))
    source = tmp_path / "a.gz"
    source.write_bytes(gzip.compress(text))
    files = history.build_history([source], tmp_path / "out", 3)
    assert [f.name for f in files] == ["copy0_a.gz", "copy1_a.gz", "copy2_a.gz"]
    assert b"[04/Nov/1995:" in gzip.decompress(files[2].read_bytes())


def test_the_history_benchmark_finds_each_steps_process_peak():
    from nasa_autoscale.benchmarks import history

    child = subprocess.Popen(
        [sys.executable, "-c", "b = bytearray(200 * 2**20); import time; time.sleep(3)"]
    )
    time.sleep(1.5)
    peaks: dict[int, int] = {}
    history._process_peaks(os.getpid(), peaks)
    child.wait()
    assert peaks[child.pid] > 200 * 1024  # kB: the child's 200 MB
    line = "x - 0123abcd-0123-4567-89ab-0123456789ab - 4242 - benchmark_models - STEP_START - go"
    assert history._STEP_PID.search(line).group("pid", "step") == ("4242", "benchmark_models")
