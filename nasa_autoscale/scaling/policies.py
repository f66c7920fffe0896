"""Scaling policies: each turns an Observation (what is known at bucket t) into a server count.

Every policy has reset() and decide(observation) -> servers; the simulator applies boot delay,
stabilization and clamping. Tunable knobs are constructor arguments; tuning happens on the
validation week only (scaling.sweep).

A policy whose recommendations never depend on the fleet (the predictive policies, the static
fleet, the anomaly guard over a predictive base) also has open_loop(demand, forecasts, flags,
rules): the whole series of recommendations at once, which simulate() turns into the same
outcome as deciding bucket by bucket, without a Python call per bucket (a test holds them equal).

Counts of buckets in the parameters (the presets' cooldown, the guard's hold) are in 5-minute
buckets, the unit the original project used; at a finer decision interval they last as long
(a cooldown of 2 is 10 minutes at any interval).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import norm

from nasa_autoscale.scaling.simulator import Observation

Z80 = norm.ppf(0.90)  # the forecasts' 80% interval spans +-Z80 sigma
UNIT_S = 300  # the bucket the cooldown and hold parameters count in
HOLD = "hold"  # open_loop's marker for "keep the fleet as it is" (no forecast for the bucket)
# Kubernetes' HPA defaults (kubernetes.io, "Horizontal Pod Autoscaling"): the controller syncs
# every 15 s; a scale-up adds at most 100% or 4 pods per 15 s, whichever is more.
SYNC_PERIOD_S = 15
SCALE_UP_PERCENT = 100
SCALE_UP_PODS = 4


def in_buckets(count: int, rules) -> int:
    """A count of 5-minute buckets as buckets of the rules' decision interval."""
    return round(count * UNIT_S / rules.bucket_s)


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

    def open_loop(self, demand, forecasts, flags, rules) -> np.ndarray | None:
        """Every bucket's recommendation at once (float, NaN where the policy holds the fleet),
        for a policy that never reads the fleet; None for one that does (decided bucket by
        bucket). demand, forecasts and flags as simulate() takes them."""
        return None


class Static(Policy):
    """A fixed fleet, sized once for the training window's peak (the reference a user knows)."""

    name = "static"

    def __init__(self, servers: int):
        self.servers = servers

    def decide(self, observation):
        return self.servers

    def open_loop(self, demand, forecasts, flags, rules):
        return np.full(len(demand), float(self.servers))

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
            self.target = current + self.step
            self.wait = in_buckets(self.cooldown, observation.rules)
        elif utilization < self.down and current > observation.rules.min_servers:
            self.target = current - 1
            self.wait = in_buckets(self.cooldown, observation.rules)
        return self.target

    def params(self):
        return {"up": self.up, "down": self.down, "cooldown": self.cooldown, "step": self.step}

    def get_state(self):
        return {"wait": self.wait, "target": self.target}

    def set_state(self, state):
        self.wait = int(_state_number(state, "wait", 0, 0, 10**6))
        target = _state_number(state, "target", None, 0, 10**6)
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
    """Kubernetes' horizontal pod autoscaler: ceil(ready * utilization / target), no change while
    the ratio is within the tolerance (0.1), a scale-up limited per 15 s sync to +100% or +4
    pods, whichever is more (so at most that, compounded over the syncs of one decision
    interval: x16 or +60 in a minute, no limit that binds in 5). The scale-down stabilization
    window (the highest recommendation of the window) is the simulator's, for every policy.
    Ready pods are the serving servers; the metric is the last observed bucket's load, which
    every sync inside the bucket sees alike (traffic is counted per minute at the finest)."""

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
        return min(
            math.ceil(serving * ratio), scale_up_limit(observation.current, observation.rules)
        )

    def params(self):
        return {"target": self.target, "tolerance": self.tolerance}


