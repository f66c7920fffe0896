"""Forecasting models with one contract (after Nixtla's statsforecast: small classes, evaluation
kept apart).

    model.fit(train, minutes, events)  # train: a traffic frame (index bucket_start, a regular
                                       #   grid, requests NaN where missing) of the training
                                       #   window; events: the special events (exogenous)
    model.predict(traffic, plan)  # plan: [(origin, horizon)]; traffic: all actuals known so far

For each origin, predict may read only values before that origin; the backtest's leakage
test changes every later value and checks that nothing moves. Models are fitted once on the
training window; at each origin they are fed the newly observed actuals, never refitted.
Intervals are 80%: the 10% and 90% quantiles of the model's errors on data it was not fitted on
where it has such data, else of its in-sample errors.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd

INTERVAL = (0.10, 0.90)
# Every LightGBM's parameters unless tuning or the caller says otherwise (one thread per model:
# the benchmark fits two at a time).
LGBM_DEFAULTS = {
    "objective": "poisson",
    "n_estimators": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "verbose": -1,
    "n_jobs": 1,
    "random_state": 0,
}
# Fourier terms are phases of the day and the week in local time, counted from a Monday 00:00
# (any Monday gives the same phases: the remainder is exact).
MONDAY = pd.Timestamp("1970-01-05")


def plan_frame(plan: list[tuple[pd.Timestamp, int]], minutes: int) -> pd.DataFrame:
    """One row per forecast value: origin, bucket_start, step (1-based lead in buckets)."""
    origins, steps = [], []
    for origin, horizon in plan:
        origins.append(np.full(horizon, np.datetime64(origin, "ns")))
        steps.append(np.arange(1, horizon + 1))
    frame = pd.DataFrame({"origin": np.concatenate(origins), "step": np.concatenate(steps)})
    frame["bucket_start"] = frame["origin"] + (frame["step"] - 1) * pd.Timedelta(minutes=minutes)
    return frame


class Forecaster:
    name = "model"
    thread_safe = True  # two instances may fit and predict at once in two threads

    def fit(
        self, train: pd.DataFrame, minutes: int, events: pd.DataFrame | None = None
    ) -> Forecaster:
        """Learn from the training window; events (features.events.load_events) are known
        ahead, each from its known_from on; models that do not use them ignore them."""
        raise NotImplementedError

    def predict(self, traffic: pd.DataFrame, plan: list[tuple[pd.Timestamp, int]]) -> pd.DataFrame:
        """Rows: origin, step, bucket_start, yhat, yhat_lower, yhat_upper."""
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def artifacts(self) -> dict[str, str]:
        """The fitted model in a safe, readable format (file name -> text), for MLflow."""
        quantiles = np.asarray(getattr(self, "quantiles", [])).tolist()
        state = {"name": self.name, "params": self.params(), "interval_quantiles": quantiles}
        return {"model.json": json.dumps(state, indent=2, default=str)}


def gain_importance(columns: list[str], boosters: list) -> pd.DataFrame:
    """(feature, gain_share), largest first: each LightGBM booster's gain per feature as a share
    of its total, averaged over the boosters."""
    shares = []
    for booster in boosters:
        gain = booster.feature_importance("gain")
        shares.append(gain / max(gain.sum(), 1e-12))
    table = pd.DataFrame({"feature": columns, "gain_share": np.mean(shares, axis=0)})
    return table.sort_values("gain_share", ascending=False, ignore_index=True)


def _events_or_none(events: pd.DataFrame | None) -> pd.DataFrame:
    """The events a model learns from; None: no events (an empty, typed table)."""
    from nasa_autoscale.features.events import load_events

    return load_events(None) if events is None else events


def _positions(traffic: pd.DataFrame, times: pd.Series, minutes: int) -> np.ndarray:
    """Row of each time in `traffic` (indexed by bucket_start, a regular grid)."""
    return ((times - traffic.index[0]) / pd.Timedelta(minutes=minutes)).to_numpy().astype(np.int64)


def _value_before(values, target, origin, period, max_periods):
    """values[target - k * period] for the smallest k >= 1 with target - k*period < origin and
    a value present (NaN when none within max_periods)."""
    k = np.maximum(1, np.ceil((target - origin + 1) / period)).astype(np.int64)
    out = np.full(len(target), np.nan)
    for extra in range(max_periods):
        index = target - (k + extra) * period
        ok = np.isnan(out) & (index >= 0)
        out[ok] = values[index[ok]]
    return out


def _same_slot_forecast(model, traffic, plan, point) -> pd.DataFrame:
    """Forecasts of a baseline that reads same-slot values: point(values, target rows, origin
    rows) gives yhat; the interval adds the model's error quantiles."""
    frame = plan_frame(plan, model.minutes)
    target = _positions(traffic, frame["bucket_start"], model.minutes)
    origin = _positions(traffic, frame["origin"], model.minutes)
    frame["yhat"] = point(traffic["requests"].to_numpy(float), target, origin)
    frame["yhat_lower"] = (frame["yhat"] + model.quantiles[0]).clip(lower=0)
    frame["yhat_upper"] = frame["yhat"] + model.quantiles[1]
    return frame


