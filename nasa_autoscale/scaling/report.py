"""reports/cost_report.md and the cost-vs-dropped Pareto figure."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from nasa_autoscale.forecasting.protocols import DAY, Calendar  # noqa: E402
from nasa_autoscale.forecasting.report import data_banner  # noqa: E402
from nasa_autoscale.scaling import policies  # noqa: E402
from nasa_autoscale.scaling.sweep import (  # noqa: E402
    BOUNDS,
    best_policy,
    budget_of,
    hindsight_best,
)

COLUMNS = [
    "policy",
    "cost",
    "pct_above_optimal",
    "dropped_fraction",
    "violating_fraction",
    "scaling_actions",
    "mean_utilization",
    "peak_servers",
    "tuned_on",
    "validation_cost",
    "validation_dropped_fraction",
    "selected",
]


def plot_pareto(
    cost_report: pd.DataFrame, path: Path, title: str = "Test window", targets: dict | None = None
) -> Path:
    """targets: the site's cost target per setting (% above the optimum), drawn where given."""
    targets = targets or {}
    settings = list(dict.fromkeys(cost_report["setting"]))
    fig, axes = plt.subplots(1, len(settings), figsize=(7 * len(settings), 5.5), dpi=100)
    for ax, setting in zip(np.atleast_1d(axes), settings, strict=True):
        rows = cost_report[
            (cost_report["setting"] == setting) & (cost_report["policy"] != "static")
        ]
        for i, row in enumerate(rows.itertuples()):
            preset = row.policy in policies.PRESETS
            color = "#888888" if row.policy in BOUNDS else "#dd8452" if preset else "#4c72b0"
            ax.scatter(100 * row.dropped_fraction, row.pct_above_optimal, color=color, s=40)
            offset = (4, 3 if i % 2 else -10)  # alternate, so close neighbours stay readable
            ax.annotate(
                row.policy,
                (100 * row.dropped_fraction, row.pct_above_optimal),
                fontsize=8,
                xytext=offset,
                textcoords="offset points",
            )
        budget = budget_of(cost_report, setting)
        ax.axvline(100 * budget, color="#c44e52", lw=0.8, ls="--", label=f"{budget:.1%} dropped")
        if setting in targets:
            ax.axhline(targets[setting], color="#55a868", lw=0.8, ls="--", label="cost target")
        static = cost_report[(cost_report.setting == setting) & (cost_report.policy == "static")]
        ax.set_title(
            f"{setting} setting (static, not shown: +{static.pct_above_optimal.iloc[0]:.0f}%)",
            fontsize=10,
        )
        ax.set_xlabel("dropped requests (%)")
        ax.set_ylabel("cost above the hindsight optimum (%)")
        ax.legend(loc="upper right", fontsize=8)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: cost vs dropped requests (lower left is better)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def target_lines(cost_report: pd.DataFrame, targets: dict | None = None) -> list[str]:
    """Per setting: the selected policy's test figures (against the site's cost target and
    whether it was met, where the site has one: yardsticks), the hindsight best, and the
    selected policy against the best reactive preset."""
    lines = []
    for setting in dict.fromkeys(cost_report["setting"]):
        rows = cost_report[(cost_report.setting == setting) & ~cost_report.policy.isin(BOUNDS)]
        if rows.empty:
            continue
        best = rows[rows.policy == best_policy(cost_report, setting)].iloc[0]
        budget = budget_of(cost_report, setting)
        line = (
            f"- {setting}: the policy selected on the validation window is `{best.policy}`: on "
            f"the test window {best.pct_above_optimal:+.1f}% vs the optimum at "
            f"{best.dropped_fraction:.2%} dropped"
        )
        target = (targets or {}).get(setting)
        if target is not None:
            within = best.pct_above_optimal <= target and best.dropped_fraction <= budget
            line += (
                f"; target <= {target:.0f}% at <= {budget:.1%} dropped: "
                f"{'met' if within else 'missed'}"
            )
        lines.append(line)
        hindsight = rows[rows.policy == hindsight_best(cost_report, setting)].iloc[0]
        lines.append(
            f"- {setting}, hindsight only (the cheapest within {budget:.1%} dropped on the "
            f"test window itself, not a choice anyone could make): `{hindsight.policy}`, "
            f"{hindsight.pct_above_optimal:+.1f}% at {hindsight.dropped_fraction:.2%} dropped"
        )
        keda = rows[rows.policy == "keda_hpa"]
        if len(keda):
            keda = keda.iloc[0]
            lines.append(
                f"- {setting}: KEDA + HPA on our forecast (`keda_hpa`, GET /scaling as "
                f"docs/keda.md wires it, untuned): {keda.pct_above_optimal:+.1f}% at "
                f"{keda.dropped_fraction:.2%} dropped, beside the selected `{best.policy}`'s "
                f"{best.pct_above_optimal:+.1f}% at {best.dropped_fraction:.2%}"
            )
        presets = rows[rows.policy.isin(list(policies.PRESETS)) & (rows.dropped_fraction <= budget)]
        if len(presets):
            bar = presets.loc[presets.cost.idxmin()]
            ours = rows[
                ~rows.policy.isin([*policies.PRESETS, "static"])
                & (rows.dropped_fraction <= bar.dropped_fraction)
            ]
            if len(ours):
                beat = ours.loc[ours.cost.idxmin()]
                met = "met" if beat.cost < bar.cost else "missed (it costs more)"
                lines.append(
                    f"- {setting}: best preset within the SLA `{bar.policy}` costs "
                    f"{bar.cost:.2f} at {bar.dropped_fraction:.2%} dropped; `{beat.policy}` "
                    f"costs {beat.cost:.2f} ({beat.cost / bar.cost - 1:+.1%}) at "
                    f"{beat.dropped_fraction:.2%}: {met}"
                )
            else:
                lines.append(
                    f"- {setting}: best preset within the SLA `{bar.policy}` costs "
                    f"{bar.cost:.2f} at {bar.dropped_fraction:.2%} dropped; no policy of ours "
                    f"drops that little on the test window: missed"
                )
    return lines


