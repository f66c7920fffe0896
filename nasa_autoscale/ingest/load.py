"""Log files -> nasa.requests + nasa.rejected_lines for a range of days, in one transaction.

Each file is read once (gunzip and line indexing run in a thread, ahead of the parsing in DuckDB)
and only the days asked for are written. A file whose recorded time span (nasa.source_files)
misses those days, and that has not changed since, is not read at all.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.landing import days_from_name, days_of_file
from nasa_autoscale.ingest.logfiles import Lines, LogFileError, error_log_name, read_lines
from nasa_autoscale.ingest.parse import (
    FIELDS,
    ParsedLog,
    detect_format,
    drop_parsed,
    not_access_log,
    parse_batch,
)
from nasa_autoscale.ingest.sitezone import AUTO, SiteZone, resolve
from nasa_autoscale.lake import Lake
from nasa_autoscale.warehouse import SCHEMA, lake_of, transaction

log = logging.getLogger(__name__)
_BATCH_BYTES = 64 << 20  # small files are parsed together until they hold this many bytes


@dataclass
class IngestSummary:
    first_day: dt.date
    last_day: dt.date
    files_read: list[str] = field(default_factory=list)
    files_skipped: list[str] = field(default_factory=list)
    # files whose lines another file of the run holds (a rotated copy): name -> that file's name
    same_lines_as: dict[str, str] = field(default_factory=dict)
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
    outside_days: int = 0  # requests outside the site's days, stored as rejections
    header_lines: int = 0  # header lines (W3C, CSV) of the files read
    lines_other_days: int = 0  # lines of the site's other days (their own runs write them)
    lines_nowhere: int = 0  # lines on no day of the site: stored nowhere (must be 0)
    # files that are not access logs (error logs, unknown text), not read: name -> why
    not_access_logs: dict[str, str] = field(default_factory=dict)

    @property
    def no_access_log(self) -> bool:
        """Every file was set aside as not an access log: nothing of the range was read."""
        return bool(self.not_access_logs) and not (
            self.files_read or self.files_skipped or self.same_lines_as or self.failed
        )

    def accounting(self) -> dict:
        """Where every line read went; `balanced` says whether they add up."""
        stored = self.requests + self.rejected
        return {
            "lines_read": self.lines_read,
            "header_lines": self.header_lines,
            "requests_stored": self.requests,
            "rejected_stored": self.rejected,
            "of_them_outside_site_days": self.outside_days,
            "lines_of_other_days": self.lines_other_days,
            "lines_stored_nowhere": self.lines_nowhere,
            "balanced": self.lines_nowhere == 0
            and self.lines_read == self.header_lines + stored + self.lines_other_days,
        }

    def failure_message(self) -> str:
        messages = []
        if self.no_access_log:
            messages.append(
                "no access log was found: every file was set aside as not an access log ("
                + "; ".join(f"{name}: {why}" for name, why in self.not_access_logs.items())
                + "). If they are access logs, set NASA_LOG_FORMAT to their format."
            )
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
    hold: Callable[[], AbstractContextManager] | None = None,
    site_days: tuple[dt.date | None, dt.date | None] = (None, None),
) -> IngestSummary:
    """Replace the requests and rejected lines of first_day..last_day with those in `files`.

    All files are read and parsed before anything is written; the write is one transaction, so a
    crash leaves the warehouse as it was. A file that cannot be read (corrupt or truncated gzip)
    does not stop the others: the days it covers (from its name or its recorded span, else the
    whole range) are left as they were, the rest are written, and summary.failed says which.

    Times are read in the site's zone (`timezone`: see sitezone.py), lines in `log_format` (auto:
    detected per file). A file with more than `reject_threshold` of its lines rejected is written
    all the same and named in summary.mostly_rejected, with its top reasons and sample lines.

    hold: with a lake, `con` may be an in-memory connection that parses, and hold() the
    context in which it has the warehouse attached (warehouse.attached): the file is held only
    to read what was read before and to write the small tables, so that processes ingesting
    other days run side by side. Without: `con` is the warehouse, held throughout.

    site_days: the site's first and last day (None: open). A request outside them is stored as
    a rejection saying so, on the nearest of them (parse_batch), and does not count towards
    `reject_threshold`: every line read is a stored request or a stored rejection.
    """
    hold = hold or nullcontext
    summary = IngestSummary(first_day, last_day)
    with hold():
        to_read, to_skip = files_to_read(con, files, first_day, last_day)
        lake = lake_of(con)
    for path in [p for p in to_read if error_log_name(p.name)]:
        summary.not_access_logs[path.name] = "a server's error log, by its name"
        progress(f"set aside {path.name}: a server's error log (by its name), not an access log")
    to_read = [p for p in to_read if p.name not in summary.not_access_logs]
    summary.files_skipped = [p.name for p in to_skip]
    parsed: list[tuple[list[Path], ParsedLog]] = []
    zone: SiteZone | None = None
    days = [first_day + dt.timedelta(days=i) for i in range((last_day - first_day).days + 1)]
    batch: list[tuple[Path, Lines]] = []
    batch_format = log_format
    holders: dict[str, str] = {}  # fingerprint -> the first file read with it
    fingerprints: dict[str, str] = {}  # file name -> its fingerprint

    def parse_pending() -> None:
        """Parse the files gathered so far (one format) in one query."""
        paths = [path for path, _ in batch]
        fallback = [(days_from_name(p.name) or [first_day])[0] for p in paths]
        result = parse_batch(
            con,
            [lines for _, lines in batch],
            f"batch{len(parsed)}",
            zone,
            batch_format,
            fallback,
            site_days,
        )
        parsed.append((paths, result))
        batch.clear()
        headers = result.header_lines or (0,) * len(paths)
        outside = result.outside or (0,) * len(paths)
        for file, (path, counts) in enumerate(zip(paths, result.per_file, strict=True)):
            n_lines, n_requests, n_rejected, *_ = counts
            if n_requests + n_rejected != n_lines:
                raise AssertionError(  # the parser's contract: every line lands once
                    f"{path}: {n_lines} lines, but {n_requests} requests + {n_rejected} rejected"
                )
            summary.lines_read += n_lines + headers[file]  # every line, headers included
            summary.formats[path.name] = result.log_format
            summary.outside_days += outside[file]
            progress(
                f"parsed {path.name} ({result.log_format} log format): {n_lines:,} lines, "
                f"{n_requests:,} requests, {n_rejected:,} rejected"
                + (f" ({outside[file]:,} of them outside the site's days)" if outside[file] else "")
            )
            if n_rejected - outside[file] > reject_threshold * max(n_lines - outside[file], 1):
                summary.mostly_rejected[path.name] = _rejection_report(
                    con, path, result, file, reject_threshold
                )

    try:
        for path, lines in _read_ahead(to_read):
            if isinstance(lines, LogFileError):
                with hold():
                    lost = [d for d in days_of_file(con, path) or days if d in days]
                summary.failed[path.name] = (str(lines), lost)
                progress(
                    f"cannot read {path.name}, leaving {len(lost)} day(s) as they were: {lines}"
                )
                continue
            why = not_access_log(lines) if log_format == AUTO else None
            if why:
                summary.not_access_logs[path.name] = why
                progress(f"set aside {path.name}: not an access log ({why})")
                continue
            fingerprint = lines.fingerprint()
            if fingerprint in holders:  # the same lines under another name: read once
                summary.same_lines_as[path.name] = holders[fingerprint]
                progress(f"skipped {path.name}: the same lines as {holders[fingerprint]}")
                continue
            holders[fingerprint] = path.name
            fingerprints[path.name] = fingerprint
            if zone is None:
                with hold():
                    zone = resolve(con, timezone, lines.data)
            file_format = detect_format(lines) if log_format == AUTO else log_format
            if batch and file_format != batch_format:
                parse_pending()
            batch_format = file_format
            batch.append((path, lines))
            del lines
            if sum(len(other.data) for _, other in batch) >= _BATCH_BYTES:
                parse_pending()  # now, while the next file is being read
        if batch:
            parse_pending()
        lost = {day for _, failed_days in summary.failed.values() for day in failed_days}
        kept = [d for d in days if d not in lost]
        if lake is not None:  # each day's files first (atomic per day), then the small tables
            _write_lake(con, *lake, parsed, kept)
        with hold():
            _write(con, parsed, kept, data_source, fingerprints, lake is None)
        _count_elsewhere(con, parsed, kept, site_days, summary)
    finally:
        # after a failed write DuckDB may refuse even this; the write's own error is the one to see
        with suppress(duckdb.Error):
            for _, result in parsed:
                drop_parsed(con, result)
    summary.files_read = [p.name for paths, _ in parsed for p in paths]
    summary.zone = zone.name if zone else ""
    day_range = {"low": first_day, "high": last_day + dt.timedelta(days=1)}
    with hold():
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


def _count_elsewhere(con, parsed, kept: list[dt.date], site_days, summary: IngestSummary):
    """Count the parsed lines this run did not write: those of the site's other days (their
    own partition runs write them) and those on no day of the site (none: parse_batch keeps
    every line on one of its days; a line counted here is stored nowhere, and the run's
    accounting fails)."""
    in_run, params = _day_filter(kept)
    first, last = site_days
    params = {**params, "site_first": first or dt.date.min, "site_last": last or dt.date.max}
    for _, result in parsed:
        other, nowhere = con.execute(
            f"""
            SELECT count(*) FILTER (WHERE day BETWEEN $site_first AND $site_last),
                   count(*) FILTER (WHERE NOT day BETWEEN $site_first AND $site_last)
            FROM (SELECT day FROM {result.requests_table}
                  UNION ALL SELECT day FROM {result.rejected_table})
            WHERE NOT ({in_run})
            """,
            params,
        ).fetchall()[0]
        summary.lines_other_days += other
        summary.lines_nowhere += nowhere
        summary.header_lines += sum(result.header_lines)


def _read_ahead(paths: list[Path]) -> Iterator[tuple[Path, Lines | LogFileError]]:
    """Each file's lines (or the error reading it), the next file read in a thread (gunzip, line
    index) while DuckDB parses: at most one file ahead, so memory holds few files at a time."""
    with ThreadPoolExecutor(max_workers=1) as reader:
        ahead = [(path, reader.submit(read_lines, path)) for path in paths[:1]]
        for i, path in enumerate(paths):
            if i + 1 < len(paths):
                ahead.append((paths[i + 1], reader.submit(read_lines, paths[i + 1])))
            _, future = ahead.pop(0)
            try:
                yield path, future.result()
            except LogFileError as error:
                yield path, error


def _write(
    con,
    parsed: list[tuple[list[Path], ParsedLog]],
    days: list[dt.date],
    data_source: str,
    fingerprints: dict[str, str],
    rows_too: bool = True,
) -> None:
    """The ledger and source_files of the days, and their rows too unless a lake holds them,
    in one transaction."""
    in_range, day_range = _day_filter(days)
    now = dt.datetime.now()
    with transaction(con):
        tables = ("requests", "rejected_lines", "ingest_ledger") if rows_too else ("ingest_ledger",)
        for table in tables:
            con.execute(f"DELETE FROM {SCHEMA}.{table} WHERE {in_range}", day_range)
        for paths, result in parsed:
            names = [p.name for p in paths]
            _write_batch(
                con,
                paths,
                result,
                in_range,
                {**day_range, "days": days, "now": now, "names": names},
                data_source,
                fingerprints,
                rows_too,
            )


def _write_lake(con, lake: Lake, site: str, parsed, days: list[dt.date]) -> None:
    """The days' requests and rejected lines of every batch into the lake, a file per day."""

    def union(kind: str, columns: str) -> str | None:
        parts = []
        for paths, result in parsed:
            names = "[" + ", ".join("'" + p.name.replace("'", "''") + "'" for p in paths) + "]"
            table = result.requests_table if kind == "requests" else result.rejected_table
            parts.append(f"SELECT {columns}, {names}[file + 1] AS source_file FROM {table}")
        return " UNION ALL ".join(parts) or None  # no file read: the days are emptied

    lake.write_days(con, "requests", site, union("requests", f"day, {FIELDS}"), days)
    rejected = "day, line_number, raw_line, reason"
    lake.write_days(con, "rejected_lines", site, union("rejected", rejected), days)


