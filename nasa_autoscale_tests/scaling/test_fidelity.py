"""Decisions at a fleet's own resolution: every minute, boots in seconds, Kubernetes' HPA rules,
and the fast path that decides a whole window at once giving what bucket-by-bucket deciding
gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.scaling import policies
from nasa_autoscale.scaling.forecasts import spread_to
from nasa_autoscale.scaling.simulator import (
    Observation,
    ScalingRules,
    optimal_provisioning,
    optimum_cost,
    simulate,
)
from nasa_autoscale.scaling.sweep import Demand, forecast_steps, make_window
from nasa_autoscale.settings import REFERENCE_DIR

MINUTE = ScalingRules(capacity=20.0, min_servers=1, max_servers=200, boot_delay_s=90, minutes=1)
FIVE = ScalingRules(capacity=100.0, min_servers=1, max_servers=200)


class BucketByBucket:
    """A policy with its open_loop hidden: simulate() must decide bucket by bucket."""

    def __init__(self, policy):
        self.policy = policy

    def reset(self):
        self.policy.reset()

    def decide(self, observation):
        return self.policy.decide(observation)


def inputs(rules, steps=600, seed=0):
    rng = np.random.default_rng(seed)
    level = 50 + 40 * np.sin(np.arange(steps) / 40)
    demand = rng.poisson(level * rules.capacity / 10).astype(float)
    demand[rng.random(steps) < 0.03] = np.nan  # buckets without a log
    yhat = level * rules.capacity / 10
    ahead = np.stack([np.roll(yhat, -k) for k in range(rules.boot + 1)], axis=1)
    forecasts = np.stack([ahead, ahead * 0.8, ahead * 1.2], axis=2)
    forecasts[rng.random(steps) < 0.02] = np.nan  # origins without a forecast: the fleet holds
    flags = rng.random(steps) < 0.02
    return demand, forecasts, flags


@pytest.mark.parametrize("rules", [FIVE, MINUTE], ids=["5 min", "1 min"])
def test_deciding_a_window_at_once_is_deciding_it_bucket_by_bucket(rules):
    demand, forecasts, flags = inputs(rules)
    typical = float(np.nanmean(demand))
    candidates = [
        policies.Static(30),
        policies.Predictive(0.9),
        policies.Predictive(0.96, 0.5, typical),
        policies.Predictive(0.85, 1.0, typical, gamma=0.05),
        policies.AnomalyGuard(policies.Predictive(0.9, 0.5, typical, 0.02), 0.25),
    ]
    for policy in candidates:
        fast = simulate(demand, policy, rules, forecasts, flags)
        slow = simulate(demand, BucketByBucket(policy), rules, forecasts, flags)
        pd.testing.assert_frame_equal(fast, slow, check_dtype=False, obj=policy.name)
    # the guard over a base that holds (no forecast) reads the fleet: no fast path for it
    guard = policies.AnomalyGuard(policies.Predictive(0.9), 0.25)
    assert guard.open_loop(demand, forecasts, flags, rules) is None


def test_a_wrong_fast_path_is_caught():
    """The check above fails when open_loop disagrees with decide()."""
    demand, forecasts, flags = inputs(MINUTE)

    class Off(policies.Predictive):
        def open_loop(self, *args):
            return super().open_loop(*args) + 1

    fast = simulate(demand, Off(0.9), MINUTE, forecasts, flags)
    slow = simulate(demand, BucketByBucket(Off(0.9)), MINUTE, forecasts, flags)
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(fast, slow, check_dtype=False)


def observation(rules, demand, serving, current):
    return Observation(
        t=1,
        demand=np.array([demand]),
        serving=np.array([serving]),
        provisioned=np.array([current]),
        current=current,
        forecast=None,
        flagged=False,
        rules=rules,
    )


def test_the_hpa_scales_up_at_kubernetes_rate_per_15_s_sync():
    """+100% or +4 pods per 15 s sync, whichever is more: from 2 pods, four syncs in a minute
    reach 6, 12, 24, 48; in 5 minutes twenty syncs never bind below the fleet's maximum."""
    hpa = policies.HPA(target=0.7)
    swamped = observation(MINUTE, demand=1e6, serving=2, current=2)
    assert hpa.decide(swamped) == 48
    assert policies.scale_up_limit(2, MINUTE) == 48
    assert policies.scale_up_limit(10, MINUTE) == 160  # x2 per sync once past 4 pods
    five = observation(FIVE, demand=1e6, serving=2, current=2)
    assert hpa.decide(five) >= FIVE.max_servers  # the limit never binds below the fleet's max
    calm = observation(MINUTE, demand=2 * 20 * 0.75, serving=2, current=2)
    assert hpa.decide(calm) == 2  # within the 0.1 tolerance: no change


