"""Scaling group: the forecasts policies act on -> scaling_decisions + cost_report ->
recommendation, and reports/cost_report.md."""

import json
import time

import dagster as dg

from nasa_autoscale.assets.common import figure, history_too_short, preview
from nasa_autoscale.assets.features import special_events
from nasa_autoscale.features.events import read_events
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.partitions import SITE_PREFIX, key, keys
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.scaling import plan
from nasa_autoscale.scaling.fleets import rules_of
from nasa_autoscale.scaling.forecasts import (
    COLUMNS,
    MODEL_COLUMNS,
    build_scaling_forecasts,
    tuned_lightgbm,
)
from nasa_autoscale.scaling.recommend import recommend
from nasa_autoscale.scaling.report import target_lines, write_report, write_robustness_report
from nasa_autoscale.scaling.sweep import (
    DECISION_COLUMNS,
    REPORT_COLUMNS,
    ROBUSTNESS_COLUMNS,
    decision_minutes,
    forecast_steps,
    load_inputs,
    robustness,
    robustness_fleets,
    run_sweep,
)
from nasa_autoscale.warehouse import SCHEMA, data_source, read, replace_table
from nasa_autoscale.yardsticks import yardsticks_for

GROUP = "scaling"
# what every sweep reads (sweep.load_inputs): the spike flags of the detector chosen on
# validation (anomaly_flags), else anomalies_5m's 3-sigma spikes; the requests at 5 minutes and,
# for a fleet deciding every minute, at 1
SWEEP_INPUTS = ["scaling_forecasts", "anomalies_5m", "anomaly_flags", "traffic_5m", "traffic_1m"]
DEPLOYMENT_INPUTS = [*SWEEP_INPUTS, "cost_report", "forecast_next"]


def _sweep_inputs(warehouse: WarehouseResource, config):
    """(data source, yardsticks, (requests, scaling forecasts, anomaly flags), calendar)."""
    with warehouse.connect() as con:
        source, yardsticks = data_source(con), yardsticks_for(con)
        inputs = load_inputs(con, decision_minutes(rules_of(config.fleets())), config.history_days)
    return source, yardsticks, inputs, config.calendar(inputs[0])


def _deployment_inputs(warehouse: WarehouseResource, config):
    """(data source, sweep inputs, cost_report, forecast_next, calendar): what the
    recommendation and the provisioning plan read."""
    with warehouse.connect() as con:
        source = data_source(con)
        inputs = load_inputs(con, decision_minutes(rules_of(config.fleets())), config.history_days)
        cost_report = read(con, f"SELECT * FROM {SCHEMA}.cost_report")
        upcoming = read(con, f"SELECT * FROM {SCHEMA}.forecast_next ORDER BY bucket_start")
    return source, inputs, cost_report, upcoming, config.calendar(inputs[0])


