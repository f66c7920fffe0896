"""The simulator's rules one bucket at a time, for a deployment that decides as the data arrives
(the live planner): the same recommendation, stabilization and boot-delay bookkeeping as
simulate(), so a policy stepped through a window with the same forecasts makes the same
decisions the cost report priced (a test holds them equal).

At each bucket t the caller gives the demand of bucket t - 1 (NaN when missing) and the forecast
made at origin t; step() returns the policy's recommendation, the provisioned count (the largest
recommendation of the stabilization window, clamped) and the serving count (the fewest
provisioned over the boot delay). Before the first bucket the fleet is `initial` servers, all
serving, as in simulate(). A long-running stepper keeps the last KEEP_DAYS of its history (what
any policy reads is the last observed bucket and its own state).
"""

from __future__ import annotations

import numpy as np

from nasa_autoscale.scaling.simulator import Observation, ScalingRules

KEEP_DAYS = 2


class FleetStepper:
    def __init__(self, policy, rules: ScalingRules, initial: int):
        self.policy, self.rules = policy, rules
        self.initial = rules.clamp(initial)
        self.pad = max(rules.boot, rules.window)
        self.decided = 0
        self.keep = KEEP_DAYS * 24 * 60 // rules.minutes
        self.demand: list[float] = []
        self.recommended = [self.initial] * self.pad
        self.provisioned = [self.initial] * self.pad
        self.serving = [self.initial] * self.pad
        policy.reset()

    def step(self, demand_before: float | None, forecast: np.ndarray | None, flagged=False) -> dict:
        """Decide bucket t: demand_before is bucket t - 1's demand (ignored at t = 0);
        forecast rows (yhat, lower, upper) for buckets t .. t + boot from origin t."""
        if self.decided > 0:
            self.demand.append(np.nan if demand_before is None else float(demand_before))
        self._trim()
        rules, pad = self.rules, self.pad
        observation = Observation(
            t=len(self.demand),
            demand=np.asarray(self.demand, float),
            serving=np.asarray(self.serving[pad:], np.int64),
            provisioned=np.asarray(self.provisioned[pad:], np.int64),
            current=int(self.provisioned[-1]),
            forecast=forecast,
            flagged=bool(self.decided and flagged),
            rules=rules,
        )
        recommended = rules.clamp(self.policy.decide(observation))
        self.recommended.append(recommended)
        provisioned = max(self.recommended[-rules.window :])
        self.provisioned.append(provisioned)
        serving = min(self.provisioned[-(rules.boot + 1) :])
        self.serving.append(serving)
        self.decided += 1
        return {"recommended": recommended, "provisioned": provisioned, "serving": serving}

    def _trim(self) -> None:
        """Forget all but the last `keep` buckets (the pad of the fleet before them stays)."""
        extra = len(self.demand) - self.keep
        if extra > self.keep:  # trimmed in chunks, not at every bucket
            del self.demand[:extra]
            for series in (self.recommended, self.provisioned, self.serving):
                del series[:extra]
