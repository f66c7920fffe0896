"""Forecast accuracy: RMSE, MAE, MAPE (non-zero actuals), MASE, interval coverage.

MASE divides MAE by the in-sample MAE of the one-day seasonal naive forecast on the training
window. Missing actuals are not scored.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def seasonal_naive_scale(train: pd.Series, period: int) -> float:
    """Mean |y_t - y_{t-period}| over the training window (missing pairs skipped)."""
    diff = (train - train.shift(period)).abs().dropna()
    return float(diff.mean())


def score(forecasts: pd.DataFrame, actuals: pd.Series, scale: float) -> dict:
    """forecasts: bucket_start, yhat, yhat_lower, yhat_upper; actuals indexed by bucket_start."""
    y = actuals.reindex(forecasts["bucket_start"]).to_numpy(dtype=float)
    yhat = forecasts["yhat"].to_numpy(dtype=float)
    ok = ~np.isnan(y) & ~np.isnan(yhat)
    y, yhat = y[ok], yhat[ok]
    lower = forecasts["yhat_lower"].to_numpy(dtype=float)[ok]
    upper = forecasts["yhat_upper"].to_numpy(dtype=float)[ok]
    error = yhat - y
    nonzero = y != 0
    has_interval = ~np.isnan(lower) & ~np.isnan(upper)
    inside = (y >= lower) & (y <= upper)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))) if len(y) else np.nan,
        "mae": float(np.mean(np.abs(error))) if len(y) else np.nan,
        "mape": float(np.mean(np.abs(error[nonzero] / y[nonzero])) * 100)
        if nonzero.any()
        else np.nan,
        "mase": float(np.mean(np.abs(error)) / scale) if len(y) and scale > 0 else np.nan,
        "coverage": float(inside[has_interval].mean()) if has_interval.any() else np.nan,
        "n": int(len(y)),
    }


def interpolation_rmse(actuals: pd.Series, start: pd.Timestamp, end: pd.Timestamp, side: int = 2):
    """RMSE over [start, end) of the mean of the `side` buckets either side of each bucket (those
    present): an interpolation that sees the future, not a forecast, so a yardstick of the noise
    in the series. A forecast one bucket ahead sees one side only; it is not expected to do much
    better than this."""
    values = actuals.astype(float)
    around = pd.concat([values.shift(k) for k in range(-side, side + 1) if k != 0], axis=1).mean(
        axis=1
    )
    inside = (values.index >= start) & (values.index < end)
    error = (values - around)[inside].dropna()
    return float(np.sqrt(np.mean(error**2))) if len(error) else float("nan")