def test_keda_hpa_takes_the_larger_of_the_forecast_and_observed_metrics():
    """The HPA KEDA drives from GET /scaling: AverageValue with a server's capacity as target on
    the forecast's upper bound (maxed over the boot) and the observed load; the larger proposal,
    no change within the tolerance, the scale-up limit per sync."""
    keda = policies.KedaHPA()

    def seen(demand, upper, current):
        rows = np.array([[upper * 0.8, upper * 0.6, upper], [upper / 2, 0, upper / 2]])
        return dataclasses.replace(observation(MINUTE, demand, current, current), forecast=rows)

    assert keda.decide(seen(demand=100, upper=190, current=3)) == 10  # forecast leads: 190 / 20
    assert keda.decide(seen(demand=330, upper=190, current=3)) == 17  # observed above it
    assert keda.decide(seen(demand=10, upper=105, current=5)) == 5  # 105 / 100: in tolerance
    assert keda.decide(seen(demand=10, upper=120, current=5)) == 6
    assert keda.decide(seen(demand=1e6, upper=1e6, current=2)) == 48  # +100% or +4 per sync
    no_forecast = dataclasses.replace(observation(MINUTE, 90, 2, 2), forecast=None)
    assert keda.decide(no_forecast) == 5  # the observed trigger alone
    assert policies.build("keda_hpa", keda.params()).params() == keda.params()


def test_cooldowns_and_holds_last_as_long_at_every_interval():
    """The presets' cooldown and the guard's hold count 5-minute buckets: a minute fleet waits
    five times as many of its own."""
    assert policies.in_buckets(2, MINUTE) == 10 and policies.in_buckets(2, FIVE) == 2
    reactive = policies.preset("reactive_balanced")  # cooldown 2
    reactive.reset()
    reactive.decide(observation(MINUTE, demand=1e4, serving=2, current=2))
    assert reactive.wait == 10


def test_a_minute_fleet_sees_a_spike_flag_once_its_5_minute_bucket_is_complete():
    days = pd.date_range("1995-08-01", "1995-08-11", freq="1min", inclusive="left")
    requests = Demand({1: pd.Series(10.0, index=days), 5: pd.Series(50.0, index=days[::5])})
    flagged = pd.Timestamp("1995-08-10 12:00")
    anomalies = pd.DataFrame({"bucket_start": days[::5], "spike": days[::5] == flagged})
    from nasa_autoscale.forecasting.protocols import Calendar

    calendar = Calendar.of(requests, 1, 1)
    empty = pd.DataFrame(
        {
            "window": pd.Series(dtype=str),
            "minutes": pd.Series(dtype=int),
            "origin": pd.Series(dtype="datetime64[ns]"),
            "step": pd.Series(dtype=int),
            **{c: pd.Series(dtype=float) for c in ("yhat", "yhat_lower", "yhat_upper")},
        }
    )
    window = make_window("test", requests, empty, anomalies, MINUTE, calendar)
    seen = window.bucket_start[window.flags]
    # the bucket 12:00-12:05 is complete after its minute 12:04: decisions from 12:05 see it
    assert list(seen) == [flagged + pd.Timedelta(minutes=4)]
    assert len(window.demand) == 1440


def test_a_5_minute_forecast_is_shared_among_its_minutes():
    frame = pd.DataFrame(
        {
            "bucket_start": pd.date_range("1995-08-01", periods=2, freq="5min"),
            "yhat": [100.0, 50.0],
            "yhat_lower": [80.0, 40.0],
            "yhat_upper": [120.0, 60.0],
        }
    )
    minutes = spread_to(frame, 1)
    assert len(minutes) == 10 and minutes["yhat"].sum() == 150
    assert minutes["bucket_start"].iloc[6] == pd.Timestamp("1995-08-01 00:06")
    assert minutes["yhat_upper"].iloc[0] == 24
    assert spread_to(frame, 5) is frame


def real_minutes(day="1995-08-10") -> pd.Series:
    path = REFERENCE_DIR / "requests_per_minute_from_per_second.csv"
    frame = pd.read_csv(path)
    times = pd.to_datetime(frame["minute_start"].str[:19])
    series = pd.Series(frame["requests"].to_numpy(float), index=times)
    return series[day]


def test_two_and_five_minute_boots_now_cost_differently():
    """On a real day of per-minute traffic, the exact optimum under a 2-minute and a 5-minute
    boot: deciding every minute they differ; at 5-minute buckets both round up to one bucket and
    were the same (the flaw the finer step removes)."""
    demand = real_minutes()
    per_minute = {}
    for boot in (120, 300):
        rules = dataclasses.replace(MINUTE, capacity=8.0, boot_delay_s=boot)
        path = optimal_provisioning(demand.to_numpy(), rules)
        per_minute[boot] = optimum_cost(path, rules)
    assert per_minute[120] < per_minute[300]
    five = demand.resample("5min").sum().to_numpy()
    coarse = {}
    for boot in (120, 300):
        rules = dataclasses.replace(FIVE, capacity=40.0, boot_delay_s=boot)
        coarse[boot] = optimum_cost(optimal_provisioning(five, rules), rules)
    assert coarse[120] == coarse[300]


def test_the_forecasts_cover_each_interval_its_fleets_need():
    fleets = {"web": FIVE, "pods": MINUTE}
    assert forecast_steps(fleets, {}) == {5: 2, 1: 3}  # 90 s: two minutes ahead, plus now
    assert forecast_steps(fleets, {"pods": MINUTE})[1] == 4  # cells up to a 180 s boot
