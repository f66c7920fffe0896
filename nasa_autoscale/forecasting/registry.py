"""Every forecaster by name: the one place models are built, for the benchmark, its tuning,
forecast_next and the scaling forecasts (after policies.build).

A model is built from its name, its hyper-parameters and how far ahead it must forecast; the
data it learns from (traffic, and the special events as exogenous input) goes through fit().
"""

from __future__ import annotations

import pandas as pd

from nasa_autoscale.forecasting.dayahead import LightGBMDayAhead
from nasa_autoscale.forecasting.models import (
    Ensemble,
    Forecaster,
    HarmonicARIMA,
    LightGBMDirect,
    ProphetModel,
    SeasonalNaive,
    SlotMedian,
)

BASELINES = ("seasonal_naive_day", "seasonal_naive_week", "slot_median_3w")
ENSEMBLE_MEMBERS = ["lightgbm_direct", "sarima_fourier", "prophet"]
# The candidates of ensemble_weighted, whose weights per protocol are chosen on the validation
# window (combine.py); a member with no forecast under a protocol gets no weight there.
WEIGHTED_MEMBERS = [*ENSEMBLE_MEMBERS, "slot_median_3w", "lightgbm_detail", "lightgbm_day"]
# The grids tune() tries on the validation week; the keys are the parameters it may set.
CANDIDATES = {
    "sarima_fourier": [{"daily_order": k} for k in (6, 10, 14)],
    "lightgbm_direct": [{"num_leaves": n} for n in (15, 31, 63)],
}
_FACTORIES = {
    "seasonal_naive_day": lambda horizons, validation_start, params: SeasonalNaive(1),
    "seasonal_naive_week": lambda horizons, validation_start, params: SeasonalNaive(7),
    "slot_median_3w": lambda horizons, validation_start, params: SlotMedian(3),
    "sarima_fourier": lambda horizons, validation_start, params: HarmonicARIMA(**params),
    "prophet": lambda horizons, validation_start, params: ProphetModel(),
    "lightgbm_direct": lambda horizons, validation_start, params: LightGBMDirect(
        horizons, validation_start, **params
    ),
    "lightgbm_detail": lambda horizons, validation_start, params: LightGBMDirect(
        horizons, validation_start, detail=True, **params
    ),
    "lightgbm_day": lambda horizons, validation_start, params: LightGBMDayAhead(**params),
    "lightgbm_day_scaled": lambda horizons, validation_start, params: LightGBMDayAhead(
        scaled=True, **params
    ),
}
# Models that take another's tuned parameters rather than tuning their own.
TUNED_LIKE = {"lightgbm_detail": "lightgbm_direct"}
NAMES = (*_FACTORIES, "ensemble", "ensemble_weighted")


class UnknownModel(ValueError):
    """No model has this name; the message lists the names there are."""


def build(
    name: str,
    params: dict | None = None,
    horizons: list[int] | tuple[int, ...] = (1,),
    validation_start: pd.Timestamp | None = None,
) -> Forecaster:
    """A fresh, unfitted model.

    params: its hyper-parameters (for the ensembles, {member: its parameters}, and for
    ensemble_weighted {"weights": {member: weight}} besides; members of weight 0 are left
    out); horizons: the leads in buckets a direct model trains for (LightGBM; the others
    forecast any lead);
    validation_start: where LightGBM holds out data for intervals of its own (None: none, the
    intervals are calibrated elsewhere)."""
    params = dict(params or {})
    if name == "ensemble":
        return Ensemble(
            [build(m, params.get(m), horizons, validation_start) for m in ENSEMBLE_MEMBERS]
        )
    if name == "ensemble_weighted":
        weights = {m: w for m, w in params.get("weights", {}).items() if w > 0}
        if not weights:
            raise ValueError("ensemble_weighted needs its weights: {'weights': {member: weight}}")
        members = [build(m, params.get(m), horizons, validation_start) for m in weights]
        return Ensemble(members, weights)
    if name not in _FACTORIES:
        raise UnknownModel(f"no model named {name!r}; one of {sorted(NAMES)}")
    return _FACTORIES[name](list(horizons), validation_start, params)


def tuned_params(name: str, stored: dict | None) -> dict:
    """The parameters tuning chose, out of a model's stored params (model_metrics.params hold
    everything the model reports); for the ensemble, per member."""
    stored = stored or {}
    if name == "ensemble":
        return {m: tuned_params(m, stored.get(m)) for m in ENSEMBLE_MEMBERS}
    if name == "ensemble_weighted":
        weights = stored.get("weights", {})
        return {"weights": weights, **{m: tuned_params(m, stored.get(m)) for m in weights}}
    name = TUNED_LIKE.get(name, name)
    keys = set(CANDIDATES[name][0]) if name in CANDIDATES else set()
    return {k: v for k, v in stored.items() if k in keys}
