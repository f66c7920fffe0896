"""reports/anomaly_report.md and its figure: the two months of traffic with the flags and events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from nasa_autoscale.anomalies import detect  # noqa: E402
from nasa_autoscale.forecasting.report import data_banner  # noqa: E402


def plot_anomalies(anomalies: pd.DataFrame, events: pd.DataFrame, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(16, 5), dpi=110)
    ax.plot(
        anomalies["bucket_start"],
        anomalies["requests"],
        lw=0.4,
        color="#4c72b0",
        label="requests per 5 min",
    )
    for event in events.itertuples():
        color = "#999999" if event.expected_impact == "outage" else "#f2c14e"
        ax.axvspan(event.start_ts, event.end_ts, color=color, alpha=0.25, lw=0)
    z_only = anomalies["is_anomaly_z"].fillna(False) & ~anomalies["is_anomaly"]
    both = anomalies["is_anomaly"] & anomalies["kind"].ne("outage")
    ax.scatter(
        anomalies.loc[z_only, "bucket_start"],
        anomalies.loc[z_only, "requests"],
        s=4,
        color="#dd8452",
        label="3-sigma only",
    )
    ax.scatter(
        anomalies.loc[both, "bucket_start"],
        anomalies.loc[both, "requests"],
        s=14,
        color="#c44e52",
        marker="x",
        label="both detectors (is_anomaly)",
    )
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Patch(color="#f2c14e", alpha=0.25, label="special event"),
        Patch(color="#999999", alpha=0.25, label="outage / no log"),
    ]
    ax.set_ylabel("requests per 5 minutes")
    first, last = anomalies["bucket_start"].min(), anomalies["bucket_start"].max()
    ax.set_title(f"Traffic {first:%Y-%m-%d} .. {last:%Y-%m-%d}: anomaly flags and special events")
    ax.legend(handles=handles, loc="upper left", fontsize=8, ncols=5)
    ax.margins(x=0.005)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _table(df: pd.DataFrame) -> str:
    return df.to_markdown(index=False, floatfmt=".3f")


def write_report(
    anomalies: pd.DataFrame,
    evaluation: pd.DataFrame,
    events: pd.DataFrame,
    data_source: str,
    reports_dir: Path,
) -> Path:
    first, last = anomalies["bucket_start"].min(), anomalies["bucket_start"].max()
    events = events[(events["end_ts"] >= first) & (events["start_ts"] <= last)]  # in the data
    figure = plot_anomalies(anomalies, events, reports_dir / "figures" / "anomalies_5m.png")
    scores = evaluation.drop(columns=["found"])
    found = {row.method: ", ".join(row.found) or "none" for row in evaluation.itertuples()}
    counts = anomalies["kind"].value_counts().rename_axis("kind").reset_index(name="buckets")
    top = anomalies[anomalies["is_anomaly"] & anomalies["kind"].ne("outage")]
    top = top.reindex(top["z"].abs().sort_values(ascending=False).index).head(15)
    banner = data_banner(data_source) + " "
    if events.empty:
        banner += (
            "No special event lies in the data's span (NASA_EVENTS_PATH lists them): the "
            "event-level table below is empty; give your own events for an evaluation. "
        )
    text = f"""# Anomaly report: traffic_5m

{banner}Made by the `anomalies_5m` asset on {dt.datetime.now():%Y-%m-%d %H:%M}
(`make run`, or `dagster asset materialize -m nasa_autoscale.definitions --select anomalies_5m`).

## Method
- **3-sigma** (`is_anomaly_z`): residual from a robust seasonal baseline, the median of the same
  5-minute slot over the previous {detect.LOOKBACK_DAYS} days of the same type (weekday or
  weekend, at least {detect.MIN_HISTORY} of them), scaled by 1.4826 x MAD (at least
  sqrt(baseline)); flagged when |z| > {detect.Z_THRESHOLD:g}. The first days of the data have
  no history and are not judged.
- **IsolationForest** (`is_anomaly_iforest`): {detect.CONTAMINATION:.0%} contamination on
  {", ".join(detect.IFOREST_FEATURES)} (no raw count).
- **is_anomaly**: both agree. Missing buckets are `kind = outage`, a class of their own.

## Event-level precision and recall (no point-adjustment)
An event is found when a flagged bucket starts in its window; a flag is a false alarm when it
starts in no event's window. Traffic events are those with expected impact high_traffic or
low_traffic (NASA_EVENTS_PATH, default data/special_events.csv); recall counts only events that
overlap logged data. Long windows (e.g. NASA's two 9-day missions) make precision lenient: a flag
anywhere in them counts, so `precision_if_random` gives what flags thrown at random would score.

{_table(scores)}

Found, per method:
{chr(10).join(f"- {method}: {names}" for method, names in found.items())}

## Buckets by kind
{_table(counts)}

## Strongest anomalies flagged by both detectors
{_table(top[["bucket_start", "requests", "baseline", "z", "kind"]])}

![traffic with anomaly flags and events](figures/{figure.name})
"""
    path = reports_dir / "anomaly_report.md"
    path.write_text(text)
    return path