class HistoryTooShort(ValueError):
    """Too little data for any forecast; the message says how much more is needed."""


class SeasonalNaive(Forecaster):
    """The value one period (a day or a week) earlier: the latest same-slot value known at the
    origin, stepping back further past missing buckets."""

    def __init__(self, period_days: int):
        self.period_days = period_days
        self.name = "seasonal_naive_" + ("day" if period_days == 1 else "week")

    def fit(self, train: pd.DataFrame, minutes: int, events=None) -> SeasonalNaive:
        self.minutes = minutes
        self.period = self.period_days * 24 * 60 // minutes
        y = train["requests"].astype(float)
        errors = (y - y.shift(self.period)).dropna()
        if errors.empty:  # a sparse log: no bucket with data a period after another one
            raise HistoryTooShort(
                f"{self.name}: no {minutes}-minute bucket has data both on a day and "
                f"{self.period_days} day(s) before it, so its errors cannot be measured; "
                "ingest more days of logs"
            )
        self.quantiles = np.quantile(errors, INTERVAL)
        return self

    def predict(self, traffic, plan):
        return _same_slot_forecast(self, traffic, plan, self._latest)

    def _latest(self, values, target, origin):
        return _value_before(values, target, origin, self.period, 4)

    def params(self):
        return {"period_days": self.period_days}


class SlotMedian(Forecaster):
    """The median of the same slot of the week over the last `weeks` weeks known at the origin."""

    name = "slot_median_3w"

    def __init__(self, weeks: int = 3):
        self.weeks = weeks

    def fit(self, train, minutes, events=None):
        self.minutes = minutes
        self.period = 7 * 24 * 60 // minutes
        values = train["requests"].to_numpy(float)
        n = np.arange(len(values))
        fitted = self._median(values, n, n)
        errors = values - fitted
        self.quantiles = np.nanquantile(errors[~np.isnan(errors)], INTERVAL)
        return self

    def _median(self, values, target, origin):
        k = np.maximum(1, np.ceil((target - origin + 1) / self.period)).astype(np.int64)
        stack = np.full((self.weeks, len(target)), np.nan)
        for j in range(self.weeks):
            index = target - (k + j) * self.period
            ok = index >= 0
            stack[j, ok] = values[index[ok]]
        with warnings.catch_warnings():  # a slot never observed: NaN, as it should be
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(stack, axis=0)

    def predict(self, traffic, plan):
        return _same_slot_forecast(self, traffic, plan, self._median)

    def params(self):
        return {"weeks": self.weeks}


