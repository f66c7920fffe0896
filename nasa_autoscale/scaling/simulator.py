"""The one scaling simulator, the oracle and the hindsight optimum.

Rules (every policy, the oracle and the optimum run under the same ones):
- Demand d_t is requests per bucket; a missing bucket (NaN) is skipped: servers still run and are
  billed through it, but it counts for neither drops, violations nor utilization, and policies do
  not observe it.
- At each bucket t a policy recommends a server count from what it may know at t: demand before t,
  its own fleet before t, forecasts whose origin is t or earlier, anomaly flags before t.
- Stabilization (as Kubernetes' HPA): the provisioned count is the largest recommendation of the
  last `window` buckets (the current one included), clamped to [min_servers, max_servers]. A
  scale-out takes effect at once; a scale-in waits until every recommendation in the window
  agrees. window = 1 + ceil(stabilization / bucket), so at 5 minutes a scale-in needs two
  consecutive lower recommendations.
- Boot delay: a server launched at t serves from t + boot buckets. Scale-in stops the newest
  servers first (booting ones before serving ones), so the serving count at t is the minimum of
  the provisioned counts over t - boot .. t.
- Billing: every provisioned server (booting or serving) per second, with a 60 s minimum per start,
  or each start rounded up to whole hours (billing="hour"); price per server-hour.
- Before the window the fleet is `initial` servers, all serving (default: enough for the first
  boot-delay of demand), the same for every policy.

The hindsight optimum is exact: a dynamic programme over (provisioned count, how long the count has
been at least that high) finds the cheapest provisioned path that drops nothing, under the same
boot delay, stabilization and (per-second) billing rules; replaying it through simulate() checks it.
Under per-hour billing its cost is reported as a lower bound (optimum_cost), not an optimum.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view


@dataclass(frozen=True)
class ScalingRules:
    capacity: float = 100.0  # requests one server serves in one bucket
    min_servers: int = 1
    max_servers: int = 50
    price_per_hour: float = 0.10
    boot_delay_s: int = 300
    stabilization_s: int = 300
    minutes: int = 5  # bucket length
    billing: str = "second"  # or "hour": each start rounded up to whole hours
    min_billed_s: int = 60
    dropped_budget: float = 0.005  # the share of requests a tuned policy may drop (the SLA)

    def __post_init__(self):
        if self.capacity <= 0:
            raise ValueError(f"capacity must be positive, got {self.capacity}")
        if not 0 <= self.min_servers <= self.max_servers:
            raise ValueError(
                f"need 0 <= min_servers <= max_servers, got {self.min_servers}..{self.max_servers}"
            )
        if self.boot_delay_s < 0 or self.stabilization_s < 0 or self.minutes <= 0:
            raise ValueError("boot delay and stabilization must be >= 0, minutes > 0")
        if not 0 <= self.dropped_budget < 1:
            raise ValueError(f"dropped_budget must be in [0, 1), got {self.dropped_budget}")
        if self.billing not in ("second", "hour"):
            raise ValueError(f"billing must be 'second' or 'hour', got {self.billing!r}")

    @property
    def bucket_s(self) -> int:
        return self.minutes * 60

    @property
    def boot(self) -> int:
        """Boot delay in buckets (rounded up: a server cannot serve part of a bucket)."""
        return math.ceil(self.boot_delay_s / self.bucket_s)

    @property
    def window(self) -> int:
        """Stabilization window in buckets, the current one included."""
        return 1 + math.ceil(self.stabilization_s / self.bucket_s)

    def clamp(self, servers) -> int:
        return int(min(self.max_servers, max(self.min_servers, servers)))

    def required(self, demand) -> np.ndarray:
        """ceil(d / C) per bucket, clamped; min_servers where demand is missing."""
        need = np.ceil(np.nan_to_num(np.asarray(demand, float), nan=0.0) / self.capacity)
        return np.clip(need, self.min_servers, self.max_servers).astype(np.int64)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Observation:
    """What a policy may read when it decides bucket t. Arrays stop before t."""

    t: int
    demand: np.ndarray  # demand[:t], NaN where missing
    serving: np.ndarray  # serving servers in buckets before t
    provisioned: np.ndarray  # provisioned (billed) servers in buckets before t
    current: int  # provisioned servers now (the initial fleet at t = 0)
    forecast: np.ndarray | None  # rows for buckets t .. t + boot from origin t: yhat, lower, upper
    flagged: bool  # the anomaly detector flagged bucket t - 1 as a spike
    rules: ScalingRules

    def last_load(self) -> tuple[float, int] | None:
        """(demand, serving servers) of the latest observed bucket, None before any."""
        present = np.flatnonzero(~np.isnan(self.demand))
        if len(present) == 0:
            return None
        last = present[-1]
        return float(self.demand[last]), int(self.serving[last])


def initial_servers(demand: np.ndarray, rules: ScalingRules) -> int:
    return int(rules.required(demand[: rules.boot + 1]).max())


def simulate(
    demand,
    policy,
    rules: ScalingRules,
    forecasts: np.ndarray | None = None,
    flags: np.ndarray | None = None,
    initial: int | None = None,
) -> pd.DataFrame:
    """Run a policy over a demand series.

    demand: requests per bucket (NaN = missing); forecasts: array (T, boot + 1, 3), row t made at
    origin t; flags: bool per bucket (spike flagged). Returns one row per bucket: demand,
    recommended, provisioned, serving, capacity, served, dropped.
    """
    demand = np.asarray(demand, float)
    steps = len(demand)
    initial = rules.clamp(initial_servers(demand, rules) if initial is None else initial)
    boot, window = rules.boot, rules.window
    # index i of these arrays is bucket i - pad; the pad holds the fleet before the window
    pad = max(boot, window)
    recommended = np.full(steps + pad, initial, np.int64)
    provisioned = np.full(steps + pad, initial, np.int64)
    serving = np.full(steps + pad, initial, np.int64)
    flags = np.zeros(steps, bool) if flags is None else np.asarray(flags, bool)
    policy.reset()
    planned = getattr(policy, "open_loop", lambda *_: None)(demand, forecasts, flags, rules)
    if planned is not None:  # the same outcome without a call per bucket
        return _follow(demand, planned, rules, initial)
    for t in range(steps):
        i = t + pad
        observation = Observation(
            t=t,
            demand=demand[:t],
            serving=serving[pad:i],
            provisioned=provisioned[pad:i],
            current=int(provisioned[i - 1]),
            forecast=None if forecasts is None else forecasts[t],
            flagged=bool(t and flags[t - 1]),
            rules=rules,
        )
        recommended[i] = rules.clamp(policy.decide(observation))
        provisioned[i] = recommended[i - window + 1 : i + 1].max()
        serving[i] = provisioned[i - boot : i + 1].min()
    return _outcome(demand, recommended[pad:], provisioned[pad:], serving[pad:], rules)


def _follow(demand, planned, rules: ScalingRules, initial: int) -> pd.DataFrame:
    """simulate()'s outcome for recommendations known in advance (NaN: hold the fleet)."""
    steps, boot, window = len(demand), rules.boot, rules.window
    held = np.isnan(planned)
    clamped = np.clip(np.nan_to_num(planned), rules.min_servers, rules.max_servers)
    recommended = np.concatenate([np.full(window - 1, initial), clamped.astype(np.int64)])
    if held.any():  # a hold recommends the fleet of the bucket before: one pass in order
        provisioned = np.empty(steps, np.int64)
        last = initial
        for t in range(steps):
            if held[t]:
                recommended[t + window - 1] = last
            last = provisioned[t] = recommended[t : t + window].max()
    else:
        provisioned = sliding_window_view(recommended, window).max(axis=1)
    serving = _serving(provisioned, boot, initial)
    return _outcome(demand, recommended[window - 1 :], provisioned, serving, rules)


