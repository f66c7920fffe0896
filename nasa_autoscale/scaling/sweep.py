"""The policy sweep: tune on the validation week, run every policy on the test window in two
settings, and price it all against the oracle and the hindsight optimum.

Tuning never sees the test window: each tunable policy is chosen as the cheapest candidate whose
dropped fraction on the validation window (forecasts from a model fitted before it) is
within the SLA; the original project's presets and the static fleet are not tuned.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting.protocols import Calendar
from nasa_autoscale.scaling import policies
from nasa_autoscale.scaling.forecasts import forecast_array
from nasa_autoscale.scaling.simulator import (
    ScalingRules,
    optimal_provisioning,
    optimum_cost,
    oracle,
    replay,
    simulate,
    summarize,
)

SLA_DROPPED = ScalingRules.dropped_budget  # the default dropped-request budget (0.5%)
# The shipped fleets' rules (data/fleets.toml: the NASA demo's `default`, the original project's
# 100 requests per server per 5 minutes on 1..50 servers, and `realistic`, 40 on 2..50). The graph
# takes the user's fleets from the settings (Settings.fleets); this is the tests' fixed set.
SCENARIOS = {
    "default": ScalingRules(),
    "realistic": ScalingRules(capacity=40.0, min_servers=2),
}
# The robustness table, per fleet that asks for it: its rules at 0.5x, 1x and 2.5x its capacity x
# 0.4x, 1x and 2x its boot delay (a delay is rounded up to whole buckets), with room for four
# times its fleet. For NASA's realistic fleet: 20 / 40 / 100 requests x 2 / 5 / 10 minutes, up to
# 200 servers.
ROBUSTNESS_CAPACITY = (0.5, 1.0, 2.5)
ROBUSTNESS_BOOT = (0.4, 1.0, 2.0)
ROBUSTNESS_MAX_SERVERS = 4
ROBUSTNESS_COLUMNS = [
    "fleet",
    "capacity",
    "boot_delay_s",
    "boot_delay_min",
    "selected",
    "selected_pct_above_optimal",
    "selected_dropped_fraction",
    "best_preset",
    "best_preset_pct_above_optimal",
    "best_preset_dropped_fraction",
    "presets_dropping_no_more",
    "cheaper_than_each_of_them",
]
QUANTILES = (0.7, 0.8, 0.85, 0.9, 0.92, 0.94, 0.96, 0.98, 0.99)
SPREAD_POWERS = (0.0, 0.5, 1.0)
ADAPTATION = (0.0, 0.02, 0.05)  # the predictive policies' gamma (0: no adaptation)
HPA_TARGETS = (0.5, 0.6, 0.7, 0.8, 0.9)
HYBRID_TARGETS = (0.8, 0.9, 1.0)
GUARD_HEADROOM = (0.1, 0.25, 0.5)
BOUNDS = ("oracle", "hindsight_optimal")
FLAG_MINUTES = 5  # the anomaly flags' bucket (anomaly_flags, anomalies_5m)
# The tables' columns, for the empty tables of a history too short for the sweep.
DECISION_COLUMNS = [
    "setting",
    "policy",
    "bucket_start",
    "demand",
    "servers",
    "capacity",
    "dropped",
    "served",
    "provisioned",
    "recommended",
]
REPORT_COLUMNS = [
    "setting",
    "policy",
    "cost",
    "pct_above_optimal",
    "dropped_fraction",
    "violating_fraction",
    "scaling_actions",
    "mean_utilization",
    "server_hours",
    "peak_servers",
    "tuned_on",
    "matches",
    "params",
    "validation_cost",
    "validation_dropped_fraction",
    "selected",
]


class Demand(dict):
    """Requests by bucket_start (NaN where missing), one series per bucket length in minutes:
    each fleet reads the one of its decision interval (scaling.fleets)."""

    @classmethod
    def of(cls, requests) -> Demand:
        """A Demand from one series (its bucket length read from its index) or {minutes: series}."""
        if isinstance(requests, Demand):
            return requests
        if isinstance(requests, dict):
            return cls(requests)
        step = requests.index[1] - requests.index[0] if len(requests) > 1 else pd.Timedelta("5min")
        return cls({int(step / pd.Timedelta(minutes=1)): requests})

    def at(self, minutes: int) -> pd.Series:
        if minutes not in self:
            have = ", ".join(f"{m} min" for m in sorted(self))
            raise ValueError(f"no {minutes}-minute requests to decide on (have {have})")
        return self[minutes]

    def coarsest(self) -> pd.Series:
        """The series the calendar is cut from (every series spans the same whole days)."""
        return self[max(self)]


def decision_minutes(fleets: dict[str, ScalingRules]) -> set[int]:
    """The bucket lengths the fleets decide at, with the 5 minutes every reader has."""
    return {5, *(rules.minutes for rules in fleets.values())}


@dataclass
class Window:
    """Everything a simulation of one window reads."""

    name: str
    bucket_start: pd.DatetimeIndex
    demand: np.ndarray
    forecasts: np.ndarray  # (buckets, boot + 1, 3) from origin t
    flags: np.ndarray  # spike flagged by the detector chosen on validation (spike_flags)


def make_window(
    name: str,
    requests: Demand | pd.Series,
    scaling_forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    rules: ScalingRules,
    calendar: Calendar,
) -> Window:
    """The calendar's window `name` at the rules' decision interval; requests: a Demand (or one
    series) indexed by bucket_start (NaN = missing); anomalies: spike flags (see spike_flags),
    per 5-minute bucket: a finer interval sees a bucket's flag from the bucket's last step on
    (once the bucket is complete)."""
    start, end = calendar.windows()[name]
    times = pd.date_range(start, end, freq=f"{rules.minutes}min", inclusive="left")
    spikes = spike_flags(anomalies)
    if rules.minutes != FLAG_MINUTES:
        spikes.index = spikes.index + pd.Timedelta(minutes=FLAG_MINUTES - rules.minutes)
    return Window(
        name=name,
        bucket_start=times,
        demand=Demand.of(requests).at(rules.minutes).reindex(times).to_numpy(float),
        forecasts=forecast_array(
            scaling_forecasts, name, (start, end), rules.minutes, rules.boot + 1
        ),
        flags=spikes.reindex(times, fill_value=False).to_numpy(bool),
    )


def spike_flags(anomalies: pd.DataFrame) -> pd.Series:
    """Spike flags by bucket_start: the `spike` column of anomaly_flags (the detector the
    injection benchmark chose on validation), else anomalies_5m's 3-sigma spikes."""
    flags = anomalies.set_index("bucket_start")
    if "spike" in flags:
        return flags["spike"].fillna(False).astype(bool)
    return flags["is_anomaly_z"].fillna(False).astype(bool) & (flags["kind"] == "spike")


