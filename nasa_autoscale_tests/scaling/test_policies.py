"""Policies read nothing from the future, behave as documented, and tuning never sees the test
window."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.scaling import policies
from nasa_autoscale.scaling.recommend import next_servers
from nasa_autoscale.scaling.report import write_report
from nasa_autoscale.scaling.simulator import ScalingRules, simulate
from nasa_autoscale.scaling.sweep import (
    SCENARIOS,
    best_policy,
    forecast_steps,
    make_window,
    robustness,
    run_sweep,
)
from nasa_autoscale.yardsticks import load as load_yardsticks
from nasa_autoscale_tests.golden import nasa_calendar

RULES = ScalingRules(capacity=40, min_servers=2)


def every_policy() -> list[policies.Policy]:
    predictive = policies.Predictive(0.9, 0.5, 200.0)
    return [
        policies.Static(10),
        *(policies.preset(name) for name in policies.PRESETS),
        policies.HPA(0.7),
        predictive,
        policies.Hybrid(policies.Predictive(0.8, 0.0, 200.0), 0.8),
        policies.AnomalyGuard(policies.Predictive(0.9, 1.0, 200.0), 0.5),
        adaptive(),
    ]


def adaptive() -> policies.Predictive:
    policy = policies.Predictive(0.9, 0.0, 200.0, gamma=0.05)
    policy.name = "predictive_adaptive"
    return policy


@pytest.fixture(scope="module")
def week(real_traffic_5m):
    """A real week of demand with noisy forecasts and some flags."""
    demand = real_traffic_5m["requests"].to_numpy(float)[-7 * 288 :]
    rng = np.random.default_rng(0)
    yhat = np.nan_to_num(demand) * rng.uniform(0.8, 1.2, len(demand))
    forecasts = np.stack([np.stack([yhat, yhat * 0.8, yhat * 1.2], 1)] * 2, 1)
    flags = rng.random(len(demand)) < 0.05
    return demand, forecasts, flags


@pytest.mark.parametrize("policy", every_policy(), ids=lambda p: p.name)
def test_no_policy_reads_the_future(policy, week):
    demand, forecasts, flags = week
    base = simulate(demand, policy, RULES, forecasts, flags)
    for t in (300, 1000):
        later_demand, later_forecasts, later_flags = demand.copy(), forecasts.copy(), flags.copy()
        later_demand[t:] *= 3  # bucket t's own demand and everything after
        later_forecasts[t + 1 :] *= 3  # forecasts from origins after t
        later_flags[t:] = ~later_flags[t:]  # flags of bucket t onwards
        changed = simulate(later_demand, policy, RULES, later_forecasts, later_flags)
        assert (changed["recommended"].iloc[: t + 1] == base["recommended"].iloc[: t + 1]).all()
        if policy.name != "static":  # the change does reach later decisions
            assert (changed["recommended"].iloc[t + 1 :] != base["recommended"].iloc[t + 1 :]).any()


def test_policies_follow_their_rules():
    rules = ScalingRules(capacity=100)
    hot = simulate([190] * 5, policies.preset("reactive_balanced"), rules, initial=1)
    assert hot["recommended"].tolist() == [1, 2, 2, 2, 3]  # +1 above 75%, then a 2-bucket cooldown
    hpa = simulate([300, 300, 300], policies.HPA(0.5), rules, initial=2)
    assert hpa["recommended"].tolist() == [2, 6, 6]  # ceil(2 * 1.5 / 0.5); within tolerance after
    forecast = np.array([[[150, 100, 200], [350, 300, 400]]] * 2, float)
    predictive = simulate([100, 100], policies.Predictive(0.5), rules, forecast, initial=2)
    assert predictive["recommended"].tolist() == [4, 4]  # the median of the next two buckets' peak
    upper = simulate([100, 100], policies.Predictive(0.9), rules, forecast, initial=2)
    assert upper["recommended"].tolist() == [4, 4]  # 400 is the 90% quantile
    guard = policies.AnomalyGuard(policies.Static(4), 0.5, hold=2)
    flagged = simulate([1] * 5, guard, rules, flags=[True, False, False, False, False], initial=4)
    assert flagged["recommended"].tolist() == [4, 6, 6, 4, 4]


def test_policies_rebuild_from_their_params():
    for policy in every_policy():
        name = "predictive" if policy.name == "predictive_adaptive" else policy.name
        rebuilt = policies.build(name, json.loads(json.dumps(policy.params())))
        assert rebuilt.params() == policy.params()
    with pytest.raises(ValueError, match="unknown policy"):
        policies.build("crystal_ball", {})


ROBUST = {"realistic": SCENARIOS["realistic"]}  # the fleet the shipped robustness table sweeps


def synthetic_inputs(real_traffic_5m):
    """The real requests and same-slot-last-week forecasts, shaped as the assets hold them."""
    requests = real_traffic_5m.set_index("bucket_start")["requests"].astype(float)
    rows = []
    for window, (start, end) in nasa_calendar(requests).windows().items():
        origins = pd.date_range(start, end, freq="5min", inclusive="left")
        for step in range(1, forecast_steps(SCENARIOS, ROBUST)[5] + 1):
            times = origins + pd.Timedelta(minutes=5 * (step - 1))
            yhat = requests.reindex(times - pd.Timedelta(days=7)).to_numpy()
            rows.append(
                pd.DataFrame(
                    {
                        "window": window,
                        "origin": origins,
                        "step": step,
                        "bucket_start": times,
                        "yhat": yhat,
                        "yhat_lower": yhat * 0.8,
                        "yhat_upper": yhat * 1.25,
                    }
                )
            )
    anomalies = pd.DataFrame({"bucket_start": requests.index, "is_anomaly_z": False, "kind": None})
    return requests, pd.concat(rows, ignore_index=True), anomalies


def test_the_sweep_tunes_on_validation_only_and_reports(real_traffic_5m, tmp_path):
    requests, forecasts, anomalies = synthetic_inputs(real_traffic_5m)
    settings = {"realistic": SCENARIOS["realistic"]}
    decisions, report, tuning, _ = run_sweep(
        requests, forecasts, anomalies, nasa_calendar(requests), settings, print
    )
    expected = {
        "static",
        "hpa",
        "keda_hpa",
        "predictive",
        "predictive_matched",
        "hybrid",
        "anomaly_guard",
        "oracle",
        "hindsight_optimal",
        *policies.PRESETS,
    }
    assert set(report["policy"]) == expected
    assert {
        "policy",
        "cost",
        "pct_above_optimal",
        "dropped_fraction",
        "violating_fraction",
        "scaling_actions",
        "mean_utilization",
        "params",
    } <= set(report.columns)
    assert {"policy", "bucket_start", "demand", "servers", "capacity", "dropped"} <= set(
        decisions.columns
    )
    by = report.set_index("policy")
    assert by.at["hindsight_optimal", "dropped_fraction"] == 0
    assert by.at["oracle", "cost"] <= by.at["hindsight_optimal", "cost"]
    assert (
        report.drop(index=report.index[report.policy == "oracle"])["pct_above_optimal"] >= -1e-9
    ).all()
    assert len(decisions) == len(expected) * 9 * 288
    # a different test window changes the results, never what tuning chose
    doubled = requests.copy()
    doubled[doubled.index >= nasa_calendar(requests).windows()["test"][0]] *= 2
    _, report2, tuning2, _ = run_sweep(
        doubled, forecasts, anomalies, nasa_calendar(requests), settings, print
    )
    pd.testing.assert_frame_equal(tuning, tuning2)
    assert report2["selected"].tolist() == report["selected"].tolist()  # chosen on validation
    assert report.groupby("setting")["selected"].sum().eq(1).all()  # one per setting
    assert not report.loc[report.policy.isin(["oracle", "hindsight_optimal"]), "selected"].any()
    assert not np.allclose(report2["cost"], report["cost"])
    assert report2["params"].tolist() == report["params"].tolist()
    calendar = nasa_calendar(requests)
    nasa = load_yardsticks()[0]
    path = write_report(report, tuning, {"sweep_s": 1.0}, "replica", tmp_path, calendar, nasa)
    text = path.read_text()
    assert "## Targets" in text and "hindsight_optimal" in text
    assert "target <= 15%" in text  # the NASA trace's yardstick
    # another site's report: its own figures, no target that means nothing there
    other = write_report(report, tuning, {"sweep_s": 1.0}, "real", tmp_path / "site", calendar)
    text_other = other.read_text()
    assert "## Targets" not in text_other and "target <=" not in text_other
    assert "## The selected policies" in text_other
    assert "test 1995-08-23 .. 1995-08-31 (the last 9 whole days)" in text
    assert (tmp_path / "figures" / "cost_pareto.png").stat().st_size > 10_000
    # the recommendation follows the best policy from the end of the test window
    name = best_policy(report, "realistic")
    policy = policies.build(name, json.loads(by.at[name, "params"]))
    rules = settings["realistic"]
    test = make_window("test", requests, forecasts, anomalies, rules, calendar)
    history = simulate(test.demand, policy, rules, test.forecasts, test.flags)
    decision = next_servers(policy, history, rules, np.array([[400, 300, 500]] * 2, float))
    assert decision["action"] in {"scale_out", "scale_in", "hold"}
    assert rules.min_servers <= decision["target_servers"] <= rules.max_servers
    assert name in decision["reason"]


def test_the_preset_comparison_says_missed_when_ours_costs_more():
    from nasa_autoscale.scaling.report import target_lines

    def row(policy, cost, dropped):
        return {
            "setting": "realistic",
            "policy": policy,
            "cost": cost,
            "dropped_fraction": dropped,
            "pct_above_optimal": 100 * (cost / 100 - 1),
            "selected": policy == "predictive",
        }

    report = pd.DataFrame(
        [
            row("hindsight_optimal", 100, 0.0),
            row("reactive_balanced", 150, 0.001),
            row("predictive", 120, 0.004),
            row("hpa", 160, 0.0),
        ]
    )
    headline, hindsight, comparison = target_lines(report, {"realistic": 15.0})
    assert "selected on the validation window is `predictive`" in headline
    assert headline.endswith(
        "+20.0% vs the optimum at 0.40% dropped; target <= 15% at <= 0.5% dropped: missed"
    )
    assert "hindsight only" in hindsight
    assert comparison.endswith(": missed (it costs more)")  # hpa drops no more but costs more
    report.loc[report.policy == "hpa", "cost"] = 140
    assert target_lines(report)[-1].endswith(": met")


def test_validation_forecasts_never_use_parameters_tuned_on_the_validation_window(
    real_traffic_5m,
):
    from nasa_autoscale.features.events import load_events
    from nasa_autoscale.scaling.forecasts import fit_and_forecast

    traffic = real_traffic_5m.set_index("bucket_start")
    traffic = traffic[traffic.index >= pd.Timestamp("1995-08-03")]
    tuned = {"num_leaves": 7}  # as if chosen on the validation window
    models = {
        window: fit_and_forecast(
            traffic, 5, load_events(), 1, window, nasa_calendar(traffic), tuned
        )[0]
        for window in ("validation", "test")
    }
    assert models["test"].params()["num_leaves"] == 7
    assert models["validation"].params()["num_leaves"] == 31  # the default, fixed in advance


def test_an_adaptive_predictive_policy_widens_after_demand_beats_its_plan():
    rules = ScalingRules(capacity=10)
    forecast = np.array([[[100, 80, 120], [100, 80, 120]]] * 40, float)
    fixed = simulate([150] * 40, policies.Predictive(0.9), rules, forecast, initial=12)
    adapting = simulate([150] * 40, adaptive(), rules, forecast, initial=12)
    assert fixed["recommended"].nunique() == 1  # the same plan, missed every bucket
    # the plan widens until demand beats it about 1 - q of the time: 150 needs 15 servers
    assert fixed["recommended"].iloc[-1] == 12 and adapting["recommended"].iloc[-5:].min() >= 15
    # and narrows again when demand falls back inside the plan
    longer = np.concatenate([forecast, forecast[:1].repeat(200, 0)])
    calm = simulate([150] * 40 + [90] * 200, adaptive(), rules, longer, initial=12)
    assert calm["recommended"].iloc[-1] < calm["recommended"].iloc[39]
    # its state goes through the API's JSON and back
    policy = adaptive()
    policy.reset()
    policy.set_state(json.loads(json.dumps({"log_m": 0.4, "planned": 130.0})))
    assert policy.get_state() == {"log_m": 0.4, "planned": 130.0}


@pytest.mark.slow  # eighteen whole sweeps
def test_the_robustness_table_reruns_the_sweep_per_capacity_and_boot_delay(real_traffic_5m):
    requests, forecasts, anomalies = synthetic_inputs(real_traffic_5m)
    cells = robustness(
        requests, forecasts, anomalies, nasa_calendar(requests), ROBUST, progress=lambda _: None
    )
    assert len(cells) == 9
    # the worker processes compute what one process does
    alone = robustness(
        requests,
        forecasts,
        anomalies,
        nasa_calendar(requests),
        ROBUST,
        progress=lambda _: None,
        workers=1,
    )
    pd.testing.assert_frame_equal(cells, alone)
    assert set(cells.capacity) == {20.0, 40.0, 100.0} and set(cells.boot_delay_min) == {2, 5, 10}
    assert set(cells.fleet) == {"realistic"}  # around the fleet's own rules: 40, 5 min
    assert (cells.selected_pct_above_optimal > -1e-9).all()
    assert cells.presets_dropping_no_more.between(0, 3).all()
    # a 2-minute boot rounds up to the 5-minute bucket: the same figures as 5 minutes
    by = cells.drop(columns=["boot_delay_s"]).set_index(["capacity", "boot_delay_min"])
    pd.testing.assert_series_equal(by.loc[(40.0, 2)], by.loc[(40.0, 5)], check_names=False)
    # the verdict is each preset dropping no more costing more; flip one cell and it says where
    from nasa_autoscale.scaling.report import robustness_section

    assert "In every cell" in robustness_section(cells.assign(cheaper_than_each_of_them=True))
    flipped = cells.assign(cheaper_than_each_of_them=cells.index != 4)
    assert "Not in every cell" in robustness_section(flipped) and "capacity 40, boot 300 s" in (
        robustness_section(flipped)
    )


def served_inputs(path):
    """(sweep inputs, cost_report, forecast_next) of the served warehouse."""
    from nasa_autoscale import warehouse

    with warehouse.reading(path) as con:
        traffic = warehouse.read(con, "SELECT bucket_start, requests FROM nasa.traffic_5m")
        inputs = (
            traffic.set_index("bucket_start")["requests"].astype(float),
            warehouse.read(con, "SELECT * FROM nasa.scaling_forecasts"),
            warehouse.read(con, "SELECT * FROM nasa.anomalies_5m"),
        )
        report = warehouse.read(con, "SELECT * FROM nasa.cost_report")
        upcoming = warehouse.read(con, "SELECT * FROM nasa.forecast_next ORDER BY bucket_start")
    return inputs, report, upcoming


def test_the_recommendation_follows_the_selected_policy_or_falls_back(served_warehouse):
    from nasa_autoscale.scaling.recommend import recommend

    inputs, report, upcoming = served_inputs(served_warehouse)
    table = recommend(*inputs, report, upcoming, nasa_calendar(inputs[0]), SCENARIOS).set_index(
        "setting"
    )
    assert list(table.index) == list(SCENARIOS)
    for setting in SCENARIOS:
        assert table.at[setting, "policy"] == best_policy(report, setting)
        assert table.at[setting, "bucket_start"] == upcoming["bucket_start"].iloc[0]
    # another policy selected on validation: the recommendation follows it
    moved = report.copy()
    moved["selected"] = (moved["policy"] == "static") & (moved["setting"] == "realistic")
    moved.loc[moved["setting"] == "default", "selected"] = report["selected"]
    assert recommend(*inputs, moved, upcoming, nasa_calendar(inputs[0]), SCENARIOS).set_index(
        "setting"
    ).at["realistic", "policy"] == ("static")
    # no cost report (a short history): the untuned predictive policy, saying so
    fallback = recommend(*inputs, report.iloc[:0], upcoming, nasa_calendar(inputs[0]), SCENARIOS)
    assert fallback["reason"].str.contains("untuned").all()
    with pytest.raises(ValueError, match="materialize forecast_next"):
        recommend(*inputs, report, upcoming.iloc[:0], nasa_calendar(inputs[0]), SCENARIOS)


def test_the_plan_runs_the_selected_policy_forward_and_starts_with_the_recommendation(
    served_warehouse,
):
    from nasa_autoscale.scaling.plan import forward_forecasts, provisioning_plan
    from nasa_autoscale.scaling.recommend import recommend

    inputs, report, upcoming = served_inputs(served_warehouse)
    plan, summaries = provisioning_plan(
        *inputs, report, upcoming, nasa_calendar(inputs[0]), SCENARIOS
    )
    assert plan.groupby("setting").size().to_dict() == {s: 288 for s in SCENARIOS}
    targets = recommend(*inputs, report, upcoming, nasa_calendar(inputs[0]), SCENARIOS).set_index(
        "setting"
    )["target_servers"]
    assert plan.groupby("setting")["servers"].first().to_dict() == targets.to_dict()
    for summary in summaries:
        rows = plan[plan["setting"] == summary["setting"]]
        assert summary["policy"] == best_policy(report, summary["setting"])
        assert summary["expected_cost"] > 0 and summary["peak_servers"] == rows["servers"].max()
        assert len(summary["scale_times"]) == (rows["action"] != "hold").sum()
    # at bucket t the policy plans on the forecast's rows t, t + 1, ... (the last one repeated)
    ahead = forward_forecasts(upcoming.head(3), 2)
    assert ahead.shape == (3, 2, 3) and (ahead[2, 1] == ahead[2, 0]).all()
    assert (ahead[0, 1] == upcoming[["yhat", "yhat_lower", "yhat_upper"]].iloc[1]).all()


def test_a_days_plan_is_priced_against_the_demand_that_came_and_the_hindsight_optimum():
    from nasa_autoscale.scaling.plan import PLAN_SETTING, score_plan

    day = pd.Timestamp("1995-08-30")
    buckets = pd.date_range(day, periods=288, freq="5min")
    shape = 200 + 150 * np.sin(np.arange(288) / 288 * 2 * np.pi)
    before = pd.Series(
        120.0, index=pd.date_range(day - pd.Timedelta("1h"), periods=12, freq="5min")
    )
    forecast = pd.DataFrame(
        {"bucket_start": buckets, "yhat": shape, "yhat_lower": shape * 0.9},
    ).assign(yhat_upper=shape * 1.1)
    came = pd.concat([before, pd.Series(shape, index=buckets)])
    surge = pd.concat([before, pd.Series(shape * 2, index=buckets)])
    met, missed = (
        score_plan(forecast, came, pd.DataFrame(), SCENARIOS),
        score_plan(forecast, surge, pd.DataFrame(), SCENARIOS),
    )
    # the plan was made from the forecast alone: the same plan, the same cost, whatever came
    assert met["plan_cost"] == missed["plan_cost"] > 0
    assert met["plan_policy"] == "predictive" and met["plan_setting"] == PLAN_SETTING
    # twice the demand it planned for: it drops about half; the optimum pays for it and drops none
    assert met["plan_dropped"] < 0.01 and 0.3 < missed["plan_dropped"] < 0.6
    assert missed["optimum_cost"] > met["optimum_cost"] > 0
    assert met["plan_pct_above_optimum"] == pytest.approx(
        100 * (met["plan_cost"] / met["optimum_cost"] - 1)
    )
    # an hour without a log is neither dropped nor needed: the figures stay finite
    gap = came.copy()
    gap[buckets[:12]] = np.nan
    partial = score_plan(forecast, gap, pd.DataFrame(), SCENARIOS)
    assert partial["plan_cost"] == met["plan_cost"] and partial["plan_dropped"] < 0.01
    assert 0 < partial["optimum_cost"] <= met["optimum_cost"]


def test_the_guard_reads_the_chosen_detectors_spikes_else_the_3_sigma_ones():
    from nasa_autoscale.scaling.sweep import spike_flags

    times = pd.date_range("1995-08-23", periods=4, freq="5min")
    chosen = pd.DataFrame({"bucket_start": times, "spike": [False, True, False, True]})
    assert spike_flags(chosen).tolist() == [False, True, False, True]
    three_sigma = pd.DataFrame(
        {
            "bucket_start": times,
            "is_anomaly_z": [True, True, None, False],
            "kind": ["dip", "spike", "spike", "spike"],
        }
    )
    assert spike_flags(three_sigma).tolist() == [False, True, False, False]  # spikes only


def test_one_resolver_says_which_policy_acts_on_a_setting():
    from nasa_autoscale.scaling.recommend import UnknownPolicy, known_policies, resolve_policy

    rules = SCENARIOS["realistic"].as_dict()
    report = pd.DataFrame(
        {
            "setting": ["realistic"] * 4,
            "policy": ["predictive", "hpa", "oracle", "hindsight_optimal"],
            "params": [
                json.dumps({"quantile": 0.94, "rules": rules}),
                json.dumps({"target": 0.7, "rules": rules}),
                json.dumps({"rules": rules}),
                json.dumps({"rules": rules}),
            ],
            "selected": [False, True, False, False],
        }
    )
    best = resolve_policy(report, "realistic", SCENARIOS)
    assert (best.name, best.params, best.tuned) == ("hpa", {"target": 0.7}, True)
    assert best.rules == SCENARIOS["realistic"] and "validation window" in best.chosen_by
    asked = resolve_policy(report, "realistic", SCENARIOS, "predictive")
    assert asked.params == {"quantile": 0.94} and asked.chosen_by == "asked for"
    assert asked.build().params()["quantile"] == 0.94
    assert known_policies(report, "realistic") == ["hpa", "predictive"]  # never the bounds
    with pytest.raises(UnknownPolicy, match="known: best, hpa, predictive"):
        resolve_policy(report, "realistic", SCENARIOS, "oracle")
    with pytest.raises(UnknownPolicy, match="unknown fleet 'cheap'; known: default, realistic"):
        resolve_policy(report, "cheap", SCENARIOS)
    fallback = resolve_policy(
        report.iloc[:0], "default", SCENARIOS
    )  # a short history: no sweep yet
    assert (fallback.name, fallback.tuned) == ("predictive", False)
    assert fallback.rules == SCENARIOS["default"] and "untuned" in fallback.chosen_by


def test_a_site_twenty_times_the_trace_gets_a_fleet_in_the_hundreds_within_its_budget(
    real_traffic_5m,
):
    """Every request of the real trace repeated 20 times, on the realistic fleet's servers with
    room to grow (2..400): the selected policy stays within its dropped budget on the test
    window, with a fleet in the hundreds (capped at 50 it dropped about half)."""
    import dataclasses

    requests, forecasts, anomalies = synthetic_inputs(real_traffic_5m)
    requests = requests * 20
    forecasts = forecasts.assign(
        **{c: forecasts[c] * 20 for c in ("yhat", "yhat_lower", "yhat_upper")}
    )
    big = dataclasses.replace(SCENARIOS["realistic"], max_servers=400)
    _, report, _, _ = run_sweep(
        requests, forecasts, anomalies, nasa_calendar(requests), {"big": big}, lambda _: None
    )
    selected = report[report["selected"]].iloc[0]
    assert selected["dropped_fraction"] <= big.dropped_budget
    assert selected["peak_servers"] > 100
    capped = dataclasses.replace(big, max_servers=50)
    _, small, _, _ = run_sweep(
        requests, forecasts, anomalies, nasa_calendar(requests), {"capped": capped}, lambda _: None
    )
    assert small[small["selected"]]["dropped_fraction"].iloc[0] > 0.3  # wrong by construction
