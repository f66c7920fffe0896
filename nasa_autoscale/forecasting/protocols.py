"""The evaluation protocol: train and test windows, and the forecast origins of each protocol.

An origin is the first bucket whose actual value the model may not see; a forecast from origin o
with horizon H covers buckets o, o + 1, ..., o + H - 1.
"""

from __future__ import annotations

import pandas as pd

TRAIN_START = pd.Timestamp("1995-07-01 00:00")
TEST_START = pd.Timestamp("1995-08-23 00:00")  # train window ends just before
TEST_END = pd.Timestamp("1995-09-01 00:00")  # exclusive
VALIDATION_START = TEST_START - pd.Timedelta(days=7)  # tuning uses this slice of the train window
PROTOCOLS = ("one_shot", "day_ahead", "hour_ahead", "one_step")


def step(minutes: int) -> pd.Timedelta:
    return pd.Timedelta(minutes=minutes)


def origins(
    protocol: str, minutes: int, start=TEST_START, end=TEST_END
) -> list[tuple[pd.Timestamp, int]]:
    """(origin, horizon in buckets) pairs covering [start, end) under the protocol."""
    per_hour, per_day = 60 // minutes, 24 * 60 // minutes
    total = int((end - start) / step(minutes))
    if protocol == "one_shot":
        return [(start, total)]
    every, horizon = {"day_ahead": (per_day, per_day), "hour_ahead": (per_hour, per_hour),
                      "one_step": (1, 1)}[protocol]  # fmt: skip
    return [(start + i * step(minutes), min(horizon, total - i)) for i in range(0, total, every)]
