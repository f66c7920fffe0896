"""Shared fixtures: small real samples, and (built once per session) the replica and a warehouse
holding its full ingest."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path

import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.ingest.load import ingest_days
from nasa_autoscale.ingest.logfiles import find_log_files
from nasa_autoscale.ingest.replica import build_replica
from nasa_autoscale.ingest.traffic import write_traffic
from nasa_autoscale.settings import SAMPLES_DIR

NASA_FIRST_DAY = dt.date(1995, 7, 1)
NASA_LAST_DAY = dt.date(1995, 8, 31)
# A test that uses one of these is slow (the full replica, a dagster home for CLI runs, a
# browser, a database server): `make test-fast` leaves it out. Tests that are slow for another
# reason (a subprocess, a whole-graph run) say so with @pytest.mark.slow.
SLOW_FIXTURES = {"replica_dir", "replica_warehouse", "replica_copy", "dagster_env", "chromium"}


def pytest_collection_modifyitems(items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def sample_2k() -> bytes:
    """The first 2,000 raw lines of the July file, byte for byte."""
    return (SAMPLES_DIR / "nasa_2k.log").read_bytes()


@pytest.fixture
def malformed_lines() -> list[bytes]:
    """5 real malformed July lines (control and high bytes in the request)."""
    lines = (SAMPLES_DIR / "lineFormatErrorLog.txt").read_bytes().splitlines()
    return [line[len(b"REQINVALID:") :] for line in lines if line]


@pytest.fixture
def con(tmp_path):
    connection = warehouse.connect(tmp_path / "test.duckdb")
    yield connection
    connection.close()


@pytest.fixture(scope="session")
def replica_dir(tmp_path_factory) -> Path:
    """The replica of both NASA files (about 15 s to build)."""
    folder = tmp_path_factory.mktemp("replica")
    build_replica(folder)
    return folder


@pytest.fixture(scope="session")
def replica_warehouse(replica_dir, tmp_path_factory) -> Path:
    """A warehouse file with the whole replica ingested and aggregated (read it, don't write)."""
    path = tmp_path_factory.mktemp("warehouse") / "replica.duckdb"
    con = warehouse.connect(path)
    ingest_days(con, find_log_files(replica_dir), NASA_FIRST_DAY, NASA_LAST_DAY, "replica")
    write_traffic(con, NASA_FIRST_DAY, NASA_LAST_DAY)
    con.close()
    return path


@pytest.fixture
def replica_copy(replica_warehouse, tmp_path) -> Path:
    """A private, writable copy of the replica warehouse."""
    path = tmp_path / "replica.duckdb"
    shutil.copy(replica_warehouse, path)
    return path


@pytest.fixture(scope="session")
def real_traffic_5m():
    """The published real 5-minute aggregate as a traffic_5m-shaped frame (outage bins missing).
    It has no unique hosts; they are left NULL."""
    from nasa_autoscale_tests.golden import reference_traffic

    return reference_traffic()


@pytest.fixture(scope="session")
def served_warehouse(real_traffic_5m, tmp_path_factory) -> Path:
    """A warehouse holding every table the API and the dashboard read, built from the real
    5-minute aggregate with the cheap models (seasonal naive) so that it takes seconds."""
    import pandas as pd

    from nasa_autoscale.anomalies.detect import detect_anomalies
    from nasa_autoscale.features.events import load_events
    from nasa_autoscale.forecasting import backtest, deploy
    from nasa_autoscale.forecasting.models import SeasonalNaive
    from nasa_autoscale.forecasting.next import forecast_next
    from nasa_autoscale.forecasting.protocols import PROTOCOLS
    from nasa_autoscale.scaling.plan import provisioning_plan, score_plan
    from nasa_autoscale.scaling.sweep import SCENARIOS, run_sweep
    from nasa_autoscale_tests.golden import naive_scaling_forecasts, nasa_calendar

    path = tmp_path_factory.mktemp("served") / "served.duckdb"
    con = warehouse.connect(path)
    traffic = real_traffic_5m.set_index("bucket_start")
    put = lambda table, frame: warehouse.replace_table(con, table, frame)  # noqa: E731
    con.execute(
        "INSERT INTO nasa.source_files (source_file, path, size_bytes, modified_at, lines, "
        "requests, rejected, data_source, read_at) VALUES ('NASA_access_log_Aug95.gz', "
        "'replica/x', 1, 0, 1, 1, 0, 'replica', now())"
    )
    # as the ingest writes it: the UTC instant beside the site's time (EDT, -0400)
    put(
        "traffic_5m",
        real_traffic_5m.assign(
            bucket_start_utc=traffic.index + pd.Timedelta("4h"),
            missing_minutes=real_traffic_5m["is_missing"].astype(int) * 5,
        ),
    )
    put("special_events", load_events())
    anomalies = detect_anomalies(real_traffic_5m, 5)
    put("anomalies_5m", anomalies)
    calendar = nasa_calendar(traffic)
    forecasts, _ = backtest.run(SeasonalNaive(7), traffic, 5, "5m", PROTOCOLS, calendar)
    put("forecasts", forecasts.drop(columns=["step"]))
    metrics = backtest.score_all(forecasts, traffic, 5, calendar)
    metrics["mlflow_run_id"] = None
    metrics["selected"] = True  # the only model, so the one chosen
    put("model_metrics", metrics)
    upcoming = forecast_next(traffic, 5, SeasonalNaive(7))
    upcoming.insert(1, "granularity", "5m")
    upcoming["made_at"] = pd.Timestamp("2026-11-28 06:00")  # as the asset stamps it
    put("forecast_next", upcoming)
    scaling_forecasts = naive_scaling_forecasts(traffic)
    put("scaling_forecasts", scaling_forecasts)
    decisions, report, _, _ = run_sweep(
        traffic["requests"].astype(float),
        scaling_forecasts,
        anomalies,
        calendar,
        SCENARIOS,
        progress=lambda _: None,
    )
    put("scaling_decisions", decisions)
    put("cost_report", report)
    demand = traffic["requests"].astype(float)
    # the daily path's scores: each day-ahead forecast of the test window against its day
    day_ahead = forecasts[forecasts["protocol"] == "day_ahead"]
    day_ahead = day_ahead.assign(day=day_ahead["origin"].dt.date)
    scores = [  # as the asset writes them: a row per day and fleet
        {
            **deploy.score_day(group, traffic),
            **score_plan(group, demand, report, SCENARIOS, fleet),
        }
        for _, group in day_ahead.groupby("day")
        for fleet in SCENARIOS
    ]
    put("forecast_scores", pd.DataFrame(scores))
    put(
        "provisioning_plan",
        provisioning_plan(
            demand, scaling_forecasts, anomalies, report, upcoming, calendar, SCENARIOS
        )[0],
    )
    put("recommendation", pd.DataFrame({"setting": ["realistic"], "target_servers": [5]}))
    con.close()
    return path


@pytest.fixture
def s3_lake(monkeypatch):
    """An S3 API on loopback (moto's server mode) with a new bucket: the lake's URL."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for name, value in {
        "NASA_S3_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"  # moto keeps its buckets for the whole process
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/sites"
    server.stop()
