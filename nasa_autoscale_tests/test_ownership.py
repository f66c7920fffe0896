"""A warehouse knows whose it is, and so does its lake: a second site's logs never land in the
first one's tables, two warehouses never share a lake partition, and a log folder of the user's
own gets a home of its own, so that the README's demo-then-own-logs path just works."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import subprocess
import sys

import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.ingest.checks import lines_accounted
from nasa_autoscale.ingest.partition import SourceError, ingest_partition
from nasa_autoscale.ingest.traffic import local_buckets, write_traffic
from nasa_autoscale.lake import Lake, LakeError
from nasa_autoscale.settings import (
    DATA_DIR,
    DEFAULT_REPORTS_DIR,
    PROJECT_ROOT,
    SAMPLES_DIR,
    Settings,
    own_logs_name,
)

JUL1, JUL2 = dt.date(1995, 7, 1), dt.date(1995, 7, 2)


def settings_for(tmp_path, raw_dir, duckdb_path, **changes) -> Settings:
    base = Settings.from_env()
    return dataclasses.replace(
        base,
        raw_dir=raw_dir,
        duckdb_path=duckdb_path,
        landing_dir=tmp_path / "landing",
        start_date="1995-07-01",
        end_date="1995-07-02",
        **changes,
    )


def logs(folder, lines: bytes):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "access.log").write_bytes(lines)
    return folder


def test_another_log_folder_into_a_used_warehouse_stops_before_any_work(tmp_path, sample_2k):
    demo = logs(tmp_path / "demo", sample_2k)
    mine = logs(tmp_path / "mine", sample_2k.replace(b"Jul/1995", b"Jul/1995", 5))
    path = tmp_path / "warehouse.duckdb"
    con = warehouse.connect(path)
    first = ingest_partition(con, settings_for(tmp_path, demo, path), JUL1, JUL1, print)
    assert first.summary.requests == 2000
    with pytest.raises(SourceError, match="holds the logs of .*demo.*NASA_RAW_DIR=.*mine"):
        ingest_partition(con, settings_for(tmp_path, mine, path), JUL1, JUL1, print)
    assert con.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0] == 2000  # untouched
    # its own warehouse takes it
    other = warehouse.connect(tmp_path / "mine.duckdb")
    second = ingest_partition(
        other, settings_for(tmp_path, mine, tmp_path / "mine.duckdb"), JUL1, JUL1, print
    )
    assert second.summary.requests == 2000
    con.close()
    other.close()


def test_two_warehouses_in_one_folder_never_share_a_lake_partition(tmp_path, sample_2k):
    shared = Lake(tmp_path / "shared-lake")
    first = warehouse.connect(tmp_path / "a.duckdb", lake=shared)
    first.close()
    with pytest.raises(LakeError, match="holds site 'main' for the warehouse .*a.duckdb"):
        warehouse.connect(tmp_path / "b.duckdb", lake=shared)
    # the same warehouse opens it again, and another site's partition is free
    warehouse.connect(tmp_path / "a.duckdb", lake=shared).close()
    warehouse.connect(tmp_path / "b.duckdb", lake=shared, site="other").close()


def test_two_sites_through_two_warehouse_paths_are_each_exact(tmp_path, sample_2k, monkeypatch):
    """Only NASA_DUCKDB_PATH set, both files in one folder: each has its own default lake."""
    monkeypatch.delenv("NASA_LAKE", raising=False)
    counts = {}
    for name, data in (("first", sample_2k), ("second", sample_2k[: sample_2k.index(b"\n") + 1])):
        folder = logs(tmp_path / name, data)
        path = tmp_path / f"{name}.duckdb"
        monkeypatch.setenv("NASA_DUCKDB_PATH", str(path))
        lake = Lake.from_setting(Settings.from_env().lake)
        con = warehouse.connect(path, lake=lake)
        ingest_partition(con, settings_for(tmp_path, folder, path), JUL1, JUL2, print)
        write_traffic(con, JUL1, JUL2)
        counts[name] = con.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0]
        assert lines_accounted(con, JUL1, JUL2)[0]
        con.close()
    assert counts == {"first": 2000, "second": 1}
    for name, expected in counts.items():  # each untouched by the other's ingest
        con = warehouse.connect(tmp_path / f"{name}.duckdb", read_only=True)
        assert con.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0] == expected
        con.close()


def test_a_log_folder_of_ones_own_gets_a_home_of_its_own(tmp_path, monkeypatch):
    for name in ("NASA_DUCKDB_PATH", "NASA_MLFLOW_URI", "NASA_MLFLOW_ARTIFACTS", "NASA_LAKE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("NASA_REPORTS_DIR", "NASA_LANDING_DIR", "NASA_RAW_DIR", "NASA_SITES_PATH"):
        monkeypatch.delenv(name, raising=False)
    demo = Settings.from_env()
    assert demo.duckdb_path == DATA_DIR / "warehouse.duckdb"
    nginx = tmp_path / "var" / "log" / "nginx"
    nginx.mkdir(parents=True)
    monkeypatch.setenv("NASA_RAW_DIR", str(nginx))
    monkeypatch.setenv("NASA_START_DATE", "2026-11-30")
    own = Settings.from_env()
    name = own_logs_name(nginx)
    assert name.startswith("nginx-") and len(name) == len("nginx-") + 6
    home = DATA_DIR / "sites" / name
    assert own.duckdb_path == home / "warehouse.duckdb"
    assert own.mlflow_uri == f"sqlite:///{home / 'mlflow.db'}"
    assert own.mlflow_artifacts == home / "mlruns" and own.lake == str(home / "lake")
    assert own.reports_dir == DEFAULT_REPORTS_DIR / name
    assert own.landing_dir == DATA_DIR / "landing" / name
    # another folder of the same name elsewhere is another site
    other = tmp_path / "srv" / "nginx"
    assert own_logs_name(other) != name


def test_the_feature_window_is_the_history_window(replica_copy):
    con = warehouse.connect(replica_copy, read_only=True)
    every = con.sql(f"SELECT min(bucket_start) FROM {local_buckets(con, 5)}").fetchall()[0][0]
    last = con.sql(f"SELECT min(bucket_start) FROM {local_buckets(con, 5, 20)}").fetchall()[0][0]
    assert every == dt.datetime(1995, 7, 1) and last == dt.datetime(1995, 8, 12)
    con.close()


def _cli(root, env: dict, partition: list[str]) -> subprocess.CompletedProcess:
    selection = "requests,rejected_lines,traffic_1m,traffic_5m,traffic_15m"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "nasa_autoscale.definitions",
        ]
        + ["--select", selection, *partition],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _count(path) -> int:
    con = warehouse.connect(path, read_only=True)
    try:
        return con.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0]
    finally:
        con.close()


@pytest.mark.slow  # the dagster CLI, twice, on a copy of the project
def test_the_demo_then_own_logs_with_the_readmes_commands(tmp_path, sample_2k):
    """The README's path in one clone: the demo's ingest, then `NASA_RAW_DIR=... NASA_START_DATE=
    ...` for an nginx folder that holds an error.log too. No other variable is set: the own logs
    land in their own home, and the demo's warehouse is untouched."""
    root = tmp_path / "clone"  # a copy of the project: its data/ is the defaults' data/
    shutil.copytree(PROJECT_ROOT / "nasa_autoscale", root / "nasa_autoscale")
    shutil.copytree(PROJECT_ROOT / "data", root / "data", ignore=_not_committed)
    (root / "data" / "raw").mkdir()
    (root / "data" / "raw" / "access-19950701.log").write_bytes(sample_2k)
    nginx = tmp_path / "var" / "log" / "nginx"
    nginx.mkdir(parents=True)
    shutil.copy(SAMPLES_DIR / "formats" / "basjes-hackers" / "hackers-access.log", nginx)
    (nginx / "error.log").write_text(
        "2015/10/25 04:00:00 [error] 12#12: *1 open() failed (2: No such file or directory)\n"
    )
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASA_")}
    env.update(PYTHONPATH=str(root), DAGSTER_HOME=str(home))

    demo = _cli(root, env, ["--partition", "1995-07-01"])
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert _count(root / "data" / "warehouse.duckdb") == 2000

    own_env = {**env, "NASA_RAW_DIR": str(nginx), "NASA_START_DATE": "2015-10-25"}
    own_env["NASA_END_DATE"] = "2015-10-30"
    own = _cli(root, own_env, ["--partition-range", "2015-10-25...2015-10-30"])
    assert own.returncode == 0, own.stdout[-3000:] + own.stderr[-3000:]
    (site,) = (root / "data" / "sites").iterdir()
    assert site.name.startswith("nginx-")
    assert _count(site / "warehouse.duckdb") == 3456  # every line of the access log
    assert _count(root / "data" / "warehouse.duckdb") == 2000  # the demo's, untouched
    con = warehouse.connect(site / "warehouse.duckdb", read_only=True)
    files = [f for (f,) in con.sql("SELECT source_file FROM nasa.source_files").fetchall()]
    con.close()
    assert files == ["hackers-access.log"]  # error.log set aside
    assert "error.log" in own.stdout + own.stderr

    # pointing the own logs at the demo's warehouse by hand stops before any work, saying what
    mixed = _cli(
        root,
        {**own_env, "NASA_DUCKDB_PATH": str(root / "data" / "warehouse.duckdb")},
        ["--partition", "2015-10-25"],
    )
    assert mixed.returncode != 0
    assert "NASA_DUCKDB_PATH" in mixed.stdout + mixed.stderr
    assert _count(root / "data" / "warehouse.duckdb") == 2000


def _not_committed(folder, names):
    """What a clone's data/ lacks: anything the project ignores (a developer's warehouse...)."""
    ignored = {"raw", "replica", "landing", "lake", "mlruns", "sites", "bench_history"}
    return [n for n in names if n in ignored or n.endswith((".duckdb", ".wal", ".db", ".lake"))]