def _day_filter(days: list[dt.date]) -> tuple[str, dict]:
    """SQL keeping rows whose `day` is one of `days`, and its parameters (a range when the days
    follow each other: a comparison per row, not a list search)."""
    if not days:
        return "FALSE", {}
    if (days[-1] - days[0]).days + 1 == len(days):
        return "day BETWEEN $first_day AND $last_day", {"first_day": days[0], "last_day": days[-1]}
    return "list_contains($day_list, day)", {"day_list": days}


def _write_batch(
    con,
    paths: list[Path],
    result: ParsedLog,
    in_range: str,
    params: dict,
    data_source: str,
    fingerprints: dict[str, str],
    rows_too: bool = True,
) -> None:
    """One parsed batch into requests, rejected_lines (unless a lake holds them), the ledger and
    source_files ($names[i + 1] is the name of the batch's file i; `in_range` keeps the rows of
    the days written)."""
    rows = {k: v for k, v in params.items() if k not in ("now", "days")}
    if rows_too:
        _write_rows(con, result, in_range, rows)
    _write_ledger(con, paths, result, params, data_source, fingerprints)


def _write_rows(con, result: ParsedLog, in_range: str, rows: dict) -> None:
    con.execute(
        f"INSERT INTO {SCHEMA}.requests (day, {FIELDS}, source_file) "
        f"SELECT day, {FIELDS}, $names[file + 1] FROM {result.requests_table} WHERE {in_range}",
        rows,
    )
    con.execute(
        f"INSERT INTO {SCHEMA}.rejected_lines (source_file, line_number, raw_line, reason, day) "
        f"SELECT $names[file + 1], line_number, raw_line, reason, day FROM {result.rejected_table} "
        f"WHERE {in_range}",
        rows,
    )


