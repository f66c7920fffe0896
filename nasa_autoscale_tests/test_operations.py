"""Operations: the schedule, the landing sensor and the refresh, and the warehouse staying whole
through SIGKILL, re-runs, concurrent runs, a corrupt file mid-backfill and a full disk."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gzip
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.assets import ingest
from nasa_autoscale.definitions import defs
from nasa_autoscale.ingest.checks import compare_with_reference
from nasa_autoscale.ingest.logfiles import read_lines
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.settings import PROJECT_ROOT, SAMPLES_DIR, Settings

pytestmark = pytest.mark.slow  # subprocesses, servers and whole-graph runs

INGEST_SELECTION = "requests,rejected_lines,traffic_1m,traffic_5m,traffic_15m"


def day_lines(replica_dir: Path, day: dt.date) -> bytes:
    """The replica's lines of one day (all its lines carry that day's date)."""
    month = "Jul95" if day.month == 7 else "Aug95"
    lines = read_lines(replica_dir / f"NASA_access_log_{month}.gz")
    tag = day.strftime("[%d/%b/%Y:").encode()
    data = lines.data
    kept = [
        data[s:e]
        for s, e in zip(lines.starts.tolist(), lines.ends.tolist(), strict=True)
        if tag in data[s : min(e, s + 120)]
    ]
    return b"\n".join(kept) + b"\n"


def descendants(pid: int) -> list[int]:
    """Every process below pid (from /proc), children first."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
    found, frontier = [], [pid]
    while frontier:
        children = [child for child, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def traffic_digest(path: Path) -> dict[str, tuple]:
    """Row count and an order-free hash of every partitioned table."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {
            table: con.execute(
                f"SELECT count(*), sum(hash(t))::HUGEINT FROM nasa.{table} t"
            ).fetchall()[0]
            for table in INGEST_SELECTION.split(",")
        }
    finally:
        con.close()


def matches_reference(path: Path, days: list[dt.date]) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return all(compare_with_reference(con, day, day)[0] for day in days)
    finally:
        con.close()


def no_duplicates(path: Path) -> bool:
    con = duckdb.connect(str(path), read_only=True)
    total, distinct = con.execute(
        "SELECT count(*), count(DISTINCT (source_file, line_number)) FROM nasa.requests"
    ).fetchall()[0]
    con.close()
    return total == distinct


@pytest.fixture
def dagster_env(tmp_path, replica_dir):
    """Environment for the dagster CLI: a DAGSTER_HOME with the project's dagster.yaml (pools,
    retries), the replica as raw logs, a fresh warehouse."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    # create the instance's storage once, as `make dev` does: two first runs at once would race
    # to create its tables (a Dagster start-up matter, not the warehouse's)
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        check=True,
        env={**os.environ, "DAGSTER_HOME": str(home)},
        capture_output=True,
    )
    return {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "NASA_RAW_DIR": str(replica_dir),
        "NASA_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
        "NASA_LANDING_DIR": str(tmp_path / "landing"),
    }


def materialize(env: dict, partition_range: str, **popen) -> subprocess.Popen:
    first, last = partition_range.split("...")
    partition = ["--partition", first] if first == last else ["--partition-range", partition_range]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "nasa_autoscale.definitions",
            "--select",
            INGEST_SELECTION,
            *partition,
        ],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **popen,
    )


def tick(schedule, when: dt.datetime, settings=None):
    """The schedule's answer at `when` (UTC)."""
    resources = {"settings": SettingsResource.from_settings(settings)} if settings else None
    context = dg.build_schedule_context(
        scheduled_execution_time=when.replace(tzinfo=dt.UTC),
        repository_def=defs.get_repository_def(),
        resources=resources,
    )
    return schedule.evaluate_tick(context)


def test_the_daily_schedule_ingests_the_sites_day_before_in_its_zone(tmp_path):
    schedule = defs.resolve_schedule_def("daily_ingest")
    base = dataclasses.replace(Settings.from_env(), duckdb_path=tmp_path / "none.duckdb")
    nasa = dataclasses.replace(base, timezone="-0400")
    # 04:30 UTC is 00:30 at -0400: the site's day before
    assert tick(schedule, dt.datetime(1995, 7, 14, 4, 30), nasa).run_requests[0].partition_key == (
        "1995-07-13"
    )
    # 00:30 UTC is 20:30 of the day still running there: not yet
    assert (
        "20:30 in the site's zone"
        in tick(schedule, dt.datetime(1995, 7, 14, 0, 30), nasa).skip_message
    )
    late = tick(schedule, dt.datetime(2026, 11, 27, 4, 30), nasa)
    assert "outside the partitions" in late.skip_message
    # a zone east of UTC, on a part-hour offset: 18:30 UTC is 00:00 on the next day there
    from nasa_autoscale.ingest.sitezone import SiteZone
    from nasa_autoscale.schedules import day_to_ingest

    india = SiteZone.parse("+0530").tzinfo()
    assert day_to_ingest(dt.datetime(2026, 12, 6, 18, 30), india)[0] == dt.date(2026, 12, 6)
    assert day_to_ingest(dt.datetime(2026, 12, 6, 17, 30), india)[0] is None
    # auto before any ingest: nothing known to schedule by
    auto = dataclasses.replace(base, timezone="auto")
    assert "not known yet" in tick(schedule, dt.datetime(1995, 7, 14, 4, 30), auto).skip_message