def _serving(provisioned: np.ndarray, boot: int, initial: int) -> np.ndarray:
    """Serving servers per bucket: the fewest provisioned over the last boot + 1 buckets (the
    newest stop first), `initial` serving before the window."""
    padded = np.concatenate([np.full(boot, initial, np.int64), provisioned])
    return sliding_window_view(padded, boot + 1).min(axis=1)


def execute(provisioned, demand, rules: ScalingRules, initial: int) -> pd.DataFrame:
    """A fixed provisioned path (a plan made in advance) against the demand that came: servers
    serve `boot` buckets after they start, as in simulate(); `initial` servers run before."""
    provisioned = np.asarray(provisioned, np.int64)
    serving = _serving(provisioned, rules.boot, initial)
    return _outcome(np.asarray(demand, float), provisioned, provisioned, serving, rules)


def _outcome(demand, recommended, provisioned, serving, rules) -> pd.DataFrame:
    capacity = serving * rules.capacity
    served = np.minimum(demand, capacity)  # NaN stays NaN for missing buckets
    return pd.DataFrame(
        {
            "demand": demand,
            "recommended": recommended,
            "provisioned": provisioned,
            "serving": serving,
            "capacity": capacity,
            "served": served,
            "dropped": demand - served,
        }
    )


def server_starts(provisioned: np.ndarray, initial: int) -> list[tuple[int, int]]:
    """(first, last + 1) bucket of every server's life, newest stopped first; servers of the
    initial fleet start at bucket 0 (billed from the window start)."""
    running = [0] * initial
    lives = []
    for t, count in enumerate(provisioned):
        while len(running) > count:
            lives.append((running.pop(), t))
        running.extend([t] * (count - len(running)))
    lives.extend((start, len(provisioned)) for start in running)
    return lives


