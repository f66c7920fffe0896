"""Forecasting group: trained models (MLflow runs) -> forecasts -> model_metrics, and the
benchmark report."""

import datetime as dt
import json

import dagster as dg
import numpy as np
import pandas as pd

from nasa_autoscale.assets.common import figure, preview
from nasa_autoscale.assets.features import special_events
from nasa_autoscale.features.events import load_events
from nasa_autoscale.forecasting.backtest import FORECAST_COLUMNS, METRIC_COLUMNS
from nasa_autoscale.forecasting.benchmark import ENSEMBLE_MEMBERS, run_granularity
from nasa_autoscale.forecasting.deploy import refit_day
from nasa_autoscale.forecasting.metrics import interpolation_rmse
from nasa_autoscale.forecasting.next import NoSelectedModel
from nasa_autoscale.forecasting.next import forecast_next as next_day
from nasa_autoscale.forecasting.protocols import Calendar
from nasa_autoscale.forecasting.registry import WEIGHTED_MEMBERS
from nasa_autoscale.forecasting.report import (
    INTERPOLATION_SIDE,
    write_reports,
    write_skipped_report,
)
from nasa_autoscale.ingest.traffic import GRANULARITIES, MODEL_INPUTS, whole_days
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.warehouse import data_source, empty_frame, replace_table

GROUP = "forecasting"


def input_example(traffic: pd.DataFrame) -> pd.DataFrame:
    """MLflow's input example: the last hour of traffic, with every column a model may read."""
    columns = ["requests", *(c for c in MODEL_INPUTS if c in traffic)]
    return traffic.tail(12)[columns].reset_index()


def log_ensembles(metrics, params, run_ids, granularity, traffic, mlflow, tags, group) -> None:
    """The two ensembles' MLflow runs (their weights, metrics, calibration and input example)
    and their params: the equal-weight one's members', and ensemble_weighted's rows' weights of
    their protocol completed with their members' parameters (what forecast_next rebuilds it
    from). Fills `params` and `run_ids` by (model, granularity); edits `metrics` in place."""
    members = {m: json.loads(v) for (m, g), v in params.items() if g == granularity}
    if "params" in metrics:  # ensemble_weighted's rows: {"weights": ...} from the benchmark
        weighted = metrics["params"].notna()
        metrics.loc[weighted, "params"] = [
            json.dumps({**{m: members[m] for m in w["weights"]}, **w}, default=str)
            for w in map(json.loads, metrics.loc[weighted, "params"])
        ]
    for name, candidates in (
        ("ensemble", ENSEMBLE_MEMBERS),
        ("ensemble_weighted", WEIGHTED_MEMBERS),
    ):
        scores = metrics[metrics.model == name]
        if not len(scores):
            continue
        if name == "ensemble":
            params[(name, granularity)] = json.dumps(
                {m: members[m] for m in ENSEMBLE_MEMBERS}, default=str
            )
        weights = {
            f"weights_{r.protocol}": json.dumps(json.loads(r.params)["weights"])
            for r in scores.itertuples()
            if isinstance(getattr(r, "params", None), str)
        }
        run_ids[(name, granularity)] = mlflow.log_run(
            f"{name}_{granularity}",
            {"members": ",".join(candidates), "granularity": granularity, **weights},
            {
                f"{r.protocol}_{n}": getattr(r, n)
                for r in scores.itertuples()
                for n in ("rmse", "coverage", "validation_rmse")
            },
            {
                "calibration.json": scores["calibration"].iloc[0],
                "input_example.csv": input_example(traffic).to_csv(index=False),
            },
            {**tags, "granularity": granularity},
            parent_id=group,
        )


