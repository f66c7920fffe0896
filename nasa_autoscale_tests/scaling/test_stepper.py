"""The live planner's stepper decides as the simulator does, one bucket at a time."""

from __future__ import annotations

import numpy as np
import pytest

from nasa_autoscale.scaling import policies
from nasa_autoscale.scaling.simulator import ScalingRules, simulate
from nasa_autoscale.scaling.stepper import FleetStepper


def _traffic(n: int = 600, seed: int = 3):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    level = 300 + 200 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 40, n)
    demand = np.maximum(level, 0).round()
    demand[50:53] = np.nan  # missing buckets are skipped alike
    noise = rng.normal(0, 30, (n, 3))
    forecasts = np.stack(
        [np.roll(demand, -k) + noise[:, k] for k in range(3)], axis=1
    )  # (n, steps): bucket t + k from origin t
    rows = np.stack([forecasts, forecasts - 60, forecasts + 60], axis=2)
    return np.nan_to_num(demand, nan=np.nan), np.nan_to_num(rows, nan=300.0)


@pytest.mark.parametrize(
    "make",
    [
        lambda: policies.Predictive(0.9, 0.5, 300.0, gamma=0.02),
        lambda: policies.preset("reactive_balanced"),
        lambda: policies.HPA(0.7),
        lambda: policies.KedaHPA(),
        lambda: policies.Hybrid(policies.Predictive(0.8), 0.7),
    ],
)
@pytest.mark.parametrize("minutes,boot_s,stabilization_s", [(5, 300, 300), (1, 180, 300)])
def test_stepping_bucket_by_bucket_decides_what_the_simulator_decides(
    make, minutes, boot_s, stabilization_s
):
    rules = ScalingRules(
        capacity=100.0, minutes=minutes, boot_delay_s=boot_s, stabilization_s=stabilization_s
    )
    demand, forecasts = _traffic()
    forecasts = forecasts[:, : rules.boot + 1]
    expected = simulate(demand, make(), rules, forecasts, None, initial=4)
    stepper = FleetStepper(make(), rules, 4)
    got = [stepper.step(demand[t - 1] if t else None, forecasts[t]) for t in range(len(demand))]
    for column in ("recommended", "provisioned", "serving"):
        assert [g[column] for g in got] == expected[column].tolist(), column


def test_a_long_running_stepper_forgets_old_buckets_and_decides_the_same():
    rules = ScalingRules(capacity=100.0, minutes=5)
    demand, forecasts = _traffic(n=2000)
    forecasts = forecasts[:, : rules.boot + 1]
    policy = policies.Predictive(0.9, gamma=0.05)
    expected = simulate(demand, policy, rules, forecasts, None, initial=3)
    stepper = FleetStepper(policies.Predictive(0.9, gamma=0.05), rules, 3)
    got = [stepper.step(demand[t - 1] if t else None, forecasts[t]) for t in range(2000)]
    assert len(stepper.demand) < 2000 - 100  # trimmed
    assert [g["provisioned"] for g in got] == expected["provisioned"].tolist()
