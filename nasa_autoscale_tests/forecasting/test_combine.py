"""Ensemble weights chosen on the validation window, judged there leave-one-day-out."""

import json

import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.forecasting import combine, registry
from nasa_autoscale.forecasting.benchmark import _ensembles
from nasa_autoscale.forecasting.models import ensemble

DAY = 288


def forecasts(times, members: dict[str, np.ndarray], protocol="one_step") -> pd.DataFrame:
    """Stored forecasts of one protocol: one row per member and bucket."""
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "model": name,
                    "granularity": "5m",
                    "protocol": protocol,
                    "origin": times,
                    "bucket_start": times,
                    "step": 1,
                    "yhat": values,
                    "yhat_lower": values - 5,
                    "yhat_upper": values + 5,
                }
            )
            for name, values in members.items()
        ],
        ignore_index=True,
    )


@pytest.fixture
def two_days():
    times = pd.date_range("2026-03-02", periods=2 * DAY, freq="5min")
    actual = pd.Series(100.0 + 50 * np.sin(np.arange(len(times)) / 20), index=times)
    return times, actual


def test_the_grid_covers_the_simplex():
    grid = combine.simplex(3)
    assert len(grid) == 66 and np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all()
    assert [1.0, 0.0, 0.0] in grid.tolist() and [0.3, 0.3, 0.4] in np.round(grid, 6).tolist()


def test_weights_cancel_opposite_biases(two_days):
    times, actual = two_days
    members = {"a": actual.to_numpy() + 10, "b": actual.to_numpy() - 10}
    weights, rmse = combine.choose(forecasts(times, members), ["a", "b", "absent"], actual)
    assert weights == {"a": 0.5, "b": 0.5}  # a member with no forecast gets no weight
    assert rmse == pytest.approx(0.0, abs=1e-9)


def test_the_validation_rmse_is_judged_on_days_the_weights_did_not_see(two_days):
    # day 1: a is exact and b 40 too high; day 2 the other way round. On both days together
    # 0.5 / 0.5 is best (20 off everywhere), but each day alone prefers the member the other
    # day rejects: held out, each day gets the wrong member, 40 off.
    times, actual = two_days
    first = np.arange(len(times)) < DAY
    a = actual.to_numpy() + np.where(first, 0, 40)
    b = actual.to_numpy() + np.where(first, 40, 0)
    weights, rmse = combine.choose(forecasts(times, {"a": a, "b": b}), ["a", "b"], actual)
    assert weights == {"a": 0.5, "b": 0.5}
    assert rmse == pytest.approx(40.0)  # not the in-sample 20


def test_weighted_ensemble_by_hand(two_days):
    times, actual = two_days
    rows = forecasts(times[:1], {"a": np.array([10.0]), "b": np.array([20.0])})
    mean = ensemble(rows, ["a", "b"], "ensemble_weighted", {"a": 0.75, "b": 0.25})
    assert mean.loc[0, ["yhat", "yhat_lower", "yhat_upper"]].tolist() == [12.5, 7.5, 17.5]
    assert mean.loc[0, "model"] == "ensemble_weighted"
    # a member without intervals of its own: the ensemble has none either (no partial sum)
    rows.loc[rows["model"] == "b", ["yhat_lower", "yhat_upper"]] = np.nan
    mean = ensemble(rows, ["a", "b"], "ensemble_weighted", {"a": 0.75, "b": 0.25})
    assert mean.loc[0, "yhat"] == 12.5 and mean.loc[0, ["yhat_lower", "yhat_upper"]].isna().all()


def test_the_benchmark_weights_come_from_validation_alone(two_days):
    times, actual = two_days
    validation = forecasts(
        times, {"lightgbm_direct": actual.to_numpy() + 10, "sarima_fourier": actual - 10}
    )
    later = times + pd.Timedelta(days=2)
    actual = pd.concat([actual, pd.Series(100.0, index=later)])
    test = forecasts(later, {"lightgbm_direct": np.full(len(later), 50.0), "sarima_fourier": 90.0})
    out = _ensembles(test, validation, actual)
    raw, _, weights, judged = out["ensemble_weighted"]
    assert weights == {"one_step": {"lightgbm_direct": 0.5, "sarima_fourier": 0.5}}
    assert judged["one_step"] == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(raw["yhat"], 70.0)  # the validation's weights, applied to the test
    # the test window's values change nothing of the weights
    moved = _ensembles(test.assign(yhat=test["yhat"] * 3), validation, actual)
    assert moved["ensemble_weighted"][2] == weights
    assert "ensemble" not in out  # prophet, an equal-weight member, did not run


