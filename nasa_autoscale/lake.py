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

The default lake is the folder `lake` beside the warehouse file; with NASA_LAKE=none the two
tables stay in the DuckDB file, as before.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import shutil
import tempfile
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
    if not isinstance(name, str) or not _SITE.fullmatch(name):
        raise LakeError(
            f"site name {name!r}: use lower-case letters, digits, '-' and '_' (at most 63), "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class Lake:
    """A lake root: a local folder, or an S3 bucket and prefix (`s3://bucket/prefix`, read and
    written with pyarrow's S3 file system; NASA_S3_ENDPOINT for an S3-compatible store)."""

    root: Path | str  # a local folder, or "bucket/prefix" in S3

    @classmethod
    def from_setting(cls, value: str) -> Lake | None:
        """NASA_LAKE: empty (no lake), a folder, file://folder, or s3://bucket/prefix."""
        value = value.strip()
        if not value:
            return None
        if value.startswith("s3://"):
            bucket_prefix = value.removeprefix("s3://").strip("/")
            if not bucket_prefix or not re.match(
                r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/|$)", bucket_prefix
            ):
                raise LakeError(
                    f"NASA_LAKE={value!r}: s3://<bucket>[/<prefix>] with a valid bucket name"
                )
            return cls(bucket_prefix)
        if "://" in value and not value.startswith("file://"):
            raise LakeError(
                f"NASA_LAKE={value!r}: a local folder, file://folder or s3://bucket/prefix"
            )
        return cls(Path(value.removeprefix("file://")).expanduser().resolve())

    @property
    def local(self) -> bool:
        return isinstance(self.root, Path)

    @property
    def url(self) -> str:
        """What the warehouse records (and from_setting reads back)."""
        return str(self.root) if self.local else f"s3://{self.root}"

    @functools.cached_property
    def filesystem(self):
        """pyarrow's file system of the root (S3: endpoint NASA_S3_ENDPOINT, region AWS_REGION
        or AWS_DEFAULT_REGION, credentials from the AWS environment)."""
        import pyarrow.fs as pafs

        if self.local:
            return pafs.LocalFileSystem()
        endpoint = os.environ.get("NASA_S3_ENDPOINT", "").strip() or None
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        scheme = "http" if endpoint and endpoint.startswith("http://") else "https"
        return pafs.S3FileSystem(endpoint_override=endpoint, region=region, scheme=scheme)

    def _path(self, *parts: str) -> str:
        return "/".join([str(self.root), *parts])

    def day_file(self, table: str, site: str, day: dt.date | str) -> Path | str:
        path = self._path(table, f"site={site}", f"day={day}", "data.parquet")
        return Path(path) if self.local else path

    def glob(self, table: str) -> str:
        return self._path(table, "site=*", "day=*", "*.parquet")

    def days(self, table: str, site: str) -> list[dt.date]:
        """The days the lake holds for a site (the empty placeholder left out)."""
        import pyarrow.fs as pafs

        selector = pafs.FileSelector(self._path(table, f"site={site}"), allow_not_found=True)
        found = []
        for info in self.filesystem.get_file_info(selector):
            if info.type == pafs.FileType.Directory:
                day = info.base_name.removeprefix("day=")
                if day != _EMPTY_DAY:
                    found.append(dt.date.fromisoformat(day))
        return sorted(found)

    def claim(self, site: str, owner: str) -> None:
        """Record `owner` (a warehouse, by its resolved path) as the one that writes `site`'s
        partitions, or refuse when another warehouse did: two warehouses sharing a partition
        would read each other's days and replace each other's files. A sites file gives each
        site a warehouse and a partition of its own."""
        import pyarrow.fs as pafs

        check_site(site)
        marker = self._path("_owners", f"{site}.owner")
        fs = self.filesystem
        if fs.get_file_info(marker).type == pafs.FileType.File:
            with fs.open_input_stream(marker) as stream:
                current = stream.read().decode("utf-8", "replace").strip()
            if current != owner:
                raise LakeError(
                    f"the lake {self.url} holds site {site!r} for the warehouse {current}, not "
                    f"{owner}: two warehouses must not share a lake partition. Give this one "
                    "its own NASA_LAKE (or leave NASA_LAKE unset: each warehouse file then has "
                    "its own lake beside it), or describe both in one sites file "
                    "(NASA_SITES_PATH)."
                )
            return
        if self.local:
            Path(marker).parent.mkdir(parents=True, exist_ok=True)
        with fs.open_output_stream(marker) as stream:
            stream.write(owner.encode("utf-8"))

    def _put(self, local: Path, target: Path | str) -> None:
        """A finished local file to its place: a rename on a local lake, one upload to S3 (the
        object appears when the upload completes, whole)."""
        if self.local:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(local, target)  # atomic: the old day or the new, never half
            return
        import pyarrow.fs as pafs

        pafs.copy_files(
            str(local),
            str(target),
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=self.filesystem,
        )

    def _delete(self, target: Path | str) -> None:
        if self.local:
            target.unlink(missing_ok=True)
            return
        import pyarrow.fs as pafs

        if self.filesystem.get_file_info(str(target)).type == pafs.FileType.File:
            self.filesystem.delete_file(str(target))

    def _staging(self) -> Path:
        if self.local:
            folder = self.root / "_staging" / uuid.uuid4().hex
            folder.mkdir(parents=True)
            return folder
        return Path(tempfile.mkdtemp(prefix="lake_staging_"))

    def ensure(self, con: duckdb.DuckDBPyConnection, table: str, empty_sql: str) -> None:
        """The table's zero-row placeholder file (site '_'), written once; `empty_sql` selects
        the table's columns but day."""
        import pyarrow.fs as pafs

        placeholder = self.day_file(table, "_", _EMPTY_DAY)
        if self.filesystem.get_file_info(str(placeholder)).type == pafs.FileType.File:
            return
        staging = self._staging()
        try:
            local = staging / "empty.parquet"
            con.execute(
                f"COPY (SELECT * FROM ({empty_sql}) WHERE FALSE) TO '{local}' (FORMAT parquet)"
            )
            self._put(local, placeholder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

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
                self._delete(self.day_file(table, site, day))
            return 0
        staging = self._staging()
        try:
            wanted = "list_contains(CAST($lake_days AS DATE[]), day)"
            con.execute(
                f"COPY (SELECT * FROM ({select_sql}) WHERE {wanted}) TO '{staging}' "
                "(FORMAT parquet, PARTITION_BY (day), COMPRESSION zstd, OVERWRITE_OR_IGNORE)",
                {**(params or {}), "lake_days": days},
            )
            written = 0
            for day in days:
                files = sorted((staging / f"day={day}").glob("*.parquet"))
                target = self.day_file(table, site, day)
                if not files:
                    self._delete(target)
                    continue
                if len(files) > 1:  # DuckDB wrote one file per partition so far: merge if not
                    merged = staging / f"{day}.parquet"
                    con.execute(
                        f"COPY (SELECT * FROM read_parquet({[str(f) for f in files]})) "
                        f"TO '{merged}' (FORMAT parquet, COMPRESSION zstd)"
                    )
                    files = [merged]
                self._put(files[0], target)
                written += 1
            return written
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def view_sql(self, table: str, columns: list[str], site: str) -> str:
        """SELECT of a table's contract columns (and `site`) over one site's files: read_parquet
        on a local lake; on S3 a pyarrow dataset that register() gives each connection. The
        files of every site bind the view (an empty site still reads as an empty table); the
        filter on `site` prunes the others' files."""
        if self.local:
            source = (
                f"read_parquet('{self.glob(table)}', hive_partitioning = true, "
                "hive_types = {'site': VARCHAR, 'day': DATE})"
            )
        else:
            source = f"lake_{table}"
        return f"SELECT {', '.join(columns)}, site FROM {source} WHERE site = '{check_site(site)}'"

    def register(self, con: duckdb.DuckDBPyConnection) -> None:
        """S3: each table's files as a pyarrow dataset under the name its view reads (the
        files as listed now: a connection sees the days written before it opened)."""
        if self.local:
            return
        import pyarrow as pa
        import pyarrow.dataset as ds

        partitioning = ds.partitioning(
            pa.schema([("site", pa.string()), ("day", pa.date32())]), flavor="hive"
        )
        for table in TABLES:
            dataset = ds.dataset(
                self._path(table),
                filesystem=self.filesystem,
                format="parquet",
                partitioning=partitioning,
            )
            con.register(f"lake_{table}", dataset)
