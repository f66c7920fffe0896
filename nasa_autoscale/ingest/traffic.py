"""The one bucketing function: nasa.requests -> traffic_1m / traffic_5m / traffic_15m.

Every bucket of the days asked for gets a row. Buckets are cut from instants (`ts_utc`) aligned to
the site's local clock, so a day has 23, 24 or 25 hours of them; `bucket_start` is the local
wall-clock time, `bucket_start_utc` the instant. A minute is missing when no log was collected for
it: it lies outside every source file's time span, or inside a run of MISSING_RUN_MINUTES or more
minutes without a single request (an outage, not quiet traffic). A bucket is missing when all its
minutes are; its `requests` is then NULL, never 0. Partial buckets keep their counts and say how
many minutes they lack in `missing_minutes`.
"""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pandas as pd

from nasa_autoscale.ingest.sitezone import SiteZone, recorded_zone
from nasa_autoscale.warehouse import SCHEMA, replace_range, transaction

GRANULARITIES = {"1m": 1, "5m": 5, "15m": 15}
MISSING_RUN_MINUTES = 30

# Per-minute request counts and status mix, and the distinct (minute, host) pairs, read once from
# nasa.requests: every bucket size is rolled up from them.
_MINUTE_COUNTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE traffic_minute_counts AS
SELECT date_trunc('minute', ts_utc) AS minute, count(*) AS requests,
       coalesce(sum(bytes), 0) AS bytes,
       count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS status_2xx,
       count(*) FILTER (WHERE status BETWEEN 300 AND 399) AS status_3xx,
       count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS status_4xx,
       count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS status_5xx,
       sum(duration_ms) / 1000.0 AS busy_s
FROM {SCHEMA}.requests WHERE day >= $lo_day AND day < $hi_day
GROUP BY 1
"""
_MINUTE_HOSTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE traffic_minute_hosts AS
SELECT DISTINCT date_trunc('minute', ts_utc) AS minute, host
FROM {SCHEMA}.requests WHERE day >= $first_day AND day < $end_day
"""

# Minutes of the days asked for, with one day of context on each side so that a quiet run crossing
# midnight is measured whole. Context minutes of days never ingested are unknown (n NULL): they
# break runs instead of lengthening them.
_MINUTES_SQL = f"""
CREATE OR REPLACE TEMP TABLE traffic_minutes AS
WITH grid AS (
    SELECT unnest(generate_series($lo, $hi - INTERVAL 1 MINUTE, INTERVAL 1 MINUTE)) AS minute
), known_days AS (
    SELECT DISTINCT day FROM {SCHEMA}.ingest_ledger WHERE day >= $lo_day
    UNION SELECT unnest(CAST($days AS DATE[]))
), spans AS (
    -- the files' spans, each with the furthest end of it and every span starting before it: a
    -- minute is covered when the last span starting by its end reaches it (one as-of join, not
    -- minutes x files comparisons)
    SELECT first_ts, max(last_ts) OVER (ORDER BY first_ts ROWS UNBOUNDED PRECEDING) AS reach
    FROM {SCHEMA}.source_files WHERE first_ts IS NOT NULL
), minutes AS (
    SELECT g.minute,
           CASE WHEN k.day IS NOT NULL THEN coalesce(c.requests, 0) END AS n,
           coalesce(s.reach >= g.minute, FALSE) AS covered
    FROM grid g
    ASOF LEFT JOIN spans s ON s.first_ts < g.minute + INTERVAL 1 MINUTE
    LEFT JOIN traffic_minute_counts c USING (minute)
    LEFT JOIN known_days k ON k.day = CAST(__LOCAL_MINUTE__ AS DATE)
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

# Buckets cut from UTC minutes are aligned to the local clock too: every zone's offset (and every
# daylight-saving shift) is a whole multiple of 15 minutes.
_BUCKET = "time_bucket(INTERVAL (__MINUTES__) MINUTE, minute)"
_BUCKETS_SQL = f"""
WITH buckets AS (
    SELECT {_BUCKET} AS bucket_start,
           count(*) FILTER (WHERE is_missing) AS missing_minutes,
           bool_and(is_missing) AS is_missing
    FROM traffic_minutes GROUP BY 1
), counted AS (
    SELECT {_BUCKET} AS bucket_start,
           sum(requests) AS requests, sum(bytes) AS bytes,
           sum(status_2xx) AS status_2xx, sum(status_3xx) AS status_3xx,
           sum(status_4xx) AS status_4xx, sum(status_5xx) AS status_5xx,
           sum(busy_s) AS busy_s
    FROM traffic_minute_counts GROUP BY 1
), hosts AS (
    SELECT {_BUCKET} AS bucket_start,
           __COUNT_HOSTS__ AS unique_hosts
    FROM traffic_minute_hosts GROUP BY 1
)
SELECT __LOCAL_BUCKET__ AS bucket_start,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.requests, 0) END AS BIGINT) AS requests,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.bytes, 0) END AS BIGINT) AS bytes,
       CASE WHEN NOT b.is_missing THEN coalesce(h.unique_hosts, 0) END AS unique_hosts,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_2xx, 0) END AS BIGINT) AS status_2xx,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_3xx, 0) END AS BIGINT) AS status_3xx,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_4xx, 0) END AS BIGINT) AS status_4xx,
       CAST(CASE WHEN NOT b.is_missing THEN coalesce(c.status_5xx, 0) END AS BIGINT) AS status_5xx,
       CAST(c.status_4xx + c.status_5xx AS DOUBLE) / nullif(c.requests, 0) AS error_rate,
       b.is_missing,
       CAST(b.missing_minutes AS INTEGER) AS missing_minutes,
       b.bucket_start AS bucket_start_utc,
       CASE WHEN NOT b.is_missing THEN c.busy_s END AS busy_s
