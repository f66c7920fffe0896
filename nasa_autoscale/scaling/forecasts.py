"""The forecasts the predictive policies act on: an origin at every bucket, covering the buckets a
server launched at that origin must serve (steps 1 .. boot + 1), at every decision interval a
fleet decides at (`minutes`: 5, and 1 for a fleet deciding every minute).

Two honest sets: the validation window from a model fitted before it, for tuning the policies,
and the test window from a model fitted on the training window, as the forecasting protocols do
(windows from the caller's protocols.Calendar: NASA's are Aug 16-22 and Aug 23-31). LightGBM
direct (one model per step) is used: it is the best short-horizon model of the benchmark and
predicts every origin in one pass.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting import registry
from nasa_autoscale.forecasting.models import Forecaster

WINDOW_NAMES = ("validation", "test")


COLUMNS = [
    "window",
    "minutes",
    "origin",
    "step",
    "bucket_start",
    "yhat",
    "yhat_lower",
    "yhat_upper",
]
# scaling_models: the test window's fitted LightGBM per bucket length and horizon, as plain text
# (LightGBMDirect.boosters): the live planner forecasts with exactly the model the cost report
# priced, without refitting and without unpickling anything.
MODEL_COLUMNS = [
    "window",
    "minutes",
    "horizon",
    "booster",
    "interval_low",
    "interval_high",
    "features",
    "mlflow_run_id",
]


def plan(start: pd.Timestamp, end: pd.Timestamp, minutes: int, steps: int):
    """An origin at every bucket of [start, end), each `steps` ahead, stopping at the end."""
    origins = pd.date_range(start, end, freq=f"{minutes}min", inclusive="left")
    return [(origin, min(steps, len(origins) - i)) for i, origin in enumerate(origins)]


def fit_and_forecast(
    traffic: pd.DataFrame,
    minutes: int,
    events: pd.DataFrame,
    boot: int,
    window: str,
    calendar,
    lgbm_params: dict | None = None,
) -> tuple[Forecaster, pd.DataFrame, float]:
    """(fitted model, forecasts, their RMSE) for one of the calendar's windows; traffic indexed
    by bucket_start.

    lgbm_params were tuned on the validation window, so only the test window's model uses them:
    the validation window's forecasts (what the policies are tuned on) come from the defaults
    fixed in advance, never from parameters chosen on that same window."""
    start, end = calendar.windows()[window]
    lgbm_params = lgbm_params if window == "test" else None
    steps = boot + 1
    model = registry.build(
        "lightgbm_direct", lgbm_params, range(1, steps + 1), start - pd.Timedelta(days=7)
    )
    model.fit(traffic[traffic.index < start], minutes, events)
    forecast = model.predict(traffic[traffic.index < end], plan(start, end, minutes, steps))
    forecast.insert(0, "window", window)
    forecast.insert(1, "minutes", minutes)
    actual = traffic["requests"].reindex(forecast["bucket_start"]).to_numpy(float)
    rmse = float(np.sqrt(np.nanmean((forecast["yhat"].to_numpy() - actual) ** 2)))
    return model, forecast[COLUMNS], rmse


def made_at(forecasts: pd.DataFrame, minutes: int) -> pd.Series:
    """Which rows of scaling_forecasts are at `minutes` buckets (rows of a table without the
    `minutes` column, written before there were minute fleets, are 5-minute ones)."""
    return forecasts.get("minutes", pd.Series(5, index=forecasts.index)) == minutes


def forecast_array(
    forecasts: pd.DataFrame,
    window: str,
    span: tuple[pd.Timestamp, pd.Timestamp],
    minutes: int,
    steps: int,
) -> np.ndarray:
    """(buckets, steps, 3) array of yhat, lower, upper over the window's span [start, end) at
    `minutes` buckets: row t holds origin t's forecasts; steps past the window's end are NaN."""
    start, end = span
    rows = forecasts[(forecasts["window"] == window) & made_at(forecasts, minutes)]
    count = int((end - start) / pd.Timedelta(minutes=minutes))
    out = np.full((count, steps, 3), np.nan)
    t = ((rows["origin"] - start) / pd.Timedelta(minutes=minutes)).to_numpy().astype(int)
    s = rows["step"].to_numpy().astype(int) - 1
    keep = s < steps
    out[t[keep], s[keep]] = rows[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(float)[keep]
    return out


def tuned_lightgbm(con, minutes: int = 5) -> dict:
    """The LightGBM leaves the benchmark's tuning chose at this granularity (model_metrics.params),
    if any: the test window's scaling forecasts use them."""
    from nasa_autoscale.warehouse import SCHEMA, read

    rows = read(
        con,
        f"SELECT params FROM {SCHEMA}.model_metrics WHERE model = 'lightgbm_direct' "
        "AND granularity = ? AND params IS NOT NULL LIMIT 1",
        [f"{minutes}m"],
    )
    stored = json.loads(rows["params"].iloc[0]) if len(rows) else {}
    return registry.tuned_params("lightgbm_direct", stored)


