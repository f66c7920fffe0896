"""Every model under every protocol and granularity: forecasts, model_metrics, timings, reports.

Which models run where (1-minute data skips the slow ones, as the issue allows):
- 5m and 15m: all models, all protocols;
- 1m: the baselines under all protocols; LightGBM and the Fourier-ARIMA one_step only.
- 5m and 15m also: LightGBM fed the last bucket's minute detail (`lightgbm_detail`), for the
  short leads it can help (hour_ahead, one_step; a day-old minute carries no momentum), and the
  day-ahead LightGBM (`lightgbm_day`, dayahead.py) for the forecasts from midnight (one_shot,
  day_ahead); the first takes the leaves tuned for lightgbm_direct, the second its defaults.
The ensemble is the equal-weight mean of LightGBM, Fourier-ARIMA and Prophet, fixed in advance;
`ensemble_weighted` combines registry.WEIGHTED_MEMBERS with weights per protocol chosen on the
validation window (combine.py), judged there by its leave-one-day-out RMSE.
Hyper-parameters (the Fourier order, LightGBM's leaves) are chosen on the validation week, inside
the training window (tune); 1m keeps the defaults. Every model also forecasts the validation
window from a fit before it: its errors there calibrate its intervals (calibrate.py) and its
RMSE there picks the `selected` model of each granularity x protocol. The test window only
reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pandas as pd

from nasa_autoscale.forecasting import backtest, combine, protocols, registry
from nasa_autoscale.forecasting.calibrate import calibrate
from nasa_autoscale.forecasting.models import Forecaster, ensemble
from nasa_autoscale.forecasting.registry import (
    BASELINES,
    CANDIDATES,
    ENSEMBLE_MEMBERS,
    WEIGHTED_MEMBERS,
)


def tune(
    traffic: pd.DataFrame, minutes: int, events: pd.DataFrame, calendar: protocols.Calendar
) -> dict[str, dict]:
    """The best candidate parameters per model (registry.CANDIDATES), judged on the
    validation week only.

    Each candidate is fitted on the training window before the validation week and scored one
    step ahead on the validation week (the
    cheapest protocol; scoring hour-ahead instead, tried once, chose the same parameters): the
    test window is never looked at.
    """
    start, end = calendar.validation_start, calendar.test_start
    before = traffic[traffic.index < start]
    seen = traffic[traffic.index < end]
    plan = protocols.origins("one_step", minutes, start, end)
    # Looked up once, before the threads: pandas builds an index's lookup table on first use,
    # and two threads building it at once can see a half-built one ("duplicate labels").
    actual = seen["requests"].reindex([origin for origin, _ in plan]).to_numpy(float)

    def validation_rmse(name: str, params: dict) -> float:
        model = registry.build(name, params)  # scored on yhat: no intervals of its own
        forecast = model.fit(before, minutes, events).predict(seen, plan)  # one row per origin
        return float(pd.Series(forecast["yhat"].to_numpy() - actual).pow(2).mean() ** 0.5)

    chosen = {}
    with ThreadPoolExecutor(max_workers=2) as pool:  # candidates are independent
        for name, candidates in CANDIDATES.items():
            scores = list(
                pool.map(lambda params, name=name: validation_rmse(name, params), candidates)
            )
            chosen[name] = candidates[scores.index(min(scores))]
            chosen[name + "_validation_rmse"] = dict(zip(map(str, candidates), scores, strict=True))
    return chosen


def model_plan(
    granularity: str,
    minutes: int,
    calendar: protocols.Calendar,
    tuned: dict | None = None,
) -> list[tuple[Callable[[], Forecaster], tuple[str, ...]]]:
    """[(build, protocols)] for a granularity: build() makes a fresh model (registry.build);
    `tuned` holds parameters chosen by tune(). LightGBM fits no intervals of its own here
    (calibrate.py gives every model its intervals), which halves its fits."""
    tuned = tuned or {}
    steps = int((calendar.test_end - calendar.test_start) / pd.Timedelta(minutes=minutes))
    everything = protocols.PROTOCOLS

    def builder(name: str, params: dict | None = None, horizons=(1,)):
        return lambda: registry.build(name, params, horizons)

    baselines = [(builder(name), everything) for name in BASELINES]
    if granularity == "1m":
        # Five times the rows of 5m: fewer, larger boosting steps keep it near a minute.
        fast = {"n_estimators": 150, "learning_rate": 0.1}
        return baselines + [
            (builder("lightgbm_direct", fast), ("one_step",)),
            (builder("sarima_fourier"), ("one_step",)),
        ]
    lightgbm = tuned.get("lightgbm_direct")
    hour = backtest.horizon_ladder(60 // minutes)
    return baselines + [
        (builder("sarima_fourier", tuned.get("sarima_fourier")), everything),
        (builder("prophet"), everything),
        (builder("lightgbm_direct", lightgbm, backtest.horizon_ladder(steps)), everything),
        (builder("lightgbm_detail", lightgbm, hour), ("hour_ahead", "one_step")),
        (builder("lightgbm_day"), ("one_shot", "day_ahead")),
        (builder("lightgbm_day_scaled"), ("one_shot", "day_ahead")),
    ]


def _calibrated(test: pd.DataFrame, validation: pd.DataFrame, actuals: pd.Series, longest: int):
    """(test forecasts with calibrated intervals, the calibration) for one model: calibrated on
    its validation forecasts, adapted through each protocol's test window to the misses already
    seen at each origin."""
    calibration, _ = calibrate(validation, actuals, longest)
    adapted = [
        calibration.adapt(group, actuals) for _, group in test.groupby("protocol", sort=False)
    ]
    return pd.concat(adapted).loc[test.index], calibration


def _metrics(
    test: pd.DataFrame,
    raw: pd.DataFrame,
    validation: pd.DataFrame,
    traffic: pd.DataFrame,
    minutes: int,
    calendar: protocols.Calendar,
) -> pd.DataFrame:
    """model_metrics rows: test scores of the calibrated forecasts, with the validation RMSE and
    the coverage the model's own intervals had before calibration."""
    scores = backtest.score_all(test, traffic, minutes, calendar)
    keys = ["model", "granularity", "protocol"]
    uncalibrated = backtest.score_all(raw, traffic, minutes, calendar)
    on_validation = backtest.score_all(validation, traffic, minutes, calendar)
    scores = scores.merge(
        uncalibrated[[*keys, "coverage"]].rename(columns={"coverage": "coverage_uncalibrated"}),
        on=keys,
        how="left",
    )
    return scores.merge(
        on_validation[[*keys, "rmse"]].rename(columns={"rmse": "validation_rmse"}),
        on=keys,
        how="left",
    )