def load_inputs(
    con, minutes=(5,), days: int | None = None
) -> tuple[Demand, pd.DataFrame, pd.DataFrame]:
    """(requests by bucket_start at each bucket length of `minutes` (see decision_minutes), of
    the last `days` days (default all),
    scaling_forecasts, spike flags) from the warehouse: the flags of the detector chosen on
    validation (anomaly_flags) when the injection benchmark ran, else anomalies_5m's 3-sigma
    spikes. Both tables are read either way (the readers declare both)."""
    from nasa_autoscale.ingest.traffic import whole_days
    from nasa_autoscale.warehouse import SCHEMA, MissingTable, read

    requests = Demand(
        {
            m: whole_days(con, m, detail=False, days=days)
            .set_index("bucket_start")["requests"]
            .astype(float)
            for m in sorted(set(minutes), reverse=True)
        }
    )
    forecasts = read(con, f"SELECT * FROM {SCHEMA}.scaling_forecasts")
    try:
        flags = read(con, f"SELECT bucket_start, spike FROM {SCHEMA}.anomaly_flags")
    except MissingTable:  # the injection benchmark has never run here
        flags = pd.DataFrame()
    detected = read(con, f"SELECT bucket_start, is_anomaly_z, kind FROM {SCHEMA}.anomalies_5m")
    return requests, forecasts, detected if flags.empty else flags


def run_policy(policy, window: Window, rules: ScalingRules) -> tuple[pd.DataFrame, dict]:
    outcome = simulate(window.demand, policy, rules, window.forecasts, window.flags)
    return outcome, summarize(outcome, rules)