class LightGBMDirect(Forecaster):
    """Direct multi-horizon LightGBM with a Poisson objective.

    One model per horizon in `horizons` (in buckets), each on the feature table shifted by that
    horizon (features.build.build_features): a value `step` buckets after the origin comes from
    the model of the smallest horizon >= step, whose features stop before the origin. Intervals:
    quantiles of each model's errors on the validation week, from a first fit that did not see it;
    the model is then refitted on the whole training window.

    detail=True (`lightgbm_detail`): the features also hold the minute detail of the last bucket
    known (ingest.traffic.MINUTE_DETAIL; NULL where the traffic has none).
    """

    name = "lightgbm_direct"

    def __init__(
        self,
        horizons: list[int],
        validation_start: pd.Timestamp | None,
        detail: bool = False,
        **lgbm_params,
    ):
        self.horizons = sorted(horizons)
        self.validation_start = validation_start
        self.detail = detail
        if detail:
            self.name = "lightgbm_detail"
        self.lgbm_params = {**LGBM_DEFAULTS, **lgbm_params}

    def _features(self, traffic: pd.DataFrame, horizon: int, since=None) -> pd.DataFrame:
        import duckdb

        from nasa_autoscale.features.build import build_features
        from nasa_autoscale.ingest.traffic import MINUTE_DETAIL

        frame = traffic.reset_index()
        if self.detail:  # traffic without minute detail (no traffic_1m): the features are NULL
            absent = [c for c in MINUTE_DETAIL if c not in frame]
            frame = frame.assign(**dict.fromkeys(absent, np.nan))
        con = duckdb.connect()
        con.register("traffic", frame)
        return build_features(
            con, "traffic", self.events, self.minutes, horizon, self.detail, since
        )

    def _model(self):
        import lightgbm

        return lightgbm.LGBMRegressor(**self.lgbm_params)

    def _fit_horizon(self, train: pd.DataFrame, horizon: int):
        table = self._features(train, horizon)
        rows = table[table["requests"].notna()]
        final = self._model().fit(rows[self.columns], rows["requests"])
        if self.validation_start is None:  # no interval of its own: calibrated elsewhere
            return horizon, final, np.array([np.nan, np.nan])
        early = rows[rows["bucket_start"] < self.validation_start]
        held = rows[rows["bucket_start"] >= self.validation_start]
        first = self._model().fit(early[self.columns], early["requests"])
        errors = held["requests"] - first.predict(held[self.columns])
        return horizon, final, np.quantile(errors, INTERVAL)

    def fit(self, train, minutes, events=None):
        from concurrent.futures import ThreadPoolExecutor

        from nasa_autoscale.features.build import feature_names

        self.events = _events_or_none(events)
        self.minutes = minutes
        self.columns = feature_names(minutes, self.detail)
        self.models, self.quantiles = {}, {}
        # One single-threaded LightGBM per horizon, two at a time: the models are independent and
        # LightGBM releases the GIL, which beats two OpenMP threads inside each fit.
        with ThreadPoolExecutor(max_workers=2) as pool:
            fitted = pool.map(lambda h: self._fit_horizon(train, h), self.horizons)
            for horizon, model, quantiles in fitted:
                self.models[horizon] = model
                self.quantiles[horizon] = quantiles
        return self

    def predict(self, traffic, plan):
        frame = plan_frame(plan, self.minutes)
        chosen = np.array(self.horizons)[
            np.searchsorted(self.horizons, frame["step"].clip(upper=self.horizons[-1]))
        ]
        if (frame["step"] > self.horizons[-1]).any():
            raise ValueError(f"steps beyond the longest horizon ({self.horizons[-1]} buckets)")
        frame["yhat"] = np.nan
        frame["yhat_lower"] = np.nan
        frame["yhat_upper"] = np.nan
        for horizon in np.unique(chosen):
            rows = chosen == horizon
            times = frame.loc[rows, "bucket_start"]
            table = self._features(traffic, int(horizon), times.min()).set_index("bucket_start")
            yhat = self.models[horizon].predict(table.loc[times, self.columns])
            low, high = self.quantiles[horizon]
            frame.loc[rows, "yhat"] = yhat
            frame.loc[rows, "yhat_lower"] = np.clip(yhat + low, 0, None)
            frame.loc[rows, "yhat_upper"] = yhat + high
        return frame

    def params(self):
        return {"horizons": self.horizons, **self.lgbm_params}

    def importance(self) -> pd.DataFrame:
        """Gain importance per feature: each horizon's model's gain as a share of its total,
        averaged over the horizons (feature, gain_share), largest first."""
        return gain_importance(self.columns, [m.booster_ for m in self.models.values()])

    def boosters(self) -> list[dict]:
        """The fitted models as plain data (no pickle): per horizon, LightGBM's text model and
        the interval's error quantiles; restore() rebuilds the forecaster from them."""
        return [
            {
                "horizon": int(h),
                "booster": getattr(m, "booster_", m).model_to_string(),
                "interval_low": float(self.quantiles[h][0]),
                "interval_high": float(self.quantiles[h][1]),
                "features": json.dumps(self.columns),
            }
            for h, m in self.models.items()
        ]

    @classmethod
    def restore(
        cls, rows: list[dict], minutes: int, events: pd.DataFrame | None, detail: bool = False
    ) -> LightGBMDirect:
        """The forecaster boosters() described, ready to predict (LightGBM reads its own text
        format; nothing stored runs as code). Its forecasts equal the fitted model's."""
        import lightgbm

        if not rows:
            raise ValueError("no fitted LightGBM models to restore")
        model = cls([int(row["horizon"]) for row in rows], None, detail)
        model.events, model.minutes = _events_or_none(events), minutes
        model.columns = json.loads(rows[0]["features"])
        model.models, model.quantiles = {}, {}
        for row in rows:
            horizon = int(row["horizon"])
            model.models[horizon] = lightgbm.Booster(model_str=row["booster"])
            model.quantiles[horizon] = np.array([row["interval_low"], row["interval_high"]])
        return model

    def artifacts(self):
        files = {f"lightgbm_h{h}.txt": m.booster_.model_to_string() for h, m in self.models.items()}
        files["intervals.json"] = json.dumps({str(h): list(q) for h, q in self.quantiles.items()})
        files["features.json"] = json.dumps(self.columns)
        files["feature_importance_gain.csv"] = self.importance().to_csv(index=False)
        return files


