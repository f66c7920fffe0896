"""provisioning_plan: the deployed policy run forward over the next day's forecast, per fleet:
servers per bucket of its decision interval, the expected cost, and when to scale. A fleet
deciding every minute plans on the 5-minute forecast shared evenly among each bucket's minutes
(forecasts.spread_to).

The policy selected on the validation window (cost_report.selected) first runs over the test
window, as the recommendation does, to reach its state; it then runs through the forecast's
buckets with the forecast's expected demand as what it observes and the forecast's next rows as
what it plans on. Its first bucket is the recommendation's decision. Without a cost report (a
short history) the untuned predictive policy plans from the fleet the last bucket needed.

score_plan prices a day's plan once the day has happened (forecast_scores): the plan made at the
day's midnight from the daily path's forecast, from the fleet the last bucket before it needed,
against the day's demand and the day's hindsight optimum under the same rules.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasa_autoscale.scaling.forecasts import spread_to
from nasa_autoscale.scaling.recommend import fleet_for, resolve_policy
from nasa_autoscale.scaling.simulator import (
    ScalingRules,
    cost,
    execute,
    optimal_provisioning,
    optimum_cost,
    simulate,
    summarize,
)
from nasa_autoscale.scaling.sweep import Demand, make_window

COLUMNS = [
    "setting",
    "policy",
    "bucket_start",
    "yhat",
    "yhat_lower",
    "yhat_upper",
    "servers",
    "capacity",
    "action",
]
# The fleet whose plan forecast_scores prices (the API's default) when the profiles have it;
# else their first.
PLAN_SETTING = "realistic"


def plan_fleet(fleets: dict) -> str:
    """The fleet the daily plan scores and the API default to."""
    return PLAN_SETTING if PLAN_SETTING in fleets else next(iter(fleets))


def forward_forecasts(upcoming: pd.DataFrame, steps: int) -> np.ndarray:
    """(buckets, steps, 3): at bucket t, forecast_next's rows t .. t + steps - 1 (yhat, lower,
    upper), the last row repeated past the forecast's end."""
    values = upcoming[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(float)
    rows = np.minimum(np.arange(len(values))[:, None] + np.arange(steps)[None, :], len(values) - 1)
    return values[rows]


def _actions(servers: np.ndarray, before: int) -> list[str]:
    previous = np.concatenate([[before], servers[:-1]])
    return [
        "scale_out" if now > then else "scale_in" if now < then else "hold"
        for now, then in zip(servers, previous, strict=True)
    ]


def plan_setting(
    setting: str,
    rules: ScalingRules,
    requests,
    scaling_forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    cost_report: pd.DataFrame,
    upcoming: pd.DataFrame,
    calendar,
    fleets: dict[str, ScalingRules],
) -> tuple[pd.DataFrame, dict]:
    """(plan rows, summary) for one scenario; the policy's state from the calendar's test
    window."""
    upcoming = spread_to(upcoming, rules.minutes)
    ahead = forward_forecasts(upcoming, rules.boot + 1)
    expected = upcoming["yhat"].to_numpy(float)
    choice = resolve_policy(cost_report, setting, fleets)
    name = choice.name
    if not choice.tuned:  # a short history: the untuned policy from the fleet now
        before = fleet_for(requests, rules)
        outcome = simulate(expected, choice.build(), rules, ahead, initial=before)
    else:
        test = make_window("test", requests, scaling_forecasts, anomalies, rules, calendar)
        outcome = simulate(
            np.concatenate([test.demand, expected]),
            choice.build(),
            rules,
            np.concatenate([test.forecasts, ahead]),
            np.concatenate([test.flags, np.zeros(len(expected), bool)]),
        )
        before = int(outcome["provisioned"].iloc[-len(expected) - 1])
        outcome = outcome.iloc[-len(expected) :]
    servers = outcome["provisioned"].to_numpy(np.int64)
    plan = pd.DataFrame(
        {
            "setting": setting,
            "policy": name,
            "bucket_start": upcoming["bucket_start"].to_numpy(),
            "yhat": expected,
            "yhat_lower": upcoming["yhat_lower"].to_numpy(float),
            "yhat_upper": upcoming["yhat_upper"].to_numpy(float),
            "servers": servers,
            "capacity": servers * rules.capacity,
            "action": _actions(servers, before),
        }
    )
    changes = plan[plan["action"] != "hold"]
    summary = {
        "setting": setting,
        "policy": name,
        "expected_cost": cost(servers, rules, initial=before),
        "servers_now": before,
        "peak_servers": int(servers.max()),
        "scale_times": [
            f"{r.bucket_start:%Y-%m-%d %H:%M} -> {r.servers}" for r in changes.itertuples()
        ],
    }
    return plan[COLUMNS], summary


def provisioning_plan(
    requests,
    scaling_forecasts: pd.DataFrame,
    anomalies: pd.DataFrame,
    cost_report: pd.DataFrame,
    upcoming: pd.DataFrame,
    calendar,
    fleets: dict[str, ScalingRules],
) -> tuple[pd.DataFrame, list[dict]]:
    """(plan rows of every scenario, a summary per scenario)."""
    if upcoming.empty:
        raise ValueError("forecast_next is empty: materialize forecast_next")
    plans, summaries = [], []
    for setting, rules in fleets.items():
        plan, summary = plan_setting(
            setting,
            rules,
            requests,
            scaling_forecasts,
            anomalies,
            cost_report,
            upcoming,
            calendar,
            fleets,
        )
        plans.append(plan)
        summaries.append(summary)
    return pd.concat(plans, ignore_index=True), summaries


def score_plan(
    forecast: pd.DataFrame,
    requests,
    cost_report: pd.DataFrame,
    fleets: dict[str, ScalingRules],
    setting: str | None = None,
) -> dict:
    """What a day's plan cost and dropped, against the day's hindsight optimum, for a fleet
    (default plan_fleet's).

    forecast: the day's forecast made at its midnight (bucket_start, yhat, yhat_lower,
    yhat_upper); requests: traffic by bucket_start (NaN = no log), a Demand holding the fleet's
    decision interval (or one series at it). The deployed policy plans the
    day on the forecast alone, from the fleet the last bucket before the day needed; the plan is
    then run against the demand that came. Buckets without a log count for neither drops nor
    the optimum's needs (servers still run through them)."""
    setting = setting or plan_fleet(fleets)
    rules = fleets[setting]
    forecast = spread_to(forecast, rules.minutes)
    requests = Demand.of(requests).at(rules.minutes)
    buckets = pd.DatetimeIndex(forecast["bucket_start"])
    before = fleet_for(requests[requests.index < buckets[0]], rules)
    choice = resolve_policy(cost_report, setting, fleets)
    name = choice.name
    ahead = forward_forecasts(forecast, rules.boot + 1)
    planned = simulate(
        forecast["yhat"].to_numpy(float), choice.build(), rules, ahead, initial=before
    )["provisioned"].to_numpy(np.int64)
    demand = requests.reindex(buckets).to_numpy(float)
    outcome = summarize(execute(planned, demand, rules, before), rules, before)
    optimum = optimum_cost(optimal_provisioning(demand, rules, before), rules, before)
    return {
        "plan_setting": setting,
        "plan_policy": name,
        "plan_cost": outcome["cost"],
        "plan_dropped": outcome["dropped_fraction"],
        "optimum_cost": optimum,
        "plan_pct_above_optimum": 100 * (outcome["cost"] / optimum - 1) if optimum else np.nan,
    }
