"""Daily group, one partition per ingested day: the next day's forecast from the deployed model
(daily_forecasts) and the score of the day's own forecast once it has happened
(forecast_scores, with a drift check against the benchmark)."""

import datetime as dt
import warnings

import dagster as dg
import pandas as pd

from nasa_autoscale.assets.common import preview
from nasa_autoscale.features.events import read_events
from nasa_autoscale.forecasting import deploy
from nasa_autoscale.forecasting.next import (
    HistoryTooShort,
    NoSelectedModel,
    selected_row,
)
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.partitions import SITE_PREFIX, daily_partitions, key, keys, partition_days
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource
from nasa_autoscale.scaling import plan
from nasa_autoscale.scaling.fleets import rules_of
from nasa_autoscale.scaling.sweep import Demand, decision_minutes
from nasa_autoscale.warehouse import SCHEMA, MissingTable, read, replace_range, transaction

GROUP = "daily"
# A single-run backfill is what these assets need; Dagster marks the parameter beta and warns in
# every process that loads the definitions (each step of a multiprocess run): once is enough.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)


def _days(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def _append(con, table: str, column: str, low, high, frame: pd.DataFrame) -> None:
    """Replace the rows of [low, high) in `column` with `frame`'s, in one transaction."""
    con.register("_rows", frame)
    try:
        with transaction(con):
            replace_range(
                con,
                table,
                column,
                low,
                high,
                lambda: con.execute(f"INSERT INTO {SCHEMA}.{table} BY NAME SELECT * FROM _rows"),
            )
    finally:
        con.unregister("_rows")


@dg.asset(
    key_prefix=SITE_PREFIX,
    partitions_def=daily_partitions,
    deps=keys(["traffic_5m", "traffic_1m", "model_metrics", "special_events"]),
    group_name=GROUP,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description=(
        "For each ingested day, the next day's 5-minute forecast from its midnight with 80% "
        "intervals, from the deployed model (model_metrics.selected, 5-minute day-ahead; "
        "seasonal naive before the first benchmark), refitted every NASA_REFIT_DAYS from "
        "NASA_START_DATE and fed the actuals up to that midnight. Kept day by day for scoring."
    ),
)
def daily_forecasts(
    context: dg.AssetExecutionContext,
    warehouse: WarehouseResource,
    settings: SettingsResource,
    mlflow: MLflowResource,
):
    from nasa_autoscale.forecasting.champion import deployed_choice

    config = settings.get()
    first, last = partition_days(context)
    try:
        with warehouse.connect() as con:
            # the history a forecast of the last day's next day reads, and no later day
            span = config.history_days + (last - first).days
            traffic = whole_days(con, 5, days=span, through=last).set_index("bucket_start")
            events = read_events(con)
            calendar = config.calendar(traffic)
            choice = deployed_choice(con, calendar, mlflow.tracking_uri, context.log.warning)
    except NoSelectedModel as error:
        raise dg.Failure(str(error)) from None
    except HistoryTooShort as error:  # a new site's first day: nothing to forecast from yet
        context.log.warning(f"no forecast made: {error}")
        return dg.MaterializeResult(metadata={"dagster/row_count": 0, "skipped": str(error)})
    anchor = dt.date.fromisoformat(config.start_date)
    frames = []
    for day in _days(first, last):
        target = pd.Timestamp(day + dt.timedelta(days=1))
        frames.append(
            deploy.forecast_day(traffic, target, choice, config.refit_days, anchor, events)
        )
        context.log.info(f"forecast of {target:%Y-%m-%d} with {choice.name}")
    forecasts = pd.concat(frames, ignore_index=True)
    low, high = first + dt.timedelta(days=1), last + dt.timedelta(days=2)
    with warehouse.connect() as con:
        _append(con, "daily_forecasts", "day", low, high, forecasts)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(forecasts),
            "model": choice.name,
            "chosen_by": choice.chosen_by,
            "days_forecast": ", ".join(str(d) for d in sorted(set(forecasts["day"]))),
            "refit_days": config.refit_days,
            "preview": preview(forecasts.drop(columns=["day"])),
        }
    )