def choose(candidates, window: Window, rules: ScalingRules, budget: float | None = None):
    """(the cheapest candidate within the dropped budget (default the fleet's), else the one
    dropping least; rows of every candidate's validation figures)."""
    budget = rules.dropped_budget if budget is None else budget
    rows = []
    for policy in candidates:
        _, summary = run_policy(policy, window, rules)
        rows.append({"policy": policy.name, "params": json.dumps(policy.params()), **summary})
    table = pd.DataFrame(rows)
    best = cheapest_within_sla(table, budget)
    table["chosen"] = table.index == best
    return candidates[best], table


def tune(validation: Window, rules: ScalingRules, typical: float, train_peak: float):
    """{name: policy} for every policy, tunable ones chosen on the validation week, and the
    tuning table (every candidate's validation figures)."""
    chosen = {"static": policies.Static(math.ceil(train_peak / rules.capacity))}
    chosen.update({name: policies.preset(name) for name in policies.PRESETS})
    chosen["keda_hpa"] = policies.KedaHPA()  # the HPA fed by GET /scaling/{fleet}: not tuned
    tables = []

    def pick(name, candidates, budget=None):
        policy, table = choose(candidates, validation, rules, budget)
        table.insert(0, "tuned_as", name)
        tables.append(table)
        chosen[name] = policy
        return policy

    pick("hpa", [policies.HPA(target) for target in HPA_TARGETS])
    predictive = [
        policies.Predictive(q, power, typical, gamma)
        for gamma in ADAPTATION
        for power in SPREAD_POWERS
        for q in QUANTILES
    ]
    best = pick("predictive", predictive)
    power, gamma = best.spread_power, best.gamma
    pick(
        "hybrid",
        [
            policies.Hybrid(policies.Predictive(q, power, typical, gamma), target)
            for q in QUANTILES[:5]
            for target in HYBRID_TARGETS
        ],
    )
    pick("anomaly_guard", [policies.AnomalyGuard(best, headroom) for headroom in GUARD_HEADROOM])
    # The original presets' best (cheapest within the SLA on validation) sets the bar a
    # predictive policy must match: the cheapest one that drops no more than it did.
    presets = pd.DataFrame(
        [
            {"name": name, **run_policy(chosen[name], validation, rules)[1]}
            for name in policies.PRESETS
        ]
    )
    within = presets[presets["dropped_fraction"] <= rules.dropped_budget]
    bar = within.loc[within["cost"].idxmin()] if len(within) else presets.iloc[0]
    matched = pick("predictive_matched", predictive, budget=float(bar["dropped_fraction"]))
    matched = policies.Predictive(matched.quantile, matched.spread_power, typical, matched.gamma)
    matched.name = "predictive_matched"
    chosen["predictive_matched"] = matched
    return chosen, pd.concat(tables, ignore_index=True), str(bar["name"])


def bounds(window: Window, rules: ScalingRules) -> dict[str, pd.DataFrame]:
    """The oracle (no delay) and the hindsight optimum (same rules), as simulated outcomes."""
    path = optimal_provisioning(window.demand, rules)
    optimum = simulate(window.demand, replay(path, rules), rules)
    return {"oracle": oracle(window.demand, rules), "hindsight_optimal": optimum}


