"""The simulator's rules on small hand-made cases, and the optimum against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nasa_autoscale.scaling.simulator import (
    FixedSchedule,
    ScalingRules,
    cost,
    execute,
    initial_servers,
    optimal_provisioning,
    oracle,
    replay,
    simulate,
    summarize,
)

RULES = ScalingRules(capacity=100, min_servers=1, max_servers=10, price_per_hour=1.0)


def run(requests, demand, rules=RULES, initial=1):
    return simulate(
        np.array(demand, float), FixedSchedule(np.array(requests)), rules, initial=initial
    )


def test_a_new_server_serves_only_after_the_boot_delay():
    out = run([1, 3, 3, 3], [100, 300, 300, 300])
    assert out["provisioned"].tolist() == [1, 3, 3, 3]
    assert out["serving"].tolist() == [1, 1, 3, 3]  # asked for at 1, serving from 2
    assert out["dropped"].tolist() == [0, 200, 0, 0]
    slow = ScalingRules(**{**RULES.as_dict(), "boot_delay_s": 600})  # two buckets
    assert run([1, 3, 3, 3], [100] * 4, slow)["serving"].tolist() == [1, 1, 1, 3]
    instant = ScalingRules(**{**RULES.as_dict(), "boot_delay_s": 0})
    assert run([1, 3, 3, 3], [100] * 4, instant)["serving"].tolist() == [1, 3, 3, 3]


def test_scale_in_waits_for_the_stabilization_window():
    # the window is two buckets at 5 minutes: one low recommendation is not enough
    out = run([5, 2, 5, 2, 2, 2], [100] * 6, initial=5)
    assert out["provisioned"].tolist() == [5, 5, 5, 5, 2, 2]
    longer = ScalingRules(**{**RULES.as_dict(), "stabilization_s": 900})  # four buckets
    assert run([5, 2, 2, 2, 2, 2], [100] * 6, longer, 5)["provisioned"].tolist() == [
        5,
        5,
        5,
        5,
        2,
        2,
    ]
    # a scale-in stops the newest servers first: booting ones go before serving ones
    out = run([2, 4, 2, 2], [100] * 4, ScalingRules(**{**RULES.as_dict(), "stabilization_s": 0}), 2)
    assert out["serving"].tolist() == [2, 2, 2, 2]


def test_billing_per_second_with_a_minimum_and_per_hour():
    # two servers for 12 buckets of 5 minutes = 2 server-hours
    assert cost(np.array([2] * 12), RULES) == pytest.approx(2.0)
    # one extra server for one 5-minute bucket: 300 s
    assert cost(np.array([1, 2, 1, 1]), RULES) == pytest.approx((4 * 300 + 300) / 3600)
    hourly = ScalingRules(**{**RULES.as_dict(), "billing": "hour"})
    assert cost(np.array([1, 2, 1, 1]), hourly) == pytest.approx(2.0)  # each start: one hour
    minute = ScalingRules(**{**RULES.as_dict(), "minutes": 1, "min_billed_s": 120})
    assert cost(np.array([1, 2, 1]), minute) == pytest.approx((180 + 120) / 3600)


def test_drops_violations_utilization_and_missing_buckets():
    out = run([1, 1, 1, 1], [150, 50, np.nan, 100])
    assert out["dropped"].iloc[[0, 1, 3]].tolist() == [50, 0, 0]
    summary = summarize(out, RULES)
    assert summary["dropped_fraction"] == pytest.approx(50 / 300)
    assert summary["violating_fraction"] == pytest.approx(1 / 3)  # the missing bucket is skipped
    assert summary["mean_utilization"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert summary["cost"] == pytest.approx(4 * 300 / 3600)  # ... but billed
    assert summary["scaling_actions"] == 0


def test_rules_reject_nonsense():
    with pytest.raises(ValueError, match="capacity"):
        ScalingRules(capacity=0)
    with pytest.raises(ValueError, match="min_servers"):
        ScalingRules(min_servers=5, max_servers=2)
    with pytest.raises(ValueError, match="billing"):
        ScalingRules(billing="monthly")


def brute_force(demand, rules, levels):
    """Cheapest zero-drop cost over every recommendation sequence (tiny cases only)."""
    best = np.inf
    initial = initial_servers(np.array(demand, float), rules)
    for requests in itertools.product(levels, repeat=len(demand)):
        out = run(list(requests), demand, rules, initial=initial)
        if (out["dropped"].fillna(0) == 0).all():
            best = min(best, out["provisioned"].sum())
    return best


@pytest.mark.parametrize(
    "demand",
    [
        [100, 300, 100, 100, 300, 100, 100],
        [300, 100, 200, 100, 100, 300, 100],
        [100] * 3 + [300] * 4,
    ],
)
def test_the_optimum_is_the_cheapest_schedule_brute_force_finds(demand):
    rules = ScalingRules(capacity=100, min_servers=1, max_servers=3)
    path = optimal_provisioning(np.array(demand, float), rules)
    assert path.sum() == brute_force(demand, rules, range(1, 4))
    replayed = simulate(np.array(demand, float), replay(path, rules), rules)
    assert replayed["provisioned"].tolist() == path.tolist()
    assert (replayed["dropped"] == 0).all()


@pytest.mark.parametrize("stabilization_min", [0, 5, 10, 15])
@pytest.mark.parametrize("boot_min", [0, 5, 15])
def test_the_optimum_is_exact_for_every_rule_the_dashboard_offers(stabilization_min, boot_min):
    """Random small cases against brute force, for each stabilization window and boot delay."""
    rules = ScalingRules(
        capacity=100,
        min_servers=1,
        max_servers=3,
        boot_delay_s=boot_min * 60,
        stabilization_s=stabilization_min * 60,
    )
    rng = np.random.default_rng(stabilization_min * 100 + boot_min)
    for _ in range(3):
        demand = rng.choice([100.0, 200.0, 300.0], size=6)
        path = optimal_provisioning(demand, rules)
        replayed = simulate(demand, replay(path, rules), rules)
        assert replayed["provisioned"].tolist() == path.tolist(), demand
        assert (replayed["dropped"] == 0).all()
        assert path.sum() == brute_force(demand, rules, range(1, 4)), demand


def test_a_long_stabilization_window_cannot_scale_in_below_the_first_fleet_early():
    # the case the review found: 15 minutes of stabilization, no boot delay; the programme used
    # to scale in at once (18 server-buckets), which no recommendation sequence can do
    rules = ScalingRules(
        capacity=100, min_servers=1, max_servers=3, boot_delay_s=0, stabilization_s=900
    )
    demand = np.array([300, 100, 200, 300, 200, 300, 300], float)
    path = optimal_provisioning(demand, rules)
    assert path.sum() == brute_force(demand, rules, range(1, 4)) == 20
    assert path[:3].tolist() == [3, 3, 3]


def test_the_optimum_on_real_traffic_drops_nothing_and_sits_between_oracle_and_policies(
    real_traffic_5m,
):
    demand = real_traffic_5m["requests"].to_numpy(float)[-3 * 288 :]
    rules = ScalingRules(capacity=40, min_servers=2)
    path = optimal_provisioning(demand, rules)
    replayed = simulate(demand, replay(path, rules), rules)
    assert (replayed["provisioned"].to_numpy() == path).all()
    assert replayed["dropped"].fillna(0).max() == 0
    optimum = summarize(replayed, rules)["cost"]
    assert summarize(oracle(demand, rules), rules)["cost"] <= optimum
    # holding the oracle's need one bucket early and late is feasible, so never cheaper
    need = rules.required(demand)
    padded = np.maximum.reduce([need, np.r_[need[1:], need[-1]], np.r_[need[0], need[:-1]]])
    assert optimum <= cost(np.maximum.reduce([padded, np.r_[padded[1:], padded[-1]]]), rules)


def test_under_per_hour_billing_the_optimum_is_a_stated_lower_bound():
    from nasa_autoscale.scaling.simulator import optimum_cost

    rules = ScalingRules(
        capacity=100, min_servers=1, max_servers=3, billing="hour", price_per_hour=1.0
    )
    rng = np.random.default_rng(7)
    for _ in range(3):
        demand = rng.choice([100.0, 200.0, 300.0], size=6)
        bound = optimum_cost(optimal_provisioning(demand, rules), rules)
        initial = initial_servers(demand, rules)
        cheapest = min(
            cost(out["provisioned"].to_numpy(), rules, initial)
            for requests in itertools.product(range(1, 4), repeat=len(demand))
            if ((out := run(list(requests), demand, rules, initial=initial))["dropped"] == 0).all()
        )
        assert bound <= cheapest  # a lower bound of the hour-billed optimum, as documented
        assert bound == pytest.approx(optimal_provisioning(demand, rules).sum() * 5 / 60)


def test_a_fixed_plan_serves_after_the_boot_delay():
    rules = ScalingRules(capacity=10, min_servers=1, boot_delay_s=300, minutes=5)
    outcome = execute([2, 4, 4, 1], [15, 35, 35, 5], rules, initial=2)
    # the two servers started at bucket 1 serve from bucket 2; a scale-in is at once
    assert outcome["serving"].tolist() == [2, 2, 4, 1]
    assert outcome["dropped"].tolist() == [0, 15, 0, 0]


@pytest.mark.parametrize("boot_s,stabilization_s", [(60, 0), (90, 120), (150, 60), (30, 300)])
def test_the_optimum_is_exact_at_a_one_minute_step(boot_s, stabilization_s):
    """A fleet deciding every minute: boots and windows in seconds, counted in whole minutes
    (a 90 s boot serves from the second minute), against brute force."""
    rules = ScalingRules(
        capacity=100,
        min_servers=1,
        max_servers=3,
        boot_delay_s=boot_s,
        stabilization_s=stabilization_s,
        minutes=1,
    )
    assert rules.boot == -(-boot_s // 60)
    rng = np.random.default_rng(boot_s + stabilization_s)
    for _ in range(3):
        demand = rng.choice([100.0, 200.0, 300.0], size=6)
        path = optimal_provisioning(demand, rules)
        replayed = simulate(demand, replay(path, rules), rules)
        assert (replayed["dropped"] == 0).all()
        assert path.sum() == brute_force(demand, rules, range(1, 4)), demand