def build_scaling_forecasts(
    traffic: dict[int, pd.DataFrame],
    events,
    calendar,
    steps: dict[int, int],
    lgbm_params: dict[int, dict],
    tracker,
    tags,
    progress,
) -> tuple[pd.DataFrame, dict[str, str], pd.DataFrame]:
    """(scaling_forecasts, MLflow run id per window and granularity, scaling_models): both
    windows' forecasts at every bucket length of `steps` ({minutes: the boot delay in buckets to
    cover}), each model a tracked run (tracker: forecasting.tracking.Tracker), and the test
    window's fitted models; traffic and lgbm_params by minutes."""
    frames, run_ids, models = [], {}, []
    for minutes, boot in sorted(steps.items(), reverse=True):
        for window in WINDOW_NAMES:
            started = time.perf_counter()
            model, forecast, rmse = fit_and_forecast(
                traffic[minutes], minutes, events, boot, window, calendar, lgbm_params[minutes]
            )
            elapsed = time.perf_counter() - started
            progress(
                f"scaling forecasts, {window}, {minutes} min: fitted and predicted in "
                f"{elapsed:.1f} s, RMSE {rmse:.1f}"
            )
            key = window if minutes == 5 else f"{window}_{minutes}m"
            run_ids[key] = tracker.log_run(
                f"scaling_lightgbm_{key}",
                {**model.params(), "window": window, "granularity": f"{minutes}m"},
                {"rmse": rmse, "total_s": elapsed},
                model.artifacts(),
                {**tags, "purpose": "scaling"},
            )
            forecast["mlflow_run_id"] = run_ids[key]
            frames.append(forecast)
            if window == "test":
                for row in model.boosters():
                    models.append({**row, "window": window, "minutes": minutes})
                    models[-1]["mlflow_run_id"] = run_ids[key]
    return (
        pd.concat(frames, ignore_index=True),
        run_ids,
        pd.DataFrame(models, columns=MODEL_COLUMNS),
    )


def load_scaling_model(con, minutes: int, events) -> Forecaster:
    """The test window's LightGBM at `minutes` from scaling_models, ready to predict (the model
    scaling_forecasts fitted and the cost report priced). MissingTable/ValueError without one."""
    from nasa_autoscale.forecasting.models import LightGBMDirect
    from nasa_autoscale.warehouse import SCHEMA, read

    rows = read(
        con,
        f"SELECT * FROM {SCHEMA}.scaling_models WHERE \"window\" = 'test' AND minutes = ? "
        "ORDER BY horizon",
        [minutes],
    )
    if rows.empty:
        raise ValueError(
            f"scaling_models holds no {minutes}-minute model: materialize `scaling_forecasts`"
        )
    return LightGBMDirect.restore(rows.to_dict("records"), minutes, events)


def spread_to(frame: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """A forecast frame (bucket_start, yhat, yhat_lower, yhat_upper at one bucket length) at a
    finer one: each bucket's values shared evenly among its finer buckets (a day-ahead forecast
    made at 5 minutes, for a fleet deciding every minute). Unchanged at its own length."""
    times = pd.DatetimeIndex(frame["bucket_start"])
    step = (times[1] - times[0]) if len(times) > 1 else pd.Timedelta(minutes=5)
    parts = int(step / pd.Timedelta(minutes=minutes))
    if parts <= 1:
        return frame
    out = frame.loc[frame.index.repeat(parts)].reset_index(drop=True)
    offsets = np.tile(np.arange(parts), len(frame)) * pd.Timedelta(minutes=minutes)
    out["bucket_start"] = pd.DatetimeIndex(out["bucket_start"]) + offsets
    for column in ("yhat", "yhat_lower", "yhat_upper"):
        if column in out:
            out[column] = out[column] / parts
    return out
