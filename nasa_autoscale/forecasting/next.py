"""forecast_next: the next day after the data ends, from the model selected on the validation
window for 5-minute day-ahead forecasts, with the intervals calibrated there."""

from __future__ import annotations

import pandas as pd

from nasa_autoscale.forecasting.backtest import horizon_ladder
from nasa_autoscale.forecasting.benchmark import CANDIDATES, ENSEMBLE_MEMBERS
from nasa_autoscale.forecasting.calibrate import Calibration
from nasa_autoscale.forecasting.models import (
    Ensemble,
    Forecaster,
    HarmonicARIMA,
    LightGBMDirect,
    ProphetModel,
    SeasonalNaive,
    SlotMedian,
)

_TUNABLE = {name: set(candidates[0]) for name, candidates in CANDIDATES.items()}


def make_model(
    name: str,
    minutes: int,
    events: pd.DataFrame,
    history_end: pd.Timestamp,
    tuned: dict | None = None,
) -> Forecaster:
    """A fresh model by name, with the hyper-parameters tune() chose for it (`tuned`, only the
    keys it searches; for the ensemble, {member: its parameters}); LightGBM validates on the last
    week of the history."""
    if name == "ensemble":
        tuned = tuned or {}
        members = [
            make_model(m, minutes, events, history_end, tuned.get(m)) for m in ENSEMBLE_MEMBERS
        ]
        return Ensemble(members)
    tuned = {k: v for k, v in (tuned or {}).items() if k in _TUNABLE.get(name, ())}
    day = 24 * 60 // minutes
    factories = {
        "seasonal_naive_day": lambda: SeasonalNaive(1),
        "seasonal_naive_week": lambda: SeasonalNaive(7),
        "slot_median_3w": lambda: SlotMedian(3),
        "sarima_fourier": lambda: HarmonicARIMA(**tuned),
        "prophet": lambda: ProphetModel(events),
        "lightgbm_direct": lambda: LightGBMDirect(
            events, horizon_ladder(day), history_end - pd.Timedelta(days=7), **tuned
        ),
    }
    if name not in factories:
        raise ValueError(f"no model named {name!r}; one of {sorted([*factories, 'ensemble'])}")
    return factories[name]()


MIN_DAYS = 2  # a seasonal naive day model needs a day to copy and a day to measure its errors


class HistoryTooShort(ValueError):
    """Too little data for any forecast; the message says how much more is needed."""


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
) -> pd.DataFrame:
    """Fit on the whole history and forecast the `days` after its last bucket with data.

    traffic: index bucket_start (a regular grid), traffic columns; the future rows are added as
    missing, so that feature-based models see nothing they could not know. calibration: the
    model's intervals as calibrated on the validation window (default: the model's own)."""
    step = pd.Timedelta(minutes=minutes)
    traffic = traffic.loc[: traffic.index[traffic["requests"].notna().to_numpy()][-1]]
    origin = traffic.index[-1] + step  # right after the last bucket with data
    horizon = days * 24 * 60 // minutes
    future = pd.date_range(origin, periods=horizon, freq=step, name=traffic.index.name)
    extended = pd.concat([traffic, pd.DataFrame(index=future)])
    extended["is_missing"] = extended["is_missing"].astype("boolean").fillna(True).astype(bool)
    model.fit(traffic, minutes)
    forecast = model.predict(extended, [(origin, horizon)])
    if calibration is not None:
        forecast = calibration.apply(forecast)
    forecast.insert(0, "model", model.name)
    return forecast.drop(columns=["step"])
