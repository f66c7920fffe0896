"""Every model under every protocol and granularity: forecasts, model_metrics, timings, reports.

Which models run where (1-minute data skips the slow ones, as the issue allows):
- 5m and 15m: all models, all protocols;
- 1m: the baselines under all protocols; LightGBM and the Fourier-ARIMA one_step only.
The ensemble is the equal-weight mean of LightGBM, Fourier-ARIMA and Prophet, fixed in advance.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pandas as pd

from nasa_autoscale.forecasting import backtest, protocols
from nasa_autoscale.forecasting.models import (
    Forecaster,
    HarmonicARIMA,
    LightGBMDirect,
    ProphetModel,
    SeasonalNaive,
    SlotMedian,
    ensemble,
)

ENSEMBLE_MEMBERS = ["lightgbm_direct", "sarima_fourier", "prophet"]
# The original project's published 5-minute one-shot figures (RMSE), for comparison only.
ORIGINAL_FIGURES = {
    "prophet (original, best run)": 83.26,
    "prophet (original, README)": 139.19,
    "sarima (original)": 150.37,
    "lightgbm recursive (original)": 236.35,
}
TARGETS_5M = {"one_shot": 70.0, "day_ahead": 62.0, "hour_ahead": 50.0, "one_step": 40.0}
TARGETS_ONE_STEP = {"1m": 12.5, "15m": 105.0}


def model_plan(granularity: str, minutes: int, events: pd.DataFrame):
    """[(model, protocols)] for a granularity."""
    steps = int((protocols.TEST_END - protocols.TEST_START) / pd.Timedelta(minutes=minutes))
    everything = protocols.PROTOCOLS
    baselines = [(SeasonalNaive(1), everything), (SeasonalNaive(7), everything),
                 (SlotMedian(3), everything)]  # fmt: skip
    if granularity == "1m":
        # Five times the rows of 5m: fewer, larger boosting steps keep it near a minute.
        fast = {"n_estimators": 150, "learning_rate": 0.1}
        return baselines + [
            (LightGBMDirect(events, [1], protocols.VALIDATION_START, **fast), ("one_step",)),
            (HarmonicARIMA(), ("one_step",)),
        ]
    return baselines + [
        (HarmonicARIMA(), everything),
        (ProphetModel(events), everything),
        (LightGBMDirect(events, backtest.horizon_ladder(steps), protocols.VALIDATION_START),
         everything),
    ]  # fmt: skip


def run_granularity(
    traffic: pd.DataFrame,
    granularity: str,
    minutes: int,
    events: pd.DataFrame,
    progress: Callable[[str], None] = print,
    on_model: Callable[[Forecaster, pd.DataFrame, dict], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(forecasts, model_metrics, timings) for one granularity; on_model(model, metrics, timings)
    is called after each model (the MLflow logging hook)."""
    forecasts, timings = [], []
    for model, protocol_names in model_plan(granularity, minutes, events):
        started = time.perf_counter()
        forecast, timing = backtest.run(model, traffic, minutes, granularity, protocol_names)
        timing["total_s"] = time.perf_counter() - started
        forecasts.append(forecast)
        timings.append({"model": model.name, "granularity": granularity, **timing})
        scores = backtest.score_all(forecast, traffic, minutes)
        rmse = ", ".join(f"{r.protocol} {r.rmse:.1f}" for r in scores.itertuples())
        progress(f"{granularity} {model.name}: {timing['total_s']:.1f} s, RMSE {rmse}")
        if on_model:
            on_model(model, scores, timing)
    forecasts = pd.concat(forecasts, ignore_index=True)
    combined = ensemble(forecasts, ENSEMBLE_MEMBERS)
    if len(combined):
        forecasts = pd.concat([forecasts, combined], ignore_index=True)
    return forecasts, backtest.score_all(forecasts, traffic, minutes), pd.DataFrame(timings)
