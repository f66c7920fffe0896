"""Forecasting group: trained models (MLflow runs) -> forecasts -> model_metrics, and the
benchmark report."""

import datetime as dt

import dagster as dg
import pandas as pd

from nasa_autoscale.assets.common import figure, history_too_short, preview
from nasa_autoscale.assets.features import special_events
from nasa_autoscale.features.events import read_events
from nasa_autoscale.forecasting.backtest import FORECAST_COLUMNS, METRIC_COLUMNS
from nasa_autoscale.forecasting.deploy import refit_day
from nasa_autoscale.forecasting.next import HistoryTooShort, NoSelectedModel
from nasa_autoscale.forecasting.next import forecast_next as next_day
from nasa_autoscale.forecasting.report import write_reports, write_skipped_report
from nasa_autoscale.forecasting.tracking import run_benchmark
from nasa_autoscale.ingest.traffic import GRANULARITIES, whole_days
from nasa_autoscale.partitions import SITE_PREFIX, key, keys
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.warehouse import data_source, replace_table
from nasa_autoscale.yardsticks import yardsticks_for

GROUP = "forecasting"
FORECAST_TABLES = {"forecasts": FORECAST_COLUMNS, "model_metrics": METRIC_COLUMNS}


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key("forecasts"),
            deps=keys([*(f"traffic_{g}" for g in GRANULARITIES), special_events]),
            group_name=GROUP,
            description=(
                "Every model's forecasts of the test window (the last NASA_TEST_DAYS whole days) "
                "under the four protocols and three granularities, with 80% intervals; each "
                "trained model is an MLflow run. Skipped (empty) while the history is too short."
            ),
        ),
        dg.AssetSpec(
            key("model_metrics"),
            deps=keys([*(f"traffic_{g}" for g in GRANULARITIES), special_events]),
            group_name=GROUP,
            description="RMSE, MAE, MAPE, MASE, interval coverage and n per model x granularity x "
            "protocol, with the MLflow run id; reports/benchmark.md and benchmark_results.csv.",
        ),
    ],
)
def benchmark_models(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MLflowResource,
    settings: SettingsResource,
):
    config = settings.get()
    with warehouse.connect() as con:
        source, yardsticks = data_source(con), yardsticks_for(con)
        events = read_events(con)
        traffic = {
            g: whole_days(con, m, days=config.history_days).set_index("bucket_start")
            for g, m in GRANULARITIES.items()
        }
    calendar = config.calendar(traffic["5m"])
    if not calendar.enough:
        report = write_skipped_report(calendar, source, config.reports_dir)
        yield from history_too_short(
            context, warehouse, FORECAST_TABLES, source, calendar.shortfall(), report=str(report)
        )
        return
    context.log.info(f"windows: {calendar.describe()}")
    result = run_benchmark(
        traffic,
        events,
        {g: config.calendar(traffic[g]) for g in config.forecast_granularities},
        mlflow,
        {"dagster_run_id": context.run.run_id, "data_source": source},
        context.log.info,
    )
    with warehouse.connect() as con:
        replace_table(con, "forecasts", result.forecasts)
        replace_table(con, "model_metrics", result.metrics)
    report = write_reports(result, traffic, source, config.reports_dir, calendar, yardsticks)
    yield dg.MaterializeResult(
        asset_key=key("forecasts"),
        metadata={
            "data_source": source,
            "dagster/row_count": len(result.forecasts),
            "windows": calendar.describe(),
            "models": ", ".join(sorted(result.forecasts.model.unique())),
        },
    )
    metrics = result.metrics
    five = metrics[metrics.granularity == "5m"].pivot(
        index="model", columns="protocol", values="rmse"
    )
    yield dg.MaterializeResult(
        asset_key=key("model_metrics"),
        metadata={
            "data_source": source,
            "dagster/row_count": len(metrics),
            "report": str(report),
            "rmse_5m": preview(five.round(2).reset_index(), rows=20),
            "figure": figure(report.parent / "figures" / "forecast_vs_actual_5m.png"),
        },
    )


@dg.asset(
    key_prefix=SITE_PREFIX,
    deps=keys(["model_metrics", "traffic_5m", "traffic_1m", special_events]),  # + the registry
    group_name=GROUP,
    description=(
        "The next 24 hours after the data ends, per 5-minute bucket with an 80% interval, from "
        "the model selected on the validation window for 5-minute day-ahead forecasts "
        "(model_metrics.selected; refitted every NASA_REFIT_DAYS from NASA_START_DATE on "
        "everything before the refit day and fed every actual since; intervals calibrated on the "
        "validation window); with a short history, from a seasonal naive model. For the API, the "
        "provisioning plan and the recommendation."
    ),
)
def forecast_next(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
    mlflow: MLflowResource,
):
    from nasa_autoscale.forecasting.champion import deployed_choice

    config = settings.get()
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = whole_days(con, 5, days=config.history_days).set_index("bucket_start")
        events = read_events(con)
        calendar = config.calendar(traffic)
        try:
            choice = deployed_choice(con, calendar, mlflow.tracking_uri, context.log.warning)
        except (NoSelectedModel, HistoryTooShort) as error:
            raise dg.Failure(str(error)) from None
    if not calendar.enough:
        context.log.warning(choice.chosen_by)
    # the deployed model: refitted on the refit days (NASA_REFIT_DAYS from NASA_START_DATE)
    known = traffic.index[traffic["requests"].notna().to_numpy()]
    origin = known[-1] + pd.Timedelta(minutes=5)
    anchor = dt.date.fromisoformat(config.start_date)
    refit = pd.Timestamp(refit_day(origin.date(), anchor, config.refit_days))
    try:
        forecast = next_day(
            traffic,
            5,
            choice.build(5, refit - pd.Timedelta(minutes=5)),
            calibration=choice.calibration,
            events=events,
            fit_before=refit,
        )
    except HistoryTooShort as error:
        raise dg.Failure(str(error)) from None
    forecast.insert(1, "granularity", "5m")
    forecast["made_at"] = pd.Timestamp.now("UTC").tz_localize(None)  # which refresh, for the API
    with warehouse.connect() as con:
        rows = replace_table(con, "forecast_next", forecast)
    return dg.MaterializeResult(
        metadata={
            "data_source": source,
            "dagster/row_count": rows,
            "model": choice.name,
            "chosen_by": choice.chosen_by,
            "fitted_before": str(refit),
            "day_ahead_rmse_on_validation": choice.validation_rmse or "not benchmarked",
            "day_ahead_rmse_on_test": choice.test_rmse or "not benchmarked",
            "intervals": "calibrated on the validation window"
            if choice.calibration
            else "the model's",
            "windows": calendar.describe() if calendar.enough else calendar.shortfall(),
            "origin": str(forecast["origin"].iloc[0]),
            "preview": preview(forecast),
        }
    )