def run_setting(
    setting: str,
    rules: ScalingRules,
    requests,
    scaling_forecasts,
    anomalies,
    calendar: Calendar,
    progress: Callable[[str], None] = print,
):
    """(decisions, cost_report rows, tuning table, chosen policies) for one setting, at its
    decision interval (rules.minutes)."""
    started = time.perf_counter()
    requests = Demand.of(requests)
    demand = requests.at(rules.minutes)
    train = demand[demand.index < calendar.test_start]
    typical = float(demand[demand.index < calendar.validation_start].mean())
    validation, test = (
        make_window(name, requests, scaling_forecasts, anomalies, rules, calendar)
        for name in ("validation", "test")
    )
    chosen, tuning, bar = tune(validation, rules, typical, float(train.max()))
    # Which policy to act on is chosen like every parameter: on the validation window only.
    on_validation = pd.DataFrame(
        [
            {"policy": name, **run_policy(policy, validation, rules)[1]}
            for name, policy in chosen.items()
        ]
    )
    selected = on_validation.loc[cheapest_within_sla(on_validation, rules.dropped_budget), "policy"]
    on_validation = on_validation.set_index("policy")
    outcomes = {name: run_policy(policy, test, rules)[0] for name, policy in chosen.items()}
    outcomes.update(bounds(test, rules))
    optimum = optimum_cost(outcomes["hindsight_optimal"]["provisioned"].to_numpy(), rules)
    rows, frames = [], []
    for name, outcome in outcomes.items():
        summary = summarize(outcome, rules)
        if name == "hindsight_optimal":  # exact, or a lower bound under per-hour billing
            summary["cost"] = optimum
        params = chosen[name].params() if name in chosen else {}
        tuned = (
            "hindsight"
            if name in BOUNDS
            else "fixed"
            if name in ("static", "keda_hpa") or name in policies.PRESETS
            else "validation week"
        )
        rows.append(
            {
                "setting": setting,
                "policy": name,
                "cost": summary["cost"],
                "pct_above_optimal": 100 * (summary["cost"] / optimum - 1),
                **{k: v for k, v in summary.items() if k != "cost"},
                "tuned_on": tuned,
                "matches": bar if name == "predictive_matched" else None,
                "params": json.dumps({**params, "rules": rules.as_dict()}),
                "validation_cost": on_validation["cost"].get(name),
                "validation_dropped_fraction": on_validation["dropped_fraction"].get(name),
                "selected": name == selected,
            }
        )
        frame = outcome.rename(columns={"serving": "servers"})
        frame.insert(0, "bucket_start", test.bucket_start)
        frame.insert(0, "policy", name)
        frame.insert(0, "setting", setting)
        frames.append(frame)
    tuning.insert(0, "setting", setting)
    elapsed = time.perf_counter() - started
    progress(f"scaling {setting}: {len(outcomes)} policies in {elapsed:.1f} s")
    return pd.concat(frames, ignore_index=True), pd.DataFrame(rows), tuning, chosen


def run_sweep(
    requests: Demand | pd.Series,
    scaling_forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    calendar: Calendar,
    settings: dict[str, ScalingRules],
    progress: Callable[[str], None] = print,
):
    """(scaling_decisions, cost_report, tuning table, {setting: chosen policies}) over every
    setting; requests indexed by bucket_start; windows from the calendar."""
    decisions, reports, tunings, chosen = [], [], [], {}
    for setting, rules in settings.items():
        frame, report, tuning, policies_ = run_setting(
            setting, rules, requests, scaling_forecasts, anomalies, calendar, progress
        )
        decisions.append(frame)
        reports.append(report)
        tunings.append(tuning)
        chosen[setting] = policies_
    return (
        pd.concat(decisions, ignore_index=True),
        pd.concat(reports, ignore_index=True),
        pd.concat(tunings, ignore_index=True),
        chosen,
    )


def robustness_rules(base: ScalingRules) -> list[ScalingRules]:
    """The rules of each cell of a fleet's robustness table."""
    return [
        dataclasses.replace(
            base,
            capacity=base.capacity * capacity,
            boot_delay_s=round(base.boot_delay_s * boot),
            max_servers=base.max_servers * ROBUSTNESS_MAX_SERVERS,
        )
        for capacity in ROBUSTNESS_CAPACITY
        for boot in ROBUSTNESS_BOOT
    ]


def robustness_fleets(fleets) -> dict[str, ScalingRules]:
    """The fleets (scaling.fleets.Fleet by name) the robustness table sweeps around."""
    return {name: fleet.rules for name, fleet in fleets.items() if fleet.robustness}


def forecast_steps(
    fleets: dict[str, ScalingRules], robust: dict[str, ScalingRules]
) -> dict[int, int]:
    """Per decision interval (minutes), the buckets ahead the scaling forecasts must cover: the
    longest boot delay of its fleets and their robustness cells, plus the bucket a launch is
    asked for in."""
    cells = [cell for rules in robust.values() for cell in robustness_rules(rules)]
    steps: dict[int, int] = {}
    for rules in [*fleets.values(), *cells]:
        steps[rules.minutes] = max(steps.get(rules.minutes, 0), rules.boot + 1)
    return steps