def _consecutive(plan, step) -> bool:
    return all(b[0] - a[0] == step for a, b in zip(plan, plan[1:], strict=False))


def _fourier(times: pd.DatetimeIndex, period: pd.Timedelta, order: int) -> np.ndarray:
    """sin/cos pairs of the time of `period` (a day, a week), orders 1..order."""
    phase = (((times - MONDAY) % period) / period).to_numpy()
    columns = []
    for k in range(1, order + 1):
        columns += [np.sin(2 * np.pi * k * phase), np.cos(2 * np.pi * k * phase)]
    return np.column_stack(columns)


class HarmonicARIMA(Forecaster):
    """SARIMA's seasonal job done by Fourier terms: a regression on daily and weekly sin/cos
    terms (orders 10 and 3) with ARMA(2, 1) errors, the ARMA part a statsmodels state-space
    model fitted once. A seasonal ARIMA with a 288-bucket season is impractical (the state grows
    with the season); Fourier terms carry the daily and weekly shape in 26 numbers.

    At each origin the ARMA state is filtered through the actuals before it (parameters fixed);
    missing buckets are skipped by the Kalman filter.
    """

    name = "sarima_fourier"

    def __init__(self, order=(2, 0, 1), daily_order: int = 10, weekly_order: int = 3):
        self.order = order
        self.daily_order = daily_order
        self.weekly_order = weekly_order

    def _design(self, times: pd.DatetimeIndex) -> np.ndarray:
        return np.column_stack(
            [
                np.ones(len(times)),
                _fourier(times, pd.Timedelta(days=1), self.daily_order),
                _fourier(times, pd.Timedelta(days=7), self.weekly_order),
            ]
        )

    def fit(self, train, minutes, events=None):
        from statsmodels.tsa.statespace.sarimax import SARIMAX

        self.minutes = minutes
        y = train["requests"].astype(float)
        x = self._design(train.index)
        present = y.notna().to_numpy()
        self.beta, *_ = np.linalg.lstsq(x[present], y.to_numpy()[present], rcond=None)
        residual = y.to_numpy() - x @ self.beta
        self.result = SARIMAX(residual, order=self.order, trend="n").fit(disp=False)
        return self

    def predict(self, traffic, plan):
        frame = plan_frame(plan, self.minutes)
        residual = traffic["requests"].to_numpy(float) - self._design(traffic.index) @ self.beta
        applied = self.result.apply(residual)  # same parameters, state filtered on all data
        start = traffic.index[0]
        step = pd.Timedelta(minutes=self.minutes)
        if all(horizon == 1 for _, horizon in plan):  # one_step: one filtered pass gives them all
            plan = [(plan[0][0], len(plan))] if _consecutive(plan, step) else plan
            dynamic = False
        else:
            dynamic = 0
        parts = []
        for origin, horizon in plan:
            first = int((origin - start) / step)
            # dynamic from the origin (nothing at or after it is used); one-step-ahead
            # predictions use only the buckets before each one
            prediction = applied.get_prediction(
                start=first, end=first + horizon - 1, dynamic=dynamic
            )
            mean = prediction.predicted_mean
            interval = prediction.conf_int(alpha=1 - (INTERVAL[1] - INTERVAL[0]))
            parts.append(np.column_stack([mean, interval[:, 0], interval[:, 1]]))
        values = np.vstack(parts)
        seasonal = self._design(pd.DatetimeIndex(frame["bucket_start"])) @ self.beta
        frame["yhat"] = np.clip(values[:, 0] + seasonal, 0, None)
        frame["yhat_lower"] = np.clip(values[:, 1] + seasonal, 0, None)
        frame["yhat_upper"] = values[:, 2] + seasonal
        return frame

    def params(self):
        return {
            "order": list(self.order),
            "daily_order": self.daily_order,
            "weekly_order": self.weekly_order,
        }

    def artifacts(self):
        state = {
            **self.params(),
            "fourier_coefficients": self.beta.tolist(),
            "arma_params": dict(
                zip(self.result.param_names, self.result.params.tolist(), strict=True)
            ),
        }
        return {"model.json": json.dumps(state, indent=2)}