@dg.asset(
    key_prefix=SITE_PREFIX,
    deps=keys(["traffic_5m", "traffic_1m", special_events, "model_metrics"]),
    group_name=GROUP,
    description=(
        "The forecasts the predictive policies act on: LightGBM direct, an origin at every "
        "bucket of each decision interval the fleets use (5 minutes; 1 for a fleet deciding "
        "every minute), the next longest-boot-delay + 1 buckets, 80% intervals; the validation "
        "window from a model fitted before it with default hyper-parameters (for tuning the "
        "policies), the test window from one fitted before it with the leaves tuned on validation."
    ),
)
def scaling_forecasts(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MLflowResource,
    settings: SettingsResource,
):
    config = settings.get()
    fleets = config.fleets()
    steps = forecast_steps(rules_of(fleets), robustness_fleets(fleets))
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = {
            m: whole_days(con, m, days=config.history_days).set_index("bucket_start") for m in steps
        }
        events = read_events(con)
        params = {m: tuned_lightgbm(con, m) for m in steps}
    calendar = config.calendar(traffic)
    if not calendar.enough:
        tables = {"scaling_forecasts": [*COLUMNS, "mlflow_run_id"], "scaling_models": MODEL_COLUMNS}
        return history_too_short(context, warehouse, tables, source, calendar.shortfall())[0]
    forecasts, run_ids, models = build_scaling_forecasts(
        traffic,
        events,
        calendar,
        {minutes: count - 1 for minutes, count in steps.items()},
        params,
        mlflow,
        {"dagster_run_id": context.run.run_id, "data_source": source},
        context.log.info,
    )
    with warehouse.connect() as con:
        rows = replace_table(con, "scaling_forecasts", forecasts)
        replace_table(con, "scaling_models", models)
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
            key("scaling_decisions"),
            deps=keys(SWEEP_INPUTS),
            group_name=GROUP,
            description=(
                "Per fleet x policy x bucket of its decision interval over the test window: "
                "demand, servers serving, capacity, dropped requests, provisioned and "
                "recommended servers, from the one simulator (boot delay, stabilization, "
                "per-second billing)."
            ),
        ),
        dg.AssetSpec(
            key("cost_report"),
            deps=keys(SWEEP_INPUTS),
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
    source, yardsticks, (requests, forecasts, anomalies), calendar = _sweep_inputs(
        warehouse, config
    )
    if not calendar.enough:
        tables = {"scaling_decisions": DECISION_COLUMNS, "cost_report": REPORT_COLUMNS}
        yield from history_too_short(context, warehouse, tables, source, calendar.shortfall())
        return
    started = time.perf_counter()
    decisions, cost_report, tuning, _ = run_sweep(
        requests, forecasts, anomalies, calendar, rules_of(config.fleets()), context.log.info
    )
    elapsed = time.perf_counter() - started
    with warehouse.connect() as con:
        replace_table(con, "scaling_decisions", decisions)
        replace_table(con, "cost_report", cost_report)
    report = write_report(
        cost_report, tuning, {"sweep_s": elapsed}, source, config.reports_dir, calendar, yardsticks
    )
    yield dg.MaterializeResult(
        asset_key=key("scaling_decisions"),
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
        asset_key=key("cost_report"),
        metadata={
            "data_source": source,
            "dagster/row_count": len(cost_report),
            "report": str(report),
            "targets": dg.MetadataValue.md(
                "\n".join(target_lines(cost_report, yardsticks and yardsticks.cost_targets_pct))
            ),
            "cost_report": preview(shown, rows=len(shown)),
            "figure": figure(report.parent / "figures" / "cost_pareto.png"),
        },
    )


@dg.asset(
    key_prefix=SITE_PREFIX,
    deps=keys(SWEEP_INPUTS),
    group_name=GROUP,
    description=(
        "Per fleet that asks for it (NASA: realistic) x capacity (0.5 / 1 / 2.5 x its own) x "
        "boot delay (0.4 / 1 / 2 x its own), the fleet's sweep rerun (tuning and selection on "
        "validation): the selected policy's test cost above the optimum and dropped share "
        "beside the best reactive preset's, and whether it is cheaper than every preset "
        "dropping no more; reports/robustness.md."
    ),
)
def cost_robustness(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    config = settings.get()
    source, _, (requests, forecasts, anomalies), calendar = _sweep_inputs(warehouse, config)
    if not calendar.enough:
        tables = {"cost_robustness": ROBUSTNESS_COLUMNS}
        return history_too_short(context, warehouse, tables, source, calendar.shortfall())[0]
    started = time.perf_counter()
    robust = robustness_fleets(config.fleets())
    cells = robustness(requests, forecasts, anomalies, calendar, robust, context.log.info)
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
    key_prefix=SITE_PREFIX,
    deps=keys(DEPLOYMENT_INPUTS),
    group_name=GROUP,
    description=(
        "Per setting: the server count for the first bucket after the data ends, from the policy "
        "selected on the validation window (cost_report.selected), with the action and reason; "
        "with a short history (no cost report), the untuned predictive policy on forecast_next."
    ),
)
def recommendation(warehouse: WarehouseResource, settings: SettingsResource):
    config = settings.get()
    source, (requests, forecasts, anomalies), cost_report, upcoming, calendar = _deployment_inputs(
        warehouse, config
    )
    fleets = rules_of(config.fleets())
    try:
        table = recommend(requests, forecasts, anomalies, cost_report, upcoming, calendar, fleets)
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
    key_prefix=SITE_PREFIX,
    deps=keys(DEPLOYMENT_INPUTS),
    group_name=GROUP,
    description=(
        "Per fleet: servers per decision interval for the day forecast_next covers, from the "
        "policy selected on the validation window run forward on that forecast (its first "
        "bucket is the recommendation), the expected cost and the times to scale."
    ),
)
def provisioning_plan(warehouse: WarehouseResource, settings: SettingsResource):
    config = settings.get()
    source, (requests, forecasts, anomalies), cost_report, upcoming, calendar = _deployment_inputs(
        warehouse, config
    )
    try:
        table, summaries = plan.provisioning_plan(
            requests,
            forecasts,
            anomalies,
            cost_report,
            upcoming,
            calendar,
            rules_of(config.fleets()),
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
