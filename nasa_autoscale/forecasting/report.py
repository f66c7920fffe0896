"""reports/benchmark_results.csv, reports/benchmark.md and the forecast-vs-actual figure."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from nasa_autoscale.forecasting import protocols  # noqa: E402
from nasa_autoscale.forecasting.metrics import interpolation_rmse  # noqa: E402

INTERPOLATION_SIDE = 2  # buckets either side in the noise yardstick


def selected_per_protocol(metrics: pd.DataFrame, granularity: str) -> pd.DataFrame:
    """The rows marked selected (chosen on the validation window), indexed by protocol."""
    rows = metrics[(metrics["granularity"] == granularity) & metrics["selected"].astype(bool)]
    return rows.set_index("protocol")


def hindsight_best(metrics: pd.DataFrame, granularity: str) -> pd.DataFrame:
    """The lowest test RMSE per protocol: known only after the test window, never acted on."""
    rows = metrics[metrics["granularity"] == granularity]
    return rows.loc[rows.groupby("protocol")["rmse"].idxmin()].set_index("protocol")


def plot_best(
    forecasts: pd.DataFrame, actuals: pd.Series, best: pd.DataFrame, path: Path, title: str
) -> Path:
    fig, axes = plt.subplots(len(protocols.PROTOCOLS), 1, figsize=(16, 12), dpi=100, sharex=True)
    for ax, protocol in zip(axes, protocols.PROTOCOLS, strict=True):
        model = best.at[protocol, "model"]
        rows = forecasts[
            (forecasts.model == model)
            & (forecasts.protocol == protocol)
            & (forecasts.granularity == "5m")
        ].sort_values("bucket_start")
        ax.plot(actuals.index, actuals.to_numpy(), lw=0.6, color="black", label="actual")
        ax.plot(rows.bucket_start, rows.yhat, lw=0.6, color="#c44e52", label=f"{model} forecast")
        ax.fill_between(
            rows.bucket_start,
            rows.yhat_lower,
            rows.yhat_upper,
            color="#c44e52",
            alpha=0.2,
            lw=0,
            label="80% interval",
        )
        ax.set_title(
            f"{protocol}: selected model {model}, test RMSE {best.at[protocol, 'rmse']:.1f}",
            fontsize=10,
        )
        ax.legend(loc="upper left", fontsize=8)
        ax.set_ylabel("requests / 5 min")
    fig.suptitle(f"{title}, 5-minute buckets: forecast vs actual")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _importance(importance: dict[str, pd.DataFrame] | None, top: int = 15) -> str:
    """The gain importance of each 5-minute LightGBM (model name -> importance table)."""
    parts = []
    for name, table in (importance or {}).items():
        shown = table.head(top).assign(gain_share=lambda t: t["gain_share"].round(4))
        parts.append(f"### {name} (top {top} of {len(table)})\n{shown.to_markdown(index=False)}")
    if not parts:
        return ""
    body = "\n\n".join(parts)
    return f"""## LightGBM feature importance, 5-minute (gain)
Each model's gain per feature as a share of its total (for the direct models, averaged over their
horizons), from the fits before the test window; every feature is in the MLflow run's
`feature_importance_gain.csv`.

{body}

