"""A detector on the selected one-step model's calibrated residual: at each 5-minute bucket the
model forecasts the bucket from everything before it (lags included), the calibrated 80% interval
gives the forecast's sigma, and the bucket is flagged when |actual - forecast| / sigma passes a
threshold chosen on the validation window (the lowest that keeps the clean window at or under
MAX_ALARMS_PER_DAY)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasa_autoscale.anomalies.inject import alarms_per_day
from nasa_autoscale.forecasting.calibrate import Calibration
from nasa_autoscale.forecasting.models import Forecaster
from nasa_autoscale.forecasting.protocols import origins

Z80 = 1.2816  # an 80% central interval spans +/- 1.2816 sigma of a normal
THRESHOLDS = np.arange(2.0, 12.01, 0.25)
MAX_ALARMS_PER_DAY = 1.0


class ResidualDetector:
    """Flags from a fitted one-step forecaster (fit it on data before the windows it judges)."""

    def __init__(self, model: Forecaster, calibration: Calibration | None, threshold: float = 4.0):
        self.model, self.calibration, self.threshold = model, calibration, threshold

    def z(
        self, traffic: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, minutes: int = 5
    ) -> np.ndarray:
        """Per row of `traffic` (bucket_start column, ordered): the calibrated residual of the
        one-step forecast inside [start, end), NaN elsewhere and where the bucket has no log."""
        indexed = traffic.set_index("bucket_start")
        forecast = self.model.predict(
            indexed[indexed.index < end], origins("one_step", minutes, start, end)
        )
        if self.calibration is not None:
            forecast = self.calibration.apply(forecast)
        sigma = (forecast["yhat_upper"] - forecast["yhat_lower"]).to_numpy(float) / (2 * Z80)
        actual = indexed["requests"].astype(float).reindex(forecast["bucket_start"]).to_numpy()
        z = np.full(len(traffic), np.nan)
        rows = np.searchsorted(
            traffic["bucket_start"].to_numpy(), forecast["bucket_start"].to_numpy()
        )
        z[rows] = (actual - forecast["yhat"].to_numpy(float)) / np.maximum(sigma, 1e-9)
        return z

    def flags(self, z: np.ndarray) -> np.ndarray:
        return np.nan_to_num(np.abs(z), nan=0.0) > self.threshold


def choose_threshold(z: np.ndarray, present: np.ndarray, budget: float = MAX_ALARMS_PER_DAY):
    """The lowest threshold whose alarms per day on a clean window stay within `budget` (the
    highest one tried when none does)."""
    size = np.nan_to_num(np.abs(z), nan=0.0)
    for threshold in THRESHOLDS:
        if alarms_per_day(size > threshold, present) <= budget:
            return float(threshold)
    return float(THRESHOLDS[-1])
