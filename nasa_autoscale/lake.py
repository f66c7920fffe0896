"""The lake: the tables that grow with traffic (`requests`, `rejected_lines`) as Parquet files
partitioned by site and day, Hive layout, under a root (NASA_LAKE):

    <root>/requests/site=<site>/day=<yyyy-mm-dd>/data.parquet
    <root>/rejected_lines/site=<site>/day=<yyyy-mm-dd>/data.parquet

One file per table, site and day, so a day's write is one atomic step: a local file is written
under <root>/_staging and renamed over the old one (os.replace); an object store's PUT of the
whole object is atomic too. A re-run replaces the day; a process killed mid-write leaves the old
day or the new one, never half of either. Writers of different days need no lock. The DuckDB
warehouse keeps the small tables and reads the lake through views (`nasa.requests` ...), so the
warehouse contract's queries keep working; a query on some days reads only their files.

Without NASA_LAKE the two tables stay in the DuckDB file, as before.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

TABLES = ("requests", "rejected_lines")
_SITE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_EMPTY_DAY = "1970-01-01"  # a zero-row file per table: a view over an empty lake still binds


class LakeError(ValueError):
    """A lake root or site name that cannot be used; the message names the setting."""


def check_site(name: str) -> str:
    if not _SITE.match(name):
        raise LakeError(
            f"site name {name!r}: use lower-case letters, digits, '-' and '_' (at most 63), "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Lake:
    root: Path

    @classmethod
    def from_setting(cls, value: str) -> Lake | None:
        """NASA_LAKE: empty (no lake), a folder, or file://folder."""
        value = value.strip()
        if not value:
            return None
        if "://" in value and not value.startswith("file://"):
            raise LakeError(
                f"NASA_LAKE={value!r}: only a local folder (or file://folder) is supported; "
                "object storage is not yet (docs/lake.md)"
            )
        return cls(Path(value.removeprefix("file://")).expanduser().resolve())

    def day_file(self, table: str, site: str, day: dt.date | str) -> Path:
        return self.root / table / f"site={site}" / f"day={day}" / "data.parquet"

    def glob(self, table: str) -> str:
        return str(self.root / table / "site=*" / "day=*" / "*.parquet")

    def days(self, table: str, site: str) -> list[dt.date]:
        """The days the lake holds for a site (the empty placeholder left out)."""
        folder = self.root / table / f"site={site}"
        if not folder.is_dir():
            return []
        found = []
        for path in folder.glob("day=*/data.parquet"):
            day = path.parent.name.removeprefix("day=")
            if day != _EMPTY_DAY:
                found.append(dt.date.fromisoformat(day))
        return sorted(found)

    def ensure(self, con: duckdb.DuckDBPyConnection, table: str, empty_sql: str) -> None:
        """The table's zero-row placeholder file (site '_'), written once; `empty_sql` selects
        the table's columns but day."""
        placeholder = self.day_file(table, "_", _EMPTY_DAY)
        if not placeholder.exists():
            self._publish(con, f"SELECT * FROM ({empty_sql}) WHERE FALSE", placeholder)

    def write_days(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        site: str,
        select_sql: str | None,
        days: list[dt.date],
        params: dict | None = None,
    ) -> int:
        """Replace `days` of `table` for `site` with the rows of `select_sql` (it has a `day`
        column; rows of other days are not written). A day without rows loses its file. Each
        day is replaced atomically; returns the days written. No SQL: the days are emptied."""
        check_site(site)
        if select_sql is None:
            for day in days:
                self.day_file(table, site, day).unlink(missing_ok=True)
            return 0
        staging = self.root / "_staging" / uuid.uuid4().hex
        staging.mkdir(parents=True)
        try:
            wanted = "list_contains(CAST($lake_days AS DATE[]), day)"
            con.execute(
                f"COPY (SELECT * FROM ({select_sql}) WHERE {wanted}) TO '{staging}' "
                "(FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd)",
                {**(params or {}), "lake_days": days},
            )
            written = 0
            for day in days:
                files = sorted((staging / f"day={day}").glob("*.parquet"))
                target = self.day_file(table, site, day)
                if not files:
                    target.unlink(missing_ok=True)
                    continue
                if len(files) > 1:  # DuckDB wrote one file per partition so far: merge if not
                    merged = staging / f"{day}.parquet"
                    con.execute(
                        f"COPY (SELECT * FROM read_parquet({[str(f) for f in files]})) "
                        f"TO '{merged}' (FORMAT parquet, COMPRESSION zstd)"
                    )
                    files = [merged]
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(files[0], target)  # atomic: the old day or the new, never half
                written += 1
            return written
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _publish(self, con: duckdb.DuckDBPyConnection, sql: str, target: Path) -> None:
        staging = self.root / "_staging"
        staging.mkdir(parents=True, exist_ok=True)
        temporary = staging / f"{uuid.uuid4().hex}.parquet"
        con.execute(f"COPY ({sql}) TO '{temporary}' (FORMAT parquet)")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temporary, target)

    def view_sql(self, table: str, columns: list[str]) -> str:
        """SELECT of a table's contract columns (and `site`) over its files."""
        source = (
            f"read_parquet('{self.glob(table)}', hive_partitioning = true, "
            "hive_types = {'site': VARCHAR, 'day': DATE})"
        )
        return f"SELECT {', '.join(columns)}, site FROM {source}"
