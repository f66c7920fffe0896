"""Follow a site's log folder as it grows: every complete line read once, exactly.

A file is known by its identity, not its name: the hash of its first line (which appending
never changes) and its inode, as Filebeat and Vector know theirs. Each identity has a committed
byte offset and line count (`follower_files`); a poll reads each file from its offset to its
last complete line, parses those lines (ingest/parse.py, the same parser as the daily path) and
writes the rows with the new offset in one transaction of the follower's own DuckDB file
(`live.duckdb` beside the warehouse), so that a SIGKILL at any moment loses nothing and doubles
nothing: the next poll starts from the last committed offset. Work is proportional to the new
bytes: a poll reads only what was appended.

Rotation:
- by rename (logrotate's `create`): the inode and first line stay with the renamed file, which is
  read to its end before the new file (files are polled oldest first);
- by copytruncate: the file's size drops below its offset (or its first line changes): a new
  identity, read from its start;
- a rotated copy, compressed later or not (`access.log.1`, `access.log.1.gz`): the same first
  line as a known file, so it is read only past that file's offset.

Error logs and files that are not logs are skipped by the rule the daily path uses
(logfiles.is_log_file, logfiles.error_log_name).

The daily partition run stays the reconciliation: it parses the day's files whole into
`requests`, and `reconcile_day` compares that with what the follower took for the day, then
drops the follower's rows of that day.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.logfiles import (
    GZIP_MAGIC,
    error_log_name,
    find_log_files,
    index_lines,
)
from nasa_autoscale.ingest.parse import FIELDS, detect_format, drop_parsed, parse_batch
from nasa_autoscale.ingest.sitezone import AUTO, SiteZone, first_offset
from nasa_autoscale.warehouse import SCHEMA, TABLES

FIRST_LINE_MAX = 64 * 1024  # a first line longer than this is identified by its first 64 KiB
LIVE_TABLES = {
    "live_requests": TABLES["requests"],
    "live_rejected": TABLES["rejected_lines"],
    "follower_files": """
        identity VARCHAR NOT NULL,   -- sha1 of the file's first line
        inode BIGINT NOT NULL,
        name VARCHAR NOT NULL,       -- the name it was last read under
        byte_offset BIGINT NOT NULL, -- committed: every byte before it has been read
        lines BIGINT NOT NULL,       -- complete lines before byte_offset
        log_format VARCHAR NOT NULL,
        updated_at TIMESTAMP NOT NULL
    """,
    "follower_state": """
        key VARCHAR NOT NULL,        -- 'timezone': the zone the lines are read in
        value VARCHAR NOT NULL
    """,
}


class FollowerError(RuntimeError):
    """The follower cannot go on (its store cannot be opened); the message says why."""


@dataclass
class Poll:
    """What one poll did."""

    files_read: list[str] = field(default_factory=list)
    bytes_read: int = 0
    lines: int = 0
    requests: int = 0
    rejected: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why (not read now)
    newest_ts_utc: dt.datetime | None = None
    watermark: dt.datetime | None = None  # the data is complete up to here (naive UTC)
    seconds: float = 0.0


@dataclass(frozen=True)
class Known:
    identity: str
    inode: int
    name: str
    byte_offset: int
    lines: int
    log_format: str


def connect_store(path: Path) -> duckdb.DuckDBPyConnection:
    """The follower's own DuckDB file, its tables created when new."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(path), config={"preserve_insertion_order": False})
    except (duckdb.Error, OSError) as error:
        raise FollowerError(f"cannot open the follower's store {path}: {error}") from error
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for table, columns in LIVE_TABLES.items():
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table} ({columns})")
    return con


def first_line(path: Path) -> tuple[bytes | None, bool]:
    """(a file's first complete line, decompressed for gzip, without its newline, or None
    while it has no complete line yet; whether the file is gzip)."""
    with open(path, "rb") as raw:
        compressed = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw) if compressed else raw
        try:
            head = stream.read(FIRST_LINE_MAX)
        except (OSError, EOFError):  # a gzip file still being written
            return None, compressed
    end = head.find(b"\n")
    if end < 0:
        return (head if len(head) == FIRST_LINE_MAX else None), compressed
    return head[:end], compressed


def identity_of(line: bytes) -> str:
    return hashlib.sha1(line).hexdigest()


