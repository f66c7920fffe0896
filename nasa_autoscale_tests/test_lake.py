"""The lake (lake.py): requests and rejected_lines as a Parquet file per site and day, read
through views; the same graph's figures as with the DuckDB tables, and atomic days."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.assets import ingest
from nasa_autoscale.lake import Lake, LakeError
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.settings import Settings, SettingsError


def _run_day(tmp_path: Path, replica_dir: Path, lake: str, day: str):
    (tmp_path / "no-logs").mkdir(parents=True, exist_ok=True)
    resources = {
        "warehouse": WarehouseResource(duckdb_path=str(tmp_path / "wh.duckdb"), lake=lake),
        "settings": SettingsResource.from_env(
            raw_dir=tmp_path / "no-logs",
            replica_dir=Path(replica_dir),
            log_url="http://127.0.0.1:9/",
            download_timeout_s=2,
            lake=lake,
        ),
    }
    assert dg.materialize([ingest.raw_log_files], resources=resources).success
    result = dg.materialize(
        [ingest.parsed_log_lines, ingest.traffic_tables], resources=resources, partition_key=day
    )
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    con = warehouse.connect(tmp_path / "wh.duckdb", read_only=True)
    figures = con.sql(
        "SELECT (SELECT count(*) FROM nasa.requests), (SELECT count(*) FROM nasa.rejected_lines), "
        "(SELECT sum(requests) FROM nasa.traffic_5m), (SELECT sum(bytes) FROM nasa.traffic_5m)"
    ).fetchall()[0]
    con.close()
    return figures


def test_a_day_through_the_lake_gives_the_duckdb_runs_figures(tmp_path, replica_dir):
    plain = _run_day(tmp_path / "plain", replica_dir, "", "1995-08-01")
    lake_root = tmp_path / "lake"
    through_lake = _run_day(tmp_path / "lake_run", replica_dir, str(lake_root), "1995-08-01")
    assert plain == through_lake and plain[0] > 30_000
    assert Lake(lake_root).days("requests", "main") == [dt.date(1995, 8, 1)]


_WRITER = """
import sys, duckdb
from nasa_autoscale.lake import Lake
lake, con = Lake(__import__("pathlib").Path(sys.argv[1])), duckdb.connect()
i = 0
while True:  # the day alternates between 1,000,000 rows and 10 rows, until killed
    n = 1_000_000 if i % 2 == 0 else 10
    sql = f"SELECT DATE '2026-12-03' AS day, range AS x, repeat('y', 40) AS pad FROM range({n})"
    lake.write_days(con, "requests", "main", sql, [__import__("datetime").date(2026, 12, 3)])
    print("wrote", n, flush=True)
    i += 1
"""


def test_a_write_killed_midway_leaves_the_old_day_or_the_new_one(tmp_path):
    import duckdb

    lake = Lake(tmp_path / "lake")
    day = lake.day_file("requests", "main", "2026-12-03")
    writer = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(_WRITER), str(lake.root)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().startswith("wrote")  # one whole day is there
        time.sleep(0.3)  # in the middle of a later write
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet('{day}')").fetchall()[0][0]
    assert rows in (1_000_000, 10)
    assert [p.name for p in day.parent.iterdir()] == ["data.parquet"]  # no half file beside it


def test_a_lake_setting_that_cannot_be_used_fails_before_any_work(monkeypatch):
    for bad in ("gs://bucket/prefix", "s3://Not_A_Bucket/x", "s3://"):
        monkeypatch.setenv("NASA_LAKE", bad)
        with pytest.raises(SettingsError, match="NASA_LAKE"):
            Settings.from_env()
    monkeypatch.setenv("NASA_LAKE", "s3://lake-bucket/site-logs")
    assert Settings.from_env().lake == "s3://lake-bucket/site-logs"
    monkeypatch.setenv("NASA_LAKE", "")
    monkeypatch.setenv("NASA_SITE", "Shop Front")
    with pytest.raises(SettingsError, match="NASA_SITE"):
        Settings.from_env()


def test_a_warehouse_written_without_a_lake_moves_its_rows_into_one(tmp_path, sample_2k):
    from nasa_autoscale.ingest.checks import lines_accounted
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale_tests.ingest.test_load import write_log

    con = warehouse.connect(tmp_path / "wh.duckdb")  # requests as a table, as before
    log = write_log(tmp_path / "a.log", sample_2k, gz=False)
    JUL1, JUL2 = dt.date(1995, 7, 1), dt.date(1995, 7, 2)
    ingest_days(con, [log], JUL1, JUL2, "real")
    before = con.sql("SELECT * FROM nasa.requests ORDER BY line_number").df()
    con.close()
    lake = Lake(tmp_path / "lake")
    con = warehouse.connect(tmp_path / "wh.duckdb", lake=lake)
    assert lake.days("requests", "main") == [JUL1, JUL2]
    after = con.sql("SELECT * EXCLUDE (site) FROM nasa.requests ORDER BY line_number").df()
    assert after.equals(before[after.columns]) and len(after) == 2002
    assert lines_accounted(con, JUL1, JUL2)[0]
    con.close()
    with pytest.raises(LakeError):
        Lake(tmp_path).write_days(None, "requests", "../etc", None, [])


def test_the_lake_defaults_to_a_folder_beside_the_warehouse(monkeypatch, tmp_path):
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(tmp_path / "warehouse.duckdb"))
    monkeypatch.delenv("NASA_LAKE", raising=False)
    assert Settings.from_env().lake == str(tmp_path / "lake")
    # another warehouse in the same folder has a lake of its own
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(tmp_path / "wh.duckdb"))
    assert Settings.from_env().lake == str(tmp_path / "wh.lake")
    monkeypatch.setenv("NASA_LAKE", "none")
    assert Settings.from_env().lake == ""


_INGESTER = """
import datetime as dt, sys
from pathlib import Path
from nasa_autoscale.ingest.load import ingest_days
from nasa_autoscale.resources import WarehouseResource
folder, day = Path(sys.argv[1]), dt.date.fromisoformat(sys.argv[2])
resource = WarehouseResource(duckdb_path=str(folder / "wh.duckdb"), lake=str(folder / "lake"))
with resource.for_ingest() as (con, hold):
    summary = ingest_days(con, [folder / "a.log", folder / "b.log"], day, day, "real", hold=hold)
