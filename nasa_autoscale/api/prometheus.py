"""GET /metrics/prometheus: every fleet's scaling signal, the freshness of its data and its
shadow-mode scores as Prometheus gauges (text exposition format 0.0.4), for a Prometheus server
to scrape or KEDA's metrics-api scaler to read with `format: prometheus` (docs/keda.md).

A fleet whose signal cannot be given (stale data, a plan that does not cover now, no plan) has
no load or server gauges at all, only `nasa_autoscale_signal_available 0` and its data age: a
scaler reading one of the missing series fails and its fallback takes over, never acting on an
old number. Loads are requests per second; the rolling scores are over the last SCORE_DAYS days
of forecast_scores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from nasa_autoscale import warehouse
from nasa_autoscale.warehouse import SCHEMA

PROMETHEUS_CONTENT_TYPE = CONTENT_TYPE_LATEST
SCORE_DAYS = 7
PREFIX = "nasa_autoscale_"


def recent_scores(frame, days: int) -> pd.DataFrame:
    """forecast_scores' rows of each fleet's last `days` scored days (empty before the daily
    forecast job has run)."""
    try:
        return frame(
            f"SELECT * FROM {SCHEMA}.forecast_scores "
            "QUALIFY dense_rank() OVER (PARTITION BY plan_setting ORDER BY day DESC) <= ?",
            [days],
        )
    except warehouse.MissingTable:
        return pd.DataFrame(columns=["plan_setting", "day", "model", "rmse", "n"])


def exposition(
    states: dict[str, tuple],
    scores: pd.DataFrame,
    rules: dict,
    stale_after_hours: float,
    days: int,
) -> bytes:
    """The page: states {fleet: (signal or None, why not, data age in seconds or None, live)}
    as fleet_signal gives them; scores as recent_scores gives them; rules {fleet: ScalingRules}."""
    registry = CollectorRegistry(auto_describe=False)

    def gauge(name: str, doc: str, labels: tuple[str, ...] = ()) -> Gauge:
        return Gauge(PREFIX + name, doc, ("fleet", *labels), registry=registry)

    available = gauge("signal_available", "1 when the fleet's load and server gauges are given")
    age = gauge("data_age_seconds", "seconds from the end of the newest data to now")
    live = gauge("data_live", "1 on a live site (judged stale), 0 on a fixed date range")
    stale_after = gauge("data_stale_after_seconds", "the age past which the signal is withheld")
    load = gauge(
        "forecast_load_rps",
        "the forecast's load: expected and the 80% interval, current and next bucket",
        ("bucket", "bound"),
    )
    provision = gauge(
        "provision_load_rps", "the load to provision for: the upper bound's max over the boot"
    )
    observed = gauge("observed_load_rps", "the load of the last complete bucket")
    planned = gauge("planned_servers", "provisioning_plan's servers for the current bucket")
    desired = gauge("desired_servers", "provision_load_rps over a server's rate, in bounds")
    server = gauge("server_capacity_rps", "what one server serves (KEDA's targetValue)")
    rmse = gauge(
        "day_ahead_rmse_requests",
        f"the deployed model's pooled day-ahead RMSE over the last {days} scored days "
        "(requests per 5-minute bucket)",
        ("model",),
    )
    shadow_cost = gauge(
        "shadow_plan_cost_dollars",
        f"the plans made at midnight, priced against each of the last {days} days",
    )
    shadow_optimum = gauge(
        "shadow_optimum_cost_dollars", f"the hindsight optimum of the same {days} days"
    )
    shadow_dropped = gauge(
        "shadow_dropped_ratio", "the plans' dropped share of requests, the mean over the days"
    )
    shadow_days = gauge("shadow_days", "days scored in the shadow-mode gauges")
    for fleet, (signal, _, seconds, is_live) in states.items():
        available.labels(fleet).set(signal is not None)
        live.labels(fleet).set(is_live)
        if seconds is not None:
            age.labels(fleet).set(seconds)
        if is_live:
            stale_after.labels(fleet).set(stale_after_hours * 3600)
        server.labels(fleet).set(rules[fleet].capacity / rules[fleet].bucket_s)
        if signal is not None:
            forecast = signal["forecast"]
            for bucket in ("current", "next"):
                for bound in ("expected", "lower", "upper"):
                    if forecast[bucket] is not None:
                        load.labels(fleet, bucket, bound).set(forecast[bucket][f"{bound}_rps"])
            provision.labels(fleet).set(forecast["load_rps"])
            if signal["observed"]["load_rps"] is not None:
                observed.labels(fleet).set(signal["observed"]["load_rps"])
            planned.labels(fleet).set(signal["planned_servers"])
            desired.labels(fleet).set(signal["desired_servers"])
        mine = scores[scores["plan_setting"] == fleet]
        if mine.empty:
            continue
        for model, rows in mine.groupby("model"):
            rows = rows[rows["n"] > 0]
            if len(rows):
                pooled = np.sqrt((rows["n"] * rows["rmse"] ** 2).sum() / rows["n"].sum())
                rmse.labels(fleet, model).set(float(pooled))
        priced = mine.dropna(subset=["plan_cost"])
        shadow_days.labels(fleet).set(len(priced))
        if len(priced):
            shadow_cost.labels(fleet).set(float(priced["plan_cost"].sum()))
            shadow_optimum.labels(fleet).set(float(priced["optimum_cost"].sum()))
            shadow_dropped.labels(fleet).set(float(priced["plan_dropped"].mean()))
    return generate_latest(registry)