def robustness(
    requests: Demand | pd.Series,
    scaling_forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    calendar: Calendar,
    fleets: dict[str, ScalingRules],
    progress: Callable[[str], None] = print,
    workers: int = 2,
) -> pd.DataFrame:
    """Per fleet (its rules by name) x capacity x boot delay: the whole sweep (tuning and
    selection on validation) rerun under those rules, and on the test window the selected
    policy against the optimum and the reactive presets: the best preset (cheapest within the
    budget, else dropping least), how many presets dropped no more than the selected policy,
    and whether it is cheaper than each of those.

    The cells are independent: `workers` processes compute them side by side (1: in this one)."""
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    started = time.perf_counter()
    names, cells = [], []
    for fleet, base in fleets.items():
        for rules in robustness_rules(base):
            names.append(fleet)
            cells.append(rules)
    inputs = (requests, scaling_forecasts, anomalies, calendar)
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
            rows = list(
                pool.map(_robustness_cell, names, cells, *[[x] * len(cells) for x in inputs])
            )
    else:
        rows = [
            _robustness_cell(fleet, rules, *inputs)
            for fleet, rules in zip(names, cells, strict=True)
        ]
    progress(
        f"robustness: {len(rows)} capacity x boot cells in {time.perf_counter() - started:.1f} s"
    )
    return pd.DataFrame(rows, columns=ROBUSTNESS_COLUMNS)


def _robustness_cell(
    fleet: str,
    rules: ScalingRules,
    requests: Demand | pd.Series,
    scaling_forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    calendar: Calendar,
) -> dict:
    """One row of the robustness table (a separate function so that a worker process runs it)."""
    name = f"{fleet}: capacity {rules.capacity:g}, boot {rules.boot_delay_s} s"
    _, report, _, _ = run_setting(
        name, rules, requests, scaling_forecasts, anomalies, calendar, progress=lambda _: None
    )
    selected = report[report["selected"]].iloc[0]
    presets = report[report["policy"].isin(list(policies.PRESETS))].reset_index(drop=True)
    best = presets.loc[cheapest_within_sla(presets, rules.dropped_budget)]
    no_more = presets[presets["dropped_fraction"] <= selected["dropped_fraction"]]
    return {
        "fleet": fleet,
        "capacity": rules.capacity,
        "boot_delay_s": rules.boot_delay_s,
        "boot_delay_min": rules.boot_delay_s // 60,
        "selected": selected["policy"],
        "selected_pct_above_optimal": selected["pct_above_optimal"],
        "selected_dropped_fraction": selected["dropped_fraction"],
        "best_preset": best["policy"],
        "best_preset_pct_above_optimal": best["pct_above_optimal"],
        "best_preset_dropped_fraction": best["dropped_fraction"],
        "presets_dropping_no_more": len(no_more),
        "cheaper_than_each_of_them": bool((selected["cost"] < no_more["cost"]).all()),
    }


def cheapest_within_sla(table: pd.DataFrame, budget: float = SLA_DROPPED) -> int:
    """Index of the cheapest row dropping no more than `budget` (else of the row dropping
    least): the one rule every choice of a policy follows."""
    within = table[table["dropped_fraction"] <= budget]
    return within["cost"].idxmin() if len(within) else table["dropped_fraction"].idxmin()


def best_policy(cost_report: pd.DataFrame, setting: str) -> str:
    """The policy selected on the validation window (cost_report.selected): the one the
    recommendation, the API and the report's headline follow."""
    rows = cost_report[(cost_report["setting"] == setting) & cost_report["selected"].astype(bool)]
    if rows.empty:
        raise ValueError(f"cost_report has no selected policy for {setting!r}: rematerialize it")
    return str(rows["policy"].iloc[0])


def hindsight_best(cost_report: pd.DataFrame, setting: str) -> str:
    """The cheapest policy within the SLA on the test window itself: known only in hindsight,
    reported as such and never acted on."""
    rows = cost_report[(cost_report["setting"] == setting) & ~cost_report["policy"].isin(BOUNDS)]
    return str(rows.loc[cheapest_within_sla(rows, budget_of(cost_report, setting)), "policy"])


def budget_of(cost_report: pd.DataFrame, setting: str) -> float:
    """The dropped budget a setting's sweep ran with (its rules in cost_report.params)."""
    rows = cost_report[cost_report["setting"] == setting]
    if rows.empty or "params" not in rows:
        return SLA_DROPPED
    return float(json.loads(rows["params"].iloc[0])["rules"].get("dropped_budget", SLA_DROPPED))