class Follower:
    """Follows one site's log folder into its store. `poll()` reads what is new."""

    def __init__(
        self,
        raw_dir: Path,
        store: Path,
        timezone: str = AUTO,
        log_format: str = AUTO,
        progress: Callable[[str], None] = lambda message: None,
        lateness: dt.timedelta = dt.timedelta(seconds=10),
        stale_after: dt.timedelta = dt.timedelta(minutes=5),
    ):
        self.raw_dir, self.store = Path(raw_dir), Path(store)
        self.timezone, self.log_format, self.progress = timezone, log_format, progress
        self.lateness, self.stale_after = lateness, stale_after
        # compressed files read to their end, by (name, size, mtime): a gzip file does not grow,
        # so it is not decompressed again at every poll
        self._finished: set[tuple[str, int, int]] = set()

    def known(self, con) -> dict[str, Known]:
        rows = con.execute(
            f"SELECT identity, inode, name, byte_offset, lines, log_format "
            f"FROM {SCHEMA}.follower_files"
        ).fetchall()
        return {row[0]: Known(*row) for row in rows}

    def candidates(self) -> list[Path]:
        """The folder's logs, oldest first (a renamed file before the one that replaced it)."""
        files = [p for p in find_log_files(self.raw_dir) if not error_log_name(p.name)]
        stats = {}
        for path in files:
            try:
                stats[path] = path.stat().st_mtime_ns
            except FileNotFoundError:  # rotated away since it was listed
                continue
        return sorted(stats, key=lambda p: (stats[p], p.name))

    def poll(self, now: dt.datetime | None = None, con=None) -> Poll:
        """Read every file's new complete lines (one transaction per file), then move the
        watermark (follower_state: newest, last_data_at, watermark, polled_at; naive UTC).
        con: the store already open (kept open by a caller with no other reader); by default
        it is opened for the poll and closed after it, so that the API can read between."""
        started = time.perf_counter()
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        result = Poll()
        own = con is None
        con = connect_store(self.store) if own else con
        try:
            for path in self.candidates():
                self._follow(con, path, result)
            self._advance(con, result, now)
        finally:
            if own:
                con.close()
        result.seconds = time.perf_counter() - started
        return result

    def _advance(self, con, result: Poll, now: dt.datetime) -> None:
        state = read_state(con)
        newest = state.get("newest")
        if result.newest_ts_utc is not None:
            newest = max(filter(None, [newest, result.newest_ts_utc]))
        last_data_at = now if result.lines else state.get("last_data_at")
        mark = watermark(newest, last_data_at, now, self.lateness, self.stale_after)
        values = {"newest": newest, "last_data_at": last_data_at, "watermark": mark}
        values["polled_at"] = now
        con.execute("BEGIN TRANSACTION")
        for key, value in values.items():
            con.execute(f"DELETE FROM {SCHEMA}.follower_state WHERE key = ?", [key])
            if value is not None:
                con.execute(
                    f"INSERT INTO {SCHEMA}.follower_state VALUES (?, ?)", [key, value.isoformat()]
                )
        con.execute("COMMIT")
        result.watermark = mark

    def _zone(self, con, data: bytes) -> SiteZone:
        rows = con.execute(
            f"SELECT value FROM {SCHEMA}.follower_state WHERE key = 'timezone'"
        ).fetchall()
        if rows:
            return SiteZone.parse(rows[0][0])
        if self.timezone != AUTO:
            zone = SiteZone.parse(self.timezone)
        else:
            zone = SiteZone.parse(first_offset(data[: 1 << 20]) or "UTC")
        con.execute(f"INSERT INTO {SCHEMA}.follower_state VALUES ('timezone', ?)", [zone.name])
        return zone

    def _follow(self, con, path: Path, result: Poll) -> None:
        try:
            stat = path.stat()
            signature = (path.name, stat.st_size, stat.st_mtime_ns)
            if signature in self._finished:
                return
            line, compressed = first_line(path)
        except FileNotFoundError:
            return
        if line is None:
            result.skipped[path.name] = "no complete line yet"
            return
        identity = identity_of(line)
        known = self.known(con).get(identity)
        offset, lines_before = (known.byte_offset, known.lines) if known else (0, 0)
        if known and not compressed and known.inode == stat.st_ino and stat.st_size < offset:
            # truncated in place with the same first line: read it again from its start
            offset, lines_before = 0, 0
        if compressed:
            try:
                new = gzip.decompress(path.read_bytes())[offset:]
            except (OSError, EOFError):  # still being compressed
                result.skipped[path.name] = "gzip file not complete yet"
                return
            if not new.strip():  # nothing past the offset: read to its end already
                self._finished.add(signature)
                return
        else:
            if stat.st_size <= offset:
                return
            with open(path, "rb") as stream:
                stream.seek(offset)
                new = stream.read(stat.st_size - offset)
        end = new.rfind(b"\n")
        if end < 0:
            return  # no complete new line yet
        chunk = new[: end + 1]
        log_format = known.log_format if known else self._format(chunk)
        zone = self._zone(con, chunk)
        counts = self._write(
            con, path, identity, stat.st_ino, offset, lines_before, chunk, log_format, zone
        )
        if compressed and len(chunk) == len(new):  # written whole: never decompressed again
            self._finished.add(signature)
        result.files_read.append(path.name)
        result.bytes_read += len(chunk)
        result.lines += counts[0]
        result.requests += counts[1]
        result.rejected += counts[2]
        if counts[3] is not None:
            result.newest_ts_utc = max(filter(None, [result.newest_ts_utc, counts[3]]))

    def _format(self, chunk: bytes) -> str:
        if self.log_format != AUTO:
            return self.log_format
        return detect_format(index_lines(chunk))

    def _write(self, con, path, identity, inode, offset, lines_before, chunk, log_format, zone):
        """The chunk's rows and the file's new offset, in one transaction; returns (lines,
        requests, rejected, newest instant)."""
        lines = index_lines(chunk)
        parsed = parse_batch(con, [lines], "follow", zone, log_format)
        newest = con.execute(f"SELECT max(ts_utc) FROM {parsed.requests_table}").fetchall()[0][0]
        params = {"name": path.name, "base": lines_before}
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(
                f"INSERT INTO {SCHEMA}.live_requests (day, {FIELDS}, source_file) "
                f"SELECT day, {FIELDS.replace('line_number', 'line_number + $base')}, $name "
                f"FROM {parsed.requests_table}",
                params,
            )
            con.execute(
                f"INSERT INTO {SCHEMA}.live_rejected (source_file, line_number, raw_line, reason, "
                f"day) SELECT $name, line_number + $base, raw_line, reason, day "
                f"FROM {parsed.rejected_table}",
                params,
            )
            con.execute(f"DELETE FROM {SCHEMA}.follower_files WHERE identity = ?", [identity])
            con.execute(
                f"INSERT INTO {SCHEMA}.follower_files VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    identity,
                    inode,
                    path.name,
                    offset + len(chunk),
                    lines_before + len(lines),
                    log_format,
                    dt.datetime.now(),
                ],
            )
            _crash_point()  # tests: a process killed here has written nothing
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            drop_parsed(con, parsed)
        self.progress(
            f"{path.name}: {len(lines):,} new lines ({parsed.n_requests:,} requests, "
            f"{parsed.n_rejected:,} rejected)"
        )
        return len(lines), parsed.n_requests, parsed.n_rejected, newest


