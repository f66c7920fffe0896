"""The one Common Log Format parser, in DuckDB SQL.

    host ident authuser [dd/Mon/yyyy:HH:MM:SS -0400] "request" status bytes

A line with a host, a valid timestamp and a 3-digit status is a request, even when its request
string is odd (no method, no protocol, control or high bytes, quotes inside): the raw request text
is kept in `request` and method/url/protocol are NULL where they cannot be read. Bytes may be '-'
(NULL) or absent. Every other line is rejected with a reason. Each input line ends up in exactly
one of the two.

Speed: nearly every line has the plain shape `"METHOD URL[ PROTOCOL]" status bytes`. Those are
recognised by one DFA regex match and cut with string_split, several times faster than regex
capture groups. The other lines (and those with control or high bytes) go through the general
regex, which reads a plain line the same way (nasa_autoscale_tests checks it).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from nasa_autoscale.ingest.logfiles import Lines, string_view

TS_FORMAT = "%d/%b/%Y:%H:%M:%S"
PLAIN_PATTERN = (
    r"^[^ ]+ [^ ]+ [^ ]+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
    r'"[A-Z]+ [^ "]+( HTTP/[^ "]+)?" \d{3} (\d+|-)$'
)
# Any line (RE2 syntax). The request is matched lazily up to the last `"? status [bytes]` at the
# end of the line, so quotes inside it and a missing closing quote are both read.
LINE_PATTERN = r'^(\S+) (\S+) (\S+) \[([^\]]*)\] "?(.*?)"? (\d{3})(?: (\d+|-))?\s*$'
TIMESTAMP_PATTERN = r"^\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$"
REQUEST_PATTERN = r"^([A-Z]+) (\S+)(?: (HTTP/\S+))?$"
_GROUPS = ["host", "ident", "authuser", "ts_text", "request", "status", "bytes"]

# Columns of a parsed request, in the order of nasa.requests (day and source_file are added there).
FIELDS = "line_number, ts, host, method, url, protocol, status, bytes, request, tz_offset"

_PLAIN_SQL = f"""
CREATE OR REPLACE TEMP TABLE __NAME___plain AS
WITH cut AS (
    SELECT line_number, raw_line, string_split(raw_line, ' ') AS p
    FROM __NAME___input WHERE regexp_matches(raw_line, '{PLAIN_PATTERN}')
)
SELECT line_number,
       try_strptime(p[4][2:], '{TS_FORMAT}') AS ts,  -- NULL for a plain-looking 32/Jul
       p[1] AS host,
       p[6][2:] AS method,
       CASE WHEN len(p) = 10 THEN p[7] ELSE p[7][:-2] END AS url,
       CASE WHEN len(p) = 10 THEN p[8][:-2] END AS protocol,
       CAST(p[-2] AS SMALLINT) AS status,
       CAST(nullif(p[-1], '-') AS BIGINT) AS bytes,
       CAST(NULL AS VARCHAR) AS request,
       CAST(p[5][:-2] AS SMALLINT) AS tz_offset
FROM cut
"""

_GENERAL_SQL = f"""
CREATE OR REPLACE TEMP TABLE __NAME___general AS
WITH others AS (
    SELECT i.line_number, i.raw_line FROM __NAME___input i
    ANTI JOIN (SELECT line_number FROM __NAME___plain WHERE ts IS NOT NULL) USING (line_number)
    UNION ALL
    SELECT line_number, raw_line FROM __NAME___special
), matched AS (
    SELECT line_number, raw_line, regexp_extract(raw_line, '{LINE_PATTERN}', {_GROUPS}) AS f
    FROM others
), typed AS (
    SELECT *,
        CASE WHEN f.host <> '' AND regexp_matches(f.ts_text, '{TIMESTAMP_PATTERN}')
             THEN try_strptime(f.ts_text[1:20], '{TS_FORMAT}') END AS ts,
        regexp_extract(f.request, '{REQUEST_PATTERN}', ['method', 'url', 'protocol']) AS r
    FROM matched
)
SELECT line_number, raw_line, ts, f.host AS host,
    nullif(r.method, '') AS method, nullif(r.url, '') AS url, nullif(r.protocol, '') AS protocol,
    CAST(nullif(f.status, '') AS SMALLINT) AS status,
    CAST(nullif(nullif(f.bytes, '-'), '') AS BIGINT) AS bytes,
    CASE WHEN r.method = '' THEN f.request END AS request,
    TRY_CAST(replace(f.ts_text[22:26], '+', '') AS SMALLINT) AS tz_offset,
    CASE
        WHEN ts IS NOT NULL THEN NULL
        WHEN trim(raw_line, ' ' || chr(9) || chr(13)) = '' THEN 'blank line'
        WHEN f.host <> '' THEN 'invalid timestamp: ' || f.ts_text
        WHEN regexp_matches(raw_line, '^\\S+ \\S+ \\S+ \\[[^\\]]*\\]')
            THEN 'no status after the request: truncated or not Common Log Format'
        ELSE 'no host and [timestamp]: not Common Log Format'
    END AS reason
