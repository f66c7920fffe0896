"""Log files -> nasa.requests + nasa.rejected_lines for a range of days, in one transaction.

Each file is read once (gunzip and line split run in threads, parsing in DuckDB) and only the days
asked for are written. A file whose recorded time span (nasa.source_files) misses those days, and
that has not changed since, is not read at all.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.logfiles import read_lines
from nasa_autoscale.ingest.parse import REJECTED_COLUMNS, REQUEST_COLUMNS, parse_lines
from nasa_autoscale.warehouse import SCHEMA, replace_range, transaction

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    first_day: dt.date
    last_day: dt.date
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    lines_read: int = 0
    requests: int = 0
    rejected: int = 0
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None


def files_to_read(
    con: duckdb.DuckDBPyConnection, files: list[Path], first_day: dt.date, last_day: dt.date
) -> tuple[list[Path], list[Path]]:
    """Split files into (to read, to skip): skip unchanged files whose span misses the days."""
    known = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT source_file, size_bytes, modified_at, first_ts, last_ts "
            f"FROM {SCHEMA}.source_files"
        ).fetchall()
    }
    to_read, to_skip = [], []
    for path in files:
        stat = path.stat()
        entry = known.get(path.name)
        unchanged = entry is not None and entry[0] == stat.st_size and entry[1] == stat.st_mtime
        misses = unchanged and (
            entry[2] is None or entry[2].date() > last_day or entry[3].date() < first_day
        )
        (to_skip if misses else to_read).append(path)
    return to_read, to_skip


def ingest_days(
    con: duckdb.DuckDBPyConnection,
    files: list[Path],
    first_day: dt.date,
    last_day: dt.date,
    data_source: str,
    progress: Callable[[str], None] = log.info,
) -> IngestSummary:
    """Replace the requests and rejected lines of first_day..last_day with those in `files`."""
    summary = IngestSummary(first_day, last_day)
    to_read, to_skip = files_to_read(con, files, first_day, last_day)
    summary.files_skipped = [p.name for p in to_skip]
    high = last_day + dt.timedelta(days=1)
    staged = []
    with ThreadPoolExecutor(max_workers=2) as pool:
        # Reading (gunzip, split) runs ahead in threads while DuckDB parses the previous file.
        for i, (path, lines) in enumerate(zip(to_read, pool.map(read_lines, to_read), strict=True)):
            name = f"file{i}"
            parse_lines(con, lines, path.name, name)
            n_req, n_rej, first_ts, last_ts = _file_counts(con, name)
            if n_req + n_rej != lines.num_rows:  # the parser's contract; fail loudly if broken
                raise AssertionError(
                    f"{path}: {lines.num_rows} lines but {n_req} requests + {n_rej} rejected"
                )
            stat = path.stat()
            staged.append((path, name, stat, lines.num_rows, n_req, n_rej, first_ts, last_ts))
            summary.lines_read += lines.num_rows
            progress(
                f"read {path.name}: {lines.num_rows:,} lines, {n_req:,} requests, "
                f"{n_rej:,} rejected"
            )
            del lines
    now = dt.datetime.now()
    with transaction(con):
        for table, columns, suffix in (
            ("requests", REQUEST_COLUMNS, "requests"),
            ("rejected_lines", REJECTED_COLUMNS, "rejected"),
        ):

            def insert(columns=columns, suffix=suffix, table=table):
                for _, name, *_ in staged:
                    con.execute(
                        f"INSERT INTO {SCHEMA}.{table} ({columns}) SELECT {columns} "
                        f"FROM {name}_{suffix} WHERE day >= $low AND day < $high",
                        {"low": first_day, "high": high},
                    )

            replace_range(con, table, "day", first_day, high, insert)
        con.execute(
            f"DELETE FROM {SCHEMA}.ingest_ledger WHERE day >= $low AND day < $high",
            {"low": first_day, "high": high},
        )
        for path, name, stat, n_lines, n_req, n_rej, first_ts, last_ts in staged:
            _write_ledger(con, path.name, name, first_day, high, now)
            con.execute(f"DELETE FROM {SCHEMA}.source_files WHERE source_file = ?", [path.name])
            con.execute(
                f"INSERT INTO {SCHEMA}.source_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    path.name,
                    str(path),
                    stat.st_size,
                    stat.st_mtime,
                    n_lines,
                    n_req,
                    n_rej,
                    first_ts,
                    last_ts,
                    data_source,
                    now,
                ],
            )
    for _, name, *_ in staged:
        con.execute(f"DROP TABLE IF EXISTS {name}_requests; DROP TABLE IF EXISTS {name}_rejected")
    summary.files_read = [p.name for p, *_ in staged]
    counts = con.execute(
        f"SELECT sum(requests), sum(rejected) FROM {SCHEMA}.ingest_ledger "
        "WHERE day >= $low AND day < $high",
        {"low": first_day, "high": high},
    ).fetchall()[0]
    summary.requests, summary.rejected = int(counts[0] or 0), int(counts[1] or 0)
    span = con.execute(
        f"SELECT min(ts), max(ts) FROM {SCHEMA}.requests WHERE day >= $low AND day < $high",
        {"low": first_day, "high": high},
    ).fetchall()[0]
    summary.first_ts, summary.last_ts = span
    return summary


def _file_counts(con: duckdb.DuckDBPyConnection, name: str):
    return con.execute(
        f"SELECT (SELECT count(*) FROM {name}_requests), (SELECT count(*) FROM {name}_rejected), "
        f"(SELECT min(ts) FROM {name}_requests), (SELECT max(ts) FROM {name}_requests)"
    ).fetchall()[0]


def _write_ledger(con, source_file: str, name: str, low: dt.date, high: dt.date, now) -> None:
    """One ledger row per day of the range, zero counts included (an empty day is known empty)."""
    con.execute(
        f"""
        INSERT INTO {SCHEMA}.ingest_ledger
        WITH days AS (
            SELECT CAST(unnest(generate_series($low, $high - INTERVAL 1 DAY, INTERVAL 1 DAY))
                        AS DATE) AS day
        ), req AS (SELECT day, count(*) AS n FROM {name}_requests GROUP BY day),
        rej AS (SELECT day, count(*) AS n FROM {name}_rejected GROUP BY day)
        SELECT $source_file, days.day, coalesce(req.n, 0), coalesce(rej.n, 0), $now
        FROM days LEFT JOIN req USING (day) LEFT JOIN rej USING (day)
        """,
        {"source_file": source_file, "low": low, "high": high, "now": now},
    )
