"""Run models under the protocols and score them (metrics kept apart from the models)."""

from __future__ import annotations

import time

import pandas as pd

from nasa_autoscale.forecasting import metrics, protocols
from nasa_autoscale.forecasting.models import Forecaster

FORECAST_COLUMNS = [
    "model",
    "granularity",
    "protocol",
    "origin",
    "bucket_start",
    "step",
    "yhat",
    "yhat_lower",
    "yhat_upper",
]
METRIC_COLUMNS = [
    "model",
    "granularity",
    "protocol",
    "rmse",
    "mae",
    "mape",
    "mase",
    "coverage",
    "n",
    "coverage_uncalibrated",
    "validation_rmse",
    "calibration",
    "selected",
    "mlflow_run_id",
    "params",
    "champion_version",  # the registry's version, on the rows registered as `champion`
]


def horizon_ladder(longest: int) -> list[int]:
    """Horizons (in buckets) to train direct models for: 1, 2, 3, 6, then doubling, up to the
    first one that covers `longest`."""
    ladder = [1, 2, 3, 6]
    while ladder[-1] < longest:
        ladder.append(ladder[-1] * 2)
    return [h for h in ladder if h < longest] + [min(h for h in ladder if h >= longest)]


def run(
    model: Forecaster,
    traffic: pd.DataFrame,
    minutes: int,
    granularity: str,
    protocol_names,
    calendar: protocols.Calendar,
    window: str = "test",
    events: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Fit on everything before the window, forecast the window under each protocol.

    traffic: index bucket_start (a regular grid over train and test), traffic columns; the
    windows are the calendar's: "test", or "validation" (the model
    then never sees the validation window's values it predicts nor anything after them).
    events: the special events, passed to fit. Returns (forecasts with a step column, timings
    in s).
    """
    start, end = calendar.windows()[window]
    started = time.perf_counter()
    model.fit(traffic[traffic.index < start], minutes, events)
    timings = {"fit_s": time.perf_counter() - started}
    frames = []
    for protocol in protocol_names:
        started = time.perf_counter()
        plan = protocols.origins(protocol, minutes, start, end)
        forecast = model.predict(traffic[traffic.index < end], plan)
        timings[f"predict_{protocol}_s"] = time.perf_counter() - started
        forecast.insert(0, "protocol", protocol)
        frames.append(forecast)
    forecasts = pd.concat(frames, ignore_index=True)
    forecasts.insert(0, "granularity", granularity)
    forecasts.insert(0, "model", model.name)
    return forecasts[FORECAST_COLUMNS], timings


def score_all(
    forecasts: pd.DataFrame,
    traffic: pd.DataFrame,
    minutes: int,
    calendar: protocols.Calendar,
) -> pd.DataFrame:
    """model_metrics rows: one per model x granularity x protocol."""
    train = traffic.loc[traffic.index < calendar.test_start, "requests"].astype(float)
    scale = metrics.seasonal_naive_scale(train, 24 * 60 // minutes)
    actuals = traffic["requests"].astype(float)
    rows = []
    for (model, granularity, protocol), group in forecasts.groupby(
        ["model", "granularity", "protocol"], sort=False
    ):
        rows.append(
            {
                "model": model,
                "granularity": granularity,
                "protocol": protocol,
                **metrics.score(group, actuals, scale),
            }
        )
    return pd.DataFrame(rows)