def register_champions(metrics, traffic, events, mlflow: MLflowResource, tags) -> list:
    """Register each granularity's selected day-ahead model as its `champion` in MLflow's
    registry; the version on that row of model_metrics, None elsewhere."""
    from nasa_autoscale.forecasting import champion  # imports mlflow: only where it is needed

    versions = [None] * len(metrics)
    deployed = metrics["selected"] & (metrics["protocol"] == champion.DEPLOYED_PROTOCOL)
    for i in np.flatnonzero(deployed.to_numpy()):
        row = metrics.iloc[i]
        example = input_example(traffic[row["granularity"]])
        spec = champion.recipe(row, events)
        versions[i] = mlflow.register_champion(spec, example, tags)
    return versions


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            "forecasts",
            deps=[*(f"traffic_{g}" for g in GRANULARITIES), special_events],
            group_name=GROUP,
            description=(
                "Every model's forecasts of the test window (the last NASA_TEST_DAYS whole days) "
                "under the four protocols and three granularities, with 80% intervals; each "
                "trained model is an MLflow run. Skipped (empty) while the history is too short."
            ),
        ),
        dg.AssetSpec(
            "model_metrics",
            deps=[*(f"traffic_{g}" for g in GRANULARITIES)],
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
    events = load_events(config.events_path)
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = {
            g: whole_days(con, m).set_index("bucket_start") for g, m in GRANULARITIES.items()
        }
    calendar = Calendar.of(traffic["5m"], config.test_days, config.validation_days)
    if not calendar.enough:
        context.log.warning(f"benchmark skipped: {calendar.shortfall()}")
        with warehouse.connect() as con:
            replace_table(con, "forecasts", empty_frame(FORECAST_COLUMNS))
            replace_table(con, "model_metrics", empty_frame(METRIC_COLUMNS))
        report = write_skipped_report(calendar, source, config.reports_dir)
        for key in ("forecasts", "model_metrics"):
            yield dg.MaterializeResult(
                asset_key=key,
                metadata={
                    "data_source": source,
                    "dagster/row_count": 0,
                    "skipped": calendar.shortfall(),
                    "report": str(report),
                },
            )
        return
    context.log.info(f"windows: {calendar.describe()}")
    tags = {"dagster_run_id": context.run.run_id, "data_source": source}
    group = mlflow.start_group(f"benchmark {context.run.run_id[:8]}", tags)
    all_forecasts, all_metrics, all_timings, run_ids, params = [], [], [], {}, {}
    importance = {}  # (granularity, model) -> a LightGBM's gain importance
    for granularity in config.forecast_granularities:
        minutes = GRANULARITIES[granularity]

        def log_model(model, scores, timing, granularity=granularity):
            metrics = {
                f"{r.protocol}_{name}": getattr(r, name)
                for r in scores.itertuples()
                for name in (
                    "rmse",
                    "mae",
                    "mape",
                    "mase",
                    "coverage",
                    "coverage_uncalibrated",
                    "validation_rmse",
                )
            }
            params[(model.name, granularity)] = json.dumps(model.params(), default=str)
            if hasattr(model, "importance"):
                importance[(granularity, model.name)] = model.importance()
            run_ids[(model.name, granularity)] = mlflow.log_run(
                f"{model.name}_{granularity}",
                {**model.params(), "granularity": granularity, "model": model.name},
                {**metrics, **timing},
                {
                    **model.artifacts(),
                    "calibration.json": scores["calibration"].iloc[0],
                    "input_example.csv": input_example(traffic[granularity]).to_csv(index=False),
                },
                {**tags, "granularity": granularity},
                parent_id=group,
            )

        forecasts, metrics, timings = run_granularity(
            traffic[granularity],
            granularity,
            minutes,
            events,
            context.log.info,
            log_model,
            Calendar.of(traffic[granularity], config.test_days, config.validation_days),
        )
        log_ensembles(
            metrics, params, run_ids, granularity, traffic[granularity], mlflow, tags, group
        )
        all_forecasts.append(forecasts)
        all_metrics.append(metrics)
        all_timings.append(timings)
    forecasts = pd.concat(all_forecasts, ignore_index=True).drop(columns=["step"])
    metrics = pd.concat(all_metrics, ignore_index=True)
    keys = list(zip(metrics.model, metrics.granularity, strict=True))
    metrics["mlflow_run_id"] = [run_ids.get(key) for key in keys]
    # what forecast_next refits with (ensemble_weighted's rows hold their own, per protocol)
    own = metrics["params"] if "params" in metrics else pd.Series(None, index=metrics.index)
    metrics["params"] = [
        stored if isinstance(stored, str) else params.get(key)
        for stored, key in zip(own, keys, strict=True)
    ]
    metrics["champion_version"] = register_champions(metrics, traffic, events, mlflow, tags)
    timings = pd.concat(all_timings, ignore_index=True)
    with warehouse.connect() as con:
        replace_table(con, "forecasts", forecasts)
        replace_table(con, "model_metrics", metrics)
    report = write_reports(
        forecasts,
        metrics,
        timings,
        traffic["5m"]["requests"].astype(float),
        source,
        config.reports_dir,
        calendar,
        {name: table for (g, name), table in importance.items() if g == "5m"},
        {
            g: interpolation_rmse(
                traffic[g]["requests"], calendar.test_start, calendar.test_end, INTERPOLATION_SIDE
            )
            for g in config.forecast_granularities
        },
    )
    yield dg.MaterializeResult(
        asset_key="forecasts",
        metadata={
            "data_source": source,
            "dagster/row_count": len(forecasts),
            "windows": calendar.describe(),
            "models": ", ".join(sorted(forecasts.model.unique())),
        },
    )
    five = metrics[metrics.granularity == "5m"].pivot(
        index="model", columns="protocol", values="rmse"
    )
    yield dg.MaterializeResult(
        asset_key="model_metrics",
        metadata={
            "data_source": source,
            "dagster/row_count": len(metrics),
            "report": str(report),
            "rmse_5m": preview(five.round(2).reset_index(), rows=20),
            "figure": figure(report.parent / "figures" / "forecast_vs_actual_5m.png"),
        },
    )


@dg.asset(
    deps=["model_metrics", "traffic_5m", special_events],
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
        traffic = whole_days(con, 5).set_index("bucket_start")
        calendar = Calendar.of(traffic, config.test_days, config.validation_days)
        try:
            choice = deployed_choice(con, calendar, mlflow.tracking_uri, context.log.warning)
        except NoSelectedModel as error:
            raise dg.Failure(str(error)) from None
    if not calendar.enough:
        context.log.warning(choice.chosen_by)
    # the deployed model: refitted on the refit days (NASA_REFIT_DAYS from NASA_START_DATE)
    known = traffic.index[traffic["requests"].notna().to_numpy()]
    origin = known[-1] + pd.Timedelta(minutes=5)
    anchor = dt.date.fromisoformat(config.start_date)
    refit = pd.Timestamp(refit_day(origin.date(), anchor, config.refit_days))
    forecast = next_day(
        traffic,
        5,
        choice.build(5, refit - pd.Timedelta(minutes=5)),
        calibration=choice.calibration,
        events=load_events(config.events_path),
        fit_before=refit,
    )
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