class ProphetModel(Forecaster):
    """Prophet with daily and weekly seasonality and the scheduled special events as holidays
    (each day an event touches, one effect per kind). Its forecast depends on time alone, so
    newly observed actuals do not change it; an event not yet known at a forecast's origin
    (events.known_from) has its effect taken out of that forecast."""

    name = "prophet"
    thread_safe = False  # predict seeds and draws from numpy's global generator

    def _holidays(self) -> pd.DataFrame | None:
        """Prophet's holidays table; None without scheduled events (Prophet refuses an empty
        table)."""
        rows = []
        for event in self._scheduled().itertuples():
            for day in pd.date_range(event.start_ts.normalize(), event.end_ts.normalize()):
                rows.append(
                    {"holiday": event.kind, "ds": day, "lower_window": 0, "upper_window": 0}
                )
        return pd.DataFrame(rows) if rows else None

    def fit(self, train, minutes, events=None):
        import logging

        from prophet import Prophet

        logging.getLogger("cmdstanpy").setLevel(logging.WARNING)
        self.events = _events_or_none(events)
        self.minutes = minutes
        history = train["requests"].astype(float).dropna()
        self.model = Prophet(
            daily_seasonality=True,
            weekly_seasonality=True,
            yearly_seasonality=False,
            holidays=self._holidays(),
            interval_width=INTERVAL[1] - INTERVAL[0],
            uncertainty_samples=200,
        )
        self.model.fit(pd.DataFrame({"ds": history.index, "y": history.to_numpy()}))
        return self

    def _scheduled(self) -> pd.DataFrame:
        from nasa_autoscale.features.events import HINDSIGHT_KINDS

        return self.events[~self.events["kind"].isin(HINDSIGHT_KINDS)]

    def _unknown_effects(self, frame: pd.DataFrame, forecast: pd.DataFrame) -> np.ndarray:
        """Per forecast row: the holiday effects Prophet added for events not yet known at the
        row's origin (an event of that kind covers the day, but none known at the origin)."""
        day = frame["bucket_start"].dt.normalize()
        removed = np.zeros(len(frame))
        events = self._scheduled()
        for kind, group in events.groupby("kind"):
            covers = np.zeros(len(frame), bool)
            known = np.zeros(len(frame), bool)
            for event in group.itertuples():
                first, last = event.start_ts.normalize(), event.end_ts.normalize()
                inside = day.between(first, last).to_numpy()
                covers |= inside
                known |= inside & (frame["origin"] >= event.known_from).to_numpy()
            unknown = covers & ~known
            if unknown.any():
                effect = forecast[kind].reindex(frame["bucket_start"]).to_numpy()
                removed[unknown] += effect[unknown]
        return removed

    def predict(self, traffic, plan):
        frame = plan_frame(plan, self.minutes)
        times = pd.DataFrame({"ds": frame["bucket_start"].drop_duplicates()})
        np.random.seed(0)  # Prophet samples its intervals from numpy's global generator
        forecast = self.model.predict(times).set_index("ds")
        # an event known only after the origin must not shape the forecast: take its effect out
        unknown = self._unknown_effects(frame, forecast)
        for column in ("yhat", "yhat_lower", "yhat_upper"):
            values = forecast[column].reindex(frame["bucket_start"]).to_numpy() - unknown
            frame[column] = values if column == "yhat_upper" else np.clip(values, 0, None)
        return frame

    def artifacts(self):
        from prophet.serialize import model_to_json

        return {"prophet.json": model_to_json(self.model)}