print(summary.requests, summary.rejected)
"""


def test_two_processes_ingest_two_days_at_once_with_every_line_accounted(tmp_path, sample_2k):
    from nasa_autoscale.ingest.checks import lines_accounted
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale_tests.ingest.test_load import write_log

    write_log(tmp_path / "a.log", sample_2k, gz=False)  # 2,000 lines of Jul 1 + 3 of Jul 2
    (tmp_path / "b.log").write_bytes(
        b'c - - [02/Jul/1995:12:00:00 -0400] "GET / HTTP/1.0" 200 1\nnot a line\n'
    )
    script = textwrap.dedent(_INGESTER)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), day],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for day in ("1995-07-01", "1995-07-02")
    ]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert all(run.returncode == 0 for run in runs), outputs
    assert [out.split() for out, _ in outputs] == [["2000", "0"], ["3", "2"]]
    con = warehouse.connect(tmp_path / "wh.duckdb")
    JUL1, JUL2 = dt.date(1995, 7, 1), dt.date(1995, 7, 2)
    assert lines_accounted(con, JUL1, JUL2)[0]
    both = con.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0]
    con.close()
    single = warehouse.connect(tmp_path / "single.duckdb")  # the same files, one process, no lake
    ingest_days(single, [tmp_path / "a.log", tmp_path / "b.log"], JUL1, JUL2, "real")
    assert single.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0] == both == 2003
    single.close()


def test_a_lake_on_an_s3_endpoint_holds_the_days_and_reads_back(tmp_path, sample_2k, s3_lake):
    from nasa_autoscale.ingest.checks import lines_accounted
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale_tests.ingest.test_load import write_log

    log = write_log(tmp_path / "a.log", sample_2k, gz=False)
    resource = WarehouseResource(duckdb_path=str(tmp_path / "wh.duckdb"), lake=s3_lake)
    JUL1, JUL2 = dt.date(1995, 7, 1), dt.date(1995, 7, 2)
    for _ in range(2):  # a re-run replaces the days
        with resource.for_ingest() as (con, hold):
            summary = ingest_days(con, [log], JUL1, JUL2, "real", hold=hold)
    assert (summary.requests, summary.rejected) == (2002, 1)
    lake = Lake.from_setting(s3_lake)
    assert not lake.local and lake.days("requests", "main") == [JUL1, JUL2]
    con = warehouse.connect(tmp_path / "wh.duckdb", read_only=True)  # as the API reads
    assert con.sql("SELECT count(*), min(site) FROM nasa.requests").fetchall() == [(2002, "main")]
    assert con.sql("SELECT raw_line FROM nasa.rejected_lines").fetchall() == [("garbage",)]
    assert lines_accounted(con, JUL1, JUL2)[0]
    con.close()


def test_the_graph_on_an_s3_lake_gives_the_duckdb_runs_figures(tmp_path, replica_dir, s3_lake):
    plain = _run_day(tmp_path / "plain", replica_dir, "", "1995-07-13")
    assert _run_day(tmp_path / "s3", replica_dir, s3_lake, "1995-07-13") == plain