def _write_ledger(con, paths, result: ParsedLog, params: dict, data_source: str, fingerprints):
    ledger = {k: params[k] for k in ("days", "names", "now")}
    # One ledger row per file and day of the range, zero counts included (an empty day is known
    # to be empty). The counts come from the parse, before the write: the lines_accounted check
    # compares them with what the warehouse holds afterwards.
    con.execute(
        f"""
        INSERT INTO {SCHEMA}.ingest_ledger
        WITH days AS (SELECT unnest(CAST($days AS DATE[])) AS day),
        req AS (SELECT file, day, count(*) AS n FROM {result.requests_table} GROUP BY ALL),
        rej AS (SELECT file, day, count(*) AS n FROM {result.rejected_table} GROUP BY ALL)
        , files AS (SELECT unnest(range(len($names))) AS file)
        SELECT $names[files.file + 1], days.day, coalesce(req.n, 0), coalesce(rej.n, 0), $now
        FROM files CROSS JOIN days
        LEFT JOIN req ON req.file = files.file AND req.day = days.day
        LEFT JOIN rej ON rej.file = files.file AND rej.day = days.day
        """,
        ledger,
    )
    headers = result.header_lines or (0,) * len(paths)
    for path, (n_lines, n_requests, n_rejected, *span), n_headers in zip(
        paths, result.per_file, headers, strict=True
    ):
        stat = path.stat()
        con.execute(f"DELETE FROM {SCHEMA}.source_files WHERE source_file = ?", [path.name])
        con.execute(
            f"INSERT INTO {SCHEMA}.source_files (source_file, path, size_bytes, modified_at, "
            "lines, requests, rejected, first_ts, last_ts, data_source, read_at, log_format, "
            "first_day, last_day, fingerprint, header_lines) "
            f"VALUES ({', '.join(['?'] * 16)})",
            [
                path.name,
                str(path),
                stat.st_size,
                stat.st_mtime,
                n_lines + n_headers,
                n_requests,
                n_rejected,
                *span[:2],
                data_source,
                params["now"],
                result.log_format,
                *span[2:],
                fingerprints[path.name],
                n_headers,
            ],
        )


