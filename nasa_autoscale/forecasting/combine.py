"""Ensemble weights per protocol, chosen on the validation window (the `ensemble_weighted` row).

The weights are the point of a grid on the simplex (steps of WEIGHT_STEP, non-negative, summing
to 1) with the lowest RMSE over the members' validation forecasts of one protocol. Picking them
there makes the ensemble's own validation RMSE optimistic, and `selected` compares validation
RMSEs; so the RMSE it is judged by is leave-one-day-out: each validation day is combined with the
weights chosen on the other days. The test window is never read.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

WEIGHT_STEP = 0.1
KEYS = ["origin", "bucket_start"]


def simplex(members: int, step: float = WEIGHT_STEP) -> np.ndarray:
    """Every weight vector on the grid: rows of `members` multiples of `step` summing to 1."""
    units = round(1 / step)
    rows = [
        combo
        for combo in itertools.product(range(units + 1), repeat=members)
        if sum(combo) == units
    ]
    return np.array(rows, float) / units


def aligned(
    forecasts: pd.DataFrame, members: list[str], actuals: pd.Series
) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray]:
    """(bucket_start per row, yhat [rows x members], actual per row) over the rows every member
    forecast and that have an actual (one protocol's forecasts)."""
    wide = forecasts[forecasts["model"].isin(members)].pivot_table(
        index=KEYS, columns="model", values="yhat"
    )
    wide = wide.reindex(columns=members).dropna()
    times = pd.DatetimeIndex(wide.index.get_level_values("bucket_start"))
    actual = actuals.reindex(times).to_numpy(float)
    keep = ~np.isnan(actual)
    return times[keep], wide.to_numpy(float)[keep], actual[keep]


def best(yhat: np.ndarray, actual: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The grid row with the lowest RMSE (the first on a tie)."""
    errors = yhat @ grid.T - actual[:, None]
    return grid[int(np.argmin(np.mean(errors**2, axis=0)))]


def choose(
    validation: pd.DataFrame, members: list[str], actuals: pd.Series
) -> tuple[dict[str, float], float]:
    """(weights by member, leave-one-day-out validation RMSE) for one protocol's validation
    forecasts; members without a forecast there get no weight."""
    present = [m for m in members if (validation["model"] == m).any()]
    times, yhat, actual = aligned(validation, present, actuals)
    if not len(actual):
        return {}, float("nan")
    grid = simplex(len(present))
    days = times.normalize()
    combined = np.empty(len(actual))
    for day in days.unique():
        held = np.asarray(days == day)
        if held.all():  # one day only: nothing to choose on but itself
            combined[held] = yhat[held] @ best(yhat, actual, grid)
        else:
            combined[held] = yhat[held] @ best(yhat[~held], actual[~held], grid)
    weights = best(yhat, actual, grid)
    rmse = float(np.sqrt(np.mean((combined - actual) ** 2)))
    return {m: round(float(w), 6) for m, w in zip(present, weights, strict=True)}, rmse
