"""Split-conformal 80% intervals, calibrated on the validation window.

A model's validation backtest (the model fitted before the validation window, forecasting it under
every protocol) gives its errors y - yhat there. Each error is divided by the forecast's level,
max(yhat, 1) ** power, so that busy hours get wider intervals than quiet ones, and grouped by
lead: steps 1, 2, 3, 4-6, 7-12, 13-24, ... buckets ahead (the horizon ladder), pooled across
protocols, since the error of a forecast `step` buckets ahead does not depend on which protocol
asked for it. A lead group with fewer than MIN_ERRORS errors borrows the shorter leads below it;
leads longer than any seen on validation use the longest group. The 10% and 90% quantiles of a
group, times the level, give the interval of a test forecast at that lead.

While the window is forecast, the width adapts to the misses already seen (adaptive conformal
inference, Gibbs and Candes 2021, on the log of a width multiplier): after each bucket whose
actual is known, log m += gamma / sqrt(h) * (miss - 0.2), h the horizon of the origin that
forecast it (a day-ahead origin learns 288 buckets at once: the root keeps it from swinging), so
a run of misses widens the next intervals and a run of hits narrows them. A forecast from origin
o uses the multiplier of the buckets before o only; a one-shot forecast (a single origin) keeps
m = 1. gamma (one of GAMMAS, 0 = no adaptation) is chosen on the validation window too: the
errors of its first half calibrate, and each gamma is scored on its second half.

The level's power (0: one width at every level, 0.5: Poisson-like, 1: proportional) is itself
chosen on the validation window, by cross-fitting over its days (calibrate on the even days and
score the odd ones, then the other way round) with the interval score of Gneiting and Raftery
(2007), which adds the width and 2 / 0.2 times each miss. The test window is never read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting.models import INTERVAL

POWERS = (0.0, 0.5, 1.0)
GAMMAS = (0.0, 0.01, 0.03, 0.1)
MIN_ERRORS = 50
ALPHA = 1 - (INTERVAL[1] - INTERVAL[0])  # 0.2 for 80% intervals


def lead_edges(longest: int) -> list[int]:
    """Upper ends of the lead groups: 1, 2, 3, 6, 12, 24, ... up to one covering `longest`."""
    edges = [1, 2, 3, 6]
    while edges[-1] < longest:
        edges.append(edges[-1] * 2)
    return edges


@dataclass(frozen=True)
class Calibration:
    power: float
    edges: list[int]  # lead group upper ends, in buckets
    low: list[float]  # per group: the 10% quantile of the scaled errors
    high: list[float]  # per group: the 90% quantile
    errors: int  # validation errors it was calibrated on
    gamma: float = 0.0  # the adaptation's step (0: none)

    def _group(self, step: np.ndarray) -> np.ndarray:
        return np.minimum(np.searchsorted(self.edges, step), len(self.edges) - 1)

    def offsets(self, yhat: np.ndarray, step: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(below, above): the interval is yhat + below .. yhat + above (before clipping at 0)."""
        group = self._group(step)
        scale = _level(yhat, self.power)
        return np.asarray(self.low)[group] * scale, np.asarray(self.high)[group] * scale

    def apply(self, forecasts: pd.DataFrame) -> pd.DataFrame:
        """A copy with yhat_lower / yhat_upper replaced by the calibrated interval (needs the
        step column: leads in buckets, 1-based)."""
        out = forecasts.copy()
        yhat = out["yhat"].to_numpy(float)
        below, above = self.offsets(yhat, out["step"].to_numpy())
        out["yhat_lower"] = np.clip(yhat + below, 0, None)
        out["yhat_upper"] = yhat + above
        return out

    def adapt(self, forecasts: pd.DataFrame, actuals: pd.Series) -> pd.DataFrame:
        """apply(), then the width multiplier of each forecast from the misses of the buckets
        before its origin (see the module's docstring). forecasts: one protocol's (each bucket
        forecast once), with origin, step, bucket_start, yhat; actuals by bucket_start."""
        out = forecasts.sort_values("bucket_start")
        yhat = out["yhat"].to_numpy(float)
        below, above = self.offsets(yhat, out["step"].to_numpy())
        horizon = out.groupby("origin")["step"].transform("max").to_numpy(float)
        rate = self.gamma / np.sqrt(horizon)
        y = actuals.reindex(out["bucket_start"]).to_numpy(float)
        times = out["bucket_start"].to_numpy()
        # index of the first bucket at or after each forecast's origin: the updates it may use
        known = np.searchsorted(times, out["origin"].to_numpy())
        log_m = np.zeros(len(out) + 1)
        lower, upper = np.empty(len(out)), np.empty(len(out))
        for i in range(len(out)):
            m = np.exp(log_m[known[i]])
            lower[i] = max(yhat[i] + below[i] * m, 0.0)
            upper[i] = yhat[i] + above[i] * m
            miss = np.nan if np.isnan(y[i]) else float(y[i] < lower[i] or y[i] > upper[i])
            log_m[i + 1] = log_m[i] if np.isnan(miss) else log_m[i] + rate[i] * (miss - ALPHA)
        out = out.assign(yhat_lower=lower, yhat_upper=upper)
        return out.sort_index()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        return cls(**json.loads(text))