def cost(provisioned: np.ndarray, rules: ScalingRules, initial: int | None = None) -> float:
    """Dollars for a provisioned path under the billing rule."""
    provisioned = np.asarray(provisioned, np.int64)
    initial = int(provisioned[0]) if initial is None else initial
    lives = [end - start for start, end in server_starts(provisioned, initial) if end > start]
    seconds = np.array(lives, float) * rules.bucket_s
    if rules.billing == "hour":
        seconds = np.ceil(seconds / 3600) * 3600
    else:
        seconds = np.maximum(seconds, rules.min_billed_s)
    return float(seconds.sum() / 3600 * rules.price_per_hour)


def summarize(outcome: pd.DataFrame, rules: ScalingRules, initial: int | None = None) -> dict:
    """Cost, SLA and efficiency figures of one simulated run (missing buckets skipped)."""
    present = outcome["demand"].notna()
    seen = outcome[present]
    total = seen["demand"].sum()
    provisioned = outcome["provisioned"].to_numpy()
    return {
        "cost": cost(provisioned, rules, initial),
        "dropped_fraction": float(seen["dropped"].sum() / total) if total else 0.0,
        "violating_fraction": float((seen["dropped"] > 0).mean()) if len(seen) else 0.0,
        "scaling_actions": int(np.count_nonzero(np.diff(provisioned))),
        "mean_utilization": float((seen["served"] / seen["capacity"]).mean()) if len(seen) else 0.0,
        "server_hours": float(provisioned.sum() * rules.bucket_s / 3600),
        "peak_servers": int(provisioned.max()),
    }


def optimum_cost(provisioned: np.ndarray, rules: ScalingRules, initial: int | None = None) -> float:
    """The hindsight optimum's cost: exact under per-second billing. Under per-hour billing the
    programme is not exact, so this is a lower bound instead: the per-second cost of the
    per-second optimum (every path costs at least its server-seconds, none has fewer)."""
    return cost(provisioned, dataclasses.replace(rules, billing="second"), initial)


def oracle(demand, rules: ScalingRules) -> pd.DataFrame:
    """ceil(d_t / C) servers in every bucket, with no boot delay nor stabilization: a bound no
    policy can reach."""
    need = rules.required(demand)
    return _outcome(np.asarray(demand, float), need, need, need, rules)


