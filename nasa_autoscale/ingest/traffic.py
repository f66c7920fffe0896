"""The one bucketing function: nasa.requests -> traffic_1m / traffic_5m / traffic_15m.

Every bucket of the days asked for gets a row. A minute is missing when no log was collected for
it: it lies outside every source file's time span, or inside a run of MISSING_RUN_MINUTES or more
minutes without a single request (an outage, not quiet traffic). A bucket is missing when all its
minutes are; its `requests` is then NULL, never 0. Partial buckets keep their counts and say how
many minutes they lack in `missing_minutes`.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from nasa_autoscale.warehouse import SCHEMA, replace_range, transaction

GRANULARITIES = {"1m": 1, "5m": 5, "15m": 15}
MISSING_RUN_MINUTES = 30

# Per-minute request counts and status mix, and the distinct (minute, host) pairs, read once from
# nasa.requests: every bucket size is rolled up from them.
_MINUTE_COUNTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE traffic_minute_counts AS
SELECT date_trunc('minute', ts) AS minute, count(*) AS requests,
       coalesce(sum(bytes), 0) AS bytes,
       count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS status_2xx,
       count(*) FILTER (WHERE status BETWEEN 300 AND 399) AS status_3xx,
       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS status_4xx,
       count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS status_5xx
FROM {SCHEMA}.requests WHERE day >= CAST($lo AS DATE) AND day < CAST($hi AS DATE)
GROUP BY 1
"""
_MINUTE_HOSTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE traffic_minute_hosts AS
SELECT DISTINCT date_trunc('minute', ts) AS minute, host
FROM {SCHEMA}.requests WHERE day >= CAST($first AS DATE) AND day < CAST($end AS DATE)
"""

# Minutes of the days asked for, with one day of context on each side so that a quiet run crossing
# midnight is measured whole. Context minutes of days never ingested are unknown (n NULL): they
# break runs instead of lengthening them.
_MINUTES_SQL = f"""
CREATE OR REPLACE TEMP TABLE traffic_minutes AS
WITH grid AS (
    SELECT unnest(generate_series($lo, $hi - INTERVAL 1 MINUTE, INTERVAL 1 MINUTE)) AS minute
), known_days AS (
    SELECT DISTINCT day FROM {SCHEMA}.ingest_ledger WHERE day >= CAST($lo AS DATE)
    UNION SELECT CAST(unnest(generate_series($first, $last, INTERVAL 1 DAY)) AS DATE)
), spans AS (
    SELECT first_ts, last_ts FROM {SCHEMA}.source_files WHERE first_ts IS NOT NULL
), minutes AS (
    SELECT g.minute,
           CASE WHEN k.day IS NOT NULL THEN coalesce(c.requests, 0) END AS n,
           g.minute IN (SELECT g2.minute FROM grid g2 JOIN spans s
                        ON s.first_ts < g2.minute + INTERVAL 1 MINUTE AND s.last_ts >= g2.minute)
               AS covered
    FROM grid g
    LEFT JOIN traffic_minute_counts c USING (minute)
    LEFT JOIN known_days k ON k.day = CAST(g.minute AS DATE)
), runs AS (
    SELECT *, sum(CASE WHEN n = 0 THEN 0 ELSE 1 END) OVER (ORDER BY minute) AS run_id
    FROM minutes
), run_lengths AS (
    SELECT *, count(*) OVER (PARTITION BY run_id, n = 0) AS run_length FROM runs
)
SELECT minute,
       NOT covered OR (n = 0 AND run_length >= {MISSING_RUN_MINUTES}) AS is_missing
FROM run_lengths
WHERE minute >= $first AND minute < $end
"""

_BUCKETS_SQL = """
WITH buckets AS (
    SELECT time_bucket(INTERVAL (__MINUTES__) MINUTE, minute) AS bucket_start,
           count(*) FILTER (WHERE is_missing) AS missing_minutes,
           bool_and(is_missing) AS is_missing
    FROM traffic_minutes GROUP BY 1
), counted AS (
    SELECT time_bucket(INTERVAL (__MINUTES__) MINUTE, minute) AS bucket_start,
           sum(requests) AS requests, sum(bytes) AS bytes,
           sum(status_2xx) AS status_2xx, sum(status_3xx) AS status_3xx,
           sum(status_4xx) AS status_4xx, sum(status_5xx) AS status_5xx
    FROM traffic_minute_counts GROUP BY 1
), hosts AS (
    SELECT time_bucket(INTERVAL (__MINUTES__) MINUTE, minute) AS bucket_start,
           __COUNT_HOSTS__ AS unique_hosts
    FROM traffic_minute_hosts GROUP BY 1
)
SELECT b.bucket_start,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.requests, 0) END AS BIGINT) AS requests,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.bytes, 0) END AS BIGINT) AS bytes,
       CASE WHEN NOT b.is_missing THEN coalesce(h.unique_hosts, 0) END AS unique_hosts,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_2xx, 0) END AS BIGINT) AS status_2xx,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_3xx, 0) END AS BIGINT) AS status_3xx,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_4xx, 0) END AS BIGINT) AS status_4xx,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_5xx, 0) END AS BIGINT) AS status_5xx,
       CAST(c.status_4xx + c.status_5xx AS DOUBLE) / nullif(c.requests, 0) AS error_rate,
       b.is_missing,
       CAST(b.missing_minutes AS INTEGER) AS missing_minutes