def test_the_registry_builds_and_rebuilds_a_weighted_ensemble():
    stored = {
        "weights": {"sarima_fourier": 0.0, "slot_median_3w": 0.6, "seasonal_naive_week": 0.4},
        "slot_median_3w": {"weeks": 3},
        "sarima_fourier": {"daily_order": 6, "order": [2, 0, 1]},
    }
    params = registry.tuned_params("ensemble_weighted", json.loads(json.dumps(stored)))
    assert params["weights"] == stored["weights"] and params["sarima_fourier"] == {"daily_order": 6}
    model = registry.build("ensemble_weighted", params)
    assert [m.name for m in model.members] == ["slot_median_3w", "seasonal_naive_week"]
    assert model.name == "ensemble_weighted" and model.params()["weights"]["slot_median_3w"] == 0.6
    with pytest.raises(ValueError, match="needs its weights"):
        registry.build("ensemble_weighted", {})


def test_a_weighted_ensemble_forecasts_the_next_day(real_traffic_5m):
    from nasa_autoscale.forecasting.next import forecast_next

    traffic = real_traffic_5m.set_index("bucket_start")
    weights = {"slot_median_3w": 0.5, "seasonal_naive_week": 0.5}
    model = registry.build("ensemble_weighted", {"weights": weights})
    forecast = forecast_next(traffic, 5, model)
    members = [
        forecast_next(traffic, 5, registry.build(name))["yhat"].to_numpy() for name in weights
    ]
    assert len(forecast) == DAY and forecast["model"].eq("ensemble_weighted").all()
    np.testing.assert_allclose(forecast["yhat"], np.mean(members, axis=0))


def site_traffic(days: int = 20, seed: int = 3) -> pd.DataFrame:
    """A small site's 5-minute traffic, not NASA's: 2026 dates, a busy evening, quiet weekends,
    bursts, and a morning without logs; with its minute detail."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2026-10-05", periods=days * DAY, freq="5min", name="bucket_start")
    hour = times.hour + times.minute / 60
    level = 40 + 30 * np.asarray(
        np.exp(-(((hour - 20) / 3) ** 2)) * np.where(times.dayofweek >= 5, 0.5, 1)
    )
    minutes = rng.poisson(
        np.repeat(level / 5, 5).reshape(-1, 5) * rng.gamma(4, 0.25, (len(times), 1))
    )
    requests = minutes.sum(axis=1).astype(float)
    traffic = pd.DataFrame(
        {
            "requests": requests,
            "bytes": requests * 2000,
            "unique_hosts": np.ceil(requests / 3),
            "error_rate": 0.01,
            **{f"status_{s}": requests * share for s, share in (("2xx", 0.9), ("3xx", 0.09))},
            "status_4xx": requests * 0.01,
            "status_5xx": 0.0,
            "minute_first": minutes[:, 0].astype(float),
            "minute_last": minutes[:, -1].astype(float),
            "minute_max": minutes.max(axis=1).astype(float),
            "minute_min": minutes.min(axis=1).astype(float),
        },
        index=times,
    )
    gap = (times >= "2026-10-12 06:00") & (times < "2026-10-12 11:00")
    traffic.loc[gap] = np.nan
    traffic["is_missing"] = gap
    return traffic


@pytest.mark.slow  # every model under every protocol
def test_the_benchmark_runs_every_model_on_a_site_that_is_not_nasa():
    from nasa_autoscale.forecasting.benchmark import run_granularity
    from nasa_autoscale.forecasting.next import choose, forecast_next
    from nasa_autoscale.forecasting.protocols import Calendar

    traffic = site_traffic()
    calendar = Calendar.of(traffic, test_days=2, validation_days=2)
    forecasts, metrics, _ = run_granularity(
        traffic, "5m", 5, None, calendar, progress=lambda _: None
    )
    rows = metrics.set_index(["model", "protocol"])
    assert {"lightgbm_detail", "lightgbm_day", "lightgbm_day_scaled", "ensemble_weighted"} <= set(
        metrics["model"]
    )
    assert metrics.groupby("protocol")["selected"].sum().eq(1).all()
    assert rows["rmse"].notna().all() and (rows["n"] == 2 * DAY).all()
    assert (forecasts["origin"] <= forecasts["bucket_start"]).all()
    for protocol in ("one_step", "day_ahead"):
        weights = json.loads(rows.at[("ensemble_weighted", protocol), "params"])["weights"]
        assert sum(weights.values()) == pytest.approx(1.0)
    # the day-ahead choice deploys: the model forecast_next builds from its row forecasts a day
    chosen = metrics[metrics["selected"] & (metrics["protocol"] == "day_ahead")]
    choice = choose(chosen, calendar)
    model = choice.build(5, traffic.index[-1])
    tomorrow = forecast_next(traffic, 5, model, calibration=choice.calibration)
    assert len(tomorrow) == DAY and tomorrow["yhat"].notna().all()


def test_a_bucket_given_twice_is_a_clear_error():
    from nasa_autoscale.forecasting.benchmark import run_granularity
    from nasa_autoscale.forecasting.protocols import Calendar

    traffic = site_traffic()
    twice = pd.concat([traffic, traffic.iloc[[100]]]).sort_index()
    with pytest.raises(ValueError, match="more than once"):
        run_granularity(twice, "5m", 5, None, calendar=Calendar.of(traffic, 2, 2))
