"""What the anomaly flags are worth, measured by injection.

Copies of a window (validation or test) get anomalies of known kind, size and time from a seeded
generator; each detector runs on every copy and on the clean window. An injected anomaly is found
when a flag starts inside it (or one bucket after it ends); an alarm is a run of consecutive
flagged buckets, and the false-alarm rate is the clean window's alarms per day of logged data.

Kinds (size in multiples of the local scale, the seasonal baseline's robust sigma of the slot):
- spike / dip: +/- size x scale for 5 to 60 minutes (a dip stops at zero);
- level_shift: +/- size x scale for 2 to 6 hours;
- outage: no request at all for 10 to 25 minutes (shorter than the 30 minutes after which the
  ingest calls a silence missing data); its size is not defined (0).
Every count column of the bucket (bytes, hosts, statuses) moves with the requests, so a
detector cannot tell an injection by a changed bytes-per-request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nasa_autoscale.anomalies.detect import seasonal_baseline
from nasa_autoscale.ingest.traffic import MINUTE_DETAIL

SIZES = (2.0, 3.0, 4.0, 6.0)
KINDS = ("spike", "dip", "level_shift", "outage")
DURATIONS = {  # buckets of 5 minutes, inclusive range
    "spike": (1, 12),
    "dip": (1, 12),
    "level_shift": (24, 72),
    "outage": (2, 5),
}
GAP = 24  # buckets kept clean around each injection (2 hours), so each alarm has one cause
COUNTS = (
    "requests",
    "bytes",
    "unique_hosts",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    *MINUTE_DETAIL,
)
COPIES_NOTE = (
    "Each copy holds one injection of each kind and size (two outages), at least two hours apart; "
    "the generator is seeded (seed 0 for validation, 1 for test), so the figures repeat."
)

# A detector: the traffic (every bucket, one window replaced by a copy) -> flags per bucket,
# one boolean array per method name.
Detector = Callable[[pd.DataFrame], dict[str, np.ndarray]]


def local_scale(traffic: pd.DataFrame, minutes: int = 5) -> np.ndarray:
    """The seasonal baseline's robust sigma per bucket (count noise where there is no history)."""
    scale = seasonal_baseline(traffic, minutes)["scale"].to_numpy(float)
    fallback = np.sqrt(np.maximum(traffic["requests"].astype(float).fillna(0).to_numpy(), 1.0))
    return np.where(np.isnan(scale), fallback, scale)


def wanted() -> list[tuple[str, float]]:
    """One injection of each kind and size per copy (outages have no size)."""
    sized = [(kind, size) for kind in KINDS if kind != "outage" for size in SIZES]
    return sized + [("outage", 0.0), ("outage", 0.0)]


def place(present: np.ndarray, rng: np.random.Generator, tries: int = 200) -> pd.DataFrame:
    """Where the injections of one copy go: (kind, size, first, end) bucket positions inside the
    logged buckets of the window, GAP buckets apart; an injection that finds no room is left out."""
    taken = np.zeros(len(present), bool)
    rows = []
    for kind, size in sorted(wanted(), key=lambda w: -DURATIONS[w[0]][1]):  # longest first
        low, high = DURATIONS[kind]
        for _ in range(tries):
            length = int(rng.integers(low, high + 1))
            first = int(rng.integers(GAP, max(GAP + 1, len(present) - length - GAP)))
            span = slice(first - GAP, first + length + GAP)
            if present[first : first + length].all() and not taken[span].any():
                taken[span] = True
                rows.append((kind, size, first, first + length))
                break
    return pd.DataFrame(rows, columns=["kind", "size", "first", "end"])


