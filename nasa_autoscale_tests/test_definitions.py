"""The Dagster graph: it loads, and its assets materialize in-process and from the CLI."""

import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import duckdb
import httpx
import pandas as pd
import pytest

from nasa_autoscale.assets import anomalies, features, ingest
from nasa_autoscale.definitions import defs
from nasa_autoscale.ingest.reference import reference_counts
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.scaling import aws
from nasa_autoscale.settings import SAMPLES_DIR, Settings
from nasa_autoscale_tests.keda import LOCATIONS, json_value, prometheus_value
from nasa_autoscale_tests.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]
INGEST_ASSETS = ["requests", "rejected_lines", "traffic_1m", "traffic_5m", "traffic_15m"]
ANALYSIS_ASSETS = [
    *("special_events", "features_1m", "features_5m", "features_15m", "anomalies_5m"),
    *("anomaly_injection", "anomaly_flags"),
    *("forecasts", "model_metrics", "forecast_next", "scaling_forecasts", "scaling_decisions"),
    *("cost_report", "cost_robustness", "recommendation", "provisioning_plan"),
]
DAILY_ASSETS = ["daily_forecasts", "forecast_scores"]  # partitioned: the daily forecast job
LIVE_ASSETS = ["live_requests", "live_plan"]  # external: make live writes them


