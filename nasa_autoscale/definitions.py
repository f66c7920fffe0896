"""The one Definitions object: assets, checks, jobs and resources."""

from __future__ import annotations

import dagster as dg

from nasa_autoscale.assets import anomalies, features, forecasting, ingest, scaling
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.schedules import daily_ingest_schedule, landing_sensor, refresh_sensor
from nasa_autoscale.settings import current

_settings = current()  # the one settings object: resources and partitions are built from it

ingest_job = dg.define_asset_job(
    "ingest_job",
    selection=dg.AssetSelection.assets(ingest.parsed_log_lines, ingest.traffic_tables),
    description="Parse one day's (or a range's) log lines and rebuild its traffic tables.",
)

analysis_job = dg.define_asset_job(
    "analysis_job",
    selection=dg.AssetSelection.groups("features", "anomalies", "forecasting", "scaling"),
    description="Rebuild events, features, anomaly flags, models, forecasts and their metrics, "
    "scaling decisions, the cost report and the recommendation from the traffic tables.",
)

defs = dg.Definitions(
    assets=[
        ingest.raw_log_files,
        ingest.parsed_log_lines,
        ingest.traffic_tables,
        features.special_events,
        features.feature_tables,
        anomalies.anomalies_5m,
        forecasting.benchmark_models,
        forecasting.forecast_next,
        scaling.scaling_forecasts,
        scaling.policy_sweep,
        scaling.cost_robustness,
        scaling.recommendation,
    ],
    asset_checks=[features.missing_stays_missing],
    jobs=[ingest_job, analysis_job],
    schedules=[daily_ingest_schedule(ingest_job)],
    sensors=[landing_sensor(ingest_job), refresh_sensor(ingest_job, analysis_job)],
    resources={
        "warehouse": WarehouseResource(duckdb_path=str(_settings.duckdb_path)),
        "settings": SettingsResource.from_settings(_settings),
        "mlflow": MLflowResource(
            tracking_uri=_settings.mlflow_uri, artifact_dir=str(_settings.mlflow_artifacts)
        ),
    },
)
