"""Getting the raw logs: files already there, a download, or (failing both) a replica."""

from __future__ import annotations

import logging
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nasa_autoscale.ingest.logfiles import (
    GZIP_MAGIC,
    HOW_TO_GET_LOGS,
    LogFileError,
    find_log_files,
)
from nasa_autoscale.settings import DEFAULT_RAW_DIR, NASA_LOG_FILES, Settings

log = logging.getLogger(__name__)


class DownloadError(RuntimeError):
    pass


@dataclass(frozen=True)
class LogSource:
    files: list[Path]
    data_source: str  # "real" (files the user supplied or downloaded) or "replica"
    note: str


def download(url: str, dest: Path, timeout_s: float, progress: Callable[[str], None]) -> Path:
    """Fetch url into dest (via a .part file, so a broken download leaves nothing behind)."""
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            total = int(response.headers.get("Content-Length") or 0)
            done, next_report = 0, 0.0
            with tmp.open("wb") as out:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    done += len(chunk)
                    if total and done / total >= next_report:
                        progress(f"{dest.name}: {done / total:4.0%} of {total / 1e6:.1f} MB")
                        next_report += 0.1
        if done == 0 or (total and done != total):
            raise DownloadError(f"{url}: got {done} of {total or '?'} bytes")
        with tmp.open("rb") as f:
            if dest.suffix == ".gz" and f.read(2) != GZIP_MAGIC:
                raise DownloadError(f"{url}: the response is not a gzip file")
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as e:
        raise DownloadError(f"{url}: {e}") from e
    finally:
        tmp.unlink(missing_ok=True)


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def locate_logs(
    settings: Settings, fetch: bool = True, progress: Callable[[str], None] = _print_progress
) -> LogSource:
    """The log files to ingest: raw_dir's files; else (with fetch) downloaded ones; else a replica.

    Without fetch nothing is downloaded or built: an existing replica is used, or the error says
    how to get the logs.
    """
    if not settings.raw_dir.is_dir() and settings.raw_dir != DEFAULT_RAW_DIR:
        # A folder the user named that is not there is a mistake, not a reason to fall back.
        raise LogFileError(f"{settings.raw_dir} (NASA_RAW_DIR): no such folder. {HOW_TO_GET_LOGS}")
    files = find_log_files(settings.raw_dir)
    if files:
        return LogSource(files, "real", f"{len(files)} log file(s) in {settings.raw_dir}")
    replica = [settings.replica_dir / name for name in NASA_LOG_FILES]
    if fetch:
        try:
            return _download_nasa_logs(settings, progress)
        except DownloadError as e:
            log.warning("download of the NASA logs failed: %s", e)
            progress(f"download failed: {e}")
        if not all(p.exists() for p in replica):
            from nasa_autoscale.ingest.replica import build_replica

            progress(f"building a REPLICA of the NASA logs in {settings.replica_dir} (~15 s)")
            build_replica(settings.replica_dir)
    elif not all(p.exists() for p in replica):
        raise LogFileError(f"no log files in {settings.raw_dir} (NASA_RAW_DIR). {HOW_TO_GET_LOGS}")
    banner = (
        f"REPLICA DATA: no real logs in {settings.raw_dir}; using the replica in "
        f"{settings.replica_dir} (real per-second counts, sampled real lines)."
    )
    log.warning(banner)
    return LogSource(replica, "replica", banner)


def _download_nasa_logs(settings: Settings, progress: Callable[[str], None]) -> LogSource:
    settings.raw_dir.mkdir(parents=True, exist_ok=True)
    base = settings.log_url.rstrip("/") + "/"
    got = []
    try:
        for name in NASA_LOG_FILES:
            dest = settings.raw_dir / name
            got.append(download(base + name, dest, settings.download_timeout_s, progress))
    except DownloadError:
        for path in got:  # never mix a real month with a replica month
            path.unlink(missing_ok=True)
        raise
    return LogSource(got, "real", f"downloaded from {base}")
