"""The site's time zone: how instants in the logs become the site's local time.

Every log line carries its own UTC offset. The warehouse keeps each request's instant (`ts_utc`,
naive UTC) and its wall-clock time in the site's zone (`ts`, naive local): days, daily partitions
and calendar features follow local time, bucketing follows instants (so a daylight-saving change
neither loses nor merges a bucket).

The zone is NASA_TIMEZONE: an IANA name (`America/New_York`), `UTC`, or a fixed offset (`-0400`,
`+05:30`). Unset (`auto`), it is the first offset found in the logs, fixed; the choice is recorded
in the warehouse (`nasa.site`) so every later run uses the same zone.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

AUTO = "auto"
_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{2}):?(\d{2})$")
_LOG_OFFSET = re.compile(rb":\d\d:\d\d:\d\d ([+-]\d{4})\]")


class TimeZoneError(ValueError):
    """NASA_TIMEZONE names no zone this project can use; the message says what it accepts."""


@dataclass(frozen=True)
class SiteZone:
    """A fixed offset (offset_minutes set) or an IANA zone (name)."""

    name: str
    offset_minutes: int | None = None

    @classmethod
    def parse(cls, value: str) -> SiteZone:
        text = value.strip()
        if text.upper() in ("UTC", "Z", "GMT"):
            return cls("+0000", 0)
        match = _OFFSET.fullmatch(text)
        if match:
            sign = -1 if match.group(1) == "-" else 1
            hours, minutes = int(match.group(2)), int(match.group(3))
            if hours * 60 + minutes > 14 * 60 or minutes % 15:  # real zones: quarter hours, <= 14h
                raise TimeZoneError(
                    f"time zone offset {value!r} is not a whole number of quarter hours up to 14h"
                )
            total = sign * (hours * 60 + minutes)
            return cls(format_offset(total), total)
        try:
            ZoneInfo(text)
        except (ZoneInfoNotFoundError, ValueError):
            raise TimeZoneError(
                f"NASA_TIMEZONE={value!r} is neither an IANA time zone name (e.g. "
                "America/New_York, Europe/Paris), UTC, nor a fixed offset (e.g. -0400, +05:30)"
            ) from None
        return cls(text)

    def tzinfo(self) -> dt.tzinfo:
        if self.offset_minutes is not None:
            return dt.timezone(dt.timedelta(minutes=self.offset_minutes))
        return ZoneInfo(self.name)

    def midnight_utc(self, day: dt.date) -> dt.datetime:
        """The naive UTC instant at which `day` starts in the site's zone."""
        local = dt.datetime.combine(day, dt.time(), tzinfo=self.tzinfo())
        return local.astimezone(dt.UTC).replace(tzinfo=None)

    def local_sql(self, utc: str) -> str:
        """SQL: the naive local wall-clock time of the naive UTC timestamp expression `utc`."""
        if self.offset_minutes is not None:
            if self.offset_minutes == 0:
                return utc
            return f"({utc} + INTERVAL ({self.offset_minutes}) MINUTE)"
        return f"timezone('{self.name}', timezone('UTC', {utc}))"

    def utc_sql(self, local: str) -> str:
        """SQL: the naive UTC instant of the naive local wall-clock expression `local` (a log
        that writes local times without an offset)."""
        if self.offset_minutes is not None:
            return f"({local} - INTERVAL ({self.offset_minutes}) MINUTE)"
        return f"timezone('UTC', timezone('{self.name}', {local}))"


def format_offset(minutes: int) -> str:
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}{abs(minutes) % 60:02d}"


def first_offset(data: bytes) -> str | None:
    """The first `[dd/Mon/yyyy:HH:MM:SS +hhmm]` offset in a log's bytes, or None."""
    match = _LOG_OFFSET.search(data)
    return match.group(1).decode() if match else None


def resolve(con, setting: str, data: bytes | None = None) -> SiteZone:
    """The site's zone: NASA_TIMEZONE when set, else the one recorded in the warehouse, else the
    first offset in `data`, else UTC. Records the result in nasa.site."""
    from nasa_autoscale.warehouse import SCHEMA

    recorded = _recorded(con)
    if setting and setting != AUTO:
        zone = SiteZone.parse(setting)
        ingested = con.execute(f"SELECT count(*) FROM {SCHEMA}.source_files").fetchall()[0][0]
        if recorded and recorded != zone.name and ingested:
            raise TimeZoneError(
                f"NASA_TIMEZONE={setting!r}, but this warehouse holds days ingested in "
                f"{recorded}: mixing zones would shift days. Use the same NASA_TIMEZONE, "
                "or a new warehouse (NASA_DUCKDB_PATH) to ingest everything again."
            )
    elif recorded:
        zone = SiteZone.parse(recorded)
    else:
        zone = SiteZone.parse((data is not None and first_offset(data[: 1 << 20])) or "UTC")
    if recorded != zone.name:
        con.execute(f"DELETE FROM {SCHEMA}.site WHERE key = 'timezone'")
        con.execute(f"INSERT INTO {SCHEMA}.site VALUES ('timezone', ?)", [zone.name])
    return zone


def recorded_zone(con) -> SiteZone:
    """The zone the warehouse was ingested with (UTC when nothing was ingested yet)."""
    return SiteZone.parse(_recorded(con) or "UTC")


def _recorded(con) -> str | None:
    from nasa_autoscale.warehouse import SCHEMA

    rows = con.execute(f"SELECT value FROM {SCHEMA}.site WHERE key = 'timezone'").fetchall()
    return rows[0][0] if rows else None
