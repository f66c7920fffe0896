"""reports/anomaly_report.md and its figure: the two months of traffic with the flags and events."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from nasa_autoscale.anomalies import benchmark, detect, inject  # noqa: E402
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


ADVICE = {
    "z": "3-sigma alone",
    "iforest": "IsolationForest alone",
    "both": "the two together, anomalies_5m's is_anomaly",
    "residual": "the one-step model's calibrated residual",
}


def _verdict(summary: pd.DataFrame, choice: dict, test: pd.DataFrame) -> str:
    """Plain words per method, from the test window's figures."""
    short = test[(test["kind"] == "outage") & (test["method"] == choice["method"])]
    outages = short["found"].sum() / max(short["injected"].sum(), 1)
    lines = []
    for method, row in summary.iterrows():
        noisy = row["test_alarms_per_day"] > benchmark.MAX_ALARMS_PER_DAY
        what = (
            f"{row['test_alarms_per_day']:.1f} alarms a day on clean traffic: too many to act on"
            if noisy
            else f"quiet ({row['test_alarms_per_day']:.2f} alarms a day on clean traffic)"
        )
        lines.append(
            f"- **{method}** ({ADVICE.get(method, method)}): {what}; finds "
            f"{row['test_recall_big']:.0%} of the spikes and dips of "
            f"{benchmark.TARGET_SIZE:g}x the local scale or more."
        )
    method = choice["method"]
    met = choice.get("target_met")
    target = (
        f"the target ({benchmark.TARGET_RECALL:.0%} at <= {benchmark.MAX_ALARMS_PER_DAY:g} alarm "
        f"a day) is {'met' if met else 'not met'}"
    )
    lines.append(
        f"\nTrust **{method}** for spikes and dips (chosen on validation: "
        f"{choice['validation_recall']:.0%} at {choice['validation_alarms_per_day']:.2f} alarms "
        f"a day); on the test window it finds {choice.get('test_recall', float('nan')):.0%} at "
        f"{choice.get('test_alarms_per_day', float('nan')):.2f} alarms a day: {target}. It finds "
        f"{outages:.0%} of the short outages (no request for 10-25 minutes); a silence of 30 "
        "minutes or more is missing data, `kind = outage`, whatever the detectors say."
    )
    return "\n".join(lines)


def write_injection_report(
    table: pd.DataFrame, choice: dict, data_source: str, reports_dir: Path
) -> Path:
    """reports/anomaly_injection.md: per method the false alarms and the recall by kind and size,
    on validation and test, and which method to trust."""
    summary = pd.concat({w: benchmark.pooled(table, w) for w in ("validation", "test")}, axis=1)
    summary.columns = [f"{w}_{c}" for w, c in summary.columns]
    test = table[table["window"] == "test"]
    recall = test.pivot_table(index=["kind", "size"], columns="method", values="recall", sort=False)
    injected = test.groupby(["kind", "size"], sort=False)["injected"].first()
    recall.insert(0, "injected", injected)
    text = f"""# Anomaly flags by injection

{data_banner(data_source)} Made by the `anomaly_injection` asset on
{dt.datetime.now():%Y-%m-%d %H:%M} (`make run`, or `dagster asset materialize -m
nasa_autoscale.definitions --select anomaly_injection`); the event-window table is in
[anomaly_report.md](anomaly_report.md).

## Protocol
{inject.__doc__.strip()}

{benchmark.__doc__.strip()}

{inject.COPIES_NOTE}

## Which method to trust
{_verdict(summary, choice, test)}

## Per method: clean alarms a day, recall of spikes and dips >= {benchmark.TARGET_SIZE:g}x
{summary.reset_index(names="method").to_markdown(index=False, floatfmt=".3f")}

## Test window: recall by kind and size (size in local scales; outages have none)
{recall.reset_index().to_markdown(index=False, floatfmt=".3f")}
"""
    path = reports_dir / "anomaly_injection.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