def watermark(
    newest: dt.datetime | None,
    last_data_at: dt.datetime | None,
    now: dt.datetime,
    lateness: dt.timedelta,
    stale_after: dt.timedelta,
) -> dt.datetime | None:
    """Up to when (naive UTC) the data is complete. Lines arrive in about time order, up to
    `lateness` late: the data has passed `newest - lateness`. While the log is quiet (no new line
    since `last_data_at`) the wall clock closes buckets too (`now - lateness`: an empty bucket
    of a live log is zero traffic), but only for `stale_after`: a log or follower quiet longer
    than that is stalled, and its watermark stops where the data stopped."""
    if newest is None:
        return None
    mark = newest - lateness
    if last_data_at is not None:
        quiet_until = min(now, last_data_at + stale_after)
        mark = max(mark, quiet_until - lateness)
    return mark


def _crash_point() -> None:
    """Where a test may kill the follower inside its transaction (NASA_FOLLOWER_CRASH=1)."""
    if os.environ.get("NASA_FOLLOWER_CRASH") == "1":
        os.kill(os.getpid(), 9)


def read_state(con) -> dict[str, dt.datetime]:
    """The follower's newest instant, last data and watermark (naive UTC), as recorded."""
    rows = con.execute(
        f"SELECT key, value FROM {SCHEMA}.follower_state "
        "WHERE key IN ('newest', 'last_data_at', 'watermark', 'polled_at')"
    ).fetchall()
    return {key: dt.datetime.fromisoformat(value) for key, value in rows}


