"""Feature tables features_1m / features_5m / features_15m, in one generated DuckDB query.

Five families (the README lists every column):
- time: calendar of the bucket itself and flags of scheduled events covering it;
- lag: requests K buckets earlier (K = 1, 2, 3, 6, 12, one day, one week), differences, ratios;
- rolling: mean, std, min, max (and median) of the W buckets before this one;
- advanced: spike score, velocity, acceleration, momentum, trend, change against the same slot
  yesterday and last week;
- aggregation: bytes, unique hosts, error rate and status mix, lagged like the target;
- minute detail (only for models that ask, detail=True): the last known bucket's first, last,
  busiest and quietest minute, its last minute's slope and share.

No leakage: every lag, rolling and derived feature of row t reads only buckets before t. For a
forecast `horizon` buckets ahead the whole table is shifted: with horizon h, lag_K is the value
K + h - 1 buckets earlier and rolling windows end h buckets before t, so row t needs nothing
after bucket t - h, the last one known at the forecast origin. Missing buckets (NULL requests)
stay NULL: lags of them are NULL, and rolling statistics are taken over the buckets present.
"""

from __future__ import annotations

import duckdb
import pandas as pd

from nasa_autoscale.features.events import FEATURE_FLAGS, HINDSIGHT_KINDS
from nasa_autoscale.ingest.traffic import MINUTE_DETAIL

LAGS = (1, 2, 3, 6, 12)
ROLLING_WINDOWS = (3, 6, 12, 36)  # plus one day, added per granularity
ROLLING_STATS = {"mean": "avg", "std": "stddev_samp", "min": "min", "max": "max"}
AGGREGATES = ("bytes", "unique_hosts", "error_rate")


def buckets_per_day(minutes: int) -> int:
    return 24 * 60 // minutes


def feature_expressions(
    minutes: int, horizon: int = 1, detail: bool = False
) -> tuple[dict[str, str], dict[str, str]]:
    """(base, derived) feature SQL expressions; derived ones refer to base names. detail: add the
    minute detail of the last bucket known (ingest.traffic.MINUTE_DETAIL, lagged like the
    target), for the 5- and 15-minute models that read it."""
    if horizon < 1:
        raise ValueError("horizon must be at least 1 bucket")
    day = buckets_per_day(minutes)
    week = 7 * day
    shift = horizon - 1

    def lag(column: str, k: int) -> str:
        return f"lag({column}, {k + shift}) OVER w"

    def rolling(stat: str, column: str, width: int) -> str:
        frame = f"ROWS BETWEEN {width + shift} PRECEDING AND {horizon} PRECEDING"
        return f"{stat}({column}) OVER (ORDER BY bucket_start {frame})"

    minute_of_day = "(hour(bucket_start) * 60 + minute(bucket_start))"
    base: dict[str, str] = {
        # time
        "hour": "hour(bucket_start)",
        "minute_of_day": minute_of_day,
        "day_of_week": "isodow(bucket_start) - 1",
        "day_of_month": "day(bucket_start)",
        "is_weekend": "CAST(isodow(bucket_start) >= 6 AS INTEGER)",
        "hour_sin": "sin(2 * pi() * hour(bucket_start) / 24)",
        "hour_cos": "cos(2 * pi() * hour(bucket_start) / 24)",
        "minute_of_day_sin": f"sin(2 * pi() * {minute_of_day} / 1440)",
        "minute_of_day_cos": f"cos(2 * pi() * {minute_of_day} / 1440)",
        "day_of_week_sin": "sin(2 * pi() * (isodow(bucket_start) - 1) / 7)",
        "day_of_week_cos": "cos(2 * pi() * (isodow(bucket_start) - 1) / 7)",
    }
    for flag in FEATURE_FLAGS:
        base[flag] = f"coalesce(events.{flag}, 0)"
    lags = {**{f"lag_{k}": k for k in LAGS}, "lag_day": day, "lag_2day": 2 * day, "lag_week": week}
    for name, k in lags.items():
        base[name] = lag("requests", k)
    base["lag_day_plus_1"] = lag("requests", day + 1)  # the same slot as lag_1, a day earlier
    base["lag_week_plus_1"] = lag("requests", week + 1)
    for width in (*ROLLING_WINDOWS, day):
        suffix = "day" if width == day else str(width)
        for stat, function in ROLLING_STATS.items():
            base[f"rolling_{stat}_{suffix}"] = rolling(function, "requests", width)
    for width, suffix in ((12, "12"), (day, "day")):
        base[f"rolling_median_{suffix}"] = rolling("median", "requests", width)
    base["missing_in_last_day"] = rolling("sum", "CAST(requests IS NULL AS INTEGER)", day)
    for column in AGGREGATES:
        base[f"{column}_lag_1"] = lag(column, 1)
        base[f"{column}_lag_day"] = lag(column, day)
        base[f"{column}_rolling_mean_12"] = rolling("avg", column, 12)
    for status in ("2xx", "3xx", "4xx", "5xx"):
        base[f"share_{status}_lag_1"] = (
            f"{lag(f'status_{status}', 1)} / nullif({lag('requests', 1)}, 0)"
        )
    base["bytes_per_request_lag_1"] = f"{lag('bytes', 1)} / nullif({lag('requests', 1)}, 0)"
    base["requests_per_host_lag_1"] = f"{lag('requests', 1)} / nullif({lag('unique_hosts', 1)}, 0)"

    derived = {
        # lag family: differences and ratios
        "diff_1_2": "lag_1 - lag_2",
        "diff_1_12": "lag_1 - lag_12",
        "diff_day_week": "lag_day - lag_week",
        "diff_day_2day": "lag_day - lag_2day",
        "ratio_1_12": "lag_1 / nullif(lag_12, 0)",
        "ratio_1_day": "lag_1 / nullif(lag_day, 0)",
        "ratio_day_week": "lag_day / nullif(lag_week, 0)",
        # advanced family
        "spike_score": "(lag_1 - rolling_mean_12) / nullif(rolling_std_12, 0)",
        "zscore_day": "(lag_1 - rolling_mean_day) / nullif(rolling_std_day, 0)",
        "velocity": "(lag_1 - lag_3) / 2.0",
        "acceleration": "(lag_1 - lag_2) - (lag_2 - lag_3)",
        "momentum": "rolling_mean_3 - rolling_mean_12",
        "trend": "rolling_mean_12 - rolling_mean_day",
        "level_vs_day": "lag_1 / nullif(rolling_mean_day, 0)",
        "change_vs_yesterday": "lag_1 - lag_day_plus_1",
        "change_vs_yesterday_pct": "(lag_1 - lag_day_plus_1) / nullif(lag_day_plus_1, 0)",
        "change_vs_last_week": "lag_1 - lag_week_plus_1",
        "change_vs_last_week_pct": "(lag_1 - lag_week_plus_1) / nullif(lag_week_plus_1, 0)",
    }
    if detail:
        for column in MINUTE_DETAIL:
            base[f"{column}_lag_1"] = lag(column, 1)
        derived["minute_slope"] = "minute_last_lag_1 - minute_first_lag_1"
        # the last minute's rate against the bucket's: above 1, traffic was rising at the end
        derived["minute_last_share"] = f"minute_last_lag_1 * {minutes} / nullif(lag_1, 0)"
    return base, derived


