"""forecast_next: the next day after the data ends, from the model selected on the validation
window for 5-minute day-ahead forecasts, with the intervals calibrated there."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd

from nasa_autoscale.forecasting import registry
from nasa_autoscale.forecasting.backtest import horizon_ladder
from nasa_autoscale.forecasting.calibrate import Calibration
from nasa_autoscale.forecasting.models import Forecaster, HistoryTooShort

SELECTED_COLUMNS = ["model", "validation_rmse", "rmse", "params", "calibration"]


def selected_row(con, protocol: str = "day_ahead", granularity: str = "5m") -> pd.DataFrame:
    """model_metrics' selected row of a granularity and protocol (default 5-minute day-ahead:
    the deployed model), every column (model, validation_rmse, rmse, params, calibration,
    mlflow_run_id, champion_version, ...); no rows before the first benchmark. The one reader
    of "the selected model": forecast_next, the daily path, the residual detector, the champion,
    the API and the dashboard."""
    from nasa_autoscale.warehouse import SCHEMA, MissingTable, read

    try:
        return read(
            con,
            f"SELECT * FROM {SCHEMA}.model_metrics "
            "WHERE granularity = ? AND protocol = ? AND selected",
            [granularity, protocol],
        )
    except MissingTable:
        return pd.DataFrame(columns=SELECTED_COLUMNS)


class NoSelectedModel(RuntimeError):
    """The benchmark ran but marked no 5-minute day-ahead model: materialize model_metrics."""


@dataclass(frozen=True)
class Choice:
    """The model forecast_next uses, and why."""

    name: str
    params: dict  # the hyper-parameters tuning chose (for the ensemble, per member)
    calibration: Calibration | None  # None: the model's own intervals
    validation_rmse: float | None
    test_rmse: float | None
    chosen_by: str

    def build(self, minutes: int, history_end: pd.Timestamp) -> Forecaster:
        """A fresh model for the day after history_end. LightGBM holds out the last week for
        intervals of its own only when there is no calibration to give it intervals."""
        own_intervals = None if self.calibration else history_end - pd.Timedelta(days=7)
        day = 24 * 60 // minutes
        return registry.build(self.name, self.params, horizon_ladder(day), own_intervals)


def choose(selected: pd.DataFrame, calendar) -> Choice:
    """The deployed model: model_metrics' selected 5-minute day-ahead row (lowest RMSE on the
    validation window; `selected` holds its columns model, validation_rmse, rmse, params,
    calibration) with its calibration; with a history too short for the benchmark, a seasonal
    naive model (fallback_model)."""
    if len(selected):
        row = selected.iloc[0]
        params, calibration = (
            v if isinstance(v, str) else None for v in row[["params", "calibration"]]
        )
        return Choice(
            row["model"],
            registry.tuned_params(row["model"], json.loads(params or "{}")),
            Calibration.from_json(calibration) if calibration else None,
            float(row["validation_rmse"]),
            float(row["rmse"]),
            "lowest 5-minute day-ahead RMSE on the validation window",
        )
    if calendar.enough:
        raise NoSelectedModel(
            "model_metrics has no selected 5-minute day-ahead row: materialize model_metrics"
        )
    return Choice(
        fallback_model(calendar),
        {},
        None,
        None,
        None,
        f"too little history for the benchmark ({calendar.shortfall()}): seasonal naive",
    )


MIN_DAYS = 2  # a seasonal naive day model needs a day to copy and a day to measure its errors


def fallback_model(calendar) -> str:
    """The model forecast_next uses when the history is too short for the benchmark: the same
    slot a week earlier once a week is there, else a day earlier (from two whole days on)."""
    if calendar.whole_days < MIN_DAYS:
        raise HistoryTooShort(
            f"{calendar.whole_days} whole day(s) of data: forecast_next needs at least "
            f"{MIN_DAYS} (one to copy, one to measure its errors); ingest more days of logs"
        )
    return "seasonal_naive_week" if calendar.whole_days >= 8 else "seasonal_naive_day"


def forecast_next(
    traffic: pd.DataFrame,
    minutes: int,
    model: Forecaster,
    days: int = 1,
    calibration: Calibration | None = None,
    events: pd.DataFrame | None = None,
    fit_before: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Fit on the history (before `fit_before`, the deployed model's last refit day, when given)
    and forecast the `days` after its last bucket with data, feeding the model every actual.

    traffic: index bucket_start (a regular grid), traffic columns; the future rows are added as
    missing, so that feature-based models see nothing they could not know. calibration: the
    model's intervals as calibrated on the validation window (default: the model's own);
    events: the special events, passed to fit."""
    step = pd.Timedelta(minutes=minutes)
    traffic = traffic.loc[: traffic.index[traffic["requests"].notna().to_numpy()][-1]]
    origin = traffic.index[-1] + step  # right after the last bucket with data
    horizon = days * 24 * 60 // minutes
    future = pd.date_range(origin, periods=horizon, freq=step, name=traffic.index.name)
    extended = pd.concat([traffic, pd.DataFrame(index=future)])
    extended["is_missing"] = extended["is_missing"].astype("boolean").fillna(True).astype(bool)
    train = traffic if fit_before is None else traffic[traffic.index < fit_before]
    if train["requests"].notna().sum() == 0:  # nothing before the refit day: all there is
        train = traffic
    model.fit(train, minutes, events)
    forecast = model.predict(extended, [(origin, horizon)])
    if calibration is not None:
        forecast = calibration.apply(forecast)
    forecast.insert(0, "model", model.name)
    return forecast.drop(columns=["step"])