"""


def _noise(metrics: pd.DataFrame, floors: dict[str, float], yardsticks) -> str:
    """The interpolation yardstick beside the selected one-step forecast, per granularity (and
    the site's one-step targets, where it has any)."""
    if not floors:
        return ""
    targets = {}
    if yardsticks is not None:
        targets = {"5m": yardsticks.forecast_targets_5m["one_step"], **yardsticks.one_step_targets}
    rows = []
    for granularity, floor in floors.items():
        chosen = selected_per_protocol(metrics, granularity)
        rmse = chosen.at["one_step", "rmse"] if "one_step" in chosen.index else float("nan")
        rows.append(
            {
                "granularity": granularity,
                "interpolation RMSE (sees both sides)": floor,
                "selected one_step test RMSE": rmse,
                **({"target": targets.get(granularity, float("nan"))} if targets else {}),
            }
        )
    return f"""## How much of the one-step error is noise
The mean of the {INTERPOLATION_SIDE} buckets either side of each test bucket, used as its forecast:
it sees the future, so it is a yardstick of the noise in the series, not a forecast
(metrics.interpolation_rmse). Requests come in bursts (a page pulls its images, a host fetches
a file list), so the counts vary far more than Poisson noise would (about the square root of the
mean). A one-step forecast sees one side only.

{pd.DataFrame(rows).round(2).to_markdown(index=False)}

"""


def write_reports(
    result,
    traffic: dict[str, pd.DataFrame],
    data_source: str,
    reports_dir: Path,
    calendar: protocols.Calendar,
    yardsticks=None,
) -> Path:
    """reports/benchmark.md (and benchmark_results.csv, the figure) from a benchmark's result
    (tracking.BenchmarkResult) and the traffic it ran on (per granularity, by bucket_start):
    each 5-minute LightGBM's gain importance, the interpolation RMSE of the test window per
    granularity (metrics.interpolation_rmse), and the site's yardsticks (targets, the original
    project's figures) where it has any (yardsticks.yardsticks_for)."""
    forecasts, metrics, timings = result.forecasts, result.metrics, result.timings
    importance = {name: table for (g, name), table in result.importance.items() if g == "5m"}
    floors = {
        g: interpolation_rmse(
            traffic[g]["requests"], calendar.test_start, calendar.test_end, INTERPOLATION_SIDE
        )
        for g in dict.fromkeys(metrics["granularity"])
    }
    actuals_5m = traffic["5m"]["requests"].astype(float)
    reports_dir.mkdir(parents=True, exist_ok=True)
    metrics.to_csv(reports_dir / "benchmark_results.csv", index=False)
    best = selected_per_protocol(metrics, "5m")
    test = actuals_5m[
        (actuals_5m.index >= calendar.test_start) & (actuals_5m.index < calendar.test_end)
    ]
    last = calendar.test_end - protocols.DAY
    title = f"Test window {calendar.test_start:%Y-%m-%d} .. {last:%Y-%m-%d}"
    figure = plot_best(
        forecasts, test, best, reports_dir / "figures" / "forecast_vs_actual_5m.png", title
    )
    five_rows = metrics[metrics.granularity == "5m"]
    order = list(protocols.PROTOCOLS)

    def table(column: str) -> pd.DataFrame:
        return five_rows.pivot(index="model", columns="protocol", values=column)[order]

    five = table("rmse").sort_values("one_step")
    coverage = table("coverage").reindex(five.index)
    uncalibrated = table("coverage_uncalibrated").reindex(five.index)
    side_by_side = coverage.round(3).astype(str) + " (" + uncalibrated.round(3).astype(str) + ")"
    banner = data_banner(data_source)
    text = f"""# Forecasting benchmark

{banner} Produced by the `forecasts` asset (`make run`) on {dt.datetime.now():%Y-%m-%d %H:%M}.
Windows: {calendar.describe()}. Models fitted once on the training window and fed the actuals
before each origin, never refitted; missing buckets neither trained on nor scored; intervals are
80%. MASE is scaled by the training window's one-day seasonal naive MAE.

Every choice is made on the validation window: each model also forecasts it from a fit before
it; the lowest RMSE there marks the `selected` model per granularity and protocol (what
forecast_next and the headline figures use), and its errors there calibrate the intervals
(split-conformal per lead and load level, adapting to the misses seen before each origin:
nasa_autoscale/forecasting/calibrate.py). The test window only reports; the lowest test RMSE is
shown as hindsight, never acted on.

## 5-minute RMSE by protocol (test window; lower is better)
{five.round(2).to_markdown()}

## 5-minute coverage of the 80% intervals by protocol (share of test buckets inside)
Calibrated (in brackets: the model's own intervals before calibration). A calibrated 80% interval
covers about 0.80 of the buckets (0.75-0.85 is the goal); lower means intervals too narrow (a
policy scaling on their upper bound drops more than planned).

{side_by_side.to_markdown()}

{_selected(metrics, yardsticks)}
{_noise(metrics, floors, yardsticks)}
{_original(yardsticks)}{_importance(importance)}## Run time (seconds)
{timings.round(1).to_markdown(index=False)}

## All metrics
{metrics.drop(columns=["calibration"]).round(3).to_markdown(index=False)}

![forecast vs actual](figures/{figure.name})
"""
    path = reports_dir / "benchmark.md"
    path.write_text(text)
    return path


def _selected(metrics: pd.DataFrame, yardsticks) -> str:
    """The selected 5-minute models per protocol beside the hindsight best; with the site's
    targets (and whether each is met) where it has any."""
    best, hindsight = selected_per_protocol(metrics, "5m"), hindsight_best(metrics, "5m")
    names = [p for p in protocols.PROTOCOLS if p in best.index]
    rows = pd.DataFrame(
        {
            "protocol": names,
            "selected model": [best.at[p, "model"] for p in names],
            "validation RMSE": [best.at[p, "validation_rmse"] for p in names],
            "test RMSE": [best.at[p, "rmse"] for p in names],
            "test coverage": [best.at[p, "coverage"] for p in names],
            "hindsight best on test": [
                f"{hindsight.at[p, 'model']} {hindsight.at[p, 'rmse']:.2f}" for p in names
            ],
        }
    )
    if yardsticks is None:
        return f"""## The selected models (5 minutes)
{rows.round(3).to_markdown(index=False)}
"""
    rows.insert(1, "target RMSE", [yardsticks.forecast_targets_5m.get(p) for p in names])
    rows["met"] = rows["test RMSE"] <= rows["target RMSE"]
    one_step = []
    for g, target in yardsticks.one_step_targets.items():
        chosen = selected_per_protocol(metrics, g)
        present = "one_step" in chosen.index
        one_step.append(
            {
                "granularity": g,
                "target RMSE": target,
                "selected model": chosen.at["one_step", "model"] if present else "-",
                "test RMSE": chosen.at["one_step", "rmse"] if present else float("nan"),
            }
        )
    return f"""## Targets (the selected models; {yardsticks.site})
{rows.round(3).to_markdown(index=False)}

{pd.DataFrame(one_step).round(2).to_markdown(index=False)}
"""


def _original(yardsticks) -> str:
    """The original project's published figures: only on the trace they were published for."""
    if yardsticks is None or not yardsticks.original_figures:
        return ""
    rows = pd.DataFrame(
        [{"model": k, "one_shot RMSE": v} for k, v in yardsticks.original_figures.items()]
    )
    return f"""## The original project's published 5-minute one-shot figures on the NASA trace
For comparison only: they were not measured under this protocol.

{rows.to_markdown(index=False)}

"""


def data_banner(data_source: str) -> str:
    if data_source == "replica":
        return "**Data: REPLICA** (real per-bucket request counts; see data/README.md)."
    return f"Data: {data_source} logs."


def write_skipped_report(calendar: protocols.Calendar, data_source: str, reports_dir: Path) -> Path:
    """benchmark.md when the history is too short for the benchmark: what was skipped and why."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "benchmark.md"
    path.write_text(
        f"""# Forecasting benchmark: skipped

{data_banner(data_source)} Written on {dt.datetime.now():%Y-%m-%d %H:%M}.

Not enough history: {calendar.shortfall()}.

Skipped: every model under every protocol (forecasts, model_metrics), the validation-window
tuning, the scaling forecasts and the policy sweep (scaling_decisions, cost_report).
Still produced: forecast_next from a seasonal naive model (the same slot one day, or one week,
earlier, whichever the history allows) and a recommendation from it.
"""
    )
    return path
