"""The number an autoscaler scales on, for one fleet, from the newest refresh: what KEDA's
metrics-api scaler reads from `GET /scaling/{fleet}`.

As Crane's EHPA does, the load to provision for now is the forecast's upper bound (the 80%
interval's upper end of `provisioning_plan`) maximised over [now, now + the fleet's boot]: a pod
asked for now serves only after its boot, so it must be there for the largest load it can meet.
The observed load of the last complete bucket goes beside it, for a second trigger, so an HPA
taking the larger cannot scale below what is happening. Loads are requests per second; a
server's `requests_per_second` is the targetValue that makes KEDA's AverageValue arithmetic
(replicas = ceil(value / targetValue)) the fleet's own.
"""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd

from nasa_autoscale.scaling.simulator import ScalingRules


class NoSignal(Exception):
    """No number may be given (stale data, a plan that does not cover now): the caller answers
    with an error status so the autoscaler's fallback takes over, never with an old number."""


def scaling_signal(
    plan: pd.DataFrame,
    observed: pd.DataFrame,
    rules: ScalingRules,
    now: dt.datetime,
    data_through: dt.datetime,
    stale_after: dt.timedelta | None,
) -> dict:
    """plan: one fleet's provisioning_plan rows (bucket_start, yhat, yhat_lower, yhat_upper,
    servers) at its
    interval; observed: its traffic at that interval (bucket_start, requests, is_missing);
    now and data_through in the site's time; stale_after None: history, never stale."""
    if stale_after is not None and now - data_through > stale_after:
        raise NoSignal(
            f"the newest data ends {data_through:%Y-%m-%d %H:%M}, "
            f"{(now - data_through).total_seconds() / 3600:.1f} h before now: older than "
            f"{stale_after.total_seconds() / 3600:g} h"
        )
    step = pd.Timedelta(seconds=rules.bucket_s)
    current = pd.Timestamp(now).floor(step)
    ahead = plan[
        (plan["bucket_start"] >= current)
        & (plan["bucket_start"] <= pd.Timestamp(now) + pd.Timedelta(seconds=rules.boot_delay_s))
    ]
    if ahead.empty or ahead["bucket_start"].iloc[0] != current:
        raise NoSignal(f"the newest provisioning_plan does not cover {current:%Y-%m-%d %H:%M}")
    load = float(ahead["yhat_upper"].max())
    following = plan[plan["bucket_start"] == current + step]
    rps = load / rules.bucket_s
    per_server = rules.capacity / rules.bucket_s
    desired = min(
        max(math.ceil(load / rules.capacity - 1e-9), rules.min_servers), rules.max_servers
    )
    seen = observed[
        (~observed["is_missing"].astype(bool))
        & (observed["bucket_start"] + step <= pd.Timestamp(now))
    ]
    last = seen.iloc[-1] if len(seen) else None
    return {
        "now": pd.Timestamp(now).isoformat(),
        "data_through": pd.Timestamp(data_through).isoformat(),
        "forecast": {
            "load_rps": round(rps, 6),
            "bound": "upper end of the 80% interval, the largest over [now, now + boot]",
            "window_s": rules.boot_delay_s,
            "buckets": len(ahead),
            "current": _bucket(ahead.iloc[0], rules),
            "next": _bucket(following.iloc[0], rules) if len(following) else None,
        },
        "desired_servers": int(desired),
        "planned_servers": int(ahead["servers"].iloc[0]),
        "observed": {
            "load_rps": None
            if last is None
            else round(float(last["requests"]) / rules.bucket_s, 6),
            "bucket_start": None
            if last is None
            else pd.Timestamp(last["bucket_start"]).isoformat(),
        },
        "server_rps": round(per_server, 6),
        "value_locations": {
            "forecast": "forecast.load_rps (AverageValue, targetValue: server_rps)",
            "desired": "desired_servers (AverageValue, targetValue: 1)",
            "observed": "observed.load_rps (AverageValue, targetValue: server_rps)",
        },
    }


def _bucket(row: pd.Series, rules: ScalingRules) -> dict:
    """One plan bucket's forecast as loads per second: expected and the 80% interval."""
    return {
        "bucket_start": pd.Timestamp(row["bucket_start"]).isoformat(),
        **{
            name: round(float(row[column]) / rules.bucket_s, 6)
            for name, column in (
                ("expected_rps", "yhat"),
                ("lower_rps", "yhat_lower"),
                ("upper_rps", "yhat_upper"),
            )
        },
    }