def apply(
    window: pd.DataFrame, labels: pd.DataFrame, scale: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """A copy of the window's traffic (count columns as floats) with the labelled injections in
    it; the other counts of a bucket follow its requests (a bucket that had none keeps them)."""
    copy = window.copy()
    old = copy["requests"].to_numpy(float)
    new = old.copy()
    for row in labels.itertuples():
        span = slice(row.first, row.end)
        if row.kind == "outage":
            new[span] = 0.0
            continue
        sign = {"spike": 1.0, "dip": -1.0}.get(row.kind, float(rng.choice([-1.0, 1.0])))
        new[span] = np.maximum(old[span] + sign * row.size * scale[span], 0.0)
    new = np.round(new)
    ratio = np.where(old > 0, new / np.where(old > 0, old, 1.0), 1.0)
    for column in COUNTS[1:]:
        if column in copy:
            copy[column] = np.round(copy[column].to_numpy(float) * ratio)
    copy["requests"] = new
    return copy


def alarm_starts(flags: np.ndarray) -> np.ndarray:
    """Positions where a run of consecutive flagged buckets starts (one alarm per run)."""
    flags = np.asarray(flags, bool)
    return np.flatnonzero(flags & ~np.concatenate([[False], flags[:-1]]))


def found(flags: np.ndarray, labels: pd.DataFrame, late: int = 1) -> np.ndarray:
    """Per injection: a flag inside it or at most `late` buckets after it."""
    flags = np.asarray(flags, bool)
    return np.array(
        [flags[row.first : min(row.end + late, len(flags))].any() for row in labels.itertuples()],
        dtype=bool,
    )


def alarms_per_day(flags: np.ndarray, present: np.ndarray, minutes: int = 5) -> float:
    """Alarms (runs of flags) per day of logged buckets."""
    days = present.sum() * minutes / (24 * 60)
    return len(alarm_starts(np.asarray(flags, bool) & present)) / days if days else np.nan


@dataclass
class Outcome:
    """labels: one row per injection with a `found_<method>` column per method; clean: per
    method, alarms per day on the clean window."""

    labels: pd.DataFrame
    clean: dict[str, float]


def evaluate_window(
    traffic: pd.DataFrame,
    start: pd.Timestamp,
    end: pd.Timestamp,
    detect: Detector,
    copies: int = 8,
    seed: int = 0,
    minutes: int = 5,
) -> Outcome:
    """Inject into `copies` copies of [start, end) of `traffic` (bucket_start column, traffic
    columns, whole days) and run `detect` on the clean data and on each copy."""
    traffic = traffic.sort_values("bucket_start", ignore_index=True)
    counts = [c for c in COUNTS if c in traffic]
    traffic[counts] = traffic[counts].astype(float)
    inside = ((traffic["bucket_start"] >= start) & (traffic["bucket_start"] < end)).to_numpy()
    window = traffic[inside]
    present = window["requests"].notna().to_numpy() & ~window["is_missing"].astype(bool).to_numpy()
    scale = local_scale(traffic, minutes)[inside]
    clean = {name: flags[inside] for name, flags in detect(traffic).items()}
    rng = np.random.default_rng(seed)
    frames = []
    for copy in range(copies):
        labels = place(present, rng)
        injected = traffic.copy()
        injected.loc[inside, counts] = apply(window, labels, scale, rng)[counts].to_numpy()
        flags = {name: flags[inside] for name, flags in detect(injected).items()}
        labels = labels.assign(
            copy=copy,
            bucket_start=window["bucket_start"].to_numpy()[labels["first"].to_numpy()],
            minutes=(labels["end"] - labels["first"]) * minutes,
        )
        for name, flagged in flags.items():
            labels[f"found_{name}"] = found(flagged & present, labels)
        frames.append(labels)
    rates = {name: alarms_per_day(flags, present, minutes) for name, flags in clean.items()}
    return Outcome(pd.concat(frames, ignore_index=True), rates)


def recall_table(outcome: Outcome) -> pd.DataFrame:
    """Per method x kind x size: injected, found, recall; with the method's clean alarms/day."""
    methods = [c.removeprefix("found_") for c in outcome.labels if c.startswith("found_")]
    rows = []
    for (kind, size), group in outcome.labels.groupby(["kind", "size"], sort=False):
        for method in methods:
            hits = int(group[f"found_{method}"].sum())
            rows.append(
                {
                    "method": method,
                    "kind": kind,
                    "size": size,
                    "injected": len(group),
                    "found": hits,
                    "recall": hits / len(group),
                    "alarms_per_day": outcome.clean[method],
                }
            )
    return pd.DataFrame(rows)
