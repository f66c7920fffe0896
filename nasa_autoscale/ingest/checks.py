"""Data checks on the ingest tables, as plain functions returning (passed, metadata).

The Dagster asset checks call these; tests call them too.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pandas as pd

from nasa_autoscale.ingest.reference import FILE_LAST_SECONDS, reference_counts
from nasa_autoscale.ingest.sitezone import recorded_zone
from nasa_autoscale.warehouse import SCHEMA


def _day_params(first_day: dt.date, last_day: dt.date) -> dict:
    return {"low": first_day, "high": last_day + dt.timedelta(days=1)}


def lines_accounted(
    con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date
) -> tuple[bool, dict]:
    """Every line read is in requests or rejected_lines exactly once, per file and day.

    Per (file, day) of the range, the warehouse rows equal the ledger written at parse time; no
    (file, line_number) appears twice; and a file whose every day is ingested has as many rows in
    requests + rejected_lines as it has lines (so a line stored nowhere fails the check).
    """
    per_day = con.execute(
        f"""
        WITH req AS (SELECT source_file, day, count(*) AS n FROM {SCHEMA}.requests
                     WHERE day >= $low AND day < $high GROUP BY ALL),
             rej AS (SELECT source_file, day, count(*) AS n FROM {SCHEMA}.rejected_lines
                     WHERE day >= $low AND day < $high GROUP BY ALL)
        SELECT l.source_file, l.day, l.requests, l.rejected,
               coalesce(req.n, 0) AS requests_stored, coalesce(rej.n, 0) AS rejected_stored
        FROM {SCHEMA}.ingest_ledger l
        LEFT JOIN req USING (source_file, day) LEFT JOIN rej USING (source_file, day)
        WHERE l.day >= $low AND l.day < $high
        """,
        _day_params(first_day, last_day),
    ).df()
    bad_days = per_day[
        (per_day.requests != per_day.requests_stored)
        | (per_day.rejected != per_day.rejected_stored)
    ]
    duplicates = con.execute(
        f"""
        SELECT count(*) - count(DISTINCT (source_file, line_number)) FROM (
            SELECT source_file, line_number FROM {SCHEMA}.requests WHERE day >= $low AND day < $high
            UNION ALL
            SELECT source_file, line_number FROM {SCHEMA}.rejected_lines
            WHERE day >= $low AND day < $high)
        """,
        _day_params(first_day, last_day),
    ).fetchall()[0][0]
    # Whole files: the rows actually stored (any day) against the file's line count, for every
    # file whose days (from its lines, rejected ones included) are all in the ledger.
    files = con.execute(
        f"""
        WITH ledger_days AS (
            SELECT source_file, count(DISTINCT day) AS days FROM {SCHEMA}.ingest_ledger
            JOIN {SCHEMA}.source_files f USING (source_file)
            WHERE day BETWEEN f.first_day AND f.last_day GROUP BY ALL
        ), stored AS (
            SELECT source_file, count(*) AS n FROM (
                SELECT source_file FROM {SCHEMA}.requests
                UNION ALL SELECT source_file FROM {SCHEMA}.rejected_lines)
            GROUP BY ALL
        )
        SELECT f.source_file, f.lines,
               f.requests + f.rejected + coalesce(f.header_lines, 0) AS parsed,
               coalesce(s.n, 0) + coalesce(f.header_lines, 0) AS stored,
               f.first_day IS NOT NULL AND coalesce(d.days, 0)
                   = date_diff('day', f.first_day, f.last_day) + 1 AS complete
        FROM {SCHEMA}.source_files f
        LEFT JOIN stored s USING (source_file) LEFT JOIN ledger_days d USING (source_file)
        """
    ).df()
    bad_files = files[
        (files.lines != files.parsed) | (files.complete & (files.stored != files.lines))
    ]
    passed = bad_days.empty and duplicates == 0 and bad_files.empty
    metadata = {
        "lines_read_in_range": int(per_day.requests.sum() + per_day.rejected.sum()),
        "requests_stored": int(per_day.requests_stored.sum()),
        "rejected_stored": int(per_day.rejected_stored.sum()),
        "file_days_checked": len(per_day),
        "file_days_mismatched": len(bad_days),
        "duplicate_lines": int(duplicates),
        "files_fully_ingested": int(files.complete.sum()),
        "files_mismatched": bad_files.source_file.tolist(),
    }
    return passed, metadata


def buckets_complete(
    con: duckdb.DuckDBPyConnection, table: str, minutes: int, first_day: dt.date, last_day: dt.date
) -> tuple[bool, dict]:
    """Each bucket of the days appears once; missing buckets have NULL requests, others >= 0."""
    zone = recorded_zone(con)
    low = dt.datetime.combine(first_day, dt.time())
    high = dt.datetime.combine(last_day + dt.timedelta(days=1), dt.time())
    rows, distinct, bad_missing, negative, missing = con.execute(
        f"""
        SELECT count(*), count(DISTINCT bucket_start_utc),
               count(*) FILTER (WHERE is_missing AND requests IS NOT NULL),
               count(*) FILTER (WHERE NOT is_missing AND (requests IS NULL OR requests < 0)),
               count(*) FILTER (WHERE is_missing)
        FROM {SCHEMA}.{table} WHERE bucket_start >= ? AND bucket_start < ?
        """,
        [low, high],
    ).fetchall()[0]
    # Local days last 23 to 25 hours under daylight saving: count from the UTC instants.
    span = zone.midnight_utc(last_day + dt.timedelta(days=1)) - zone.midnight_utc(first_day)
    expected = int(span.total_seconds() // (60 * minutes))
    passed = rows == distinct == expected and bad_missing == 0 and negative == 0
    return passed, {
        "buckets": rows,
        "expected_buckets": expected,
        "missing_buckets": missing,
        "missing_with_a_count": bad_missing,
        "present_without_a_count": negative,
    }


def matches_reference(
    con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date
) -> tuple[bool, dict] | None:
    """traffic_5m.requests against the reference per-second series, bucket for bucket.

    Only for the NASA trace (real or replica); None otherwise. Missing buckets must have no
    reference requests. The real files hold one July line more than the reference (its script
    skipped it), so one request of difference is allowed on real data, none on the replica.
    """
    sources = con.execute(f"SELECT source_file, data_source FROM {SCHEMA}.source_files").fetchall()
    if not sources or {name for name, _ in sources} - set(FILE_LAST_SECONDS):
        return None
    allowed = 1 if any(kind == "real" for _, kind in sources) else 0
    return compare_with_reference(con, first_day, last_day, allowed)


def compare_with_reference(
    con: duckdb.DuckDBPyConnection, first_day: dt.date, last_day: dt.date, allowed: int = 0
) -> tuple[bool, dict]:
    """traffic_5m.requests of first_day..last_day against the reference series, whatever files
    they came from (daily or rotated files cut from the NASA trace too); `allowed` requests of
    total difference pass."""
    low = pd.Timestamp(first_day)
    high = pd.Timestamp(last_day + dt.timedelta(days=1))
    ours = (
        con.execute(
            f"SELECT bucket_start, requests FROM {SCHEMA}.traffic_5m "
            "WHERE bucket_start >= ? AND bucket_start < ? ORDER BY 1",
            [low.to_pydatetime(), high.to_pydatetime()],
        )
        .df()
        .set_index("bucket_start")["requests"]
    )
    ref = reference_counts(5)
    ref = ref[(ref.index >= low) & (ref.index < high)].reindex(ours.index, fill_value=0)
    diff = (ours.fillna(0) - ref).abs()
    mismatched = diff[diff > 0]
    passed = int(diff.sum()) <= allowed
    return passed, {
        "buckets_compared": len(ours),
        "buckets_mismatched": len(mismatched),
        "total_abs_difference": int(diff.sum()),
        "allowed_difference": allowed,
        "first_mismatches": ", ".join(
            f"{t:%Y-%m-%d %H:%M}: {d:+.0f}"
            for t, d in ((ours.fillna(0) - ref)[diff > 0].head(5).items())
        )
        or "none",
    }
