"""W3C extended log format (IIS, and the header-driven logs like it): the fields are named by
the latest `#Fields:` header line, which may change inside a file.

    #Software: Microsoft Internet Information Services 8.5
    #Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip ...
    2015-01-13 00:32:17 100.79.192.81 GET /robots.txt - 80 - 157.55.39.146 Mozilla/5.0+... 404 ...

Header lines (`#...`) are neither requests nor rejections: they are counted apart
(source_files.header_lines). A data line takes the fields of the `#Fields:` line before it;
values are space- (or tab-) separated, `-` is empty, `+` in the user agent and referer is a
space. Times are UTC (the standard's rule and IIS's). Every field the warehouse has no column
for (time-taken, s-ip, sc-substatus, ...) is kept in `extra`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

# W3C field -> warehouse column
COLUMNS = {
    "c-ip": "host",
    "cs-method": "method",
    "cs-uri-stem": "url",
    "cs-uri-query": "query",
    "cs-version": "protocol",
    "sc-status": "status",
    "sc-bytes": "bytes",
    "cs(referer)": "referer",
    "cs(user-agent)": "user_agent",
    "cs-host": "vhost",
    "cs(host)": "vhost",
}
REQUIRED = ("date", "time", "c-ip", "sc-status")


@dataclass(frozen=True)
class W3CFormat:
    name: str = "w3c"
    description: str = "W3C extended (IIS): fields from each #Fields header, times in UTC"
    percent_encoded: bool = False  # CloudFront writes the agent and referer URL-encoded
    time_taken_ms: float = 1.0  # time-taken in ms (IIS); CloudFront's is in seconds: 1000
    header_prefix: bytes = b"#"  # header lines: neither requests nor rejections


def segments(file: int, data: bytes, starts, ends, heads: np.ndarray) -> pa.Table:
    """(file, line_number, fields) of each `#Fields:` header, fields lower-cased."""
    rows = np.flatnonzero(heads)
    numbers, fields = [], []
    for row in rows:
        text = data[starts[row] : ends[row]].decode("latin-1").strip()
        if text[:8].lower() == "#fields:":
            numbers.append(int(row) + 1)
            fields.append(text[8:].lower().split())
    return pa.table(
        {
            "file": pa.array([file] * len(numbers), pa.int32()),
            "line_number": pa.array(numbers, pa.int64()),
            "fields": pa.array(fields, pa.list_(pa.string())),
        }
    )


def _field(name: str) -> str:
    """SQL: the value of W3C field `name` on the line ('' when its header lacks it)."""
    return f"coalesce(nullif(nullif(p[list_position(fields, '{name}')], '-'), ''), '')"


def select_sql(source: str, segments_table: str, fmt: W3CFormat | None = None) -> str:
    """SQL over `source` (file, line_number, raw_line) and the headers: parse.py's general
    columns with a reason for every line that is not a request."""
    names = {column: [] for column in set(COLUMNS.values())}
    for field, column in COLUMNS.items():
        names[column].append(field)

    def column(name: str) -> str:
        values = ", ".join(f"nullif({_field(f)}, '')" for f in names[name])
        return f"coalesce({values})" if len(names[name]) > 1 else values

    known = "[" + ", ".join(f"'{f}'" for f in ["date", "time", "time-taken", *COLUMNS]) + "]"
    per_ms = fmt.time_taken_ms if fmt is not None else 1.0
    duration = f"TRY_CAST(nullif({_field('time-taken')}, '') AS DOUBLE) * {per_ms}"
    if fmt is not None and fmt.percent_encoded:
        text = lambda name: f"url_decode({column(name)})"  # noqa: E731
    else:
        text = lambda name: f"replace({column(name)}, '+', ' ')"  # noqa: E731
    url = f"CASE WHEN {column('query')} IS NULL THEN {column('url')} "
    url += f"ELSE {column('url')} || '?' || {column('query')} END"
    missing = " OR ".join(f"NOT list_contains(fields, '{f}')" for f in REQUIRED)
    return f"""
    WITH lined AS (
        SELECT l.file, l.line_number, l.raw_line, s.fields,
            CASE WHEN contains(l.raw_line, chr(9)) THEN string_split(l.raw_line, chr(9))
                 ELSE string_split(trim(l.raw_line, ' ' || chr(13)), ' ') END AS p
        FROM {source} l ASOF LEFT JOIN {segments_table} s
            ON l.file = s.file AND l.line_number >= s.line_number
    ), typed AS (
        SELECT *, try_strptime({_field("date")} || ' ' || {_field("time")}[1:8],
                               '%Y-%m-%d %H:%M:%S') AS wall,
            TRY_CAST({_field("sc-status")} AS SMALLINT) AS code
        FROM lined
    )
    SELECT file, line_number, raw_line, wall AS ts_utc, CAST(0 AS SMALLINT) AS tz_offset,
        {column("host")} AS host, {column("method")} AS method, {url} AS url,
        {column("protocol")} AS protocol, code AS status,
        TRY_CAST({column("bytes")} AS BIGINT) AS bytes, CAST(NULL AS VARCHAR) AS request,
        {text("referer")} AS referer, {text("user_agent")} AS user_agent,
        {column("vhost")} AS vhost, {duration} AS duration_ms,
        CASE WHEN fields IS NOT NULL THEN CAST(to_json(map(
            list_filter(fields, lambda f: NOT list_contains({known}, f)),
            list_filter(p[:len(fields)], lambda v, i: NOT list_contains({known}, fields[i]))
        )) AS VARCHAR) END AS extra,
        CASE
            WHEN fields IS NOT NULL AND len(p) = len(fields) AND wall IS NOT NULL
                 AND code IS NOT NULL AND {column("host")} IS NOT NULL THEN NULL
            WHEN trim(raw_line, ' ' || chr(9) || chr(13)) = '' THEN 'blank line'
            WHEN fields IS NULL THEN 'no #Fields header before this line: not w3c log format'
            WHEN {missing} THEN 'its #Fields header has no date, time, c-ip or sc-status'
            WHEN len(p) <> len(fields) THEN
                len(p) || ' values, its #Fields header names ' || len(fields)
            WHEN wall IS NULL THEN 'invalid timestamp: ' || {_field("date")} || ' '
                || {_field("time")}
            ELSE 'no status or client: not w3c log format'
        END AS reason
    FROM typed
    """
