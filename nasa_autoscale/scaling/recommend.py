"""The next bucket's server count from a policy, with the action, the reason and the state to
carry to the following decision (the recommendation asset and the API share it)."""

from __future__ import annotations

import json
import math

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


def fleet_for(requests: pd.Series, rules: ScalingRules) -> int:
    """The fleet the last observed bucket needed (where no policy has run to carry a fleet)."""
    observed = requests.dropna()
    last = float(observed.iloc[-1]) if len(observed) else 0.0
    return rules.clamp(math.ceil(last / rules.capacity))


def fallback_decision(requests: pd.Series, rules: ScalingRules, forecast: np.ndarray) -> dict:
    """A recommendation without a cost report (too little history to tune a policy): the
    predictive policy at its untuned 90% quantile on the forecast; the fleet now is taken as the
    one the last observed bucket needed."""
    from nasa_autoscale.scaling.policies import build

    observed = requests.dropna()
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
    requests: pd.Series,
    forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    cost_report: pd.DataFrame,
    upcoming: pd.DataFrame,
) -> pd.DataFrame:
    """The recommendation table: per scenario, the server count for the first bucket of
    `upcoming` (forecast_next: bucket_start, yhat, yhat_lower, yhat_upper).

    The policy is the one selected on the validation window (cost_report.selected), run over the
    test window to reach its state, then asked about the next bucket; with no cost report (a
    short history), the untuned predictive policy (fallback_decision)."""
    from nasa_autoscale.scaling.policies import build
    from nasa_autoscale.scaling.simulator import simulate
    from nasa_autoscale.scaling.sweep import SCENARIOS, best_policy, make_window

    if upcoming.empty:
        raise ValueError("forecast_next is empty: materialize forecast_next")
    rows = []
    for setting, rules in SCENARIOS.items():
        ahead = upcoming.head(rules.boot + 1)[["yhat", "yhat_lower", "yhat_upper"]].to_numpy()
        row = {"setting": setting, "bucket_start": upcoming["bucket_start"].iloc[0]}
        if cost_report.empty:  # a short history: no sweep to choose from
            rows.append({**row, **fallback_decision(requests, rules, ahead)})
            continue
        name = best_policy(cost_report, setting)
        chosen = cost_report[(cost_report["setting"] == setting) & (cost_report["policy"] == name)]
        policy = build(name, json.loads(chosen["params"].iloc[0]))
        test = make_window("test", requests, forecasts, anomalies, rules)
        history = simulate(test.demand, policy, rules, test.forecasts, test.flags)
        decision = next_servers(policy, history, rules, ahead, bool(test.flags[-1]))
        rows.append({**row, "policy": name, **decision})
    return pd.DataFrame(rows)