FROM typed
"""

_REQUESTS_SQL = f"""
CREATE OR REPLACE TEMP VIEW __NAME___requests AS
SELECT {FIELDS}, CAST(ts AS DATE) AS day FROM __NAME___plain WHERE ts IS NOT NULL
UNION ALL
SELECT {FIELDS}, CAST(ts AS DATE) AS day FROM __NAME___general WHERE reason IS NULL
"""

# A rejected line belongs to the day of the nearest request before it in the file (the first
# request's day when none precedes it), so that every line of a file falls in one daily partition.
# In a file without any request the day stays NULL.
_REJECTED_SQL = """
CREATE OR REPLACE TEMP TABLE __NAME___rejected AS
SELECT r.line_number, r.raw_line, r.reason,
       coalesce(q.day, (SELECT min(day) FROM __NAME___requests)) AS day
FROM (SELECT line_number, raw_line, reason FROM __NAME___general WHERE reason IS NOT NULL) r
ASOF LEFT JOIN (SELECT line_number, day FROM __NAME___requests) q
    ON r.line_number >= q.line_number
"""

_BATCH_ROWS = 256 * 1024  # DuckDB scans Arrow batches in parallel


@dataclass(frozen=True)
class ParsedLog:
    """One file, parsed into the temp view `{name}_requests` and temp table `{name}_rejected`."""

    name: str
    n_lines: int
    n_requests: int
    n_rejected: int

    @property
    def requests_table(self) -> str:
        return f"{self.name}_requests"

    @property
    def rejected_table(self) -> str:
        return f"{self.name}_rejected"


def parse_lines(con: duckdb.DuckDBPyConnection, lines: Lines, name: str = "parsed") -> ParsedLog:
    """Parse indexed lines into a temp view `{name}_requests` (FIELDS + day) and a temp table
    `{name}_rejected` (line_number, raw_line, reason, day); drop_parsed frees them."""
    ordinary = np.flatnonzero(~lines.has_special)
    special = np.flatnonzero(lines.has_special)
    # Lines of printable ASCII are read in place; the rare others are decoded from latin-1.
    ordinary_input = pa.table(
        {
            "line_number": pa.array(ordinary + 1),
            "raw_line": string_view(lines.buf, lines.starts[ordinary], lines.ends[ordinary]),
        }
    )
    ordinary_input = pa.Table.from_batches(
        ordinary_input.to_batches(max_chunksize=_BATCH_ROWS), schema=ordinary_input.schema
    )
    special_input = pa.table(
        {"line_number": pa.array(special + 1), "raw_line": lines.text(special)}
    )
    con.register(f"{name}_input", ordinary_input)
    con.register(f"{name}_special", special_input)
    try:
        for sql in (_PLAIN_SQL, _GENERAL_SQL, _REQUESTS_SQL, _REJECTED_SQL):
            con.execute(sql.replace("__NAME__", name))
    finally:
        con.unregister(f"{name}_input")
        con.unregister(f"{name}_special")
    n_requests, n_rejected = con.execute(
        f"SELECT (SELECT count(*) FROM {name}_requests), (SELECT count(*) FROM {name}_rejected)"
    ).fetchall()[0]
    return ParsedLog(name, len(lines), n_requests, n_rejected)


def drop_parsed(con: duckdb.DuckDBPyConnection, parsed: ParsedLog) -> None:
    """Free the temp tables behind a ParsedLog."""
    con.execute(f"DROP VIEW IF EXISTS {parsed.name}_requests")
    for suffix in ("rejected", "plain", "general"):
        con.execute(f"DROP TABLE IF EXISTS {parsed.name}_{suffix}")
