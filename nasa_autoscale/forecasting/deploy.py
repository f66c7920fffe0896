"""The deployed model, day by day: which fit forecasts a day (the refit rule), the day's forecast
as the daily path makes it at the day's midnight, and its score once the day has happened.

The refit rule is a calendar: the model is refitted every `every` days counted from `anchor`
(NASA_REFIT_DAYS from NASA_START_DATE); on other days the model of the last refit day forecasts,
fed the actuals that arrived since. Fitting is deterministic, so "the stored model" is the fit on
everything before the refit day, made again when needed: the daily path and a backtest over the
same days give the same numbers.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting import backtest
from nasa_autoscale.forecasting.metrics import score
from nasa_autoscale.forecasting.next import Choice

# a backtest's forecast columns for one day, with what the model saw and when it was made
FORECAST_COLUMNS = [
    "day",
    *(c for c in backtest.FORECAST_COLUMNS if c not in ("granularity", "protocol")),
    "fitted_before",
    "data_through",
]
SCORE_COLUMNS = ["day", "model", "rmse", "mae", "coverage", "n", "missing_buckets", "complete"]
PLAN_SCORE_COLUMNS = [
    "plan_setting",
    "plan_policy",
    "plan_cost",
    "plan_dropped",
    "optimum_cost",
    "plan_pct_above_optimum",
]


def refit_day(day: dt.date, anchor: dt.date, every: int) -> dt.date:
    """The last refit day on or before `day` (refits every `every` days from `anchor`)."""
    if day <= anchor:
        return anchor
    return anchor + dt.timedelta(days=(day - anchor).days // every * every)


def forecast_day(
    traffic: pd.DataFrame,
    day: pd.Timestamp,
    choice: Choice,
    every: int,
    anchor: dt.date,
    events: pd.DataFrame | None = None,
    minutes: int = 5,
) -> pd.DataFrame:
    """The forecast of `day`'s buckets from its midnight, made from what was known then.

    traffic: index bucket_start, a regular grid (rows at or after `day` are ignored). The model
    is fitted on everything before the refit day (on everything before `day` when nothing is
    older), then reads the actuals up to midnight; the day's rows are given as missing."""
    step = pd.Timedelta(minutes=minutes)
    history = traffic[traffic.index < day]
    known = history.index[history["requests"].notna().to_numpy()]
    if len(known) == 0:
        raise ValueError(f"no traffic before {day:%Y-%m-%d}: nothing to forecast it from")
    refit = pd.Timestamp(refit_day(day.date(), anchor, every))
    train = history[history.index < refit]
    if train["requests"].notna().sum() == 0:
        train, refit = history, day
    model = choice.build(minutes, refit - step)
    model.fit(train, minutes, events)
    per_day = 24 * 60 // minutes
    future = pd.date_range(day, periods=per_day, freq=step, name=history.index.name)
    extended = pd.concat([history, pd.DataFrame(index=future)])
    extended["is_missing"] = extended["is_missing"].astype("boolean").fillna(True).astype(bool)
    forecast = model.predict(extended, [(day, per_day)])
    if choice.calibration is not None:
        forecast = choice.calibration.apply(forecast)
    forecast.insert(0, "model", model.name)
    forecast.insert(0, "day", day.date())
    forecast["fitted_before"] = refit
    forecast["data_through"] = known[-1]
    return forecast[FORECAST_COLUMNS]


def score_day(forecast: pd.DataFrame, traffic: pd.DataFrame) -> dict:
    """A day's forecast against what happened: RMSE, MAE, 80% interval coverage over the buckets
    with data (a missing bucket is not zero traffic: it is left out and counted)."""
    actual = traffic["requests"].astype(float)
    scores = score(forecast, actual, np.nan)
    missing = int(actual.reindex(forecast["bucket_start"]).isna().sum())
    return {
        "day": pd.Timestamp(forecast["day"].iloc[0]).date(),
        "model": forecast["model"].iloc[0],
        "rmse": scores["rmse"],
        "mae": scores["mae"],
        "coverage": scores["coverage"],
        "n": scores["n"],
        "missing_buckets": missing,
        "complete": missing == 0,
    }


def drift(scores: dict, benchmark_rmse: float | None, factor: float = 1.5) -> tuple[bool, dict]:
    """(passed, metadata): a day's RMSE within `factor` x the benchmark's day-ahead RMSE of the
    deployed model (passed when there is nothing to compare)."""
    limit = None if benchmark_rmse is None else factor * benchmark_rmse
    rmse = scores["rmse"]
    passed = limit is None or np.isnan(rmse) or rmse <= limit
    return passed, {
        "rmse": rmse,
        "benchmark_day_ahead_rmse": benchmark_rmse,
        "limit": limit,
        "factor": factor,
        "n": scores["n"],
    }
