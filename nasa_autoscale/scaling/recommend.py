"""The next bucket's server count from a policy, with the reason, after a simulated history."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nasa_autoscale.scaling.simulator import Observation, ScalingRules


def next_servers(
    policy,
    history: pd.DataFrame,
    rules: ScalingRules,
    forecast: np.ndarray | None,
    flagged: bool = False,
) -> dict:
    """Decide the bucket right after `history` (simulate()'s outcome, the policy having just run
    over it): target servers, action and reason. forecast: rows (yhat, lower, upper) for the
    next boot + 1 buckets from an origin at that bucket."""
    provisioned = history["provisioned"].to_numpy()
    current = int(provisioned[-1])
    observation = Observation(
        t=len(history),
        demand=history["demand"].to_numpy(float),
        serving=history["serving"].to_numpy(),
        provisioned=provisioned,
        current=current,
        forecast=forecast,
        flagged=flagged,
        rules=rules,
    )
    recommended = rules.clamp(policy.decide(observation))
    earlier = history["recommended"].to_numpy()[len(history) - rules.window + 1 :]
    target = int(max([recommended, *earlier]))
    action = "scale_out" if target > current else "scale_in" if target < current else "hold"
    parts = [f"{policy.name} {policy.params()} recommends {recommended}"]
    load = observation.last_load()
    if load:
        demand, serving = load
        parts.append(f"last observed bucket: {demand:.0f} requests on {serving} servers "
                     f"({demand / (serving * rules.capacity):.0%} of capacity)")  # fmt: skip
    if forecast is not None and not np.isnan(forecast[:, 0]).all():
        parts.append(f"forecast for the next {len(forecast)} buckets: up to "
                     f"{np.nanmax(forecast[:, 0]):.0f} requests (80% upper "
                     f"{np.nanmax(forecast[:, 2]):.0f})")  # fmt: skip
    if target > recommended:
        parts.append(f"the {rules.stabilization_s} s stabilization window holds {target}")
    verb = f"hold at {target}" if action == "hold" else f"{action.replace('_', ' ')} to {target}"
    parts.append(f"{current} provisioned now: {verb}")
    return {"current_servers": current, "target_servers": target, "recommended": recommended,
            "action": action, "reason": "; ".join(parts)}  # fmt: skip