def reconcile(store: Path, con, first_day: dt.date, last_day: dt.date) -> dict:
    """The daily path's reconciliation: per day of first_day..last_day that the follower took
    lines for, its requests and rejections against what the partition run stored from the same
    files (`con`: the warehouse, after the run), then the follower's rows of those days dropped
    (the warehouse's are the record now). Returns {day: {follower, warehouse, equal}}."""
    if not Path(store).exists():
        return {}
    live = _open_waiting(store)
    try:
        days = live.execute(
            f"SELECT day, count(*) FROM {SCHEMA}.live_requests "
            "WHERE day BETWEEN $a AND $b GROUP BY day ORDER BY day",
            {"a": first_day, "b": last_day},
        ).fetchall()
        outcome = {}
        for day, follower_count in days:
            stored = con.execute(
                f"SELECT count(*) FROM {SCHEMA}.requests WHERE day = ?", [day]
            ).fetchall()[0][0]
            outcome[day.isoformat()] = {
                "follower": follower_count,
                "warehouse": stored,
                "equal": follower_count == stored,
            }
        live.execute("BEGIN TRANSACTION")
        for table in ("live_requests", "live_rejected"):
            live.execute(
                f"DELETE FROM {SCHEMA}.{table} WHERE day BETWEEN $a AND $b",
                {"a": first_day, "b": last_day},
            )
        live.execute("COMMIT")
        return outcome
    finally:
        live.close()


def open_read_only(store: Path, wait_s: float = 2.0) -> duckdb.DuckDBPyConnection | None:
    """The store read-only, waiting up to wait_s while the follower holds it for a poll; None
    when there is no store or it stays busy (the caller's next call tries again)."""
    if not Path(store).exists():
        return None
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(store), read_only=True)
        except duckdb.Error:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.05)


def local_watermark(con) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The watermark (naive UTC) and the same instant in the site's time; (None, None) before
    the follower has one."""
    mark = read_state(con).get("watermark")
    zone = con.execute(
        f"SELECT value FROM {SCHEMA}.follower_state WHERE key = 'timezone'"
    ).fetchall()
    if mark is None or not zone:
        return None, None
    local = SiteZone.parse(zone[0][0]).local_sql("CAST($mark AS TIMESTAMP)")
    return mark, con.execute(f"SELECT {local}", {"mark": mark}).fetchall()[0][0]


def live_observed(store: Path, minutes: int, wait_s: float = 2.0):
    """What the follower saw that is complete: (its requests per `minutes` bucket of the site's
    local time, for every bucket that ended by the watermark, as a frame bucket_start, requests,
    is_missing; the watermark in the site's local time). None when there is no store or no
    watermark yet; a store busy for longer than wait_s reads as None too (the next call)."""
    import pandas as pd

    con = open_read_only(store, wait_s)
    if con is None:
        return None
    try:
        _, local_mark = local_watermark(con)
        if local_mark is None:
            return None
        step = f"INTERVAL ({int(minutes)}) MINUTE"
        frame = con.execute(
            f"""
            WITH counts AS (
                SELECT time_bucket({step}, ts) AS bucket_start, count(*) AS requests
                FROM {SCHEMA}.live_requests GROUP BY 1
            ), grid AS (  -- every bucket that ended by the watermark: a quiet one is a zero
                SELECT unnest(generate_series(
                    (SELECT min(bucket_start) FROM counts),
                    time_bucket({step}, CAST($local_mark AS TIMESTAMP) - {step}),
                    {step})) AS bucket_start
            )
            SELECT bucket_start, coalesce(requests, 0) AS requests, FALSE AS is_missing
            FROM grid LEFT JOIN counts USING (bucket_start) ORDER BY bucket_start
            """,
            {"local_mark": local_mark},
        ).df()
    finally:
        con.close()
    frame["bucket_start"] = pd.to_datetime(frame["bucket_start"])
    return frame, pd.Timestamp(local_mark)


def _open_waiting(store: Path, wait_s: float = 30.0) -> duckdb.DuckDBPyConnection:
    """The store, waiting while the follower holds it for a poll (a few milliseconds)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return connect_store(store)
        except FollowerError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def taken(store: Path, day: dt.date) -> tuple[int, int]:
    """(requests, rejected lines) the follower took for `day`."""
    con = duckdb.connect(str(store), read_only=True)
    try:
        return con.execute(
            f"SELECT (SELECT count(*) FROM {SCHEMA}.live_requests WHERE day = $d), "
            f"(SELECT count(*) FROM {SCHEMA}.live_rejected WHERE day = $d)",
            {"d": day},
        ).fetchall()[0]
    finally:
        con.close()
