"""The landing folder, where log rotation drops new files, and which days a log file holds.

A rotated file is ingested like any other (it joins NASA_RAW_DIR's files); the landing sensor
asks for the days it holds. Keep only new days there: a day's lines in two files are two requests.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from pathlib import Path

from nasa_autoscale.ingest.logfiles import find_log_files, read_lines
from nasa_autoscale.warehouse import SCHEMA

_ISO_DATE = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
_NASA_MONTH = re.compile(r"([A-Z][a-z]{2})(\d{2})(?:\.gz)?$")  # NASA_access_log_Jul95.gz
_CLF_TIME = re.compile(rb"\[(\d{2})/([A-Z][a-z]{2})/(\d{4}):")
_MONTHS = {name: i for i, name in enumerate(calendar.month_abbr) if name}
_SAMPLE_LINES = 200  # lines read from each end of a file to find its first and last day


def landing_files(folder: Path) -> list[Path]:
    """Log files in the landing folder (none if it does not exist)."""
    return find_log_files(folder) if folder.is_dir() else []


def days_from_name(name: str) -> list[dt.date]:
    """Days a file's name says it holds: a date (2026-11-27, 20261127) or a NASA-style month
    (Jul95); [] when the name says nothing."""
    for match in _ISO_DATE.finditer(name):  # the first that is a date (not an account id)
        try:
            return [dt.date(*map(int, match.groups()))]
        except ValueError:
            continue
    match = _NASA_MONTH.search(name)
    if match and match.group(1) in _MONTHS:
        year, month = 1900 + int(match.group(2)), _MONTHS[match.group(1)]
        year += 100 if year < 1970 else 0
        last = calendar.monthrange(year, month)[1]
        return [dt.date(year, month, day) for day in range(1, last + 1)]
    return []


def days_of_file(con, path: Path) -> list[dt.date]:
    """Days an unreadable file may hold: from its name, else its span recorded at an earlier
    read (nasa.source_files), else [] (unknown)."""
    named = days_from_name(path.name)
    if named:
        return named
    rows = con.execute(
        f"SELECT first_day, last_day FROM {SCHEMA}.source_files WHERE source_file = ?", [path.name]
    ).fetchall()
    if rows and rows[0][0] is not None:
        first, last = rows[0]
        return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return []


def days_in_file(path: Path) -> list[dt.date]:
    """The days from the first to the last timestamp of a readable log file (reads it)."""
    lines = read_lines(path)
    count = len(lines.starts)
    picks = list(range(min(count, _SAMPLE_LINES))) + list(
        range(max(0, count - _SAMPLE_LINES), count)
    )
    found = []
    for i in picks:
        match = _CLF_TIME.search(lines.data[lines.starts[i] : lines.ends[i]])
        if match and match.group(2).decode() in _MONTHS:
            day, month, year = (
                int(match.group(1)),
                _MONTHS[match.group(2).decode()],
                int(match.group(3)),
            )
            try:
                found.append(dt.date(year, month, day))
            except ValueError:
                continue
    if not found:
        return []
    first, last = min(found), max(found)
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