def test_a_new_file_in_the_landing_folder_is_ingested_then_refreshed(tmp_path, replica_dir):
    landing = tmp_path / "landing"
    landing.mkdir()
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(SAMPLES_DIR / "nasa_2k.log", raw / "nasa_2k.log")  # July 1 only
    day = dt.date(1995, 7, 13)
    (landing / "access_log-19950713.gz").write_bytes(gzip.compress(day_lines(replica_dir, day)))
    instance = dg.DagsterInstance.ephemeral()
    sensor = defs.resolve_sensor_def("new_log_files")
    repository = defs.get_repository_def()
    settings = {"settings": SettingsResource.from_env(landing_dir=landing)}
    result = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, repository_def=repository, resources=settings)
    )
    assert [r.partition_key for r in result.run_requests] == ["1995-07-13"]
    again = sensor.evaluate_tick(
        dg.build_sensor_context(
            instance=instance, cursor=result.cursor, repository_def=repository, resources=settings
        )
    )
    assert not again.run_requests  # the same file is not ingested twice
    # the run the sensor asked for: that day from the landing file, checks included
    job = defs.resolve_job_def("ingest_job")
    path = tmp_path / "wh.duckdb"
    run = job.execute_in_process(
        partition_key="1995-07-13",
        instance=instance,
        resources={
            "warehouse": WarehouseResource(duckdb_path=str(path)),
            "settings": SettingsResource.from_env(
                raw_dir=Path(raw),
                replica_dir=tmp_path / "none",
                log_url="http://127.0.0.1:9/",
                download_timeout_s=1,
                landing_dir=Path(landing),
            ),
        },
    )
    assert run.success
    assert all(c.passed for c in run.get_asset_check_evaluations())
    assert matches_reference(path, [day])
    # ... and its success asks for the refresh of everything downstream
    refresh = defs.resolve_sensor_def("refresh_after_ingest")
    context = dg.build_run_status_sensor_context(
        sensor_name="refresh_after_ingest",
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        dagster_event=run.get_run_success_event(),
    )
    requests = refresh(context)
    assert [(r.job_name, r.partition_key) for r in requests] == [
        ("daily_refresh_job", None),
        ("daily_forecast_job", "1995-07-13"),  # the next day's forecast, the day's score
    ]


@pytest.mark.parametrize("storage", ["lake", "duckdb"])
def test_sigkill_mid_ingest_leaves_no_half_day_and_a_rerun_restores_the_counts(
    dagster_env, storage
):
    dagster_env = {**dagster_env, "NASA_LAKE": "" if storage == "lake" else "none"}
    path = Path(dagster_env["NASA_DUCKDB_PATH"])
    run = materialize(dagster_env, "1995-07-01...1995-08-31")
    deadline, seen = time.time() + 300, b""
    while time.time() < deadline:  # kill as the write begins: after the second file is parsed
        line = run.stdout.readline()
        seen += line
        if b"parsed NASA_access_log_Aug95.gz" in line or not line:
            break
    # the run and its step processes (the multiprocess executor starts them in their own sessions)
    family = [run.pid, *descendants(run.pid)]
    for pid in family:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    run.wait(timeout=30)
    deadline = time.time() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in family[1:]) and time.time() < deadline:
        time.sleep(0.2)  # orphans are reaped by init
    assert b"parsed NASA_access_log_Aug95.gz" in seen, seen[-2000:].decode(errors="replace")
    if path.exists():  # whatever was there is whole days only: here, nothing committed
        con = duckdb.connect(str(path), read_only=True)
        days = con.execute("SELECT count(DISTINCT day) FROM nasa.requests").fetchall()[0][0]
        ledger = con.execute("SELECT count(DISTINCT day) FROM nasa.ingest_ledger").fetchall()[0][0]
        con.close()
        # the DuckDB file commits all days or none; the lake replaces each day whole (its
        # ledger, in the DuckDB file, all or none)
        assert (days in (0, 62) if storage == "duckdb" else days <= 62) and ledger in (0, 62)
    # the killed run still holds its slot of the writers' pool (with a lake the parse is
    # outside the pool): recover frees it and marks the run failed
    recovered = subprocess.run(
        [sys.executable, "-m", "nasa_autoscale.recover"],
        env=dagster_env,
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
    )
    assert recovered.returncode == 0, recovered.stderr
    freed = "marked failed, its pool slots freed" if storage == "duckdb" else "marked failed"
    assert freed in recovered.stdout
    rerun = materialize(dagster_env, "1995-07-01...1995-08-31")
    output = rerun.communicate(timeout=900)[0].decode(errors="replace")
    assert rerun.returncode == 0, output[-3000:]
    assert no_duplicates(path)
    assert matches_reference(path, [dt.date(1995, 7, 1) + dt.timedelta(days=i) for i in range(62)])


