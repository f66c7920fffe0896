"""Scaling policies: each turns an Observation (what is known at bucket t) into a server count.

Every policy has reset() and decide(observation) -> servers; the simulator applies boot delay,
stabilization and clamping. Tunable knobs are constructor arguments; tuning happens on the
validation week only (scaling.sweep).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from nasa_autoscale.scaling.simulator import Observation

Z80 = norm.ppf(0.90)  # the forecasts' 80% interval spans +-Z80 sigma


class Policy:
    name = "policy"

    def reset(self):
        """Forget any state from a previous run."""

    def decide(self, observation: Observation) -> int:
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def get_state(self) -> dict:
        """What the policy remembers between decisions (JSON-able), for callers that decide one
        bucket at a time (the API)."""
        return {}

    def set_state(self, state: dict):
        """Restore get_state()'s output (after reset())."""


class Static(Policy):
    """A fixed fleet, sized once for the training window's peak (the reference a user knows)."""

    name = "static"

    def __init__(self, servers: int):
        self.servers = servers

    def decide(self, observation):
        return self.servers

    def params(self):
        return {"servers": self.servers}


class ReactiveThreshold(Policy):
    """Add `step` servers when the last observed bucket's utilization was above `up`, remove one
    when below `down`, then wait `cooldown` buckets before acting again."""

    name = "reactive"

    def __init__(self, up: float, down: float, cooldown: int, step: int = 1, name: str = ""):
        self.up, self.down, self.cooldown, self.step = up, down, cooldown, step
        self.name = name or self.name

    def reset(self):
        self.wait, self.target = 0, None

    def decide(self, observation):
        current = observation.current
        load = observation.last_load()
        if self.wait > 0 or load is None:
            # keep asking for the last target: a scale-in waits out the stabilization window
            self.wait -= 1
            return current if self.target is None else self.target
        demand, serving = load
        utilization = demand / (max(serving, 1) * observation.rules.capacity)
        self.target = current
        if utilization > self.up:
            self.target, self.wait = current + self.step, self.cooldown
        elif utilization < self.down and current > observation.rules.min_servers:
            self.target, self.wait = current - 1, self.cooldown
        return self.target

    def params(self):
        return {"up": self.up, "down": self.down, "cooldown": self.cooldown, "step": self.step}

    def get_state(self):
        return {"wait": self.wait, "target": self.target}

    def set_state(self, state):
        self.wait = int(state.get("wait", 0))
        target = state.get("target")
        self.target = None if target is None else int(target)


# The original project's three threshold presets (utilization of the last bucket; cooldown in
# 5-minute buckets). They are run as they were, with no tuning.
PRESETS = {
    "reactive_conservative": {"up": 0.60, "down": 0.30, "cooldown": 3, "step": 2},
    "reactive_balanced": {"up": 0.75, "down": 0.40, "cooldown": 2, "step": 1},
    "reactive_aggressive": {"up": 0.85, "down": 0.55, "cooldown": 1, "step": 1},
}


def preset(name: str) -> ReactiveThreshold:
    return ReactiveThreshold(**PRESETS[name], name=name)


class HPA(Policy):
    """Kubernetes' horizontal pod autoscaler rule: ceil(serving * utilization / target), no change
    while the ratio is within the tolerance."""

    name = "hpa"

    def __init__(self, target: float, tolerance: float = 0.1):
        self.target, self.tolerance = target, tolerance

    def decide(self, observation):
        load = observation.last_load()
        if load is None:
            return observation.current
        demand, serving = load
        serving = max(serving, 1)
        ratio = demand / (serving * observation.rules.capacity) / self.target
        if abs(ratio - 1) <= self.tolerance:
            return observation.current
        return math.ceil(serving * ratio)

    def params(self):
        return {"target": self.target, "tolerance": self.tolerance}


