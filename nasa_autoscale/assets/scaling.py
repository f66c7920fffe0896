"""Scaling group: the forecasts policies act on -> scaling_decisions + cost_report ->
recommendation, and reports/cost_report.md."""

import json
import time

import dagster as dg
import numpy as np
import pandas as pd

from nasa_autoscale.assets.common import figure, preview
from nasa_autoscale.assets.features import special_events
from nasa_autoscale.features.events import load_events
from nasa_autoscale.forecasting.protocols import Calendar
from nasa_autoscale.forecasting.registry import tuned_params
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.scaling import plan
from nasa_autoscale.scaling.forecasts import COLUMNS, WINDOW_NAMES, fit_and_forecast
from nasa_autoscale.scaling.recommend import recommend
from nasa_autoscale.scaling.report import target_lines, write_report, write_robustness_report
from nasa_autoscale.scaling.sweep import (
    DECISION_COLUMNS,
    REPORT_COLUMNS,
    ROBUSTNESS_COLUMNS,
    forecast_steps,
    load_inputs,
    robustness,
    run_sweep,
)
from nasa_autoscale.warehouse import SCHEMA, data_source, empty_frame, read, replace_table

GROUP = "scaling"
# what every sweep reads (anomaly_injection: the spike flags of the detector chosen on validation)
SWEEP_INPUTS = ["scaling_forecasts", "anomalies_5m", "anomaly_injection", "traffic_5m"]


def _tuned_lightgbm(con) -> dict:
    """The LightGBM leaves tuning chose for 5 minutes (model_metrics.params), if any."""
    rows = con.execute(
        f"SELECT params FROM {SCHEMA}.model_metrics WHERE model = 'lightgbm_direct' "
        "AND granularity = '5m' AND params IS NOT NULL LIMIT 1"
    ).fetchall()
    return tuned_params("lightgbm_direct", json.loads(rows[0][0]) if rows else {})


def _sweep_inputs(warehouse: WarehouseResource, config):
    """(data source, (requests, scaling forecasts, anomaly flags), calendar) for a sweep."""
    with warehouse.connect() as con:
        source = data_source(con)
        inputs = load_inputs(con)
    return source, inputs, Calendar.of(inputs[0], config.test_days, config.validation_days)


def _deployment_inputs(warehouse: WarehouseResource):
    """(data source, sweep inputs, cost_report, forecast_next): what the recommendation and the
    provisioning plan read."""
    with warehouse.connect() as con:
        source = data_source(con)
        inputs = load_inputs(con)
        cost_report = read(con, f"SELECT * FROM {SCHEMA}.cost_report")
        upcoming = read(con, f"SELECT * FROM {SCHEMA}.forecast_next ORDER BY bucket_start")
    return source, inputs, cost_report, upcoming


