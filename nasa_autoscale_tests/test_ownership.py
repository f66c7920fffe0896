"""A warehouse knows whose it is, and so does its lake: a second site's logs never land in the
first one's tables, two warehouses never share a lake partition, and a log folder of the user's
own gets a home of its own, so that the README's demo-then-own-logs path just works."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.ingest.checks import lines_accounted
from nasa_autoscale.ingest.partition import SourceError, ingest_partition
from nasa_autoscale.ingest.traffic import local_buckets, write_traffic
from nasa_autoscale.lake import Lake, LakeError
from nasa_autoscale.settings import DATA_DIR, DEFAULT_REPORTS_DIR, Settings, own_logs_name

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