def test_definitions_load_with_every_asset_check_and_job():
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "raw_log_files",
        *INGEST_ASSETS,
        *ANALYSIS_ASSETS,
        *DAILY_ASSETS,
        *LIVE_ASSETS,
    }
    assert not graph.get(dg.AssetKey("live_plan")).is_materializable
    assert ("forecast_scores", "day_ahead_drift") in {
        (c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys
    }
    checks = {(c.asset_key.to_user_string(), c.name) for c in graph.asset_check_keys}
    assert ("requests", "lines_accounted") in checks
    assert ("traffic_5m", "matches_reference") in checks
    assert ("live_plan", "watermark_is_fresh") in checks
    assert {
        ("features_1m", "missing_stays_missing"),
        ("features_15m", "missing_stays_missing"),
    } <= (checks)
    assert defs.resolve_job_def("ingest_job").partitions_def is not None
    analysis = defs.resolve_job_def("analysis_job").asset_layer.selected_asset_keys
    assert {k.to_user_string() for k in analysis} == set(ANALYSIS_ASSETS)
    # the daily path refreshes the light assets; the benchmark (every model, the sweep) is weekly
    daily = defs.resolve_job_def("daily_refresh_job").asset_layer.selected_asset_keys
    # (not the feature tables: no asset reads them, the models build their own features)
    assert {k.to_user_string() for k in daily} == {
        "special_events",
        "anomalies_5m",
        "forecast_next",
        "recommendation",
        "provisioning_plan",
    }
    weekly = defs.resolve_job_def("benchmark_job").asset_layer.selected_asset_keys
    assert {"model_metrics", "cost_report", "cost_robustness", "anomaly_flags"} <= {
        k.to_user_string() for k in weekly
    }
    assert defs.resolve_schedule_def("weekly_benchmark").job_name == "benchmark_job"


def resources(tmp_path, raw_dir, replica_dir):
    return {
        "warehouse": WarehouseResource(duckdb_path=str(tmp_path / "wh.duckdb")),
        "settings": SettingsResource.from_env(
            raw_dir=Path(raw_dir),
            replica_dir=Path(replica_dir),
            log_url="http://127.0.0.1:9/",  # nothing listens there: the download fails at once
            download_timeout_s=2,
        ),
    }


def test_replica_run_says_replica_in_every_assets_metadata(tmp_path, replica_dir):
    (tmp_path / "no-logs").mkdir()
    res = resources(tmp_path, tmp_path / "no-logs", replica_dir)
    raw = dg.materialize([ingest.raw_log_files], resources=res)
    assert raw.success
    [event] = raw.get_asset_materialization_events()
    assert event.materialization.metadata["data_source"].value == "replica"
    result = dg.materialize(
        [ingest.parsed_log_lines, ingest.traffic_tables], resources=res, partition_key="1995-08-01"
    )
    assert result.success
    for event in result.get_asset_materialization_events():
        assert event.materialization.metadata["data_source"].value == "replica"
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 5 and all(c.passed for c in checks)


def ingest_command(partition: str) -> list[str]:
    """The plain dagster CLI materializing the ingest assets of one day."""
    return [
        sys.executable,
        "-m",
        "dagster",
        "asset",
        "materialize",
        "-m",
        "nasa_autoscale.definitions",
        "--select",
        ",".join(INGEST_ASSETS),
        "--partition",
        partition,
    ]


@pytest.mark.slow  # the dagster CLI, or the whole analysis
def test_cli_materializes_one_partition_of_a_users_log(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(SAMPLES_DIR / "nasa_2k.log", raw / "access.log")
    # as Dagster's docs show it: from the repository root, without make and without DAGSTER_HOME
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(NASA_RAW_DIR=str(raw), NASA_DUCKDB_PATH=str(tmp_path / "cli.duckdb"))
    command = ingest_command("1995-07-01")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    validate = [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"]
    done = subprocess.run(validate, env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0 and "passed validation" in done.stdout + done.stderr, done.stderr
    con = duckdb.connect(str(tmp_path / "cli.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM nasa.requests").fetchall()[0][0] == 2000
    t5 = con.sql("SELECT * FROM nasa.traffic_5m ORDER BY 1").df()
    assert len(t5) == 288
    reference = reference_counts(5)
    assert t5.requests.iloc[:6].tolist() == reference.iloc[:6].tolist()
    # The sample ends at 00:33:55: bucket 00:30 holds part of its minutes and says so.
    assert t5.requests.iloc[6] < reference.iloc[6] and t5.missing_minutes.iloc[6] == 1
    assert t5.is_missing.iloc[7:].all()  # after the sample's last line, no log: missing


def test_analysis_assets_materialize_on_the_replica_warehouse(replica_copy, tmp_path, monkeypatch):
    res = {
        "warehouse": WarehouseResource(duckdb_path=str(replica_copy)),
        "settings": SettingsResource.from_env(reports_dir=tmp_path / "reports"),
    }
    result = dg.materialize(
        [
            features.special_events,
            features.feature_tables,
            features.missing_stays_missing,
            anomalies.anomalies_5m,
        ],
        resources=res,
    )
    assert result.success
    checks = result.get_asset_check_evaluations()
    assert len(checks) == 3 and all(c.passed for c in checks)
    metadata = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert metadata["features_5m"]["dagster/row_count"].value == 62 * 288
    assert metadata["anomalies_5m"]["data_source"].value == "replica"
    assert 0 < metadata["anomalies_5m"]["recall_z"].value <= 1
    assert (tmp_path / "reports" / "anomaly_report.md").read_text().startswith("# Anomaly report")
    con = duckdb.connect(str(replica_copy), read_only=True)
    assert con.sql("SELECT count(*) FROM nasa.special_events").fetchall()[0][0] >= 15
    kinds = dict(con.sql("SELECT kind, count(*) FROM nasa.anomalies_5m GROUP BY kind").fetchall())
    assert (
        kinds["outage"]
        == con.sql("SELECT count(*) FROM nasa.traffic_5m WHERE is_missing").fetchall()[0][0]
    )


@pytest.mark.slow  # the dagster CLI, or the whole analysis
def test_forecasting_and_scaling_assets_log_to_mlflow_and_write_the_tables(
    replica_copy, tmp_path, monkeypatch
):
    import mlflow

    from nasa_autoscale.assets import forecasting, scaling
    from nasa_autoscale.resources import MLflowResource

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    res = {
        "warehouse": WarehouseResource(duckdb_path=str(replica_copy)),
        "settings": SettingsResource.from_env(
            reports_dir=tmp_path / "reports",
            forecast_granularities=("5m",),  # the 1m and 15m runs add minutes
        ),
        "mlflow": MLflowResource(tracking_uri=uri, artifact_dir=str(tmp_path / "mlruns")),
    }
    result = dg.materialize(
        [
            features.special_events,
            anomalies.anomalies_5m,
            forecasting.benchmark_models,
            forecasting.forecast_next,
            scaling.scaling_forecasts,
            scaling.policy_sweep,
            scaling.cost_robustness,
            scaling.recommendation,
            scaling.provisioning_plan,
        ],
        resources=res,
    )
    assert result.success
    con = duckdb.connect(str(replica_copy), read_only=True)
    metrics = con.sql("SELECT * FROM nasa.model_metrics").df()
    assert set(metrics.protocol) == {"one_shot", "day_ahead", "hour_ahead", "one_step"}
    assert {"lightgbm_direct", "sarima_fourier", "prophet", "ensemble"} <= set(metrics.model)
    assert metrics.mlflow_run_id.notna().all() and (metrics.n > 2500).all()
    assert con.sql("SELECT bool_and(origin <= bucket_start) FROM nasa.forecasts").fetchall()[0][0]
    assert con.sql("SELECT count(*) FROM nasa.forecast_next").fetchall()[0][0] == 288
    # one model selected per protocol, on the validation window, and forecast_next uses it
    assert metrics.groupby("protocol")["selected"].sum().eq(1).all()
    chosen = metrics[metrics.selected & (metrics.protocol == "day_ahead")]
    day_ahead = metrics[metrics.protocol == "day_ahead"]
    assert chosen.validation_rmse.iloc[0] == day_ahead.validation_rmse.min()
    used = con.sql("SELECT DISTINCT model FROM nasa.forecast_next").fetchall()
    assert used == [(chosen.model.iloc[0],)]
    assert metrics.calibration.notna().all() and metrics.coverage.between(0, 1).all()
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(metrics.loc[metrics.model == "lightgbm_direct", "mlflow_run_id"].iloc[0])
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert "one_step_rmse" in run.data.metrics
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run.info.run_id)}
    assert {"lightgbm_h1.txt", "calibration.json", "input_example.csv"} <= artifacts
    assert "feature_importance_gain.csv" in artifacts
    gain = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="feature_importance_gain.csv"
        )
    )
    assert (
        gain["gain_share"].sum() == pytest.approx(1.0)
        and gain["gain_share"].is_monotonic_decreasing
    )
    # the weighted ensemble: its weights per protocol in its run and its rows' params
    weighted = metrics[metrics.model == "ensemble_weighted"].set_index("protocol")
    logged = mlflow.get_run(weighted.at["day_ahead", "mlflow_run_id"])
    weights = json.loads(weighted.at["day_ahead", "params"])["weights"]
    assert json.loads(logged.data.params["weights_day_ahead"]) == weights
    assert sum(weights.values()) == pytest.approx(1.0)
    example = pd.read_csv(
        mlflow.artifacts.download_artifacts(
            run_id=logged.info.run_id, artifact_path="input_example.csv"
        )
    )
    assert {"requests", "bytes", "minute_last"} <= set(example.columns)
    # the model runs of one Dagster run are nested under one group run
    group = mlflow.get_run(run.data.tags["mlflow.parentRunId"])
    assert group.info.run_name.startswith("benchmark ") and group.data.tags["dagster_run_id"] == (
        result.run_id
    )
    # the selected day-ahead model is the registry's champion, and forecast_next loaded it there
    version = mlflow.MlflowClient().get_model_version_by_alias("nasa_autoscale_5m", "champion")
    assert version.run_id == chosen.mlflow_run_id.iloc[0]
    assert chosen.champion_version.iloc[0] == str(version.version)
    assert metrics.champion_version.notna().sum() == 1
    made = result.asset_materializations_for_node("forecast_next")[0].metadata
    assert "nasa_autoscale_5m@champion" in made["chosen_by"].value
    report = (tmp_path / "reports" / "benchmark.md").read_text()
    assert "## Targets" in report and "83.26" in report
    assert f"| {gain['feature'].iloc[0]} " in report.split("feature importance, 5-minute (gain)")[1]
    coverage = report.split("## 5-minute coverage of the 80% intervals")[1].split("## Targets")[0]
    assert "| lightgbm_direct" in coverage and "| prophet" in coverage
    # scaling: every policy in both settings, the optimum drops nothing, a recommendation each
    report = con.sql("SELECT * FROM nasa.cost_report").df()
    assert set(report.setting) == {"default", "realistic"} and len(report) == 24
    optimum = report[report.policy == "hindsight_optimal"]
    assert (optimum.dropped_fraction == 0).all() and (optimum.pct_above_optimal == 0).all()
    assert con.sql("SELECT count(*) FROM nasa.scaling_decisions").fetchall()[0][0] == 24 * 2592
    assert con.sql(
        "SELECT bool_and(origin <= bucket_start) FROM nasa.scaling_forecasts"
    ).fetchall()[0][0]
    recommendation = con.sql("SELECT * FROM nasa.recommendation").df()
    assert len(recommendation) == 2 and recommendation.reason.str.len().min() > 20
    # the plan: a day of buckets per setting, its first step the recommendation
    plan = con.sql("SELECT * FROM nasa.provisioning_plan ORDER BY setting, bucket_start").df()
    assert plan.groupby("setting").size().eq(288).all()
    first = plan.groupby("setting")["servers"].first()
    assert first.to_dict() == recommendation.set_index("setting")["target_servers"].to_dict()
    cost_md = (tmp_path / "reports" / "cost_report.md").read_text()
    assert cost_md.startswith("# Cost report") and cost_md.count("KEDA + HPA on our forecast") == 2
    assert (tmp_path / "reports" / "figures" / "cost_pareto.png").exists()
    assert report[report.policy == "keda_hpa"].tuned_on.eq("fixed").all()
    con.close()
    play_keda_against_a_launched_api(replica_copy)
    replay_equals_benchmark(replica_copy)

    # the AWS export of the realistic fleet's next day (moved to tomorrow: the plan is of 1995)
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    exported = aws.export(
        replica_copy,
        Settings.from_env().fleets(),
        "realistic",
        "web",
        tmp_path / "a.json",
        tomorrow,
    )
    assert 1 <= exported["actions"] <= aws.MAX_ACTIONS_PER_GROUP
    assert exported["calls"] == -(-exported["actions"] // aws.MAX_ACTIONS_PER_CALL)


def replay_equals_benchmark(path):
    """make bench-live's replay, on the first two hours of the test window: the follower takes
    every line once and the planner's forecasts and decisions are the benchmark's."""
    from nasa_autoscale.benchmarks.live import replay

    settings = dataclasses.replace(Settings.from_env(), duckdb_path=path)
    result = replay(settings, days=2 / 24, progress=lambda _: None)
    lines = result["lines"]
    assert lines["lost"] == lines["doubled"] == 0
    assert lines["requests_taken"] == lines["requests_expected"] > 1000
    for step in result["forecasts"]["5m"].values():
        assert step["buckets"] >= 23 and step["max_abs_difference"] < 1e-6
    for fleet in result["fleets"].values():
        assert fleet["buckets_deciding_differently"] == 0
        assert fleet["live"] == fleet["benchmark_same_buckets"]
    assert result["lag_s"]["p95"] < 30


def play_keda_against_a_launched_api(path):
    """KEDA's metrics-api scaler, JSON and prometheus formats, against `python -m
    nasa_autoscale.api` on loopback with a key, for every fleet."""
    key = "keda-scaler-key-0123456789"
    port = free_port()
    env = {**os.environ, "NASA_DUCKDB_PATH": str(path), "NASA_API_KEYS": key}
    server = subprocess.Popen(
        [sys.executable, "-m", "nasa_autoscale.api", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base, headers = f"http://127.0.0.1:{port}", {"X-API-KEY": key}
    try:
        assert wait_for(f"{base}/fleets", server).status_code == 401
        fleets = httpx.get(f"{base}/fleets", headers=headers, timeout=30).json()["fleets"]
        page = httpx.get(f"{base}/metrics/prometheus", headers=headers, timeout=30)
        assert page.status_code == 200
        for fleet in fleets:
            answer = httpx.get(f"{base}/scaling/{fleet['name']}", headers=headers, timeout=30)
            assert answer.status_code == 200, answer.text
            values = {path: json_value(answer.json(), path) for path in LOCATIONS}
            selector = f'nasa_autoscale_desired_servers{{fleet="{fleet["name"]}"}}'
            assert prometheus_value(page.text, selector) == values["desired_servers"]
            assert fleet["min_servers"] <= values["desired_servers"] <= fleet["max_servers"]
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow  # the dagster CLI, or the whole analysis
def test_cli_ingests_a_combined_utc_log_with_only_a_folder_and_a_start_date(tmp_path):
    """A modern site's log through the plain dagster CLI; then a file that is no access log
    fails the run after its lines are stored, saying what to check."""
    raw = tmp_path / "raw"
    raw.mkdir()
    lines = [
        f"2001:db8::{i % 7:x} - - [20/Nov/2026:{i // 60:02d}:{i % 60:02d}:00 +0000] "
        f'"GET /p{i % 5} HTTP/2.0" 200 {100 + i} "https://example.org/" "Mozilla/5.0 (X11)"'
        for i in range(600)
    ]
    (raw / "access.log-20261120").write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "NASA_RAW_DIR": str(raw),
        "NASA_START_DATE": "2026-11-20",
        "NASA_DUCKDB_PATH": str(tmp_path / "site.duckdb"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    env.pop("NASA_END_DATE", None)
    env.pop("NASA_TIMEZONE", None)
    (tmp_path / "dagster_home").mkdir()
    command = ingest_command("2026-11-20")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    con = duckdb.connect(str(tmp_path / "site.duckdb"), read_only=True)
    assert con.sql("SELECT count(*), count(user_agent) FROM nasa.requests").fetchall() == [
        (600, 600)
    ]
    assert con.sql("SELECT log_format FROM nasa.source_files").fetchall() == [("combined",)]
    assert con.sql("SELECT sum(requests) FROM nasa.traffic_5m").fetchall() == [(600,)]
    con.close()
    (raw / "access.log-20261120").unlink()
    (raw / "app.log-20261120").write_text("\n".join(f"INFO step {i}" for i in range(50)) + "\n")
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    # not an access log at all: set aside, and a run that finds nothing else fails naming it
    assert done.returncode != 0
    assert "no access log was found" in done.stderr and "app.log-20261120" in done.stderr
    assert "NASA_LOG_FORMAT" in done.stderr
    # read as the access log NASA_LOG_FORMAT says it is: stored, and mostly rejected
    forced = {**env, "NASA_LOG_FORMAT": "combined"}
    done = subprocess.run(command, env=forced, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "50 of 50 lines rejected" in done.stderr and "NASA_LOG_FORMAT" in done.stderr
    con = duckdb.connect(str(tmp_path / "site.duckdb"), read_only=True)
    assert con.sql("SELECT count(*) FROM nasa.rejected_lines").fetchall() == [(50,)]


@pytest.mark.slow  # a Dagster run of the whole analysis
def test_a_four_day_history_gets_a_forecast_and_a_recommendation_and_says_what_it_skipped(
    tmp_path, monkeypatch, sample_2k
):
    """The whole analysis on four days of a user's combined log: no benchmark, no IndexError."""
    import datetime as dt

    from nasa_autoscale import warehouse
    from nasa_autoscale.assets import forecasting, scaling
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale.ingest.traffic import write_traffic
    from nasa_autoscale.resources import MLflowResource

    path = tmp_path / "short.duckdb"
    log = tmp_path / "access.log"
    lines = [
        f"10.0.0.{i % 50} - - [{day:02d}/May/2015:{(i // 12) % 24:02d}:{i % 12 * 5:02d}:00 "
        f'+0000] "GET /{i % 9} HTTP/1.1" 200 512 "-" "curl/8"'
        for day in (17, 18, 19, 20)
        for i in range(288 * (1 + day % 3))
    ]
    log.write_text("\n".join(lines) + "\n")
    con = warehouse.connect(path)
    first, last = dt.date(2015, 5, 17), dt.date(2015, 5, 20)
    ingest_days(con, [log], first, last, "real")
    write_traffic(con, first, last)
    con.close()
    res = {
        "warehouse": WarehouseResource(duckdb_path=str(path)),
        "settings": SettingsResource.from_env(reports_dir=tmp_path / "reports"),
        "mlflow": MLflowResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            artifact_dir=str(tmp_path / "mlruns"),
        ),
    }
    result = dg.materialize(
        [
            features.special_events,
            features.feature_tables,
            anomalies.anomalies_5m,
            anomalies.anomaly_injection,
            forecasting.benchmark_models,
            forecasting.forecast_next,
            scaling.scaling_forecasts,
            scaling.policy_sweep,
            scaling.cost_robustness,
            scaling.recommendation,
            scaling.provisioning_plan,
        ],
        resources=res,
    )
    assert result.success
    metadata = {
        e.asset_key.to_user_string(): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    for skipped in (
        "forecasts",
        "model_metrics",
        "scaling_forecasts",
        "cost_report",
        "cost_robustness",
        "anomaly_injection",
    ):
        assert "26 more day(s)" in metadata[skipped]["skipped"].value, skipped
    assert metadata["forecast_next"]["model"].value == "seasonal_naive_day"
    con = duckdb.connect(str(path), read_only=True)
    upcoming = con.sql("SELECT min(bucket_start), count(*) FROM nasa.forecast_next").fetchall()
    assert upcoming == [(dt.datetime(2015, 5, 21), 288)]
    assert con.sql("SELECT count(*) FROM nasa.cost_report").fetchall() == [(0,)]
    assert con.sql("SELECT count(*) FROM nasa.anomaly_flags").fetchall() == [(0,)]
    reasons = con.sql("SELECT policy, reason FROM nasa.recommendation").fetchall()
    assert len(reasons) == 2 and all(p == "predictive" and "untuned" in r for p, r in reasons)
    plan = con.sql("SELECT * FROM nasa.provisioning_plan").df()
    assert len(plan) == 2 * 288 and (plan.policy == "predictive").all()
    targets = dict(con.sql("SELECT setting, target_servers FROM nasa.recommendation").fetchall())
    assert plan.groupby("setting")["servers"].first().to_dict() == targets
    report = (tmp_path / "reports" / "benchmark.md").read_text()
    assert "skipped" in report and "4 whole day(s) of data; the benchmark needs 30" in report