def scale_up_limit(current: int, rules) -> int:
    """The most pods the HPA may reach from `current` within one decision interval."""
    limit = current
    for _ in range(max(1, rules.bucket_s // SYNC_PERIOD_S)):
        limit = max(limit + limit * SCALE_UP_PERCENT // 100, limit + SCALE_UP_PODS)
        if limit >= rules.max_servers:
            return limit
    return limit


class KedaHPA(Policy):
    """What a Kubernetes HPA does when KEDA feeds it GET /scaling/{fleet} (docs/keda.md): two
    AverageValue metrics with a server's capacity as the target, the forecast's upper bound
    maximised over [now, now + boot] and the last observed bucket's load; each proposes
    ceil(metric / capacity), none while metric / (capacity x current) is within the tolerance;
    the HPA takes the larger proposal, then its scale-up limit. Nothing is tuned: these are the
    endpoint's numbers and the HPA's defaults, so this is the cost of wiring the graph to an HPA
    as the docs do (the simulator adds the scale-down stabilization window, as for every
    policy)."""

    name = "keda_hpa"

    def __init__(self, tolerance: float = 0.1):
        self.tolerance = tolerance

    def decide(self, observation):
        rules, current = observation.rules, observation.current
        metrics = []
        forecast = observation.forecast
        if forecast is not None and not np.isnan(forecast[:, 2]).all():
            metrics.append(float(np.nanmax(forecast[:, 2])))
        load = observation.last_load()
        if load is not None:
            metrics.append(load[0])
        if not metrics:
            return current
        proposals = [
            current
            if current and abs(metric / (rules.capacity * current) - 1) <= self.tolerance
            else math.ceil(metric / rules.capacity - 1e-9)
            for metric in metrics
        ]
        return min(max(proposals), scale_up_limit(current, rules))

    def params(self):
        return {"tolerance": self.tolerance, "target": "capacity"}


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

    def open_loop(self, demand, forecasts, flags, rules):
        """decide() over every bucket: the multiplier's updates read only demand and the
        policy's own plans, so one scalar pass finds them; the bounds follow in one go."""
        if forecasts is None:
            return np.full(len(demand), np.nan)
        yhat = forecasts[:, :, 0]
        spread = (forecasts[:, :, 2] - yhat) / Z80
        if self.spread_power:
            spread = spread * (np.maximum(yhat, 1.0) / self.typical) ** self.spread_power
        present = ~np.isnan(yhat).all(axis=1)
        scale = np.ones(len(demand))  # exp(log m) per bucket, by math.exp as decide() takes it
        if self.gamma:
            m, planned = 0.0, None
            first_y, first_s = yhat[:, 0].tolist(), spread[:, 0].tolist()
            miss = 1 - self.quantile
            for t in range(len(demand)):
                if planned is not None and t:
                    seen = demand[t - 1]
                    if not math.isnan(seen) and not math.isnan(planned):
                        m += self.gamma * (float(seen > planned) - miss)
                scale[t] = math.exp(m)
                planned = first_y[t] + self.z * first_s[t] * scale[t] if present[t] else None
        bound = yhat + self.z * spread * scale[:, None]
        with np.errstate(all="ignore"):
            peak = np.nanmax(np.where(present[:, None], bound, 0.0), axis=1)
        return np.where(present, np.ceil(peak / rules.capacity), np.nan)

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
        # a multiplier of e^+-50 is past any fleet: a larger one is not a state this wrote
        self.log_m = float(_state_number(state, "log_m", 0.0, -50, 50))
        planned = _state_number(state, "planned", None, 0, 1e15)
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
            self.left = in_buckets(self.hold, observation.rules)
        if self.left > 0:
            self.left -= 1
            return math.ceil(servers * (1 + self.headroom))
        return servers

    def open_loop(self, demand, forecasts, flags, rules):
        base = self.base.open_loop(demand, forecasts, flags, rules)
        if base is None or np.isnan(base).any():  # a held bucket reads the fleet
            return None
        guarded = np.zeros(len(demand), bool)
        hold, left = in_buckets(self.hold, rules), 0
        for t in range(len(demand)):
            if t and flags[t - 1]:
                left = hold
            if left > 0:
                left -= 1
                guarded[t] = True
        return np.where(guarded, np.ceil(base * (1 + self.headroom)), base)

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
    if name == "keda_hpa":
        return KedaHPA(params.get("tolerance", 0.1))
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
        "keda_hpa",
        "predictive",
        "predictive_matched",
        "hybrid",
        "anomaly_guard",
        *PRESETS,
    ]
    raise ValueError(f"unknown policy {name!r}; known: {', '.join(known)}")


def _state_number(state: dict, key: str, default, low: float, high: float):
    """state[key] (default when absent or None) if it is a finite number within low..high; a
    ValueError naming the key otherwise (the API answers it with 422)."""
    value = state.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"state {key} must be a finite number, not {value!r}")
    if not low <= value <= high:
        raise ValueError(f"state {key} must be within {low:g}..{high:g}, got {value!r}")
    return value