def write_report(
    cost_report: pd.DataFrame,
    tuning: pd.DataFrame,
    timings: dict,
    data_source: str,
    reports_dir: Path,
    calendar: Calendar,
    yardsticks=None,
) -> Path:
    """reports/cost_report.md, cost_report.csv and the Pareto figure; the site's cost targets
    where it has any (yardsticks.yardsticks_for)."""
    targets = yardsticks.cost_targets_pct if yardsticks is not None else {}
    reports_dir.mkdir(parents=True, exist_ok=True)
    last = calendar.test_end - DAY
    window = f"Test window {calendar.test_start:%Y-%m-%d} .. {last:%Y-%m-%d}"
    figure = plot_pareto(cost_report, reports_dir / "figures" / "cost_pareto.png", window, targets)
    cost_report.to_csv(reports_dir / "cost_report.csv", index=False)
    banner = data_banner(data_source)
    sections = []
    for setting in dict.fromkeys(cost_report["setting"]):
        rows = cost_report[cost_report.setting == setting]
        rules = json.loads(rows["params"].iloc[0])["rules"]
        sections.append(
            f"### {setting} setting: {rules['capacity']:g} requests per server per "
            f"{rules['minutes']} minutes, {rules['min_servers']}..{rules['max_servers']} servers, "
            f"${rules['price_per_hour']:.2f} per server-hour, a {rules['boot_delay_s']} s boot, "
            f"a decision every {rules['minutes']} minute(s)\n"
            f"Selected on the validation window (cheapest within "
            f"{budget_of(cost_report, setting):.1%} dropped "
            f"there): `{best_policy(cost_report, setting)}`\n\n"
            + rows[COLUMNS].round(4).to_markdown(index=False)
        )
    chosen = tuning[tuning["chosen"]][["setting", "tuned_as", "params", "cost", "dropped_fraction"]]
    text = f"""# Cost report: autoscaling policies on the test window

{banner} Produced by the `cost_report` asset (`make run`) on {dt.datetime.now():%Y-%m-%d %H:%M}.
Windows: {calendar.describe()}. One section per fleet of the profiles (NASA_FLEETS_PATH,
default data/fleets.toml: the NASA demo's `default`, the original project's rules, and
`realistic`, closer to a real fleet), each with its own rules, dropped budget and decision
interval: every 5 minutes (NASA's fleets) or every minute (traffic_1m; a new fleet's default).

Rules (one simulator for every row): a server asked for at t serves from t + its fleet's boot
delay, counted in whole decision intervals (rounded up: at one minute, a 90 s boot serves from the
second minute); a scale-in waits for the fleet's stabilization window (the largest
recommendation of the window wins, as in Kubernetes' HPA); newest servers stop first; every
provisioned server is billed per second with the fleet's minimum per start (or per started
hour); `hpa` also follows Kubernetes' scale-up limit (+100% or +4 pods per 15 s sync, whichever
is more) and its 0.1 tolerance; a decision at t reads only
demand before t, forecasts whose origin is <= t and anomaly flags before t. Missing buckets are
skipped (billed, never scored). `oracle` is ceil(d/C) per bucket with no boot delay; it is
cheaper than any schedule under the rules. `hindsight_optimal` is the exact cheapest schedule
that drops nothing under the same rules (dynamic programme, replayed through the simulator).
pct_above_optimal compares with it. Tuned policies were chosen on the validation window
(forecasts from a model fitted before it) as the cheapest within the fleet's dropped budget;
`predictive_matched` is the cheapest predictive one that dropped no more than the best original
preset did on the validation week. The presets and `static` (sized for the training peak) are
not tuned.

## {"Targets" if targets else "The selected policies"}
{chr(10).join(target_lines(cost_report, targets))}

## Results
{(chr(10) * 2).join(sections)}

Robustness across capacities and boot delays: reports/robustness.md (`cost_robustness`).

## What tuning chose (validation week figures)
{chosen.round(4).to_markdown(index=False)}

## Run time
Policy sweep, tuning and optimum: {timings.get("sweep_s", float("nan")):.1f} s wall.

![cost vs dropped](figures/{figure.name})
"""
    path = reports_dir / "cost_report.md"
    path.write_text(text)
    return path


