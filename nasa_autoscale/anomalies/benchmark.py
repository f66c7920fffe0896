"""The injection benchmark: every detector on injected copies of the validation and the test
windows, and the method to trust chosen on validation.

Methods: `z` (3 sigma from the seasonal baseline, as anomalies_5m flags), `iforest`, `both`
(their conjunction, anomalies_5m's is_anomaly) and `residual` (the selected one-step model's
calibrated residual, its threshold chosen on the clean validation window; residual.py).
The method chosen: among those with at most one alarm a day on the clean validation window
(MAX_ALARMS_PER_DAY), the one that finds the most injected spikes and dips of 3x the local scale
or more (TARGET_SIZE) on validation; the test window only reports it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasa_autoscale.anomalies.detect import detect_anomalies
from nasa_autoscale.anomalies.inject import evaluate_window, recall_table
from nasa_autoscale.anomalies.residual import (
    MAX_ALARMS_PER_DAY,
    ResidualDetector,
    choose_threshold,
    sustained,
)

TARGET_SIZE = 3.0
TARGET_RECALL = 0.9
COPIES = 8
FLAG_COLUMNS = ["bucket_start", "method", "score", "spike"]
COLUMNS = [
    "window",
    "method",
    "kind",
    "size",
    "injected",
    "found",
    "recall",
    "alarms_per_day",
    "selected",
]


def flag_detectors(traffic: pd.DataFrame) -> dict[str, np.ndarray]:
    """anomalies_5m's three flags on `traffic` (missing buckets are outages, never flagged)."""
    return _flags(detect_anomalies(traffic, 5))


def _flags(flagged: pd.DataFrame) -> dict[str, np.ndarray]:
    judged = flagged["kind"].ne("outage").to_numpy()
    return {
        "z": flagged["is_anomaly_z"].fillna(False).to_numpy(bool) & judged,
        "iforest": flagged["is_anomaly_iforest"].fillna(False).to_numpy(bool) & judged,
        "both": flagged["is_anomaly"].to_numpy(bool) & judged,
    }


def run(
    traffic: pd.DataFrame,
    windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]],
    residual: ResidualDetector | None = None,
    copies: int = COPIES,
    seed: int = 0,
    progress=print,
) -> tuple[pd.DataFrame, dict]:
    """(the recall table of every window, the choice). traffic: bucket_start column and the
    traffic columns, whole days; windows: {"validation": (start, end), "test": (start, end)};
    residual: a detector fitted before the validation window (None: not run)."""
    traffic = traffic.sort_values("bucket_start", ignore_index=True)
    if residual is not None:
        start, end = windows["validation"]
        inside = ((traffic["bucket_start"] >= start) & (traffic["bucket_start"] < end)).to_numpy()
        score = sustained(residual.z(traffic, start, end))
        residual.threshold = choose_threshold(score[inside], traffic["requests"].notna()[inside])
        progress(f"residual detector: threshold {residual.threshold:.2f} sigma (validation)")
    tables = []
    for number, (window, (start, end)) in enumerate(windows.items()):

        def detect(frame, start=start, end=end):
            flags = flag_detectors(frame)
            if residual is not None:
                flags["residual"] = residual.flags(residual.z(frame, start, end))
            return flags

        outcome = evaluate_window(traffic, start, end, detect, copies, seed + number)
        tables.append(recall_table(outcome).assign(window=window))
        progress(f"{window}: {len(outcome.labels)} injections in {copies} copies")
    table = pd.concat(tables, ignore_index=True)
    choice = choose_method(table)
    table["selected"] = table["method"] == choice["method"]
    return table[COLUMNS], choice


def pooled(table: pd.DataFrame, window: str) -> pd.DataFrame:
    """Per method: alarms per day on the clean window and the recall of spikes and dips of
    TARGET_SIZE or more, pooled over sizes."""
    rows = table[(table["window"] == window)]
    big = rows[rows["kind"].isin(["spike", "dip"]) & (rows["size"] >= TARGET_SIZE)]
    found = big.groupby("method", sort=False)[["found", "injected"]].sum()
    out = pd.DataFrame(
        {
            "alarms_per_day": rows.groupby("method", sort=False)["alarms_per_day"].first(),
            "recall_big": found["found"] / found["injected"],
        }
    )
    return out


def choose_method(table: pd.DataFrame) -> dict:
    """The method to trust, chosen on validation (see the module's docstring), with its test
    figures and whether it meets the target (recall >= 0.9 at <= 1 alarm a day)."""
    validation = pooled(table, "validation")
    quiet = validation[validation["alarms_per_day"] <= MAX_ALARMS_PER_DAY]
    if len(quiet):
        method = quiet.sort_values(["recall_big", "alarms_per_day"], ascending=[False, True]).index[
            0
        ]
    else:
        method = validation["alarms_per_day"].idxmin()
    choice = {
        "method": method,
        "validation_recall": float(validation.at[method, "recall_big"]),
        "validation_alarms_per_day": float(validation.at[method, "alarms_per_day"]),
    }
    if "test" in set(table["window"]):
        test = pooled(table, "test")
        choice["test_recall"] = float(test.at[method, "recall_big"])
        choice["test_alarms_per_day"] = float(test.at[method, "alarms_per_day"])
        choice["target_met"] = bool(
            choice["test_recall"] >= TARGET_RECALL
            and choice["test_alarms_per_day"] <= MAX_ALARMS_PER_DAY
        )
    return choice


def spike_flags(
    traffic: pd.DataFrame,
    windows: dict[str, tuple[pd.Timestamp, pd.Timestamp]],
    method: str,
    residual: ResidualDetector | None = None,
) -> pd.DataFrame:
    """The chosen method's spike flags on the real traffic over the windows (what the
    anomaly guard policy reacts to): bucket_start, method, score (the z the method thresholds;
    NaN for IsolationForest alone), spike (flagged with traffic above what was expected)."""
    traffic = traffic.sort_values("bucket_start", ignore_index=True)
    start, end = min(w[0] for w in windows.values()), max(w[1] for w in windows.values())
    inside = ((traffic["bucket_start"] >= start) & (traffic["bucket_start"] < end)).to_numpy()
    if method == "residual":
        if residual is None:
            raise ValueError("the residual method needs its detector")
        z = np.full(len(traffic), np.nan)
        for first, last in windows.values():
            scored = residual.z(traffic, first, last)
            z = np.where(np.isnan(scored), z, scored)
        score = sustained(z)
        spike = score > residual.threshold  # flagged (|score| past it) and above expected
    else:
        flagged = detect_anomalies(traffic, 5)
        spike = _flags(flagged)[method] & (flagged["residual"].fillna(0) > 0).to_numpy()
        score = (
            flagged["z"].to_numpy(float) if method != "iforest" else np.full(len(traffic), np.nan)
        )
    return pd.DataFrame(
        {
            "bucket_start": traffic["bucket_start"].to_numpy()[inside],
            "method": method,
            "score": score[inside],
            "spike": spike[inside],
        }
    )[FLAG_COLUMNS]