def test_rematerializing_gives_identical_tables(replica_copy, replica_dir, tmp_path):
    before = traffic_digest(replica_copy)
    resources = {
        "warehouse": WarehouseResource(duckdb_path=str(replica_copy)),
        "settings": SettingsResource.from_env(
            raw_dir=Path(replica_dir),
            replica_dir=tmp_path,
            log_url="http://127.0.0.1:9/",
            download_timeout_s=1,
        ),
    }
    for _ in range(2):
        for day in ("1995-07-13", "1995-08-31"):
            result = dg.materialize(
                [ingest.parsed_log_lines, ingest.traffic_tables],
                partition_key=day,
                resources=resources,
            )
            assert result.success
            assert traffic_digest(replica_copy) == before


def test_two_runs_at_once_leave_the_warehouse_whole(dagster_env):
    path = Path(dagster_env["NASA_DUCKDB_PATH"])
    first = materialize(dagster_env, "1995-07-13...1995-07-13")
    second = materialize(dagster_env, "1995-07-13...1995-07-13")
    outputs = [run.communicate(timeout=600)[0].decode(errors="replace") for run in (first, second)]
    codes = [first.returncode, second.returncode]
    # both succeed (one waits for the pool or the file lock), or the loser says why
    for code, output in zip(codes, outputs, strict=True):
        assert code == 0 or "warehouse" in output.lower(), output[-3000:]
    assert 0 in codes
    assert no_duplicates(path)
    assert matches_reference(path, [dt.date(1995, 7, 13)])


def test_a_corrupt_file_mid_backfill_fails_its_day_and_the_others_land(
    dagster_env, replica_dir, tmp_path
):
    daily = tmp_path / "daily"
    daily.mkdir()
    days = [dt.date(1995, 7, d) for d in range(1, 6)]
    for day in days:
        data = gzip.compress(day_lines(replica_dir, day))
        if day.day == 3:  # damaged in the middle, as a bad disk or a cut transfer does
            middle = len(data) // 2
            data = data[:middle] + bytes(4096) + data[middle + 4096 :]
        (daily / f"access_log-{day:%Y%m%d}.gz").write_bytes(data)
    env = {**dagster_env, "NASA_RAW_DIR": str(daily)}
    run = materialize(env, "1995-07-01...1995-07-05")
    output = run.communicate(timeout=600)[0].decode(errors="replace")
    assert run.returncode != 0
    assert "access_log-19950703.gz" in output and "1995-07-03" in output
    assert "the other days of the range were written" in output
    path = Path(env["NASA_DUCKDB_PATH"])
    assert matches_reference(path, [d for d in days if d.day != 3])
    con = duckdb.connect(str(path), read_only=True)
    assert (
        con.execute("SELECT count(*) FROM nasa.requests WHERE day = '1995-07-03'").fetchall()[0][0]
        == 0
    )
    con.close()


def test_a_full_disk_is_a_clear_error_and_the_warehouse_keeps_its_state(tmp_path, sample_2k):
    path = tmp_path / "wh.duckdb"
    log = tmp_path / "access.log"
    log.write_bytes(sample_2k)
    con = warehouse.connect(path)
    from nasa_autoscale.ingest.load import ingest_days

    ingest_days(con, [log], dt.date(1995, 7, 1), dt.date(1995, 7, 1), "real")
    con.execute("CHECKPOINT")
    before = con.execute("SELECT count(*), sum(hash(r))::HUGEINT FROM nasa.requests r").fetchall()
    con.close()
    big = tmp_path / "big.log"  # many more lines for the same day: the write needs room
    big.write_bytes(sample_2k * 60)
    script = textwrap.dedent(f"""
        import datetime as dt, resource, signal, sys
        from pathlib import Path
        from nasa_autoscale import warehouse
        from nasa_autoscale.ingest.load import ingest_days
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a full disk: writes fail, no signal
        con = warehouse.connect({str(path)!r})
        limit = Path({str(path)!r}).stat().st_size + 64 * 1024
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        try:
            ingest_days(con, [Path({str(big)!r})], dt.date(1995, 7, 1), dt.date(1995, 7, 1),
                        "real")
            con.execute("CHECKPOINT")
        except warehouse.WarehouseError as error:
            print("ERROR:", error)
            sys.exit(3)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT
    )
    assert done.returncode == 3, done.stdout + done.stderr[-3000:]
    assert "could not write the warehouse" in done.stdout and "disk full" in done.stdout
    con = duckdb.connect(str(path), read_only=True)
    after = con.execute("SELECT count(*), sum(hash(r))::HUGEINT FROM nasa.requests r").fetchall()
    con.close()
    assert after == before
