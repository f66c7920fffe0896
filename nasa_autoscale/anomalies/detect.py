"""Two anomaly detectors and their dual validation (anomalies_5m).

- Statistical: a robust seasonal baseline, the median of the same time slot on recent days of the
  same type (weekday or weekend), with the MAD of those values as the scale; a bucket is flagged
  when its residual is beyond Z_THRESHOLD scales. The daily cycle is removed before judging, so a
  busy noon is not a spike and a quiet 4 a.m. is not a dip.
- ML: IsolationForest (1% contamination) on shape features that never include the raw count alone
  (ratio to the baseline, short-term surprise, error rate, bytes and hosts per request, time of
  day).
- is_anomaly: both agree. Missing buckets are outages, a class of their own: is_anomaly is true,
  kind 'outage', and neither detector judges them (their flags are NULL).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from sklearn.ensemble import IsolationForest

LOOKBACK_DAYS = 21
MIN_HISTORY = 3  # same-type days needed before a slot has a baseline
Z_THRESHOLD = 3.0
CONTAMINATION = 0.01
MAD_TO_SIGMA = 1.4826
IFOREST_FEATURES = [
    "ratio_to_baseline",
    "surprise_vs_last_hour",
    "error_rate",
    "bytes_per_request",
    "requests_per_host",
    "hour_sin",
    "hour_cos",
    "is_weekend",
]


def seasonal_baseline(traffic: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Per bucket: baseline (median of the same slot over the previous LOOKBACK_DAYS days of the
    same type), scale (1.4826 * MAD, at least sqrt(baseline) for count noise) and history (how
    many days fed it). traffic: bucket_start and requests (NaN when missing), whole days."""
    slots = 24 * 60 // minutes
    values = traffic["requests"].to_numpy(dtype=float)
    if len(values) % slots:
        raise ValueError(f"traffic must cover whole days of {slots} buckets")
    days = values.reshape(-1, slots)
    weekend = pd.to_datetime(traffic["bucket_start"].iloc[::slots]).dt.dayofweek.to_numpy() >= 5
    baseline = np.full_like(days, np.nan)
    scale = np.full_like(days, np.nan)
    history = np.zeros_like(days)
    for d in range(len(days)):
        earlier = np.arange(max(0, d - LOOKBACK_DAYS), d)
        earlier = earlier[weekend[earlier] == weekend[d]]
        if len(earlier) == 0:
            continue
        window = days[earlier]
        count = np.sum(~np.isnan(window), axis=0)
        with warnings.catch_warnings():  # all-NaN slots (never observed) are expected
            warnings.simplefilter("ignore", RuntimeWarning)
            median = np.nanmedian(window, axis=0)
            mad = np.nanmedian(np.abs(window - median), axis=0)
        enough = count >= MIN_HISTORY
        baseline[d] = np.where(enough, median, np.nan)
        scale[d] = np.where(
            enough, np.maximum(MAD_TO_SIGMA * mad, np.sqrt(np.maximum(median, 1))), np.nan
        )
        history[d] = count
    return pd.DataFrame(
        {
            "baseline": baseline.ravel(),
            "scale": scale.ravel(),
            "history_days": history.ravel().astype(int),
        },
        index=traffic.index,
    )


def detect_anomalies(traffic: pd.DataFrame, minutes: int, seed: int = 0) -> pd.DataFrame:
    """anomalies table for `traffic` (a traffic_* frame of whole days, ordered by bucket_start)."""
    traffic = traffic.sort_values("bucket_start", ignore_index=True)
    requests = traffic["requests"].astype(float)
    missing = traffic["is_missing"].astype(bool).to_numpy() | requests.isna().to_numpy()
    out = pd.DataFrame({"bucket_start": traffic["bucket_start"], "requests": traffic["requests"]})
    out = out.join(seasonal_baseline(traffic, minutes))
    out["residual"] = requests - out["baseline"]
    out["z"] = out["residual"] / out["scale"]
    judged = ~missing & out["z"].notna().to_numpy()
    out["is_anomaly_z"] = pd.array(
        np.where(judged, out["z"].abs() > Z_THRESHOLD, False), dtype="boolean"
    )

    features = iforest_features(traffic, out, minutes)
    # A column the data cannot give (e.g. unique hosts from an aggregate without them) is left
    # out; a gap in a present column (a bucket with no history yet) takes the column's median.
    features = features.loc[:, features[~missing].notna().any()]
    features = features.fillna(features[~missing].median())
    usable = ~missing
    flags = np.zeros(len(out), dtype=bool)
    if usable.sum() > 10 and features.shape[1]:
        forest = IsolationForest(
            n_estimators=200, contamination=CONTAMINATION, random_state=seed, n_jobs=1
        )
        flags[usable] = forest.fit_predict(features[usable].to_numpy()) == -1
    out["is_anomaly_iforest"] = pd.array(flags, dtype="boolean")
    out.loc[missing, ["is_anomaly_z", "is_anomaly_iforest"]] = pd.NA
    both = (out["is_anomaly_z"] & out["is_anomaly_iforest"]).fillna(False).to_numpy(dtype=bool)
    out["is_anomaly"] = both | missing
    either = (out["is_anomaly_z"] | out["is_anomaly_iforest"]).fillna(False).to_numpy(dtype=bool)
    direction = np.where(out["residual"].fillna(0).to_numpy() >= 0, "spike", "dip")
    out["kind"] = np.where(missing, "outage", np.where(either, direction, None))
    return out


def iforest_features(traffic: pd.DataFrame, scored: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """Shape features of each bucket for the IsolationForest (no raw count among them)."""
    requests = traffic["requests"].astype(float)
    last_hour = requests.shift(1).rolling(max(60 // minutes, 1), min_periods=1).mean()
    hour = pd.to_datetime(traffic["bucket_start"]).dt.hour
    return pd.DataFrame(
        {
            "ratio_to_baseline": requests / scored["baseline"].clip(lower=1),
            "surprise_vs_last_hour": requests / last_hour.clip(lower=1),
            "error_rate": traffic["error_rate"].astype(float).fillna(0),
            "bytes_per_request": traffic["bytes"].astype(float) / requests.clip(lower=1),
            "requests_per_host": requests / traffic["unique_hosts"].astype(float).clip(lower=1),
            "hour_sin": np.sin(2 * np.pi * hour / 24),
            "hour_cos": np.cos(2 * np.pi * hour / 24),
            "is_weekend": (pd.to_datetime(traffic["bucket_start"]).dt.dayofweek >= 5).astype(int),
        }
    )[IFOREST_FEATURES]