class Predictive(Policy):
    """Enough servers for the forecast's q-quantile of every bucket a server launched now must
    cover: t .. t + boot (a server asked for now serves from t + boot, and the ones serving now
    are still needed until then).

    The forecasts' intervals have one width at every level; count errors grow with the level, so
    the spread is scaled by (yhat / typical) ** spread_power (0: as given; 0.5: Poisson-like; 1:
    proportional), `typical` being the mean demand of the data the forecasts were fitted on.

    With gamma > 0 the spread also adapts to how often demand has beaten the plan (adaptive
    conformal inference on the policy's own quantile): after each observed bucket,
    log m += gamma * (exceeded - (1 - quantile)), where `exceeded` says whether its demand was
    above the q-quantile planned for it one bucket earlier; the spread is multiplied by m. Under
    a shift the forecasts did not foresee, the exceedance rate is pulled back to 1 - quantile.
    """

    name = "predictive"

    def __init__(
        self, quantile: float, spread_power: float = 0.0, typical: float = 1.0, gamma: float = 0.0
    ):
        self.quantile, self.spread_power, self.typical = quantile, spread_power, typical
        self.gamma = gamma
        self.z = norm.ppf(quantile)
        self.reset()

    def reset(self):
        self.log_m, self.planned = 0.0, None

    def _learn(self, observation):
        """Update the multiplier from the last bucket's demand against what was planned for it."""
        if not self.gamma or self.planned is None or observation.t == 0:
            return
        demand = observation.demand[observation.t - 1]
        if not np.isnan(demand) and not np.isnan(self.planned):
            exceeded = float(demand > self.planned)
            self.log_m += self.gamma * (exceeded - (1 - self.quantile))

    def decide(self, observation):
        self._learn(observation)
        forecast = observation.forecast
        if forecast is None or np.isnan(forecast[:, 0]).all():
            self.planned = None
            return observation.current  # no forecast: hold
        yhat = forecast[:, 0]
        spread = (forecast[:, 2] - yhat) / Z80
        if self.spread_power:
            spread = spread * (np.maximum(yhat, 1.0) / self.typical) ** self.spread_power
        bound = yhat + self.z * spread * math.exp(self.log_m)
        self.planned = float(bound[0])  # for the bucket decided now
        return math.ceil(np.nanmax(bound) / observation.rules.capacity)

    def params(self):
        params = {
            "quantile": self.quantile,
            "spread_power": self.spread_power,
            "typical": self.typical,
        }
        return {**params, "gamma": self.gamma} if self.gamma else params

    def get_state(self):
        return {"log_m": self.log_m, "planned": self.planned}

    def set_state(self, state):
        self.log_m = float(state.get("log_m", 0.0))
        planned = state.get("planned")
        self.planned = None if planned is None else float(planned)


class Hybrid(Policy):
    """The larger of a predictive and a reactive (HPA) recommendation: the forecast leads, the
    reactive rule catches what it missed."""

    name = "hybrid"

    def __init__(self, predictive: Predictive, target: float):
        self.predictive, self.reactive = predictive, HPA(target)

    def reset(self):
        self.predictive.reset()
        self.reactive.reset()

    def decide(self, observation):
        return max(self.predictive.decide(observation), self.reactive.decide(observation))

    def params(self):
        return {**self.predictive.params(), **self.reactive.params()}

    def get_state(self):
        return self.predictive.get_state()

    def set_state(self, state):
        self.predictive.set_state(state)


class AnomalyGuard(Policy):
    """A base policy plus `headroom` (a fraction) for `hold` buckets after the anomaly detector
    flags a spike in the last bucket (the detector the injection benchmark chose on validation,
    anomaly_flags; 3-sigma without it; each reads only earlier buckets)."""

    name = "anomaly_guard"

    def __init__(self, base: Policy, headroom: float, hold: int = 6):
        self.base, self.headroom, self.hold = base, headroom, hold

    def reset(self):
        self.base.reset()
        self.left = 0

    def decide(self, observation):
        servers = self.base.decide(observation)
        if observation.flagged:
            self.left = self.hold
        if self.left > 0:
            self.left -= 1
            return math.ceil(servers * (1 + self.headroom))
        return servers

    def params(self):
        return {
            "base": self.base.name,
            **self.base.params(),
            "headroom": self.headroom,
            "hold": self.hold,
        }

    def get_state(self):
        return {"left": self.left, **self.base.get_state()}

    def set_state(self, state):
        self.left = int(state.get("left", 0))
        self.base.set_state(state)


def build(name: str, params: dict) -> Policy:
    """A policy from its cost_report name and params (as Policy.params() wrote them)."""
    if name == "static":
        return Static(int(params["servers"]))
    if name in PRESETS:
        return preset(name)
    if name == "hpa":
        return HPA(params["target"], params.get("tolerance", 0.1))
    predictive = None
    if "quantile" in params:
        predictive = Predictive(
            params["quantile"],
            params.get("spread_power", 0.0),
            params.get("typical", 1.0),
            params.get("gamma", 0.0),
        )
    if name in ("predictive", "predictive_matched"):
        predictive.name = name
        return predictive
    if name == "hybrid":
        return Hybrid(predictive, params["target"])
    if name == "anomaly_guard":
        return AnomalyGuard(predictive, params["headroom"], params.get("hold", 6))
    known = [
        "static",
        "hpa",
        "predictive",
        "predictive_matched",
        "hybrid",
        "anomaly_guard",
        *PRESETS,
    ]
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(known)}")
