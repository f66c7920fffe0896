"""Anomaly flags against the special events: event-level precision and recall, no point-adjustment.

An event is found when at least one flagged bucket starts inside its window; a flag is a false
alarm when it starts inside no event's window. Precision is shown beside what flags thrown at
random would score (the share of logged buckets inside some event), since long event windows make
a flag land in one by chance. Traffic events (expected impact high_traffic or
low_traffic) are scored apart from outages, which the detector marks by construction.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

TRAFFIC_IMPACTS = ("high_traffic", "low_traffic")
METHODS = {"z": "is_anomaly_z", "iforest": "is_anomaly_iforest", "both": "is_anomaly"}


def _inside(times: np.ndarray, events: pd.DataFrame) -> np.ndarray:
    """(n_times, n_events) bool: time t lies in event e's [start_ts, end_ts]."""
    start = events["start_ts"].to_numpy("datetime64[ns]")
    end = events["end_ts"].to_numpy("datetime64[ns]")
    return (times[:, None] >= start[None, :]) & (times[:, None] <= end[None, :])


def score_flags(flag_times: np.ndarray, events: pd.DataFrame, covered: pd.Series) -> dict:
    """Precision and recall of flags (bucket starts) on events; only events that overlap the
    covered (non-missing) data count toward recall."""
    flag_times = np.asarray(flag_times, dtype="datetime64[ns]")
    hits = _inside(flag_times, events)
    covered_hits = _inside(covered.to_numpy("datetime64[ns]"), events)
    observable = covered_hits.any(axis=0)
    found = hits.any(axis=0) & observable
    n_events = int(observable.sum())
    true_flags = int(hits.any(axis=1).sum())
    return {
        "flags": len(flag_times),
        "flags_in_an_event": true_flags,
        "precision": true_flags / len(flag_times) if len(flag_times) else float("nan"),
        # What random flags would score: the share of covered buckets inside some event.
        "precision_if_random": covered_hits.any(axis=1).mean() if len(covered) else float("nan"),
        "events": n_events,
        "events_found": int(found.sum()),
        "recall": found.sum() / n_events if n_events else float("nan"),
        "found": [name for name, hit in zip(events["name"], found, strict=True) if hit],
    }


def evaluate(anomalies: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """One row per method (z, iforest, both) on the traffic events, plus outage recall."""
    traffic_events = events[events["expected_impact"].isin(TRAFFIC_IMPACTS)].reset_index(drop=True)
    outages = events[events["expected_impact"] == "outage"].reset_index(drop=True)
    present = anomalies.loc[anomalies["kind"].ne("outage"), "bucket_start"]
    rows = []
    for method, column in METHODS.items():
        flagged = anomalies[column].fillna(False).astype(bool) & anomalies["kind"].ne("outage")
        row = {
            "method": method,
            **score_flags(anomalies.loc[flagged, "bucket_start"], traffic_events, present),
        }
        rows.append(row)
    outage_flags = anomalies.loc[anomalies["kind"].eq("outage"), "bucket_start"]
    outage_score = score_flags(outage_flags, outages, anomalies["bucket_start"])
    rows.append({"method": "outage (missing data)", **outage_score})
    return pd.DataFrame(rows)
