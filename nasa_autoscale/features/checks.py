"""Data checks on the feature tables, as plain functions returning (passed, metadata), like
ingest/checks.py: the asset check missing_stays_missing (assets/features.py) calls them, and so
do the tests."""

from __future__ import annotations

import duckdb

from nasa_autoscale.warehouse import SCHEMA


def lag_check(con: duckdb.DuckDBPyConnection, table: str, source: str) -> tuple[bool, dict]:
    """Missing stays missing, judged against the traffic the features were built from (`source`):
    lag_1 equals the previous bucket's requests there (NULL where that bucket is missing or was
    never ingested), and a missing bucket has no target."""
    bad, zero_filled = con.execute(
        f"""
        WITH grid AS (
            SELECT f.bucket_start, f.lag_1, f.requests, f.is_missing,
                   lag(s.requests) OVER (ORDER BY f.bucket_start) AS previous,
                   row_number() OVER (ORDER BY f.bucket_start) AS n
            FROM {SCHEMA}.{table} f LEFT JOIN {source} s USING (bucket_start)
        )
        SELECT count(*) FILTER (WHERE n > 1 AND lag_1 IS DISTINCT FROM previous),
               count(*) FILTER (WHERE is_missing AND requests IS NOT NULL)
        FROM grid
        """
    ).fetchall()[0]
    return bad == 0 and zero_filled == 0, {
        "lag_mismatches": bad,
        "missing_with_a_target": zero_filled,
    }