def _level(yhat: np.ndarray, power: float) -> np.ndarray:
    return np.maximum(np.nan_to_num(yhat, nan=1.0), 1.0) ** power


def _errors(forecasts: pd.DataFrame, actuals: pd.Series) -> pd.DataFrame:
    """step, bucket_start, yhat, y of the forecasts whose actual is known."""
    y = actuals.reindex(forecasts["bucket_start"]).to_numpy(float)
    frame = pd.DataFrame(
        {
            "step": forecasts["step"].to_numpy(),
            "yhat": forecasts["yhat"].to_numpy(float),
            "y": y,
            "bucket_start": forecasts["bucket_start"].to_numpy(),
        }
    )
    return frame[frame["y"].notna() & frame["yhat"].notna()].reset_index(drop=True)


def _fit(errors: pd.DataFrame, power: float, edges: list[int]) -> Calibration:
    scaled = ((errors["y"] - errors["yhat"]) / _level(errors["yhat"].to_numpy(), power)).to_numpy()
    group = np.minimum(np.searchsorted(edges, errors["step"].to_numpy()), len(edges) - 1)
    low, high = [], []
    for g in range(len(edges)):
        chosen = group == g
        widen = g
        while chosen.sum() < MIN_ERRORS and widen > 0:  # borrow the shorter leads below
            widen -= 1
            chosen |= group == widen
        if chosen.sum() == 0:  # longer than anything seen: the longest group seen
            low.append(low[-1] if low else 0.0)
            high.append(high[-1] if high else 0.0)
            continue
        low.append(float(np.quantile(scaled[chosen], INTERVAL[0])))
        high.append(float(np.quantile(scaled[chosen], INTERVAL[1])))
    # A lead group beyond the validation's longest lead copies the last one that had errors.
    seen = int(errors["step"].max()) if len(errors) else 1
    last = min(int(np.searchsorted(edges, seen)), len(edges) - 1)
    low[last + 1 :] = [low[last]] * (len(edges) - last - 1)
    high[last + 1 :] = [high[last]] * (len(edges) - last - 1)
    return Calibration(float(power), list(edges), low, high, len(errors))


def interval_score(y, lower, upper, alpha: float = ALPHA) -> float:
    """Mean interval score: width + (2 / alpha) * how far y falls outside (lower is better)."""
    y, lower, upper = (np.asarray(a, float) for a in (y, lower, upper))
    miss = np.clip(lower - y, 0, None) + np.clip(y - upper, 0, None)
    return float(np.mean(upper - lower + 2 / alpha * miss))


def _adapted_score(forecasts: pd.DataFrame, actuals: pd.Series, fitted: Calibration) -> float:
    """Mean interval score of adapt() over each protocol's forecasts."""
    scores = []
    for _, group in forecasts.groupby("protocol", sort=False):
        out = fitted.adapt(group, actuals)
        y = actuals.reindex(out["bucket_start"]).to_numpy(float)
        ok = ~np.isnan(y) & out["yhat"].notna().to_numpy()
        if ok.any():
            scores.append(interval_score(y[ok], out["yhat_lower"][ok], out["yhat_upper"][ok]))
    return float(np.mean(scores)) if scores else np.nan


def calibrate(
    validation_forecasts: pd.DataFrame, actuals: pd.Series, longest: int
) -> tuple[Calibration, dict[str, float]]:
    """(the calibration, {choice: validation interval score}) from one model's validation
    forecasts (columns protocol, origin, step, bucket_start, yhat); `longest` is the longest lead
    it will be applied to. Raises ValueError without a single validation error to learn from."""
    errors = _errors(validation_forecasts, actuals)
    if errors.empty:
        raise ValueError("no validation forecast has a known actual: cannot calibrate")
    edges = lead_edges(max(longest, int(errors["step"].max())))
    day = errors["bucket_start"].dt.normalize()
    odd = (day.astype("int64") // 86_400_000_000_000) % 2 == 1
    scores = {}
    for power in POWERS:
        held = []
        for fold in (odd, ~odd):
            if fold.all() or not fold.any():
                continue
            fitted = _fit(errors[~fold], power, edges)
            scored = fitted.apply(errors[fold].assign(yhat_lower=np.nan, yhat_upper=np.nan))
            held.append(interval_score(scored["y"], scored["yhat_lower"], scored["yhat_upper"]))
        scores[f"power {power}"] = float(np.mean(held)) if held else np.nan
    ranked = [p for p in POWERS if not np.isnan(scores[f"power {p}"])]
    power = min(ranked, key=lambda p: scores[f"power {p}"]) if ranked else POWERS[0]
    # the adaptation's step: calibrate on the first half of the days, adapt over the second
    days = np.sort(day.unique())
    middle = days[len(days) // 2] if len(days) > 1 else None
    gamma = 0.0
    if middle is not None:
        first = _fit(errors[day < middle], power, edges)
        later = validation_forecasts[validation_forecasts["bucket_start"] >= middle]
        for g in GAMMAS:
            scores[f"gamma {g}"] = _adapted_score(later, actuals, replace(first, gamma=g))
        tried = [g for g in GAMMAS if not np.isnan(scores[f"gamma {g}"])]
        gamma = min(tried, key=lambda g: scores[f"gamma {g}"]) if tried else 0.0
    return replace(_fit(errors, power, edges), gamma=gamma), scores