FROM buckets b
LEFT JOIN counted c USING (bucket_start)
LEFT JOIN hosts h USING (bucket_start)
WHERE b.bucket_start >= $first AND b.bucket_start < $end
ORDER BY b.bucket_start
"""


def _params(first_day: dt.date, last_day: dt.date, sql: str) -> dict:
    """The query's named parameters ($lo, $hi: with a day of context; $first, $last, $end)."""
    one_day = dt.timedelta(days=1)
    values = {
        "lo": dt.datetime.combine(first_day - one_day, dt.time()),
        "hi": dt.datetime.combine(last_day + 2 * one_day, dt.time()),
        "first": dt.datetime.combine(first_day, dt.time()),
        "last": dt.datetime.combine(last_day, dt.time()),
        "end": dt.datetime.combine(last_day + one_day, dt.time()),
    }
    return {name: value for name, value in values.items() if f"${name}" in sql}


def mark_missing_minutes(con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date):
    """Fill the temp tables behind traffic_buckets for first_day..last_day: per-minute counts,
    (minute, host) pairs and traffic_minutes (minute, is_missing)."""
    for sql in (_MINUTE_COUNTS_SQL, _MINUTE_HOSTS_SQL, _MINUTES_SQL):
        con.execute(sql, _params(first_day, last_day, sql))


def traffic_buckets(
    con: duckdb.DuckDBPyConnection, minutes: int, first_day: dt.date, last_day: dt.date
) -> duckdb.DuckDBPyRelation:
    """Traffic per `minutes`-minute bucket; needs mark_missing_minutes for the same days first."""
    if minutes not in GRANULARITIES.values() or 60 % minutes:
        raise ValueError(f"bucket size must be one of {sorted(GRANULARITIES.values())} minutes")
    # (minute, host) pairs are distinct already: a 1-minute bucket needs no DISTINCT.
    count_hosts = "count(*)" if minutes == 1 else "count(DISTINCT host)"
    sql = _BUCKETS_SQL.replace("__MINUTES__", str(minutes)).replace("__COUNT_HOSTS__", count_hosts)
    return con.sql(sql, params=_params(first_day, last_day, sql))


def write_traffic(
    con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date
) -> dict[str, int]:
    """Replace traffic_1m/5m/15m rows of first_day..last_day; returns rows written per table."""
    mark_missing_minutes(con, first_day, last_day)
    low = dt.datetime.combine(first_day, dt.time())
    high = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())
    rows = {}
    with transaction(con):
        for name, minutes in GRANULARITIES.items():
            table = f"traffic_{name}"
            relation = traffic_buckets(con, minutes, first_day, last_day)

            def insert(relation=relation, table=table):
                relation.insert_into(f"{SCHEMA}.{table}")

            replace_range(con, table, "bucket_start", low, high, insert)
            rows[table] = con.execute(
                f"SELECT count(*) FROM {SCHEMA}.{table} "
                "WHERE bucket_start >= ? AND bucket_start < ?",
                [low, high],
            ).fetchall()[0][0]
    return rows


def whole_days(con: duckdb.DuckDBPyConnection, minutes: int) -> pd.DataFrame:
    """traffic_<minutes>m from its first to its last day, days never ingested filled in as
    missing, ordered: a regular grid for readers that count in buckets."""
    table = f"{SCHEMA}.traffic_{next(k for k, v in GRANULARITIES.items() if v == minutes)}"
    return con.sql(
        f"""
        WITH span AS (
            SELECT CAST(min(bucket_start) AS DATE) AS first_day,
                   CAST(max(bucket_start) AS DATE) + 1 AS end_day
            FROM {table}
        ), grid AS (
            SELECT unnest(generate_series(CAST(first_day AS TIMESTAMP),
                                          CAST(end_day AS TIMESTAMP) - INTERVAL {minutes} MINUTE,
                                          INTERVAL {minutes} MINUTE)) AS bucket_start
            FROM span
        )
        SELECT g.bucket_start, t.* EXCLUDE (bucket_start, is_missing, missing_minutes),
               coalesce(t.is_missing, TRUE) AS is_missing,
               coalesce(t.missing_minutes, {minutes}) AS missing_minutes
        FROM grid g LEFT JOIN {table} t USING (bucket_start)
        ORDER BY g.bucket_start
        """
    ).df()