def _ensembles(raws: pd.DataFrame, validations: pd.DataFrame, actuals: pd.Series) -> dict:
    """{name: (raw test forecasts, validation forecasts, weights per protocol, leave-one-day-out
    validation RMSE per protocol)} of the two ensembles: the equal-weight one (no weights, judged
    by its plain validation RMSE) and ensemble_weighted (combine.choose per protocol)."""
    out = {}
    raw = ensemble(raws, ENSEMBLE_MEMBERS)
    if len(raw):
        out["ensemble"] = (raw, ensemble(validations, ENSEMBLE_MEMBERS), {}, {})
    weights, judged, raw_parts, validation_parts = {}, {}, [], []
    for protocol, validation in validations.groupby("protocol", sort=False):
        chosen, rmse = combine.choose(validation, WEIGHTED_MEMBERS, actuals)
        if len(chosen) < 2:  # one member or none: nothing to combine
            continue
        weights[protocol], judged[protocol] = chosen, rmse
        members = list(chosen)
        test = raws[raws["protocol"] == protocol]
        raw_parts.append(ensemble(test, members, "ensemble_weighted", chosen))
        validation_parts.append(ensemble(validation, members, "ensemble_weighted", chosen))
    if raw_parts:
        out["ensemble_weighted"] = (
            pd.concat(raw_parts, ignore_index=True),
            pd.concat(validation_parts, ignore_index=True),
            weights,
            judged,
        )
    return out


def select(metrics: pd.DataFrame) -> pd.Series:
    """True on the row with the lowest validation RMSE of each granularity x protocol (the first
    such row on a tie): the model chosen without the test window."""
    scored = metrics.dropna(subset=["validation_rmse"])
    best = scored.groupby(["granularity", "protocol"])["validation_rmse"].idxmin()
    return pd.Series(metrics.index.isin(best), index=metrics.index)