def robustness_section(cells: pd.DataFrame | None) -> str:
    """The robustness table in words and figures (percentages on the test window)."""
    if cells is None or cells.empty:
        return "Not computed."
    shown = pd.DataFrame(
        {
            "fleet": cells["fleet"],
            "capacity": cells["capacity"],
            "boot (s)": cells["boot_delay_s"],
            "selected": cells["selected"],
            "% above optimum": cells["selected_pct_above_optimal"].round(1),
            "dropped": (100 * cells["selected_dropped_fraction"]).round(2).astype(str) + "%",
            "best preset": cells["best_preset"],
            "preset % above": cells["best_preset_pct_above_optimal"].round(1),
            "preset dropped": (100 * cells["best_preset_dropped_fraction"]).round(2).astype(str)
            + "%",
            "presets dropping no more": cells["presets_dropping_no_more"],
            "cheaper than each": cells["cheaper_than_each_of_them"],
        }
    )
    failing = cells[~cells["cheaper_than_each_of_them"]]
    verdict = (
        "In every cell the selected policy is cheaper than each preset that drops no more."
        if failing.empty
        else "Not in every cell: the selected policy costs more than some preset that drops no "
        "more at "
        + "; ".join(
            f"{r.fleet}: capacity {r.capacity:g}, boot {r.boot_delay_s} s"
            for r in failing.itertuples()
        )
        + "."
    )
    return (
        "Each cell reruns the whole sweep under its fleet's rules at 0.5x, 1x and 2.5x its "
        "capacity and 0.4x, 1x and 2x its boot delay, up to four times its servers: tuning and "
        "the selection on the validation window, then the test window. A boot delay is rounded "
        "up to whole decision intervals of the fleet: at 5 minutes, 2 and 5 minutes are one "
        "bucket and 10 minutes two; at 1 minute, 24 s is one minute and 2 minutes two.\n\n"
        + shown.to_markdown(index=False)
        + "\n\n"
        + verdict
    )


def write_robustness_report(
    cells: pd.DataFrame, seconds: float, data_source: str, reports_dir: Path, calendar: Calendar
) -> Path:
    """reports/robustness.md: the cost_robustness table in words and figures."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    path = reports_dir / "robustness.md"
    path.write_text(
        f"""# Robustness: capacity x boot delay around each fleet's rules

{data_banner(data_source)} Produced by the `cost_robustness` asset on \
{dt.datetime.now():%Y-%m-%d %H:%M}. Windows: {calendar.describe()}.

{robustness_section(cells)}

{len(cells)} sweeps in {seconds:.1f} s.
"""
    )
    return path