FROM buckets b
LEFT JOIN counted c USING (bucket_start)
LEFT JOIN hosts h USING (bucket_start)
WHERE b.bucket_start >= $first AND b.bucket_start < $end
ORDER BY b.bucket_start
"""


def _params(zone: SiteZone, first_day: dt.date, last_day: dt.date, sql: str) -> dict:
    """The query's named parameters: UTC instants of local midnights ($lo, $hi: with a day of
    context; $first, $end), and local days ($lo_day, $hi_day, $first_day, $end_day, $days)."""
    one_day = dt.timedelta(days=1)
    lo_day, hi_day = first_day - one_day, last_day + 2 * one_day
    values = {
        "lo": zone.midnight_utc(lo_day),
        "hi": zone.midnight_utc(hi_day),
        "first": zone.midnight_utc(first_day),
        "end": zone.midnight_utc(last_day + one_day),
        "lo_day": lo_day,
        "hi_day": hi_day,
        "first_day": first_day,
        "end_day": last_day + one_day,
        "days": [first_day + i * one_day for i in range((last_day - first_day).days + 1)],
    }
    used = set(re.findall(r"\$(\w+)", sql))
    return {name: value for name, value in values.items() if name in used}


def mark_missing_minutes(
    con: duckdb.DuckDBPyConnection,
    first_day: dt.date,
    last_day: dt.date,
    zone: SiteZone | None = None,
):
    """Fill the temp tables behind traffic_buckets for first_day..last_day: per-minute counts,
    (minute, host) pairs and traffic_minutes (minute, is_missing), minutes in UTC."""
    zone = zone or recorded_zone(con)
    for sql in (_MINUTE_COUNTS_SQL, _MINUTE_HOSTS_SQL, _MINUTES_SQL):
        sql = sql.replace("__LOCAL_MINUTE__", zone.local_sql("g.minute"))
        con.execute(sql, _params(zone, first_day, last_day, sql))


def traffic_buckets(
    con: duckdb.DuckDBPyConnection,
    minutes: int,
    first_day: dt.date,
    last_day: dt.date,
    zone: SiteZone | None = None,
) -> duckdb.DuckDBPyRelation:
    """Traffic per `minutes`-minute bucket; needs mark_missing_minutes for the same days first."""
    zone = zone or recorded_zone(con)
    if minutes not in GRANULARITIES.values() or 60 % minutes:
        raise ValueError(f"bucket size must be one of {sorted(GRANULARITIES.values())} minutes")
    # (minute, host) pairs are distinct already: a 1-minute bucket needs no DISTINCT.
    count_hosts = "count(*)" if minutes == 1 else "count(DISTINCT host)"
    sql = (
        _BUCKETS_SQL.replace("__MINUTES__", str(minutes))
        .replace("__COUNT_HOSTS__", count_hosts)
        .replace("__LOCAL_BUCKET__", zone.local_sql("b.bucket_start"))
    )
    return con.sql(sql, params=_params(zone, first_day, last_day, sql))


def write_traffic(
    con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date
) -> dict[str, int]:
    """Replace traffic_1m/5m/15m rows of first_day..last_day; returns rows written per table."""
    zone = recorded_zone(con)
    mark_missing_minutes(con, first_day, last_day, zone)
    low = dt.datetime.combine(first_day, dt.time())
    high = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())
    rows = {}
    with transaction(con):
        for name, minutes in GRANULARITIES.items():
            table = f"traffic_{name}"
            relation = traffic_buckets(con, minutes, first_day, last_day, zone)

            def insert(relation=relation, table=table):
                relation.insert_into(f"{SCHEMA}.{table}")

            replace_range(con, table, "bucket_start", low, high, insert)
            rows[table] = con.execute(
                f"SELECT count(*) FROM {SCHEMA}.{table} "
                "WHERE bucket_start >= ? AND bucket_start < ?",
                [low, high],
            ).fetchall()[0][0]
    return rows


def local_buckets(con: duckdb.DuckDBPyConnection, minutes: int, days: int | None = None) -> str:
    """A temp view of traffic_<minutes>m with one row per local bucket_start, as the models read
    it: for an hour the clock repeats (daylight saving ends), its first pass. days: only the
    last `days` days of the data (NASA_HISTORY_DAYS), so that its readers' cost does not grow
    with the span of the history. Returns its name."""
    name = next(k for k, v in GRANULARITIES.items() if v == minutes)
    view = f"traffic_{name}_local" + (f"_last{int(days)}" if days is not None else "")
    window = ""
    if days is not None:
        window = (
            f"WHERE bucket_start >= (SELECT max(bucket_start)::DATE + 1 - {int(days)} "
            f"FROM {SCHEMA}.traffic_{name})"
        )
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {SCHEMA}.traffic_{name} {window} "
        "QUALIFY row_number() OVER (PARTITION BY bucket_start ORDER BY bucket_start_utc) = 1"
    )
    return view


# The minute detail of a 5- or 15-minute bucket, from traffic_1m: requests in its first and last
# minute and in its busiest and quietest minute (the momentum a bucket's total averages away).
MINUTE_DETAIL = ("minute_first", "minute_last", "minute_max", "minute_min")
# The columns of whole_days a model may read besides bucket_start and requests.
MODEL_INPUTS = (
    "bytes",
    "unique_hosts",
    "error_rate",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    *MINUTE_DETAIL,
)


def _minute_detail(con: duckdb.DuckDBPyConnection, minutes: int) -> tuple[str, str]:
    """(columns, join) SQL adding MINUTE_DETAIL to whole_days' select: NULL where a minute has
    no log, and all NULL when traffic_1m is not there."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = ? AND table_name = 'traffic_1m'",
        [SCHEMA],
    ).fetchall()[0][0]
    if not exists:
        return ", " + ", ".join(f"CAST(NULL AS DOUBLE) AS {c}" for c in MINUTE_DETAIL), ""
    once = local_buckets(con, 1)
    slot = f"(hour(bucket_start) * 60 + minute(bucket_start)) % {minutes}"
    detail = f"""(
        SELECT time_bucket(INTERVAL {minutes} MINUTE, bucket_start) AS bucket_start,
               max(requests) FILTER (WHERE {slot} = 0) AS minute_first,
               max(requests) FILTER (WHERE {slot} = {minutes - 1}) AS minute_last,
               max(requests) AS minute_max, min(requests) AS minute_min
        FROM {once} GROUP BY 1
    ) d"""
    columns = ", " + ", ".join(f"CAST(d.{c} AS DOUBLE) AS {c}" for c in MINUTE_DETAIL)
    return columns, f"LEFT JOIN {detail} USING (bucket_start)"


