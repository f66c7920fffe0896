import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.features.events import load_events
from nasa_autoscale.forecasting import backtest, metrics, protocols
from nasa_autoscale.forecasting.calibrate import Calibration
from nasa_autoscale.forecasting.models import LightGBMDirect, SeasonalNaive, SlotMedian
from nasa_autoscale.ingest.traffic import MINUTE_DETAIL

ORIGIN = pd.Timestamp("1995-08-26 13:00")
# The NASA split the calendar must read from the data (the one the published figures used).
VALIDATION_START = pd.Timestamp("1995-08-16")
TEST_START = pd.Timestamp("1995-08-23")
TEST_END = pd.Timestamp("1995-09-01")


@pytest.fixture(scope="module")
def traffic(real_traffic_5m):
    """The real 5-minute series with its minute detail (from the real per-second counts)."""
    from nasa_autoscale.ingest.reference import reference_counts

    frame = real_traffic_5m.set_index("bucket_start")
    minutes = pd.date_range(frame.index[0], frame.index[-1] + pd.Timedelta("4min"), freq="1min")
    counts = reference_counts(1).reindex(minutes, fill_value=0).astype(float)
    bucket = counts.groupby(counts.index.floor("5min"))
    detail = pd.DataFrame(
        {
            "minute_first": bucket.first(),
            "minute_last": bucket.last(),
            "minute_max": bucket.max(),
            "minute_min": bucket.min(),
        }
    ).reindex(frame.index)
    detail[frame["requests"].isna().to_numpy()] = np.nan
    return frame.join(detail)


def small_lightgbm():
    return LightGBMDirect([1, 12, 288], VALIDATION_START, n_estimators=20, num_leaves=15)


def fourier_arima():
    from nasa_autoscale.forecasting.models import HarmonicARIMA

    return HarmonicARIMA(daily_order=6)


def prophet():
    from nasa_autoscale.forecasting.models import ProphetModel

    return ProphetModel()


def detail_lightgbm():
    return LightGBMDirect([1, 12, 288], None, detail=True, n_estimators=20, num_leaves=15)


def day_lightgbm(scaled=False):
    from nasa_autoscale.forecasting.dayahead import LightGBMDayAhead

    return LightGBMDayAhead(scaled=scaled, n_estimators=60, learning_rate=0.15, num_leaves=15)


MODELS = [
    lambda: SeasonalNaive(1),
    lambda: SeasonalNaive(7),
    lambda: SlotMedian(3),
    small_lightgbm,
    fourier_arima,
    prophet,
    detail_lightgbm,
    day_lightgbm,
    lambda: day_lightgbm(scaled=True),
]
# Prophet is fitted once and forecasts from the calendar alone: it reads no actual at all.
READS_RECENT_ACTUALS = {"prophet": False}


def test_protocol_origins_cover_the_test_window_once():
    expected = {
        "one_shot": (1, 2592),
        "day_ahead": (9, 288),
        "hour_ahead": (216, 12),
        "one_step": (2592, 1),
    }
    for protocol, (count, horizon) in expected.items():
        plan = protocols.origins(protocol, 5, TEST_START, TEST_END)
        assert len(plan) == count and plan[0] == (TEST_START, horizon)
        assert sum(h for _, h in plan) == 2592
    assert protocols.origins("hour_ahead", 15, TEST_START, TEST_END)[1] == (
        pd.Timestamp("1995-08-23 01:00"),
        4,
    )


def test_the_calendar_read_from_the_nasa_data_is_the_published_split(traffic):
    calendar = protocols.Calendar.of(traffic, 9, 7)
    assert (calendar.validation_start, calendar.test_start, calendar.test_end) == (
        VALIDATION_START,
        TEST_START,
        TEST_END,
    )
    assert calendar.enough and calendar.whole_days == 62 and calendar.shortfall() == ""
    assert "test 1995-08-23 .. 1995-08-31" in calendar.describe()