def feature_names(minutes: int, detail: bool = False) -> list[str]:
    base, derived = feature_expressions(minutes, detail=detail)
    return [*base, *derived]


def _events_sql(events: pd.DataFrame) -> str:
    """A VALUES list of scheduled events (never outages) with one 0/1 column per flag."""
    rows = []
    for event in events.itertuples():
        if event.kind in HINDSIGHT_KINDS:
            continue
        flags = ", ".join(str(int(event.kind in kinds)) for kinds in FEATURE_FLAGS.values())
        times = ", ".join(
            f"TIMESTAMP '{t}'" for t in (event.start_ts, event.end_ts, event.known_from)
        )
        rows.append(f"({times}, {flags})")
    columns = ", ".join(["start_ts", "end_ts", "known_from", *FEATURE_FLAGS])
    if not rows:  # keep the shape: one row that covers nothing
        rows.append("(NULL, NULL, NULL, " + ", ".join("0" for _ in FEATURE_FLAGS) + ")")
    return f"(VALUES {', '.join(rows)}) AS e({columns})"


def build_features(
    con: duckdb.DuckDBPyConnection,
    traffic: str,
    events: pd.DataFrame,
    minutes: int,
    horizon: int = 1,
    detail: bool = False,
    since: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Features for every bucket of `traffic` (a table or view name with the traffic columns);
    since: only the rows from then on (computed over the whole table all the same: a forecast
    reads a few rows, and converting the rest is most of its cost).

    Buckets absent from `traffic` inside its span are added as missing, so that offsets in rows
    are offsets in time. An event flags row t only if it was known at the row's forecast origin,
    t - (horizon - 1) buckets (events.known_from): the same rule in training and forecasting.
    """
    base, derived = feature_expressions(minutes, horizon, detail)
    detail_columns = "".join(f", t.{c}" for c in MINUTE_DETAIL) if detail else ""
    flag_max = ", ".join(f"max(e.{flag}) AS {flag}" for flag in FEATURE_FLAGS)
    sql = f"""
    WITH grid AS (
        SELECT unnest(generate_series(min(bucket_start), max(bucket_start),
                                      INTERVAL {minutes} MINUTE)) AS bucket_start
        FROM {traffic}
    ), series AS (
        SELECT g.bucket_start, t.requests, t.bytes, t.unique_hosts, t.error_rate,
               t.status_2xx, t.status_3xx, t.status_4xx, t.status_5xx,
               coalesce(t.is_missing, TRUE) AS is_missing{detail_columns}
        FROM grid g LEFT JOIN {traffic} t USING (bucket_start)
    ), events AS (
        SELECT g.bucket_start, {flag_max}
        FROM grid g JOIN {_events_sql(events)}
            ON g.bucket_start >= e.start_ts AND g.bucket_start <= e.end_ts
            AND e.known_from <= g.bucket_start - INTERVAL {(horizon - 1) * minutes} MINUTE
        GROUP BY g.bucket_start
    ), base AS (
        SELECT series.bucket_start, series.requests, series.is_missing,
               {", ".join(f"{expr} AS {name}" for name, expr in base.items())}
        FROM series LEFT JOIN events USING (bucket_start)
        WINDOW w AS (ORDER BY series.bucket_start)
    )
    SELECT *, {", ".join(f"{expr} AS {name}" for name, expr in derived.items())}
    FROM base {"" if since is None else "WHERE bucket_start >= $since"} ORDER BY bucket_start
    """
    if since is None:
        return con.sql(sql).df()
    return con.execute(sql, {"since": pd.Timestamp(since).to_pydatetime()}).df()