def whole_days(
    con: duckdb.DuckDBPyConnection,
    minutes: int,
    detail: bool = True,
    days: int | None = None,
    through=None,
) -> pd.DataFrame:
    """traffic_<minutes>m from its first to its last day, days never ingested filled in as
    missing, ordered: a regular grid of local wall-clock times for readers that count in buckets.
    days: only the last `days` days (NASA_HISTORY_DAYS: the windows that do not need the whole
    history do not read it); through: the last day to read (a date; default the data's last).
    Coarser than a minute, each bucket also carries its MINUTE_DETAIL (read from traffic_1m, so
    its readers declare that table); detail=False leaves it out for readers of the totals.

    Under daylight saving the local clock skips an hour (its buckets are missing here) and repeats
    one (the second pass is left out here; traffic_* keep both)."""
    once = local_buckets(con, minutes)
    with_detail = detail and minutes > 1
    detail_columns, detail_join = _minute_detail(con, minutes) if with_detail else ("", "")
    end_day = "max(bucket_start)::DATE + 1"
    if through is not None:  # never past the data's last day
        end_day = f"least({end_day}, DATE '{through}' + 1)"
    first_day = "min(bucket_start)::DATE"
    if days is not None:
        first_day = f"greatest({first_day}, {end_day} - {int(days)})"
    return con.sql(
        f"""
        WITH span AS (
            SELECT {first_day} AS first_day, {end_day} AS end_day
            FROM {once}
        ), grid AS (
            SELECT unnest(generate_series(CAST(first_day AS TIMESTAMP),
                                          CAST(end_day AS TIMESTAMP) - INTERVAL {minutes} MINUTE,
                                          INTERVAL {minutes} MINUTE)) AS bucket_start
            FROM span
        )
        SELECT g.bucket_start,
               t.* EXCLUDE (bucket_start, is_missing, missing_minutes, bucket_start_utc),
               coalesce(t.is_missing, TRUE) AS is_missing,
               coalesce(t.missing_minutes, {minutes}) AS missing_minutes{detail_columns}
        FROM grid g LEFT JOIN {once} t USING (bucket_start) {detail_join}
        ORDER BY g.bucket_start
        """
    ).df()
