"""The one Definitions object: assets, checks, jobs and resources."""

from __future__ import annotations

import dagster as dg

from nasa_autoscale.assets import anomalies, daily, features, forecasting, ingest, live, scaling
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.schedules import (
    daily_ingest_schedule,
    landing_sensor,
    refresh_sensor,
    weekly_benchmark_schedule,
)
from nasa_autoscale.settings import current

_settings = current()  # the one settings object: resources and partitions are built from it

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(ingest.parsed_log_lines, ingest.traffic_tables),
    description="Parse one day's (or a range's) log lines and rebuild its traffic tables.",
    executor_def=dg.in_process_executor,  # two steps, one after the other: no process each
)

analysis_job = dg.define_asset_job(
    "analysis_job",
    selection=dg.AssetSelection.groups("features", "anomalies", "forecasting", "scaling"),
    description="Rebuild events, features, anomaly flags, models, forecasts and their metrics, "
    "scaling decisions, the cost report and the recommendation from the traffic tables.",
)

# After each day's ingest: what depends on the new traffic, with the model and policy the last
# benchmark chose (model_metrics.selected, cost_report.selected); minutes, not the benchmark's.
# The feature tables are not in it: they are for people and the checks (the models build their
# own features in memory), rebuilt with the analysis.
daily_refresh_job = dg.define_asset_job(
    "daily_refresh_job",
    selection=dg.AssetSelection.assets(
        features.special_events,
        anomalies.anomalies_5m,
        forecasting.forecast_next,
        scaling.recommendation,
        scaling.provisioning_plan,
    ),
    description="After each ingest: events, anomaly flags, the next day's forecast "
    "from the deployed model, the provisioning plan and the recommendation from the deployed "
    "policy.",
    # small steps: one process saves a Dagster process start per step, most of their time
    executor_def=dg.in_process_executor,
)

# The same day, partitioned: the next day's forecast from the deployed model, and the score of
# the day's own forecast (made at its midnight) now that it has happened.
daily_forecast_job = dg.define_asset_job(
    "daily_forecast_job",
    selection=dg.AssetSelection.assets(daily.daily_forecasts, daily.forecast_scores),
    description="For an ingested day: the next day's forecast from the deployed model and the "
    "day's own forecast scored against what happened (drift check included).",
    executor_def=dg.in_process_executor,
)

benchmark_job = dg.define_asset_job(
    "benchmark_job",
    selection=dg.AssetSelection.groups("forecasting", "scaling")
    | dg.AssetSelection.assets(anomalies.anomaly_injection),
    description="Every model under every protocol, the scaling forecasts, the policy sweep and "
    "the robustness table, the anomaly injection benchmark, the reports, and what they deploy: "
    "weekly and on demand.",
)

defs = dg.Definitions(
    assets=[
        ingest.raw_log_files,
        ingest.parsed_log_lines,
        ingest.traffic_tables,
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
        daily.daily_forecasts,
        daily.forecast_scores,
        live.live_requests,
        live.live_plan,
    ],
    asset_checks=[features.missing_stays_missing, live.watermark_is_fresh],
    jobs=[ingest_job, analysis_job, daily_refresh_job, daily_forecast_job, benchmark_job],
    schedules=[
        daily_ingest_schedule(ingest_job),
        weekly_benchmark_schedule(benchmark_job),
    ],
    sensors=[
        landing_sensor(ingest_job),
        refresh_sensor(ingest_job, daily_refresh_job, daily_forecast_job),
        live.live_follower,
    ],
    resources={
        "warehouse": WarehouseResource(
            duckdb_path=str(_settings.duckdb_path), lake=_settings.lake, site=_settings.site
        ),
        "settings": SettingsResource.from_settings(_settings),
        "mlflow": MLflowResource(
            tracking_uri=_settings.mlflow_uri, artifact_dir=str(_settings.mlflow_artifacts)
        ),
    },
)