def _rejection_report(con, path: Path, result: ParsedLog, file: int, threshold: float) -> str:
    """Why most of a file's lines were rejected: top reasons, two sample lines and a hint."""
    reasons = con.execute(
        f"SELECT reason, count(*) FROM {result.rejected_table} WHERE file = ? "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        [file],
    ).fetchall()
    samples = con.execute(
        f"SELECT raw_line FROM {result.rejected_table} WHERE file = ? ORDER BY line_number LIMIT 2",
        [file],
    ).fetchall()
    n_lines, _, n_rejected, *_ = result.per_file[file]
    share = n_rejected / max(n_lines, 1)
    return (
        f"{path.name}: {n_rejected:,} of {n_lines:,} lines rejected ({share:.0%}, "
        f"over the {threshold:.0%} allowed by NASA_REJECT_THRESHOLD) reading it as "
        f"{result.log_format} log format. Top reasons: "
        + "; ".join(f"{reason} ({n:,})" for reason, n in reasons)
        + ". Sample lines: "
        + " | ".join(repr(line[:300]) for (line,) in samples)
        + ". Is this an access log in Common or Combined Log Format? If it is, set "
        "NASA_LOG_FORMAT (common, combined, vhost_combined) to the one your server writes. "
        f"The lines were stored ({SCHEMA}.rejected_lines) all the same."
    )
