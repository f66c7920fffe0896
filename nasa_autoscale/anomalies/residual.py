"""A detector on the selected one-step model's calibrated residual: at each 5-minute bucket the
model forecasts the bucket from everything before it (lags included), the calibrated 80% interval
gives the forecast's sigma, and z = (actual - forecast) / sigma. The score of a bucket is the
strongest of the sums of its last 1 to SUSTAINED residuals, each divided by the square root of its
length: an anomaly that lasts is found even when each bucket alone stays under the threshold (the
model follows it from its second bucket on, so later residuals shrink). A bucket is flagged when
|score| passes a threshold chosen on the validation window (the lowest that keeps the clean
window at or under MAX_ALARMS_PER_DAY)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasa_autoscale.anomalies.inject import alarms_per_day
from nasa_autoscale.forecasting.calibrate import Calibration
from nasa_autoscale.forecasting.models import Forecaster
from nasa_autoscale.forecasting.protocols import origins

Z80 = 1.2816  # an 80% central interval spans +/- 1.2816 sigma of a normal
THRESHOLDS = np.arange(2.0, 12.001, 0.05)
MAX_ALARMS_PER_DAY = 1.0
SUSTAINED = 3  # buckets: sums of up to 15 minutes of residuals


def sustained(z: np.ndarray, longest: int = SUSTAINED) -> np.ndarray:
    """Per bucket, of the sums of the residuals of its last 1..longest buckets (no log: 0), each
    divided by the square root of its length, the one of the largest magnitude (signed)."""
    residual = pd.Series(np.nan_to_num(z, nan=0.0))
    best = residual.to_numpy()
    for width in range(2, longest + 1):
        total = residual.rolling(width, min_periods=1).sum().to_numpy() / np.sqrt(width)
        best = np.where(np.abs(total) > np.abs(best), total, best)
    return best


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
        """Flags from the residuals z (see z()): |sustained(z)| above the threshold."""
        return np.abs(sustained(z)) > self.threshold


def choose_threshold(score: np.ndarray, present: np.ndarray, budget: float = MAX_ALARMS_PER_DAY):
    """The lowest threshold whose alarms per day on a clean window stay within `budget` (the
    highest one tried when none does); score: sustained(z) of the clean window."""
    size = np.nan_to_num(np.abs(score), nan=0.0)
    for threshold in THRESHOLDS:
        if alarms_per_day(size > threshold, present) <= budget:
            return float(threshold)
    return float(THRESHOLDS[-1])


def fit_detector(selected: pd.DataFrame, traffic: pd.DataFrame, calendar, events):
    """The residual detector of model_metrics' selected one-step row (`selected`, from
    forecasting.next.selected_row), its model fitted on everything before the calendar's
    validation window (traffic indexed by bucket_start); None before any benchmark."""
    from nasa_autoscale.forecasting.next import choose

    if not len(selected):
        return None
    choice = choose(selected, calendar)
    model = choice.build(5, calendar.validation_start - pd.Timedelta(minutes=5))
    model.fit(traffic[traffic.index < calendar.validation_start], 5, events)
    return ResidualDetector(model, choice.calibration)
