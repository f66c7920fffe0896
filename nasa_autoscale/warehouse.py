"""The DuckDB warehouse: schema `nasa`, its tables, and all-or-nothing writes.

Table and column names follow the warehouse contract in docs/design.md; columns beyond it are
extras.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb

from nasa_autoscale.lake import TABLES as LAKE_TABLES
from nasa_autoscale.lake import Lake, check_site

SCHEMA = "nasa"

_TRAFFIC_COLUMNS = """
    bucket_start TIMESTAMP NOT NULL,  -- site local wall-clock time (repeats once a year under DST)
    requests BIGINT,            -- NULL when is_missing: no log was collected, not zero traffic
    bytes BIGINT,
    unique_hosts BIGINT,
    status_2xx BIGINT, status_3xx BIGINT, status_4xx BIGINT, status_5xx BIGINT,
    error_rate DOUBLE,          -- (4xx + 5xx) / requests; NULL without requests
    is_missing BOOLEAN NOT NULL,
    missing_minutes INTEGER NOT NULL,  -- minutes of the bucket with no log (partial buckets > 0)
    bucket_start_utc TIMESTAMP NOT NULL,  -- the bucket's instant in UTC: unique, never repeats
    busy_s DOUBLE               -- server-seconds of work (the requests' durations summed); NULL
                                -- when the format logs no time taken
"""

TABLES = {
    "requests": """
        ts TIMESTAMP NOT NULL,      -- site local wall-clock time (NASA_TIMEZONE), offset honoured
        day DATE NOT NULL,
        host VARCHAR NOT NULL,
        method VARCHAR, url VARCHAR, protocol VARCHAR,  -- NULL when the request can't be split
        status SMALLINT NOT NULL,
        bytes BIGINT,               -- NULL for '-'
        request VARCHAR,            -- the raw request text, kept when method/url are NULL
        tz_offset SMALLINT,         -- the line's UTC offset as +-hhmm, e.g. -400 for -0400
        source_file VARCHAR NOT NULL,
        line_number BIGINT NOT NULL,
        ts_utc TIMESTAMP NOT NULL,  -- the instant, in UTC
        referer VARCHAR,            -- combined format only; NULL for '-' and for common
        user_agent VARCHAR,
        vhost VARCHAR,              -- vhost_combined: the virtual host and port
        extra VARCHAR,              -- the format's other fields (JSON for defined formats)
        duration_ms DOUBLE          -- the time taken, where the format logs it
    """,
    "rejected_lines": """
        source_file VARCHAR NOT NULL,
        line_number BIGINT NOT NULL,  -- 1-based in its file
        raw_line VARCHAR NOT NULL,
        reason VARCHAR NOT NULL,
        day DATE NOT NULL  -- of the request before it in its file, else the file's first, else
                           -- the day its name says, else the partition's first day
    """,
    "source_files": """
        source_file VARCHAR NOT NULL,
        path VARCHAR NOT NULL,
        size_bytes BIGINT NOT NULL,
        modified_at DOUBLE NOT NULL,  -- st_mtime: a changed file is read again
        lines BIGINT NOT NULL,
        requests BIGINT NOT NULL,
        rejected BIGINT NOT NULL,
        first_ts TIMESTAMP,            -- first and last request, UTC
        last_ts TIMESTAMP,
        data_source VARCHAR NOT NULL,  -- real or replica
        read_at TIMESTAMP NOT NULL,
        log_format VARCHAR,            -- the format read: detected, named or defined
        first_day DATE,                -- the local days of its lines, rejected ones included
        last_day DATE,
        fingerprint VARCHAR,           -- line count + hash of the first and last lines: what a
                                       -- rotated copy under another name shares
        header_lines BIGINT            -- W3C `#...` lines: neither requests nor rejections
    """,
    "site": """
        key VARCHAR NOT NULL,    -- 'timezone': the zone the warehouse was ingested in
        value VARCHAR NOT NULL
    """,
    "ingest_ledger": """
        source_file VARCHAR NOT NULL,
        day DATE NOT NULL,
        requests BIGINT NOT NULL,
        rejected BIGINT NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    """,
    "daily_forecasts": """
        day DATE NOT NULL,            -- the day forecast, from its midnight
        model VARCHAR NOT NULL,
        origin TIMESTAMP NOT NULL,
        bucket_start TIMESTAMP NOT NULL,
        step INTEGER NOT NULL,
        yhat DOUBLE, yhat_lower DOUBLE, yhat_upper DOUBLE,
        fitted_before TIMESTAMP NOT NULL,  -- the model saw only data before this
        data_through TIMESTAMP NOT NULL    -- the newest bucket with data when it was made
    """,
    "forecast_scores": """
        day DATE NOT NULL,
        model VARCHAR NOT NULL,
        rmse DOUBLE, mae DOUBLE, coverage DOUBLE,
        n INTEGER NOT NULL,                -- buckets with data, the ones scored
        missing_buckets INTEGER NOT NULL,  -- not scored: no log, not zero traffic
        complete BOOLEAN NOT NULL,
        plan_setting VARCHAR,              -- the scaling scenario the plan figures are for
        plan_policy VARCHAR,
        plan_cost DOUBLE,                  -- the plan made at midnight, run against the day
        plan_dropped DOUBLE,               -- fraction of the day's requests it dropped
        optimum_cost DOUBLE,               -- the day's hindsight optimum (drops nothing)
        plan_pct_above_optimum DOUBLE
    """,
    "traffic_1m": _TRAFFIC_COLUMNS,
    "traffic_5m": _TRAFFIC_COLUMNS,
    "traffic_15m": _TRAFFIC_COLUMNS,
}


# The asset that writes each table: a missing table's error says what to materialize.
PRODUCERS = {
    "requests": "requests",
    "rejected_lines": "rejected_lines",
    "source_files": "requests",
    "site": "requests",
    "ingest_ledger": "requests",
    "scaling_models": "scaling_forecasts",
    **{f"traffic_{g}": f"traffic_{g}" for g in ("1m", "5m", "15m")},
    **{f"features_{g}": f"features_{g}" for g in ("1m", "5m", "15m")},
    **{
        name: name
        for name in (
            "special_events",
            "anomalies_5m",
            "anomaly_injection",
            "anomaly_flags",
            "forecasts",
            "model_metrics",
            "forecast_next",
            "scaling_forecasts",
            "scaling_decisions",
            "cost_report",
            "cost_robustness",
            "recommendation",
            "provisioning_plan",
            "daily_forecasts",
            "forecast_scores",
        )
    },
}


class WarehouseError(RuntimeError):
    """The warehouse file cannot be opened or written; the message says which and why."""


class MissingTable(WarehouseError):
    """A table the graph has not materialized (or an older version wrote); names the asset."""

    def __init__(self, table: str, stale: bool = False):
        self.table, self.asset = table, PRODUCERS.get(table, table)
        what = "was written by an older version" if stale else "is missing"
        verb = "rematerialize" if stale else "materialize"
        super().__init__(
            f"table {SCHEMA}.{table} {what}: {verb} the asset `{self.asset}` first (make run)"
        )


class WarehouseBusy(WarehouseError):
    """Another process is writing the warehouse; reading can be retried in a moment."""


def connect(
    path: Path | str, read_only: bool = False, lake: Lake | None = None, site: str = "main"
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse (creating the file, its folder and the schema unless read_only).
    With a lake (lake.py), `requests` and `rejected_lines` are views over its files, and the
    warehouse records the lake and the site it writes there (nasa.site)."""
    path = Path(path)
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        # Row order in a table carries no meaning here; not keeping it lets inserts run parallel.
        con = duckdb.connect(
            str(path), read_only=read_only, config={"preserve_insertion_order": False}
        )
    except (duckdb.Error, OSError) as e:
        raise WarehouseError(f"cannot open the DuckDB warehouse {path}: {e}") from e
    try:
        if not read_only:
            create_tables(con, lake is not None or lake_of(con) is not None)
        if lake is not None and not read_only:
            attach_lake(con, lake, site)
        else:
            _register_lake(con)
    except Exception:
        con.close()
        raise
    return con


def _register_lake(con: duckdb.DuckDBPyConnection) -> None:
    """An S3 lake's datasets for this connection's views (a local lake needs none)."""
    found = lake_of(con)
    if found is not None:
        found[0].register(con)


def lake_of(con: duckdb.DuckDBPyConnection) -> tuple[Lake, str] | None:
    """The lake this warehouse reads `requests` and `rejected_lines` from, and its site."""
    try:
        rows = dict(
            con.execute(
                f"SELECT key, value FROM {SCHEMA}.site WHERE key IN ('lake', 'lake_site')"
            ).fetchall()
        )
    except duckdb.CatalogException:
        return None
    if "lake" not in rows:
        return None
    return Lake.from_setting(rows["lake"]), rows.get("lake_site", "main")


def _kind(con: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """'table', 'view' or None: what nasa.<name> is."""
    rows = con.execute(
        "SELECT 'table' FROM duckdb_tables() WHERE schema_name = $s AND table_name = $n "
        "UNION ALL SELECT 'view' FROM duckdb_views() WHERE schema_name = $s AND view_name = $n",
        {"s": SCHEMA, "n": name},
    ).fetchall()
    return rows[0][0] if rows else None


def warehouse_file(con: duckdb.DuckDBPyConnection) -> str:
    """The resolved path of the warehouse file `con` uses (its default database)."""
    path = con.execute(
        "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
    ).fetchall()[0][0]
    return str(Path(path).resolve()) if path else ":memory:"


def attach_lake(con: duckdb.DuckDBPyConnection, lake: Lake, site: str) -> None:
    """Views nasa.requests and nasa.rejected_lines over the lake's files (placeholders written
    so that an empty lake reads as empty tables), and the lake recorded in nasa.site. A
    warehouse written without a lake has its two tables moved into it (a file per day)."""
    check_site(site)
    lake.claim(site, warehouse_file(con))
    columns = {}
    for table in LAKE_TABLES:
        if _kind(con, table) == "table":  # written without a lake: its rows move there
            days = [
                d for (d,) in con.execute(f"SELECT DISTINCT day FROM {SCHEMA}.{table}").fetchall()
            ]
            lake.write_days(con, table, site, f"SELECT * FROM {SCHEMA}.{table}", days)
            con.execute(f"DROP TABLE {SCHEMA}.{table}")  # after the files: a crash re-moves them
        con.execute(f"CREATE OR REPLACE TEMP TABLE _shape_{table} ({TABLES[table]})")
        lake.ensure(con, table, f"SELECT * EXCLUDE (day) FROM _shape_{table}")
        columns[table] = [row[0] for row in con.execute(f"DESCRIBE _shape_{table}").fetchall()]
        con.execute(f"DROP TABLE _shape_{table}")
    lake.register(con)  # S3: the datasets the views read (after the placeholders exist)
    for table in LAKE_TABLES:
        view = lake.view_sql(table, columns[table], site)
        con.execute(f"CREATE OR REPLACE VIEW {SCHEMA}.{table} AS {view}")
    con.execute(f"DELETE FROM {SCHEMA}.site WHERE key IN ('lake', 'lake_site')")
    con.execute(f"INSERT INTO {SCHEMA}.site VALUES ('lake', ?), ('lake_site', ?)", [lake.url, site])


@contextmanager
def attached(
    con: duckdb.DuckDBPyConnection,
    path: Path | str,
    lake: Lake | None = None,
    site: str = "main",
    wait_s: float = 600.0,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """The warehouse file attached to `con` (an in-memory connection that parses) and made its
    default, for a short read or write: `nasa.*` names the warehouse's tables inside, `con`'s
    temp tables stay visible, and the file is free for other processes again afterwards.
    Waits (up to wait_s) while another process holds the file."""
    deadline = time.monotonic() + wait_s
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            con.execute(f"ATTACH '{path}' AS warehouse")
            break
        except duckdb.Error as error:
            if "lock" not in str(error).lower() or time.monotonic() > deadline:
                raise WarehouseError(f"cannot open the DuckDB warehouse {path}: {error}") from error
            time.sleep(0.2)
    try:
        con.execute("USE warehouse")
        create_tables(con, lake=lake is not None or lake_of(con) is not None)
        if lake is not None:
            attach_lake(con, lake, site)
        else:
            _register_lake(con)
        yield con
    finally:
        con.execute("USE memory")
        con.execute("DETACH warehouse")


# Columns added after a table's first release: a warehouse made before gets them (NULL) on open.
_ADDED_COLUMNS = {
    "requests": [
        "ts_utc TIMESTAMP",
        "referer VARCHAR",
        "user_agent VARCHAR",
        "vhost VARCHAR",
        "extra VARCHAR",
        "duration_ms DOUBLE",
    ],
    "source_files": [
        "log_format VARCHAR",
        "first_day DATE",
        "last_day DATE",
        "fingerprint VARCHAR",
        "header_lines BIGINT",
    ],
    **{
        f"traffic_{g}": ["bucket_start_utc TIMESTAMP", "busy_s DOUBLE"] for g in ("1m", "5m", "15m")
    },
    "forecast_scores": [
        "plan_setting VARCHAR",
        "plan_policy VARCHAR",
        "plan_cost DOUBLE",
        "plan_dropped DOUBLE",
        "optimum_cost DOUBLE",
        "plan_pct_above_optimum DOUBLE",
    ],
}


def create_tables(con: duckdb.DuckDBPyConnection, lake: bool = False) -> None:
    """The schema's tables (with a lake, all but its tables: they are views over it)."""
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    for name, columns in TABLES.items():
        if name in LAKE_TABLES and (lake or _kind(con, name) == "view"):
            continue
        con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{name} ({columns})")
    for name, columns in _ADDED_COLUMNS.items():
        if name in LAKE_TABLES and _kind(con, name) != "table":
            continue
        for column in columns:
            con.execute(f"ALTER TABLE {SCHEMA}.{name} ADD COLUMN IF NOT EXISTS {column}")


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """One all-or-nothing write: a run that dies inside leaves the previous state, and a failed
    write (disk full, file not writable) is a WarehouseError that says so."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException as error:
        with suppress(duckdb.Error):  # after an I/O failure DuckDB may refuse even this
            con.execute("ROLLBACK")
        if isinstance(error, duckdb.IOException | duckdb.FatalException | OSError):
            raise _write_failed(error) from error
        raise
    try:
        con.execute("COMMIT")  # where the write-ahead log reaches the disk
    except duckdb.Error as error:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise _write_failed(error) from error


def _write_failed(error: Exception) -> WarehouseError:
    return WarehouseError(
        f"could not write the warehouse ({error}); is the disk full or the file not writable? "
        "Nothing of this write was kept: the warehouse holds what it held before."
    )


def replace_range(
    con: duckdb.DuckDBPyConnection,
    table: str,
    column: str,
    low,
    high,
    insert: Callable[[], None],
) -> None:
    """Delete `table` rows with low <= column < high, then run `insert` (inside a transaction)."""
    con.execute(
        f"DELETE FROM {SCHEMA}.{table} WHERE {column} >= $low AND {column} < $high",
        {"low": low, "high": high},
    )
    insert()


def replace_table(con: duckdb.DuckDBPyConnection, table: str, frame) -> int:
    """Replace nasa.<table> with a DataFrame's rows (one transaction); returns the row count."""
    con.register("_replacement", frame)
    try:
        with transaction(con):
            con.execute(f"CREATE OR REPLACE TABLE {SCHEMA}.{table} AS SELECT * FROM _replacement")
    finally:
        con.unregister("_replacement")
    return len(frame)


_TEXT_COLUMNS = {
    "setting",
    "policy",
    "tuned_on",
    "params",
    "matches",
    "model",
    "granularity",
    "protocol",
    "mlflow_run_id",
    "champion_version",
    "window",
    "method",
    "kind",
    "booster",
    "features",
}
_TIME_COLUMNS = {"bucket_start", "origin"}
_BOOL_COLUMNS = {"selected", "spike"}


def empty_frame(columns: list[str]):
    """A DataFrame with no rows and typed columns (text, timestamps, else numbers), for the
    tables a step skips: DuckDB cannot store a column of unknown type."""
    import pandas as pd

    def dtype(name: str) -> str:
        if name in _BOOL_COLUMNS:
            return "boolean"
        return (
            "string"
            if name in _TEXT_COLUMNS
            else ("datetime64[ns]" if name in _TIME_COLUMNS else "float64")
        )

    return pd.DataFrame({name: pd.Series(dtype=dtype(name)) for name in columns})


@contextmanager
def reading(path: Path | str) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection for the API, the dashboard and the benchmarks: no file is a
    WarehouseError that says to run the graph, a writer holding the file a WarehouseBusy."""
    path = Path(path)
    if not path.exists():
        raise WarehouseError(f"no warehouse at {path}: run `make run` first")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.IOException as error:
        raise WarehouseBusy(
            f"the warehouse is busy (a run is writing it), retry: {error}"
        ) from None
    try:
        yield con
    finally:
        con.close()


def read(con: duckdb.DuckDBPyConnection, sql: str, params: list | dict | None = None):
    """A query's rows as a DataFrame; a table not materialized yet (or written by an older
    version, without a column the query names) is a MissingTable naming the asset to run."""
    try:
        return con.execute(sql, params or []).df()
    except duckdb.CatalogException as error:
        found = re.search(r"Table with name (\w+) does not exist", str(error))
        raise MissingTable(found.group(1) if found else _first_table(sql)) from None
    except duckdb.BinderException:
        raise MissingTable(_first_table(sql), stale=True) from None


def _first_table(sql: str) -> str:
    found = re.search(rf"{SCHEMA}\.(\w+)", sql)
    return found.group(1) if found else "?"


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int | None:
    """Rows in nasa.<table>; None when it does not exist."""
    try:
        return con.execute(f"SELECT count(*) FROM {SCHEMA}.{table}").fetchall()[0][0]
    except duckdb.CatalogException:
        return None


def data_source(con: duckdb.DuckDBPyConnection) -> str:
    """'real', 'replica' (or both joined with '+') for the files behind the warehouse; 'none'
    before any file was read."""
    rows = con.execute(f"SELECT DISTINCT data_source FROM {SCHEMA}.source_files").fetchall()
    return "+".join(sorted(r[0] for r in rows)) or "none"