@dg.asset(
    deps=["traffic_5m", special_events, "model_metrics"],
    group_name=GROUP,
    description=(
        "The forecasts the predictive policies act on: LightGBM direct, an origin at every "
        "5-minute bucket, the next longest-boot-delay + 1 buckets, 80% intervals; the validation "
        "window "
        "from a model fitted before it with default hyper-parameters (for tuning the policies), "
        "the test window from one fitted before it with the leaves tuned on validation."
    ),
)
def scaling_forecasts(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MLflowResource,
    settings: SettingsResource,
):
    config = settings.get()
    events = load_events(config.events_path)
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = whole_days(con, 5).set_index("bucket_start")
        params = _tuned_lightgbm(con)
    calendar = Calendar.of(traffic, config.test_days, config.validation_days)
    if not calendar.enough:
        context.log.warning(f"scaling forecasts skipped: {calendar.shortfall()}")
        with warehouse.connect() as con:
            replace_table(con, "scaling_forecasts", empty_frame([*COLUMNS, "mlflow_run_id"]))
        return dg.MaterializeResult(
            metadata={
                "data_source": source,
                "dagster/row_count": 0,
                "skipped": calendar.shortfall(),
            }
        )
    frames, run_ids = [], {}
    for window in WINDOW_NAMES:
        started = time.perf_counter()
        model, forecast = fit_and_forecast(traffic, 5, events, forecast_steps() - 1, window, params)
        elapsed = time.perf_counter() - started
        actual = traffic["requests"].reindex(forecast["bucket_start"]).to_numpy(float)
        rmse = float(np.sqrt(np.nanmean((forecast["yhat"].to_numpy() - actual) ** 2)))
        context.log.info(
            f"scaling forecasts, {window}: fitted and predicted in {elapsed:.1f} s, RMSE {rmse:.1f}"
        )
        run_ids[window] = mlflow.log_run(
            f"scaling_lightgbm_{window}",
            {**model.params(), "window": window, "granularity": "5m"},
            {"rmse": rmse, "total_s": elapsed},
            model.artifacts(),
            {"dagster_run_id": context.run.run_id, "data_source": source, "purpose": "scaling"},
        )
        forecast["mlflow_run_id"] = run_ids[window]
        frames.append(forecast)
    forecasts = pd.concat(frames, ignore_index=True)
    with warehouse.connect() as con:
        rows = replace_table(con, "scaling_forecasts", forecasts)
    return dg.MaterializeResult(
        metadata={
            "data_source": source,
            "dagster/row_count": rows,
            "mlflow_run_ids": json.dumps(run_ids),
            "preview": preview(forecasts),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "scaling_decisions",
            deps=SWEEP_INPUTS,
            group_name=GROUP,
            description=(
                "Per setting x policy x 5-minute bucket of the test window: demand, servers "
                "serving, capacity, dropped requests, provisioned and recommended servers, from "
                "the one simulator (boot delay, stabilization, per-second billing)."
            ),
        ),
        dg.AssetSpec(
            "cost_report",
            deps=SWEEP_INPUTS,
            group_name=GROUP,
            description=(
                "Per setting x policy: cost, % above the hindsight optimum, dropped and "
                "violating fractions, scaling actions, utilization, parameters; "
                "reports/cost_report.md and reports/figures/cost_pareto.png."
            ),
        ),
    ],
)
def policy_sweep(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    config = settings.get()
    source, (requests, forecasts, anomalies), calendar = _sweep_inputs(warehouse, config)
    if not calendar.enough:
        context.log.warning(f"policy sweep skipped: {calendar.shortfall()}")
        with warehouse.connect() as con:
            replace_table(con, "scaling_decisions", empty_frame(DECISION_COLUMNS))
            replace_table(con, "cost_report", empty_frame(REPORT_COLUMNS))
        for key in ("scaling_decisions", "cost_report"):
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "data_source": source,
                    "dagster/row_count": 0,
                    "skipped": calendar.shortfall(),
                },
            )
        return
    started = time.perf_counter()
    decisions, cost_report, tuning, _ = run_sweep(
        requests, forecasts, anomalies, progress=context.log.info
    )
    elapsed = time.perf_counter() - started
    with warehouse.connect() as con:
        replace_table(con, "scaling_decisions", decisions)
        replace_table(con, "cost_report", cost_report)
    report = write_report(
        cost_report, tuning, {"sweep_s": elapsed}, source, config.reports_dir, calendar
    )
    yield dg.MaterializeResult(
        asset_key="scaling_decisions",
        metadata={
            "data_source": source,
            "dagster/row_count": len(decisions),
            "sweep_seconds": round(elapsed, 1),
        },
    )
    shown = cost_report[
        ["setting", "policy", "cost", "pct_above_optimal", "dropped_fraction", "scaling_actions"]
    ].round(4)
    yield dg.MaterializeResult(
        asset_key="cost_report",
        metadata={
            "data_source": source,
            "dagster/row_count": len(cost_report),
            "report": str(report),
            "targets": dg.MetadataValue.md("\n".join(target_lines(cost_report))),
            "cost_report": preview(shown, rows=len(shown)),
            "figure": figure(report.parent / "figures" / "cost_pareto.png"),
        },
    )