def test_the_calendar_counts_back_from_the_last_whole_day(traffic):
    cut = traffic[traffic.index < pd.Timestamp("1995-08-31 14:00")].copy()  # Aug 31 is partial
    cut = pd.concat(
        [cut, traffic[traffic.index >= pd.Timestamp("1995-08-31 14:00")].assign(requests=np.nan)]
    )
    calendar = protocols.Calendar.of(cut, 3, 2)
    assert calendar.test_end == pd.Timestamp("1995-08-31")  # the partial day is left out
    assert calendar.test_start == pd.Timestamp("1995-08-28")
    assert calendar.validation_start == pd.Timestamp("1995-08-26")
    short = protocols.Calendar.of(traffic[traffic.index < pd.Timestamp("1995-07-05")], 9, 7)
    assert short.whole_days == 4 and not short.enough
    assert "4 whole day(s) of data; the benchmark needs 30" in short.shortfall()
    assert "26 more day(s)" in short.shortfall()


def test_metrics_by_hand():
    forecasts = pd.DataFrame(
        {
            "bucket_start": pd.date_range("1995-08-23", periods=4, freq="5min"),
            "yhat": [10.0, 20.0, 30.0, 40.0],
            "yhat_lower": [5.0, 15.0, 29.0, 0.0],
            "yhat_upper": [15.0, 25.0, 31.0, 1.0],
        }
    )
    actuals = pd.Series([12.0, 0.0, np.nan, 40.0], index=forecasts.bucket_start)
    score = metrics.score(forecasts, actuals, scale=2.0)
    # Scored: 10 vs 12, 20 vs 0, 40 vs 40 (the missing actual is skipped).
    assert score["n"] == 3
    assert score["mae"] == pytest.approx(22 / 3)
    assert score["rmse"] == pytest.approx(np.sqrt((4 + 400) / 3))
    assert score["mape"] == pytest.approx((2 / 12 + 0) / 2 * 100)  # zero actual left out
    assert score["mase"] == pytest.approx(22 / 3 / 2)
    assert score["coverage"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("make_model", MODELS)
def test_forecasts_never_read_the_actuals_they_predict(traffic, make_model):
    model = make_model().fit(traffic[traffic.index < TEST_START], 5, load_events())
    plan = [(ORIGIN, 288)]
    before = model.predict(traffic, plan)
    changed = traffic.copy()
    later = changed.index >= ORIGIN
    rng = np.random.default_rng(1)
    for column in ("requests", "bytes", "status_2xx", "status_3xx", "status_4xx", *MINUTE_DETAIL):
        changed.loc[later, column] = rng.integers(0, 3000, later.sum())
    after = model.predict(changed, plan)
    pd.testing.assert_frame_equal(before, after)
    assert before["yhat"].notna().all() and (before["origin"] <= before["bucket_start"]).all()
    # The same model does read what came before the origin (the test would be empty otherwise).
    earlier = traffic.copy()
    earlier.loc[
        (earlier.index < ORIGIN) & (earlier.index >= ORIGIN - pd.Timedelta(days=7)), "requests"
    ] *= 3
    moved = not model.predict(earlier, plan)["yhat"].equals(before["yhat"])
    assert moved == READS_RECENT_ACTUALS.get(model.name, True)


def test_the_ensemble_never_reads_the_actuals_it_predicts(traffic):
    from nasa_autoscale.forecasting.models import Ensemble

    model = Ensemble([make() for make in (small_lightgbm, fourier_arima, prophet)])
    model.fit(traffic[traffic.index < TEST_START], 5, load_events())
    changed = traffic.copy()
    changed.loc[changed.index >= ORIGIN, "requests"] = 5000
    before = model.predict(traffic, [(ORIGIN, 36)])
    assert len(before) == 36 and before["origin"].eq(ORIGIN).all()
    pd.testing.assert_frame_equal(before, model.predict(changed, [(ORIGIN, 36)]))
    # it is the mean of its members' forecasts
    members = [m.predict(traffic, [(ORIGIN, 36)])["yhat"].to_numpy() for m in model.members]
    np.testing.assert_allclose(before["yhat"], np.mean(members, axis=0))


def test_a_backtest_scores_every_protocol(traffic):
    calendar = protocols.Calendar.of(traffic, 9, 7)
    forecasts, timings = backtest.run(
        SlotMedian(3), traffic, 5, "5m", protocols.PROTOCOLS, calendar
    )
    assert set(forecasts.protocol) == set(protocols.PROTOCOLS)
    assert (forecasts.groupby("protocol").size() == 2592).all()
    table = backtest.score_all(forecasts, traffic, 5, calendar)
    assert len(table) == 4 and (table["n"] > 2500).all()
    assert (table["coverage"].between(0, 1)).all() and "fit_s" in timings


def test_horizon_ladder_covers_the_longest_lead():
    assert backtest.horizon_ladder(1) == [1]
    assert backtest.horizon_ladder(12) == [1, 2, 3, 6, 12]
    ladder = backtest.horizon_ladder(2592)
    assert ladder[-1] >= 2592 > ladder[-2]


def test_fourier_arima_and_prophet_forecasts_are_sane(traffic):
    from nasa_autoscale.forecasting.models import HarmonicARIMA, ProphetModel

    plan = [(ORIGIN, 24)]
    for model in (HarmonicARIMA(daily_order=4, weekly_order=1), ProphetModel()):
        model.fit(traffic[traffic.index < TEST_START], 5, load_events())
        forecast = model.predict(traffic, plan)
        assert len(forecast) == 24 and (forecast["yhat"] >= 0).all()
        assert (forecast["yhat_lower"] <= forecast["yhat"]).all()
        assert (forecast["yhat"] <= forecast["yhat_upper"]).all()
        actual = traffic.loc[forecast["bucket_start"], "requests"].astype(float).to_numpy()
        assert np.nanmean(np.abs(forecast["yhat"] - actual)) < np.nanmean(actual)  # beats zero
        assert model.artifacts()  # a readable artifact for MLflow


def test_the_fourier_arima_leaks_nothing_either(traffic):
    from nasa_autoscale.forecasting.models import HarmonicARIMA

    model = HarmonicARIMA(daily_order=4, weekly_order=1)
    model.fit(traffic[traffic.index < TEST_START], 5)
    plans = {"hour": [(ORIGIN, 12)], "steps": [(ORIGIN, 1), (ORIGIN + pd.Timedelta("5min"), 1)]}
    changed = traffic.copy()
    changed.loc[changed.index >= ORIGIN + pd.Timedelta("5min"), "requests"] = 0
    for plan in plans.values():
        before = model.predict(traffic, plan)
        after = model.predict(changed, plan)
        pd.testing.assert_frame_equal(before, after)


def test_the_ensemble_averages_its_members():
    from nasa_autoscale.forecasting.models import ensemble

    rows = pd.DataFrame(
        {
            "model": ["a", "b", "a"],
            "granularity": "5m",
            "protocol": "one_step",
            "origin": pd.to_datetime(["1995-08-23 00:00"] * 2 + ["1995-08-23 00:05"]),
            "bucket_start": pd.to_datetime(["1995-08-23 00:00"] * 2 + ["1995-08-23 00:05"]),
            "step": 1,
            "yhat": [10.0, 20.0, 5.0],
            "yhat_lower": [0.0, 10.0, 1.0],
            "yhat_upper": [20.0, 30.0, 9.0],
        }
    )
    mean = ensemble(rows, ["a", "b"])
    assert len(mean) == 1  # only buckets every member forecast
    assert mean.loc[0, ["yhat", "yhat_lower", "yhat_upper"]].tolist() == [15.0, 5.0, 25.0]


def test_forecast_next_covers_the_day_after_the_data(traffic):
    from nasa_autoscale.forecasting.next import forecast_next
    from nasa_autoscale.forecasting.registry import UnknownModel, build

    history = traffic[traffic.index < pd.Timestamp("1995-08-30")]
    for name in ("slot_median_3w", "sarima_fourier"):
        forecast = forecast_next(history, 5, build(name), events=load_events())
        assert len(forecast) == 288
        assert forecast["bucket_start"].iloc[0] == pd.Timestamp("1995-08-30 00:00")
        assert (forecast["origin"] == pd.Timestamp("1995-08-30 00:00")).all()
        assert forecast["yhat"].notna().all() and (forecast["yhat"] >= 0).all()
    with pytest.raises(UnknownModel, match="no model named"):
        build("crystal_ball")
    # the ensemble is built from its members with their tuned parameters, and the intervals
    # calibrated on validation replace the model's own
    ensemble = build("ensemble", {"sarima_fourier": {"daily_order": 6}})
    assert [m.name for m in ensemble.members] == ["lightgbm_direct", "sarima_fourier", "prophet"]
    assert ensemble.members[1].daily_order == 6
    calibration = Calibration(0.0, [1], [-7.0], [9.0], 1)
    forecast = forecast_next(history, 5, SlotMedian(3), calibration=calibration)
    np.testing.assert_allclose(forecast["yhat_upper"] - forecast["yhat"], 9.0)


def test_a_short_history_forecasts_with_seasonal_naive_and_says_when_it_cannot(traffic):
    from nasa_autoscale.forecasting.next import (
        HistoryTooShort,
        NoSelectedModel,
        choose,
        fallback_model,
        forecast_next,
    )

    two_days = traffic[traffic.index < pd.Timestamp("1995-07-03")]
    calendar = protocols.Calendar.of(two_days, 9, 7)
    assert calendar.whole_days == 2 and not calendar.enough
    nothing_selected = pd.DataFrame(
        columns=["model", "validation_rmse", "rmse", "params", "calibration"]
    )
    choice = choose(nothing_selected, calendar)
    assert choice.name == fallback_model(calendar) == "seasonal_naive_day"
    assert "too little history" in choice.chosen_by and choice.calibration is None
    forecast = forecast_next(two_days, 5, choice.build(5, two_days.index[-1]))
    assert len(forecast) == 288 and forecast["yhat"].notna().all()
    assert forecast["origin"].iloc[0] == pd.Timestamp("1995-07-03")
    # the same slot yesterday, which the model was allowed to see
    assert forecast["yhat"].tolist() == two_days["requests"].iloc[-288:].astype(float).tolist()
    assert fallback_model(protocols.Calendar.of(traffic.iloc[: 10 * 288], 9, 7)) == (
        "seasonal_naive_week"
    )
    with pytest.raises(HistoryTooShort, match="1 whole day"):
        fallback_model(protocols.Calendar.of(traffic.iloc[:288], 9, 7))
    # with history enough for the benchmark, no selected row is an error that says what to run
    with pytest.raises(NoSelectedModel, match="materialize model_metrics"):
        choose(nothing_selected, protocols.Calendar.of(traffic, 9, 7))


def test_the_deployed_model_is_the_selected_row_with_its_tuned_parameters():
    import json

    from nasa_autoscale.forecasting.next import choose

    calibration = Calibration(0.0, [1], [-7.0], [9.0], 1)
    stored = {"order": [2, 0, 1], "daily_order": 14, "weekly_order": 3}
    selected = pd.DataFrame(
        [["sarima_fourier", 48.9, 73.4, json.dumps(stored), calibration.to_json()]],
        columns=["model", "validation_rmse", "rmse", "params", "calibration"],
    )
    choice = choose(selected, None)
    assert choice.params == {"daily_order": 14}  # what tuning chose, not every stored value
    assert choice.calibration == calibration and "validation" in choice.chosen_by
    model = choice.build(5, pd.Timestamp("1995-08-31 23:55"))
    assert model.name == "sarima_fourier" and model.daily_order == 14


def test_the_fallback_recommendation_is_predictive_and_says_it_is_untuned(traffic):
    from nasa_autoscale.scaling.recommend import fallback_decision
    from nasa_autoscale.scaling.sweep import SCENARIOS

    rules = SCENARIOS["realistic"]
    requests = traffic["requests"].astype(float).iloc[: 3 * 288]
    ahead = np.array([[400.0, 300.0, 500.0], [420.0, 310.0, 520.0]])
    decision = fallback_decision(requests, rules, ahead)
    assert decision["policy"] == "predictive" and "untuned" in decision["reason"]
    assert decision["current_servers"] == int(np.ceil(requests.dropna().iloc[-1] / 40))
    assert decision["target_servers"] >= int(np.ceil(520 / 40))  # above the 80% upper bound


def test_prophet_uses_an_event_only_from_origins_that_knew_it(traffic):
    from nasa_autoscale.forecasting.models import ProphetModel

    events = load_events()
    scrub = events["name"].str.contains("scrubbed")
    assert events.loc[scrub, "known_from"].iloc[0] == pd.Timestamp("1995-08-31 03:30")
    model = ProphetModel().fit(traffic[traffic.index < TEST_START], 5, events)
    day = pd.Timestamp("1995-08-31 12:00")
    before = model.predict(traffic, [(pd.Timestamp("1995-08-31 00:00"), 145)])
    after = model.predict(traffic, [(pd.Timestamp("1995-08-31 03:30"), 103)])
    # the countdown (known since Aug 28) shapes both; the scrub's day effect only the later one
    assert before.set_index("bucket_start").at[day, "yhat"] != pytest.approx(
        after.set_index("bucket_start").at[day, "yhat"]
    )
    # with the scrub known a week earlier, the earlier origin's forecast is the later one's
    early = events.copy()
    early.loc[scrub, "known_from"] = pd.Timestamp("1995-08-24")
    model.events = early
    informed = model.predict(traffic, [(pd.Timestamp("1995-08-31 00:00"), 145)])
    assert informed.set_index("bucket_start").at[day, "yhat"] == pytest.approx(
        after.set_index("bucket_start").at[day, "yhat"]
    )


def test_the_detail_model_reads_the_last_minutes_and_the_plain_one_does_not(traffic):
    plan = [(ORIGIN, 1)]
    train = traffic[traffic.index < TEST_START]
    detail = LightGBMDirect([1], None, detail=True).fit(train, 5)
    plain = small_lightgbm().fit(train, 5)
    assert "minute_last_lag_1" in detail.columns and "minute_last_lag_1" not in plain.columns
    used = detail.importance().set_index("feature")["gain_share"]
    assert used[[c for c in used.index if c.startswith("minute_")]].sum() > 0.01
    # the last bucket before the origin ended in a burst: all of its requests in its last minute
    burst = traffic.copy()
    last = ORIGIN - pd.Timedelta("5min")
    burst.loc[last, "minute_last"] = burst.loc[last, "requests"]
    burst.loc[last, ["minute_first", "minute_min"]] = 0
    assert (
        detail.predict(burst, plan)["yhat"].iloc[0] != detail.predict(traffic, plan)["yhat"].iloc[0]
    )
    assert (
        plain.predict(burst, plan)["yhat"].iloc[0] == plain.predict(traffic, plan)["yhat"].iloc[0]
    )
    # traffic without minute detail (no traffic_1m): the detail features are NULL, not an error
    bare = traffic.drop(columns=list(MINUTE_DETAIL))
    assert np.isfinite(detail.predict(bare, plan)["yhat"]).all()


def test_the_day_ahead_model_forecasts_days_from_what_the_origin_knew(traffic):
    model = day_lightgbm().fit(traffic[traffic.index < TEST_START], 5, load_events())
    forecast = model.predict(traffic, [(TEST_START, 3 * 288)])
    assert len(forecast) == 3 * 288 and (forecast["yhat"] >= 0).all()
    assert {"day_smooth_1", "week_1", "last_day", "step"} <= set(model.columns)
    actual = traffic["requests"].reindex(forecast["bucket_start"]).to_numpy(float)
    naive = traffic["requests"].shift(7 * 288).reindex(forecast["bucket_start"]).to_numpy(float)
    assert np.nanmean(np.abs(forecast["yhat"] - actual)) < np.nanmean(np.abs(naive - actual))
    # the scaled variant: a level twice as high before the origin roughly doubles its forecast
    scaled = day_lightgbm(scaled=True).fit(traffic[traffic.index < TEST_START], 5)
    doubled = traffic.copy()
    doubled.loc[doubled.index < TEST_START, "requests"] *= 2
    plan = [(TEST_START, 288)]
    ratio = (
        scaled.predict(doubled, plan)["yhat"].sum() / scaled.predict(traffic, plan)["yhat"].sum()
    )
    assert 1.6 < ratio < 2.4


def test_prophet_fits_without_any_special_event(traffic):
    from nasa_autoscale.forecasting.models import ProphetModel

    model = ProphetModel().fit(traffic[traffic.index < TEST_START], 5, load_events(None))
    assert model.predict(traffic, [(TEST_START, 12)])["yhat"].notna().all()


def test_interpolation_rmse_by_hand():
    times = pd.date_range("2026-01-01", periods=6, freq="5min")
    values = pd.Series([10.0, 20.0, 10.0, 20.0, np.nan, 20.0], index=times)
    # one each side: bucket 1 -> (10 + 10) / 2 = 10 (error 10), bucket 2 -> 20 (error 10),
    # bucket 3 -> 10 (only one neighbour present; error 10); bucket 4 missing is not scored
    assert metrics.interpolation_rmse(values, times[1], times[5], side=1) == pytest.approx(10.0)
    assert np.isnan(metrics.interpolation_rmse(values, times[4], times[5], side=1))