def ensemble(
    forecasts: pd.DataFrame,
    members: list[str],
    name: str = "ensemble",
    weights: dict[str, float] | None = None,
) -> pd.DataFrame:
    """The mean of the members' forecasts (and of their interval bounds), per granularity,
    protocol, origin and bucket: equal weights, or `weights` by member (chosen on the validation
    window: combine.choose). Members are fixed in advance, never picked on the test window."""
    keys = ["granularity", "protocol", "origin", "bucket_start", "step"]
    values = ["yhat", "yhat_lower", "yhat_upper"]
    chosen = forecasts[forecasts["model"].isin(members)]
    complete = chosen.groupby(keys)["model"].transform("nunique") == len(members)
    chosen = chosen[complete]
    if weights is None:
        mean = chosen.groupby(keys, as_index=False)[values].mean()
    else:
        scaled = chosen[values].mul(chosen["model"].map(weights).to_numpy(float), axis=0)
        grouped = pd.concat([chosen[keys], scaled], axis=1).groupby(keys, as_index=False)
        # a bound some member lacks (LightGBM's, calibrated elsewhere) is NaN, not a partial sum
        mean = grouped[values].sum(min_count=len(members))
    mean.insert(0, "model", name)
    return mean


class Ensemble(Forecaster):
    """The mean of fresh member models (equal weights, or `weights` by member name), for a
    forecast outside the benchmark (the benchmark combines its members' stored forecasts with
    ensemble())."""

    def __init__(self, members: list[Forecaster], weights: dict[str, float] | None = None):
        self.members = members
        self.weights = weights
        self.name = "ensemble" if weights is None else "ensemble_weighted"

    def fit(self, train, minutes, events=None):
        for member in self.members:
            member.fit(train, minutes, events)
        return self

    def predict(self, traffic, plan):
        frames = [
            member.predict(traffic, plan).assign(model=member.name, granularity="", protocol="")
            for member in self.members
        ]
        names = [m.name for m in self.members]
        combined = ensemble(pd.concat(frames, ignore_index=True), names, weights=self.weights)
        return combined.drop(columns=["model", "granularity", "protocol"])

    def params(self):
        members = {"members": [m.name for m in self.members]}
        return members if self.weights is None else {**members, "weights": self.weights}