@dg.asset(
    deps=[scaling_forecasts, "anomalies_5m", "traffic_5m"],
    group_name=GROUP,
    description=(
        "Per capacity (20 / 40 / 100 requests per server) x boot delay (2 / 5 / 10 min), the "
        "realistic setting's sweep rerun (tuning and selection on validation): the selected "
        "policy's test cost above the optimum and dropped share beside the best reactive "
        "preset's, and whether it is cheaper than every preset dropping no more; "
        "reports/robustness.md."
    ),
)
def cost_robustness(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    config = settings.get()
    source, (requests, forecasts, anomalies), calendar = _sweep_inputs(warehouse, config)
    if not calendar.enough:
        with warehouse.connect() as con:
            replace_table(con, "cost_robustness", empty_frame(ROBUSTNESS_COLUMNS))
        return dg.MaterializeResult(
            metadata={
                "data_source": source,
                "dagster/row_count": 0,
                "skipped": calendar.shortfall(),
            }
        )
    started = time.perf_counter()
    cells = robustness(requests, forecasts, anomalies, progress=context.log.info)
    elapsed = time.perf_counter() - started
    with warehouse.connect() as con:
        replace_table(con, "cost_robustness", cells)
    report = write_robustness_report(cells, elapsed, source, config.reports_dir, calendar)
    return dg.MaterializeResult(
        metadata={
            "data_source": source,
            "dagster/row_count": len(cells),
            "seconds": round(elapsed, 1),
            "report": str(report),
            "cells_where_selected_beats_every_preset_dropping_no_more": int(
                cells["cheaper_than_each_of_them"].sum()
            ),
            "table": preview(cells.round(4), rows=len(cells)),
        }
    )


@dg.asset(
    deps=["cost_report", "forecast_next"],
    group_name=GROUP,
    description=(
        "Per setting: the server count for the first bucket after the data ends, from the policy "
        "selected on the validation window (cost_report.selected), with the action and reason; "
        "with a short history (no cost report), the untuned predictive policy on forecast_next."
    ),
)
def recommendation(warehouse: WarehouseResource):
    source, (requests, forecasts, anomalies), cost_report, upcoming = _deployment_inputs(warehouse)
    try:
        table = recommend(requests, forecasts, anomalies, cost_report, upcoming)
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    table["data_source"] = source
    with warehouse.connect() as con:
        replace_table(con, "recommendation", table)
    return dg.MaterializeResult(
        metadata={
            "data_source": source,
            "dagster/row_count": len(table),
            "recommendation": preview(table.drop(columns=["data_source"])),
        }
    )


@dg.asset(
    deps=["cost_report", "forecast_next", *SWEEP_INPUTS],
    group_name=GROUP,
    description=(
        "Per setting: servers per 5-minute bucket for the day forecast_next covers, from the "
        "policy selected on the validation window run forward on that forecast (its first "
        "bucket is the recommendation), the expected cost and the times to scale."
    ),
)
def provisioning_plan(warehouse: WarehouseResource):
    source, (requests, forecasts, anomalies), cost_report, upcoming = _deployment_inputs(warehouse)
    try:
        table, summaries = plan.provisioning_plan(
            requests, forecasts, anomalies, cost_report, upcoming
        )
    except ValueError as error:
        raise dg.Failure(str(error)) from None
    with warehouse.connect() as con:
        replace_table(con, "provisioning_plan", table)
    metadata = {"data_source": source, "dagster/row_count": len(table)}
    for summary in summaries:
        setting = summary["setting"]
        metadata[f"{setting}_policy"] = summary["policy"]
        metadata[f"{setting}_expected_cost"] = round(summary["expected_cost"], 2)
        metadata[f"{setting}_scale_times"] = dg.MetadataValue.json(summary["scale_times"])
    return dg.MaterializeResult(metadata=metadata)
