"""The forecasts the predictive policies act on: an origin at every bucket, covering the buckets a
server launched at that origin must serve (steps 1 .. boot + 1).

Two honest sets: the validation window from a model fitted before it, for tuning the policies,
and the test window from a model fitted on the training window, as the forecasting protocols do
(windows from protocols.Calendar: NASA's are Aug 16-22 and Aug 23-31). LightGBM direct (one
model per step) is used: it is the best short-horizon model of the benchmark and predicts every
origin in one pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting import protocols, registry
from nasa_autoscale.forecasting.models import Forecaster

WINDOW_NAMES = ("validation", "test")


def windows(traffic: pd.DataFrame | pd.Series) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """{'validation': (start, end), 'test': (start, end)}, read from the data's calendar."""
    return protocols.Calendar.of(traffic).windows()


COLUMNS = ["window", "origin", "step", "bucket_start", "yhat", "yhat_lower", "yhat_upper"]


def plan(start: pd.Timestamp, end: pd.Timestamp, minutes: int, steps: int):
    """An origin at every bucket of [start, end), each `steps` ahead, stopping at the end."""
    origins = pd.date_range(start, end, freq=f"{minutes}min", inclusive="left")
    return [(origin, min(steps, len(origins) - i)) for i, origin in enumerate(origins)]


def fit_and_forecast(
    traffic: pd.DataFrame,
    minutes: int,
    events: pd.DataFrame,
    boot: int,
    window: str,
    lgbm_params: dict | None = None,
) -> tuple[Forecaster, pd.DataFrame]:
    """(fitted model, forecasts) for one window; traffic indexed by bucket_start.

    lgbm_params were tuned on the validation window, so only the test window's model uses them:
    the validation window's forecasts (what the policies are tuned on) come from the defaults
    fixed in advance, never from parameters chosen on that same window."""
    start, end = windows(traffic)[window]
    lgbm_params = lgbm_params if window == "test" else None
    steps = boot + 1
    model = registry.build(
        "lightgbm_direct", lgbm_params, range(1, steps + 1), start - pd.Timedelta(days=7)
    )
    model.fit(traffic[traffic.index < start], minutes, events)
    forecast = model.predict(traffic[traffic.index < end], plan(start, end, minutes, steps))
    forecast.insert(0, "window", window)
    return model, forecast[COLUMNS]


def forecast_array(
    forecasts: pd.DataFrame,
    window: str,
    span: tuple[pd.Timestamp, pd.Timestamp],
    minutes: int,
    steps: int,
) -> np.ndarray:
    """(buckets, steps, 3) array of yhat, lower, upper over the window's span [start, end): row t
    holds origin t's forecasts; steps past the window's end are NaN."""
    start, end = span
    rows = forecasts[forecasts["window"] == window]
    count = int((end - start) / pd.Timedelta(minutes=minutes))
    out = np.full((count, steps, 3), np.nan)
    t = ((rows["origin"] - start) / pd.Timedelta(minutes=minutes)).to_numpy().astype(int)
    s = rows["step"].to_numpy().astype(int) - 1
    keep = s < steps
    out[t[keep], s[keep]] = rows[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(float)[keep]
    return out
