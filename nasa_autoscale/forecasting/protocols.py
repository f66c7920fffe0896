"""The evaluation protocol: train, validation and test windows read from the data, and the
forecast origins of each protocol.

Windows count back from the end of the data: test = the last NASA_TEST_DAYS whole days (default
9), validation = the NASA_VALIDATION_DAYS (default 7) before it, train = everything before the
test window (validation included: models are refitted on it after the choices are made there).
For the NASA trace that is train Jul 1 - Aug 22, validation Aug 16-22, test Aug 23-31.

An origin is the first bucket whose actual value the model may not see; a forecast from origin o
with horizon H covers buckets o, o + 1, ..., o + H - 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

PROTOCOLS = ("one_shot", "day_ahead", "hour_ahead", "one_step")
# Training days needed before the validation window: LightGBM's interval week and a week of lags.
MIN_TRAIN_DAYS = 14
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Calendar:
    first: pd.Timestamp  # the first bucket of the data
    validation_start: pd.Timestamp
    test_start: pd.Timestamp  # the training window ends just before
    test_end: pd.Timestamp  # exclusive: the end of the last whole day
    whole_days: int  # whole days of data, the last one's included
    test_days: int
    validation_days: int

    @property
    def train_days(self) -> int:
        """Days of training data before the validation window."""
        return max(0, (self.validation_start - self.first) // DAY)

    @property
    def enough(self) -> bool:
        """Whether the benchmark (every model under every protocol, the policy sweep) can run."""
        return self.train_days >= MIN_TRAIN_DAYS

    @property
    def days_short(self) -> int:
        return max(0, MIN_TRAIN_DAYS - self.train_days)

    def windows(self) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
        return {
            "validation": (self.validation_start, self.test_start),
            "test": (self.test_start, self.test_end),
        }

    def describe(self) -> str:
        last = self.test_end - DAY
        return (
            f"train {self.first:%Y-%m-%d} .. {self.test_start - DAY:%Y-%m-%d} (validation "
            f"{self.validation_start:%Y-%m-%d} .. {self.test_start - DAY:%Y-%m-%d}, "
            f"{self.validation_days} days), test {self.test_start:%Y-%m-%d} .. {last:%Y-%m-%d} "
            f"(the last {self.test_days} whole days)"
        )

    def shortfall(self) -> str:
        """What the benchmark needs and how many more days of logs that is (empty if enough)."""
        if self.enough:
            return ""
        needed = self.test_days + self.validation_days + MIN_TRAIN_DAYS
        return (
            f"{self.whole_days} whole day(s) of data; the benchmark needs {needed} (test "
            f"{self.test_days} + validation {self.validation_days} + {MIN_TRAIN_DAYS} of "
            f"training): {needed - self.whole_days} more day(s) of logs, or smaller "
            "NASA_TEST_DAYS / NASA_VALIDATION_DAYS"
        )

    @classmethod
    def of(
        cls, traffic: pd.DataFrame | pd.Series, test_days: int, validation_days: int
    ) -> Calendar:
        """The calendar of a regular grid of buckets (index bucket_start; `requests` NULL where
        missing; or one such series per bucket length, {minutes: series}: the coarsest's
        calendar). The last whole day is the last one whose final bucket is at or before the last
        bucket with data. The day counts come from the caller (Settings.calendar): nothing here
        reads the environment."""
        if isinstance(traffic, dict):  # requests per bucket length (scaling.sweep.Demand)
            traffic = traffic[max(traffic)]
        requests = traffic["requests"] if isinstance(traffic, pd.DataFrame) else traffic
        present = requests.index[requests.notna().to_numpy()]
        if len(present) == 0:
            raise ValueError("no traffic: every bucket is missing; ingest some logs first")
        step = requests.index[1] - requests.index[0] if len(requests) > 1 else pd.Timedelta("5min")
        last = present[-1]
        day_complete = (last + step).normalize() > last.normalize()
        test_end = last.normalize() + (DAY if day_complete else 0 * DAY)
        first = requests.index[0]
        whole_days = max(0, (test_end - first.normalize()) // DAY)
        test_start = test_end - test_days * DAY
        return cls(
            first,
            test_start - validation_days * DAY,
            test_start,
            test_end,
            whole_days,
            test_days,
            validation_days,
        )


def step(minutes: int) -> pd.Timedelta:
    return pd.Timedelta(minutes=minutes)


def origins(
    protocol: str, minutes: int, start: pd.Timestamp, end: pd.Timestamp
) -> list[tuple[pd.Timestamp, int]]:
    """(origin, horizon in buckets) pairs covering [start, end) under the protocol."""
    per_hour, per_day = 60 // minutes, 24 * 60 // minutes
    total = int((end - start) / step(minutes))
    if protocol == "one_shot":
        return [(start, total)]
    every, horizon = {
        "day_ahead": (per_day, per_day),
        "hour_ahead": (per_hour, per_hour),
        "one_step": (1, 1),
    }[protocol]
    return [(start + i * step(minutes), min(horizon, total - i)) for i in range(0, total, every)]
