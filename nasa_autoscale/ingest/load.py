"""Log files -> nasa.requests + nasa.rejected_lines for a range of days, in one transaction.

Each file is read once (gunzip and line indexing run in a thread, ahead of the parsing in DuckDB)
and only the days asked for are written. A file whose recorded time span (nasa.source_files)
misses those days, and that has not changed since, is not read at all.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.landing import days_from_name, days_of_file
from nasa_autoscale.ingest.logfiles import LogFileError, read_lines
from nasa_autoscale.ingest.parse import FIELDS, ParsedLog, drop_parsed, parse_lines
from nasa_autoscale.ingest.sitezone import AUTO, SiteZone, resolve
from nasa_autoscale.warehouse import SCHEMA, transaction

log = logging.getLogger(__name__)


@dataclass
class IngestSummary:
    first_day: dt.date
    last_day: dt.date
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    lines_read: int = 0  # all lines of the files read, whatever their day
    requests: int = 0  # written for the days asked for
    rejected: int = 0
    first_ts: dt.datetime | None = None
    last_ts: dt.datetime | None = None
    # files that could not be read (corrupt, truncated): name -> (error, days left unwritten)
    failed: dict[str, tuple[str, list[dt.date]]] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)  # file -> log format read
    zone: str = ""
    # files most of whose lines were rejected (stored all the same): name -> explanation
    mostly_rejected: dict[str, str] = field(default_factory=dict)

    def failure_message(self) -> str:
        messages = []
        if self.failed:
            days = sorted({day for _, failed_days in self.failed.values() for day in failed_days})
            parts = [
                f"{name}: {error} (days kept as they were: "
                f"{', '.join(d.isoformat() for d in failed_days)})"
                for name, (error, failed_days) in self.failed.items()
            ]
            messages.append(
                f"{len(days)} day(s) not ingested because a file could not be read; the other "
                "days of the range were written. " + "; ".join(parts)
            )
        if self.mostly_rejected:
            messages.append(
                f"{len(self.mostly_rejected)} file(s) mostly rejected: "
                + " ".join(self.mostly_rejected.values())
            )
        return "\n".join(messages)


def files_to_read(
    con: duckdb.DuckDBPyConnection, files: list[Path], first_day: dt.date, last_day: dt.date
) -> tuple[list[Path], list[Path]]:
    """Split files into (to read, to skip): skip unchanged files whose span misses the days."""
    known = {
        row[0]: row[1:]
        for row in con.execute(
            f"SELECT source_file, size_bytes, modified_at, first_day, last_day "
            f"FROM {SCHEMA}.source_files"
        ).fetchall()
    }
    to_read, to_skip = [], []
    for path in files:
        try:
            stat = path.stat()
        except OSError as error:  # gone since it was listed, or unreadable
            raise LogFileError(f"{path}: {error.strerror.lower()}") from error
        size, mtime, file_first, file_last = known.get(path.name, (None, None, None, None))
        unchanged = size == stat.st_size and mtime == stat.st_mtime
        misses = unchanged and (
            file_first is None or file_first > last_day or file_last < first_day
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
    timezone: str = AUTO,
    log_format: str = AUTO,
    reject_threshold: float = 0.5,
) -> IngestSummary:
    """Replace the requests and rejected lines of first_day..last_day with those in `files`.

    All files are read and parsed before anything is written; the write is one transaction, so a
    crash leaves the warehouse as it was. A file that cannot be read (corrupt or truncated gzip)
    does not stop the others: the days it covers (from its name or its recorded span, else the
    whole range) are left as they were, the rest are written, and summary.failed says which.

    Times are read in the site's zone (`timezone`: see sitezone.py), lines in `log_format` (auto:
    detected per file). A file with more than `reject_threshold` of its lines rejected is written
    all the same and named in summary.mostly_rejected, with its top reasons and sample lines.
    """
    summary = IngestSummary(first_day, last_day)
    to_read, to_skip = files_to_read(con, files, first_day, last_day)
    summary.files_skipped = [p.name for p in to_skip]
    parsed: list[tuple[Path, ParsedLog]] = []
    zone: SiteZone | None = None
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    try:
        with ThreadPoolExecutor(max_workers=1) as reader:
            # The next file is read (gunzip, line index) while DuckDB parses the current one.
            pending = [(path, reader.submit(read_lines, path)) for path in to_read]
            for i, (path, future) in enumerate(pending):
                try:
                    lines = future.result()
                except LogFileError as error:
                    lost = [d for d in days_of_file(con, path) or days if d in days]
                    summary.failed[path.name] = (str(error), lost)
                    progress(f"cannot read {path.name}, leaving {len(lost)} day(s) as they "
                             f"were: {error}")  # fmt: skip
                    continue
                if zone is None:
                    zone = resolve(con, timezone, lines.data)
                named = days_from_name(path.name)
                result = parse_lines(con, lines, f"file{i}", zone, log_format,
                                     named[0] if named else first_day)  # fmt: skip
                if result.n_requests + result.n_rejected != result.n_lines:
                    raise AssertionError(  # the parser's contract: every line lands once
                        f"{path}: {result.n_lines} lines, but {result.n_requests} requests "
                        f"+ {result.n_rejected} rejected"
                    )
                parsed.append((path, result))
                summary.lines_read += result.n_lines
                summary.formats[path.name] = result.log_format
                progress(
                    f"parsed {path.name} ({result.log_format} log format): {result.n_lines:,} "
                    f"lines, {result.n_requests:,} requests, {result.n_rejected:,} rejected"
                )
                if result.n_rejected > reject_threshold * max(result.n_lines, 1):
                    summary.mostly_rejected[path.name] = _rejection_report(
                        con, path, result, reject_threshold
                    )
                del lines
        lost = {day for _, failed_days in summary.failed.values() for day in failed_days}
        _write(con, parsed, [d for d in days if d not in lost], data_source)
    finally:
        # after a failed write DuckDB may refuse even this; the write's own error is the one to see
        with suppress(duckdb.Error):
            for _, result in parsed:
                drop_parsed(con, result)
    summary.files_read = [p.name for p, _ in parsed]
    summary.zone = zone.name if zone else ""
    day_range = {"low": first_day, "high": last_day + dt.timedelta(days=1)}
    summary.requests, summary.rejected = con.execute(
        f"SELECT coalesce(sum(requests), 0), coalesce(sum(rejected), 0) "
        f"FROM {SCHEMA}.ingest_ledger WHERE day >= $low AND day < $high",
        day_range,
    ).fetchall()[0]
    summary.first_ts, summary.last_ts = con.execute(
        f"SELECT min(ts), max(ts) FROM {SCHEMA}.requests WHERE day >= $low AND day < $high",
        day_range,
    ).fetchall()[0]
    return summary


def _write(con, parsed: list[tuple[Path, ParsedLog]], days: list[dt.date], data_source) -> None:
    day_range = {"days": days}
    in_range = "list_contains($days, day)"
    now = dt.datetime.now()
    with transaction(con):
        for table in ("requests", "rejected_lines", "ingest_ledger"):
            con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE {in_range}", day_range)
        for path, result in parsed:
            params = {**day_range, "source_file": path.name}
            con.execute(
                f"INSERT INTO {SCHEMA}.requests (day, {FIELDS}, source_file) "
                f"SELECT day, {FIELDS}, $source_file FROM {result.requests_table} WHERE {in_range}",
                params,
            )
            con.execute(
                f"INSERT INTO {SCHEMA}.rejected_lines "
                f"(source_file, line_number, raw_line, reason, day) "
                f"SELECT $source_file, line_number, raw_line, reason, day "
                f"FROM {result.rejected_table} WHERE {in_range}",
                params,
            )
            _write_ledger(con, result, {**params, "now": now})
            first_ts, last_ts, first_day, last_day = con.execute(
                f"SELECT min(ts_utc), max(ts_utc), min(day), max(day) FROM ("
                f"SELECT ts_utc, day FROM {result.requests_table} UNION ALL "
                f"SELECT NULL, day FROM {result.rejected_table})"
            ).fetchall()[0]
            stat = path.stat()
            con.execute(f"DELETE FROM {SCHEMA}.source_files WHERE source_file = ?", [path.name])
            con.execute(
                f"INSERT INTO {SCHEMA}.source_files (source_file, path, size_bytes, modified_at, "
                "lines, requests, rejected, first_ts, last_ts, data_source, read_at, log_format, "
                "first_day, last_day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [path.name, str(path), stat.st_size, stat.st_mtime, result.n_lines,
                 result.n_requests, result.n_rejected, first_ts, last_ts, data_source, now,
                 result.log_format, first_day, last_day],
            )  # fmt: skip


def _write_ledger(con, result: ParsedLog, params: dict) -> None:
    """One row per day of the range, zero counts included (an empty day is known to be empty).

    The counts come from the parse, before the write: the lines_accounted check compares them
    with what the warehouse holds afterwards.
    """
    con.execute(
        f"""
        INSERT INTO {SCHEMA}.ingest_ledger
        WITH days AS (SELECT unnest(CAST($days AS DATE[])) AS day),
        req AS (SELECT day, count(*) AS n FROM {result.requests_table} GROUP BY day),
        rej AS (SELECT day, count(*) AS n FROM {result.rejected_table} GROUP BY day)
        SELECT $source_file, days.day, coalesce(req.n, 0), coalesce(rej.n, 0), $now
        FROM days LEFT JOIN req USING (day) LEFT JOIN rej USING (day)
        """,
        params,
    )


def _rejection_report(con, path: Path, result: ParsedLog, threshold: float) -> str:
    """Why most of a file's lines were rejected: top reasons, two sample lines and a hint."""
    reasons = con.execute(
        f"SELECT reason, count(*) FROM {result.rejected_table} GROUP BY 1 ORDER BY 2 DESC LIMIT 3"
    ).fetchall()
    samples = con.execute(
        f"SELECT raw_line FROM {result.rejected_table} ORDER BY line_number LIMIT 2"
    ).fetchall()
    share = result.n_rejected / max(result.n_lines, 1)
    return (
        f"{path.name}: {result.n_rejected:,} of {result.n_lines:,} lines rejected ({share:.0%}, "
        f"over the {threshold:.0%} allowed by NASA_REJECT_THRESHOLD) reading it as "
        f"{result.log_format} log format. Top reasons: "
        + "; ".join(f"{reason} ({n:,})" for reason, n in reasons)
        + ". Sample lines: "
        + " | ".join(repr(line[:300]) for (line,) in samples)
        + ". Is this an access log in Common or Combined Log Format? If it is, set "
        "NASA_LOG_FORMAT (common, combined, vhost_combined) to the one your server writes. "
        "The lines were stored (nasa.rejected_lines) all the same."
    )