def optimal_provisioning(demand, rules: ScalingRules, initial: int | None = None) -> np.ndarray:
    """The cheapest provisioned path that serves every request (where max_servers allows) under
    the boot delay and stabilization rules, per-second billing.

    A path p is reachable through the stabilization window w iff every level set {t: p_t >= v}
    is made of runs at least w buckets long (a scale-in must wait until the count has held for w
    buckets). The programme's state is (p_{t-1}, how many buckets p has been >= p_{t-1}, capped at
    w). Serving needs p_s >= max(r_s .. r_{s+boot}) because the newest servers are stopped first.
    Before the window every recommendation was the initial fleet, so the first w - 1 buckets'
    windows still hold one of them: p_t >= initial for t < w - 1 (a scale-in below the initial
    fleet can come no earlier than bucket w - 1).
    """
    demand = np.asarray(demand, float)
    need = rules.required(demand)
    steps, boot, window = len(need), rules.boot, rules.window
    floor = np.array([need[t : t + boot + 1].max() for t in range(steps)])
    initial = rules.clamp(initial_servers(demand, rules) if initial is None else initial)
    levels = np.arange(rules.max_servers + 1)
    inf = np.inf
    # cost[v, s - 1]: cheapest path so far ending at count v that has held >= v for s buckets
    best = np.full((len(levels), window), inf)
    best[initial, window - 1] = 0.0
    came_from = np.zeros((steps, len(levels), window, 2), np.int16)
    for t in range(steps):
        nxt = np.full_like(best, inf)
        origin = np.zeros((len(levels), window, 2), np.int16)
        # hold the count: s grows (capped)
        for s in range(window):
            grown = min(s + 1, window - 1)
            better = best[:, s] < nxt[:, grown]
            nxt[better, grown] = best[better, s]
            origin[better, grown] = np.stack([levels[better], np.full(better.sum(), s)], 1)
        # scale out to v from any lower count u (any s): s restarts at 1
        any_s, any_s_arg = best.min(axis=1), best.argmin(axis=1)
        low_min = np.minimum.accumulate(any_s)  # low_min[u]: cheapest count <= u
        low_arg = np.maximum.accumulate(np.where(any_s == low_min, levels, 0))
        out = low_min[:-1] < nxt[1:, 0]
        ups = levels[1:][out]
        nxt[ups, 0] = low_min[ups - 1]
        origin[ups, 0] = np.stack([low_arg[ups - 1], any_s_arg[low_arg[ups - 1]]], 1)
        # scale in to v from a higher count u that has held for the whole window
        held = best[:, window - 1]
        high_min = np.minimum.accumulate(held[::-1])[::-1]  # high_min[u]: cheapest count >= u
        high_arg = (
            len(levels)
            - 1
            - np.maximum.accumulate(np.where(held[::-1] == high_min[::-1], levels, 0))[::-1]
        )
        down = high_min[1:] < nxt[:-1, window - 1]
        downs = levels[:-1][down]
        nxt[downs, window - 1] = high_min[downs + 1]
        origin[downs, window - 1] = np.stack(
            [high_arg[downs + 1], np.full(len(downs), window - 1)], 1
        )
        lowest = max(floor[t], rules.min_servers, initial if t < window - 1 else 0)
        allowed = (levels >= lowest) & (levels <= rules.max_servers)
        nxt[~allowed] = inf
        best = nxt + levels[:, None]
        came_from[t] = origin
    v, s = np.unravel_index(np.argmin(best), best.shape)
    path = np.zeros(steps, np.int64)
    for t in range(steps - 1, -1, -1):
        path[t] = v
        v, s = came_from[t, v, s]
    return path


def replay(provisioned: np.ndarray, rules: ScalingRules):
    """A policy that recommends a precomputed path's stabilization-compatible requests: the
    minimum of the path over the next window buckets (so the window's maximum gives the path)."""
    provisioned = np.asarray(provisioned, np.int64)
    ahead = rules.window - 1
    padded = np.concatenate([provisioned, np.full(ahead, provisioned[-1])])
    requests = np.array([padded[t : t + ahead + 1].min() for t in range(len(provisioned))])
    return FixedSchedule(requests)


class FixedSchedule:
    """Recommends a given series (the optimum's replay); not a forecaster of anything."""

    name = "fixed_schedule"

    def __init__(self, requests: np.ndarray):
        self.requests = requests

    def reset(self):
        pass

    def decide(self, observation: Observation) -> int:
        return int(self.requests[observation.t])

    def open_loop(self, demand, forecasts, flags, rules) -> np.ndarray:
        return self.requests.astype(float)