def run_granularity(
    traffic: pd.DataFrame,
    granularity: str,
    minutes: int,
    events: pd.DataFrame,
    calendar: protocols.Calendar,
    progress: Callable[[str], None] = print,
    on_model: Callable[[Forecaster, pd.DataFrame, dict], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(forecasts, model_metrics, timings) for one granularity; on_model(model, metrics with the
    calibration, timings) is called after each model (the MLflow logging hook); calendar: the
    windows (Settings.calendar).

    Every model runs twice: fitted before the test window and forecasting it (what is scored),
    and fitted before the validation window and forecasting that (what chooses the selected
    model and calibrates the intervals)."""
    actuals = traffic["requests"].astype(float)
    if not traffic.index.is_unique:  # (also builds its lookup table before the threads below)
        raise ValueError("traffic has a bucket_start more than once: one row per bucket")
    longest = int((calendar.test_end - calendar.test_start) / pd.Timedelta(minutes=minutes))
    tests, raws, validations, calibrations, timings, scored = [], [], [], {}, [], []
    tuned = {}
    if granularity != "1m":  # 1m keeps the defaults: tuning there would cost minutes
        started = time.perf_counter()
        tuned = tune(traffic, minutes, events, calendar)
        timings.append(
            {
                "model": "tuning",
                "granularity": granularity,
                "total_s": time.perf_counter() - started,
            }
        )
        progress(
            f"{granularity} tuned on the validation week: "
            f"sarima_fourier {tuned['sarima_fourier']}, "
            f"lightgbm_direct {tuned['lightgbm_direct']}"
        )
    for build, protocol_names in model_plan(granularity, minutes, calendar, tuned):
        started = time.perf_counter()
        model = build()

        def window(fresh: Forecaster, name: str, names=protocol_names):
            return backtest.run(fresh, traffic, minutes, granularity, names, calendar, name, events)

        # the two windows' backtests side by side (most models fit on one core), but Prophet's:
        # its intervals are drawn from numpy's global generator, which two threads would share
        workers = 2 if model.thread_safe else 1
        with ThreadPoolExecutor(max_workers=workers) as pool:
            on_test = pool.submit(window, model, "test")
            on_validation = pool.submit(window, build(), "validation")
            (raw, timing), (validation, _) = on_test.result(), on_validation.result()
        test, calibrations[model.name] = _calibrated(raw, validation, actuals, longest)
        timing["total_s"] = time.perf_counter() - started
        tests.append(test)
        raws.append(raw)
        validations.append(validation)
        timings.append({"model": model.name, "granularity": granularity, **timing})
        scores = _metrics(test, raw, validation, traffic, minutes, calendar)
        scored.append(scores)
        rmse = ", ".join(f"{r.protocol} {r.rmse:.1f}" for r in scores.itertuples())
        progress(f"{granularity} {model.name}: {timing['total_s']:.1f} s, test RMSE {rmse}")
        if on_model:
            on_model(model, scores.assign(calibration=calibrations[model.name].to_json()), timing)
    combined = _ensembles(
        pd.concat(raws, ignore_index=True), pd.concat(validations, ignore_index=True), actuals
    )
    for name, (raw, validation, weights, judged) in combined.items():
        test, calibrations[name] = _calibrated(raw, validation, actuals, longest)
        tests.append(test)
        scores = _metrics(test, raw, validation, traffic, minutes, calendar)
        if judged:  # weights chosen on the validation window: judged leave-one-day-out there
            scores["validation_rmse"] = scores["protocol"].map(judged)
            scores["params"] = [json.dumps({"weights": weights[p]}) for p in scores["protocol"]]
            progress(f"{granularity} {name}: weights {weights}")
        scored.append(scores)
    test = pd.concat(tests, ignore_index=True)
    metrics = pd.concat(scored, ignore_index=True)  # each model scored once, as it finished
    metrics["calibration"] = metrics["model"].map(lambda m: calibrations[m].to_json())
    metrics["selected"] = select(metrics)
    return test, metrics, pd.DataFrame(timings)
