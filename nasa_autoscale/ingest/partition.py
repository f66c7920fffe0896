"""One partition's ingest (a day or a range): find the files, parse the days into requests and
rejected_lines, and decide what a failure leaves behind. The parsed_log_lines asset calls
ingest_partition and turns its outcome into Dagster results."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import duckdb

from nasa_autoscale.ingest.download import LogSource, locate_logs
from nasa_autoscale.ingest.landing import landing_files
from nasa_autoscale.ingest.load import IngestSummary, ingest_days
from nasa_autoscale.ingest.logfiles import LogFileError
from nasa_autoscale.ingest.traffic import write_traffic
from nasa_autoscale.settings import Settings
from nasa_autoscale.warehouse import SCHEMA


@dataclass
class PartitionIngest:
    source: LogSource
    summary: IngestSummary

    @property
    def failed(self) -> bool:
        """A file could not be read, or most of a file's lines were rejected."""
        summary = self.summary
        return bool(summary.failed or summary.mostly_rejected or summary.no_access_log)


def files_to_read(settings: Settings, progress: Callable[[str], None]) -> LogSource:
    """The raw logs (locate_logs, without downloading) and the landing folder's files; the
    landing folder alone is enough for a live site."""
    landed = landing_files(settings.landing_dir)
    try:
        source = locate_logs(settings, fetch=False, progress=progress)
    except LogFileError:
        if not landed:
            raise
        source = LogSource([], "real", f"landing folder {settings.landing_dir} only")
    files = source.files + [p for p in landed if p not in source.files]
    return LogSource(files, source.data_source, source.note)


class SourceError(ValueError):
    """The warehouse holds another log folder's data: the message says what to set."""


def claim_source(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Record the log folder this warehouse reads (nasa.site `raw_dir`), or stop before any
    work when it holds another folder's data: one warehouse is one site, and a second folder's
    lines would land in the first one's tables in its zone, without a word."""
    raw_dir = str(settings.raw_dir)
    recorded = con.execute(f"SELECT value FROM {SCHEMA}.site WHERE key = 'raw_dir'").fetchall()
    if recorded and recorded[0][0] == raw_dir:
        return
    ingested = con.execute(f"SELECT count(*) FROM {SCHEMA}.source_files").fetchall()[0][0]
    if recorded and ingested:
        raise SourceError(
            f"the warehouse {settings.duckdb_path} holds the logs of {recorded[0][0]}, not of "
            f"NASA_RAW_DIR={raw_dir}: one warehouse is one site. Leave NASA_DUCKDB_PATH unset "
            "(a log folder of your own then gets its own warehouse, lake, MLflow store and "
            "reports under data/sites/), set NASA_DUCKDB_PATH to a new file, or describe each "
            "site in a sites file (NASA_SITES_PATH)."
        )
    con.execute(f"DELETE FROM {SCHEMA}.site WHERE key = 'raw_dir'")
    con.execute(f"INSERT INTO {SCHEMA}.site VALUES ('raw_dir', ?)", [raw_dir])


def site_days(settings: Settings) -> tuple[dt.date, dt.date | None]:
    """The site's first and last day (None for a live site's: its days run to today and on)."""
    first = dt.date.fromisoformat(settings.start_date)
    return first, None if settings.open_ended else dt.date.fromisoformat(settings.end_date)


def ingest_partition(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    first_day: dt.date,
    last_day: dt.date,
    progress: Callable[[str], None] = print,
    hold: Callable[[], AbstractContextManager] | None = None,
) -> PartitionIngest:
    """Parse first_day..last_day from every file into the warehouse.

    When a file fails (or is mostly rejected), what was read is kept, and those days get their
    traffic tables too before the caller reports the failure: the run that fails must not leave
    requests without the traffic they add up to (the traffic step would not run after it)."""
    with (hold or nullcontext)():
        claim_source(con, settings)
    source = files_to_read(settings, progress)
    summary = ingest_days(
        con,
        source.files,
        first_day,
        last_day,
        source.data_source,
        progress,
        timezone=settings.timezone,
        log_format=settings.log_format,
        reject_threshold=settings.reject_threshold,
        hold=hold,
        site_days=site_days(settings),
    )
    outcome = PartitionIngest(source, summary)
    if outcome.failed:
        with (hold or nullcontext)():
            write_traffic(con, first_day, last_day)
    return outcome