def _figures(row: pd.Series) -> dict:
    """A day's score as numbers the Dagster UI plots across partitions (NaN left out)."""
    figures = {"n": int(row["n"]), "missing_buckets": int(row["missing_buckets"])}
    for name in ("rmse", "mae", "coverage", "plan_cost", "plan_dropped", "optimum_cost"):
        if pd.notna(row[name]):
            figures[name] = float(row[name])
    return figures


@dg.asset(
    key_prefix=SITE_PREFIX,
    partitions_def=daily_partitions,
    deps=keys(["traffic_5m", "traffic_1m", "daily_forecasts", "cost_report", "model_metrics"]),
    group_name=GROUP,
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[
        dg.AssetCheckSpec(
            "day_ahead_drift",
            asset=key("forecast_scores"),
            description="Each day's RMSE within 1.5x the benchmark's day-ahead RMSE of the "
            "deployed model (a warning: the traffic has moved away from what it was chosen on).",
        )
    ],
    description=(
        "For each ingested day, its forecast (made at its midnight, daily_forecasts) against "
        "what happened: RMSE, MAE, 80% interval coverage and the buckets scored; buckets "
        "without a log are counted, never scored as zero traffic. And, one row per fleet of "
        "the profiles (plan_setting), the day's plan (the fleet's deployed policy run on that "
        "forecast from midnight): its cost and dropped fraction against the day's demand, "
        "beside the hindsight optimum's cost: what the fleet would have done in shadow mode."
    ),
)
def forecast_scores(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    first, last = partition_days(context)
    config = settings.get()
    fleets = rules_of(config.fleets())
    span = config.history_days + (last - first).days
    with warehouse.connect() as con:
        traffic = whole_days(con, 5, detail=False, days=span, through=last)
        traffic = traffic.set_index("bucket_start")
        finer = {  # a fleet deciding every minute prices its plan on the day's minutes
            m: whole_days(con, m, detail=False, days=span, through=last)
            .set_index("bucket_start")["requests"]
            .astype(float)
            for m in decision_minutes(fleets) - {5}
        }
        forecasts = read(
            con,
            f"SELECT * FROM {SCHEMA}.daily_forecasts WHERE day BETWEEN ? AND ? ORDER BY day, step",
            [first, last],
        )
        benchmark = selected_row(con)
        try:
            cost_report = read(con, f"SELECT * FROM {SCHEMA}.cost_report")
        except MissingTable:  # no benchmark yet: the untuned policy plans
            cost_report = pd.DataFrame()
    # the forecast's score once per day, and its plan priced for every fleet (the default
    # fleet's row first: the figures plotted per partition and the drift check read it)
    order = [plan.plan_fleet(fleets), *(f for f in fleets if f != plan.plan_fleet(fleets))]
    demand = Demand({5: traffic["requests"].astype(float), **finer})
    days = [
        (deploy.score_day(group, traffic), group)
        for _, group in forecasts.groupby("day", sort=True)
    ]
    rows = [
        {**score, **plan.score_plan(group, demand, cost_report, fleets, fleet)}
        for score, group in days
        for fleet in order
    ]
    scores = pd.DataFrame(rows, columns=deploy.SCORE_COLUMNS + deploy.PLAN_SCORE_COLUMNS)
    with warehouse.connect() as con:
        _append(con, "forecast_scores", "day", first, last + dt.timedelta(days=1), scores)
    unscored = [str(d) for d in _days(first, last) if d not in set(forecasts["day"])]
    metadata = {
        "dagster/row_count": len(scores),
        "not_forecast": ", ".join(unscored) or "none",
        "scores": preview(scores.round(3), rows=len(scores) or 1),
    }
    if first == last and len(scores):  # one day's run: its figures, plotted per partition
        metadata.update(_figures(scores.iloc[0]))
    yield dg.MaterializeResult(metadata=metadata)
    reference = {r.model: float(r.rmse) for r in benchmark.itertuples() if r.rmse == r.rmse}
    scored = [score for score, _ in days]
    results = [deploy.drift(row, reference.get(row["model"])) for row in scored]
    drifted = [row["day"] for row, (passed, _) in zip(scored, results, strict=True) if not passed]
    yield dg.AssetCheckResult(
        check_name="day_ahead_drift",
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "days_over": ", ".join(str(d) for d in drifted) or "none",
            "days": dg.MetadataValue.json(
                {str(row["day"]): meta for row, (_, meta) in zip(scored, results, strict=True)}
            ),
        },
    )
