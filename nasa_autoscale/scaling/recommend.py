"""The next bucket's server count from a policy, with the action, the reason and the state to
carry to the following decision (the recommendation asset and the API share it)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nasa_autoscale.scaling.simulator import Observation, ScalingRules


def decide_next(
    policy,
    rules: ScalingRules,
    demand: np.ndarray,
    serving: np.ndarray,
    provisioned: np.ndarray,
    current: int,
    recent: list[int],
    forecast: np.ndarray | None,
    flagged: bool = False,
) -> dict:
    """One decision under the simulator's rules. demand/serving/provisioned: what was observed
    before this bucket (may be empty); recent: the policy's last recommendations (the
    stabilization window holds the largest); forecast: rows (yhat, lower, upper) from now on."""
    observation = Observation(
        t=len(demand),
        demand=np.asarray(demand, float),
        serving=np.asarray(serving, np.int64),
        provisioned=np.asarray(provisioned, np.int64),
        current=current,
        forecast=forecast,
        flagged=flagged,
        rules=rules,
    )
    recommended = rules.clamp(policy.decide(observation))
    earlier = list(recent)[len(recent) - rules.window + 1 :] if rules.window > 1 else []
    target = rules.clamp(max([recommended, *earlier]))
    action = "scale_out" if target > current else "scale_in" if target < current else "hold"
    parts = [f"{policy.name} {policy.params()} recommends {recommended}"]
    load = observation.last_load()
    if load:
        observed, on = load
        parts.append(
            f"last observed bucket: {observed:.0f} requests on {on} servers "
            f"({observed / (max(on, 1) * rules.capacity):.0%} of capacity)"
        )
    if forecast is not None and len(forecast) and not np.isnan(forecast[:, 0]).all():
        parts.append(
            f"forecast for the next {len(forecast)} buckets: up to "
            f"{np.nanmax(forecast[:, 0]):.0f} requests (80% upper "
            f"{np.nanmax(forecast[:, 2]):.0f})"
        )
    if target > recommended:
        parts.append(f"the {rules.stabilization_s} s stabilization window holds {target}")
    verb = f"hold at {target}" if action == "hold" else f"{action.replace('_', ' ')} to {target}"
    parts.append(f"{current} provisioned now: {verb}")
    return {
        "current_servers": current,
        "target_servers": target,
        "recommended": recommended,
        "action": action,
        "reason": "; ".join(parts),
        "state": {
            "recent_recommendations": [*earlier, recommended][-(rules.window - 1) :]
            if rules.window > 1
            else [],
            "policy": policy.get_state(),
        },
    }


def next_servers(
    policy,
    history: pd.DataFrame,
    rules: ScalingRules,
    forecast: np.ndarray | None,
    flagged: bool = False,
) -> dict:
    """Decide the bucket right after `history` (simulate()'s outcome, the policy having just run
    over it). forecast: rows (yhat, lower, upper) for the next boot + 1 buckets."""
    provisioned = history["provisioned"].to_numpy()
    return decide_next(
        policy,
        rules,
        history["demand"].to_numpy(float),
        history["serving"].to_numpy(),
        provisioned,
        int(provisioned[-1]),
        history["recommended"].tolist()[-rules.window :],
        forecast,
        flagged,
    )


# Untuned: used only while the history is too short for the sweep (recommendation and API alike).
FALLBACK_POLICY, FALLBACK_PARAMS = "predictive", {"quantile": 0.9}
BEST = "best"  # ask for the policy selected on the validation window


class UnknownPolicy(ValueError):
    """A policy or setting the cost report does not hold; the message lists the known ones."""


@dataclass(frozen=True)
class PolicyChoice:
    """The policy to act on for a setting, with its parameters, its rules and why."""

    setting: str
    name: str
    params: dict  # the policy's own parameters (the rules apart)
    rules: ScalingRules
    chosen_by: str
    tuned: bool  # False: the untuned fallback of a short history

    def build(self):
        from nasa_autoscale.scaling.policies import build

        return build(self.name, self.params)


def known_policies(cost_report: pd.DataFrame, setting: str) -> list[str]:
    """The policies a setting can act on: the cost report's (the bounds left out), or the
    untuned fallback alone before any sweep."""
    from nasa_autoscale.scaling.sweep import BOUNDS

    rows = cost_report[cost_report["setting"] == setting] if len(cost_report) else cost_report
    return sorted(set(rows["policy"]) - set(BOUNDS)) if len(rows) else [FALLBACK_POLICY]


def resolve_policy(
    cost_report: pd.DataFrame,
    setting: str,
    fleets: dict[str, ScalingRules],
    asked: str = BEST,
) -> PolicyChoice:
    """The one rule for which policy acts on a setting (recommendation, plan, plan scores, API,
    dashboard): `asked` = 'best' is the policy selected on the validation window
    (cost_report.selected), another name that policy's tuned row; with no cost report (a history
    too short for the sweep), the untuned predictive policy. Bounds are never acted on. A setting
    is a fleet (fleets: its rules by name, from the fleet profiles)."""
    from nasa_autoscale.scaling.sweep import best_policy

    if setting not in fleets:
        raise UnknownPolicy(f"unknown fleet {setting!r}; known: {', '.join(fleets)}")
    rows = cost_report[cost_report["setting"] == setting] if len(cost_report) else cost_report
    known = known_policies(cost_report, setting)
    if rows.empty:
        name = FALLBACK_POLICY if asked == BEST else asked
    else:
        name = best_policy(cost_report, setting) if asked == BEST else asked
    if name not in known:
        raise UnknownPolicy(f"unknown policy {asked!r}; known: {BEST}, {', '.join(known)}")
    if rows.empty:
        return PolicyChoice(
            setting,
            name,
            dict(FALLBACK_PARAMS),
            fleets[setting],
            "the untuned fallback: no benchmark yet" if asked == BEST else "asked for",
            False,
        )
    params = json.loads(rows.loc[rows["policy"] == name, "params"].iloc[0])
    rules = ScalingRules(**params.pop("rules")) if "rules" in params else fleets[setting]
    chosen_by = (
        "selected on the validation window by the last benchmark (cost_report)"
        if asked == BEST
        else "asked for"
    )
    return PolicyChoice(setting, name, params, rules, chosen_by, True)


def fleet_for(requests, rules: ScalingRules) -> int:
    """The fleet the last observed bucket (of the rules' decision interval) needed, where no
    policy has run to carry a fleet; requests: a scaling.sweep.Demand or one series."""
    observed = _at_interval(requests, rules).dropna()
    last = float(observed.iloc[-1]) if len(observed) else 0.0
    return rules.clamp(math.ceil(last / rules.capacity))


def _at_interval(requests, rules: ScalingRules) -> pd.Series:
    from nasa_autoscale.scaling.sweep import Demand

    return Demand.of(requests).at(rules.minutes)


def fallback_decision(requests, rules: ScalingRules, forecast: np.ndarray) -> dict:
    """A recommendation without a cost report (too little history to tune a policy): the
    predictive policy at its untuned 90% quantile on the forecast; the fleet now is taken as the
    one the last observed bucket needed."""
    from nasa_autoscale.scaling.policies import build

    observed = _at_interval(requests, rules).dropna()
    last = float(observed.iloc[-1]) if len(observed) else 0.0
    current = fleet_for(requests, rules)
    policy = build(FALLBACK_POLICY, FALLBACK_PARAMS)
    decision = decide_next(
        policy,
        rules,
        np.array([]),
        np.array([], np.int64),
        np.array([], np.int64),
        current,
        [],
        forecast,
    )
    decision["reason"] += (
        "; untuned (no cost report: the history is too short to tune and compare policies); "
        f"the fleet now is the one the last bucket ({last:.0f} requests) needed"
    )
    return {"policy": policy.name, **decision}


def recommend(
    requests,
    forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    cost_report: pd.DataFrame,
    upcoming: pd.DataFrame,
    calendar,
    fleets: dict[str, ScalingRules],
) -> pd.DataFrame:
    """The recommendation table: per fleet (its rules by name), the server count for the first
    bucket of `upcoming` (forecast_next: bucket_start, yhat, yhat_lower, yhat_upper; shared among
    the minutes of its buckets for a fleet deciding every minute).

    The policy is resolve_policy's (selected on the validation window), run over the calendar's
    test window to reach its state, then asked about the next bucket; with no cost report (a
    short history), the untuned predictive policy (fallback_decision)."""
    from nasa_autoscale.scaling.forecasts import spread_to
    from nasa_autoscale.scaling.simulator import simulate
    from nasa_autoscale.scaling.sweep import make_window

    if upcoming.empty:
        raise ValueError("forecast_next is empty: materialize forecast_next")
    rows = []
    for setting, rules in fleets.items():
        coming = spread_to(upcoming.head(rules.boot + 1), rules.minutes).head(rules.boot + 1)
        ahead = coming[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()
        row = {"setting": setting, "bucket_start": upcoming["bucket_start"].iloc[0]}
        choice = resolve_policy(cost_report, setting, fleets)
        if not choice.tuned:  # a short history: no sweep to choose from
            rows.append({**row, **fallback_decision(requests, rules, ahead)})
            continue
        policy = choice.build()
        test = make_window("test", requests, forecasts, anomalies, choice.rules, calendar)
        history = simulate(test.demand, policy, choice.rules, test.forecasts, test.flags)
        decision = next_servers(policy, history, choice.rules, ahead, bool(test.flags[-1]))
        rows.append({**row, "policy": choice.name, **decision})
    return pd.DataFrame(rows)
