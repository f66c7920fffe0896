"""The one Common Log Format parser, in DuckDB SQL.

    host ident authuser [dd/Mon/yyyy:HH:MM:SS -0400] "request" status bytes

A line with a host, a valid timestamp and a 3-digit status is a request, even when its request
string is odd (no method, no protocol, control or high bytes, quotes inside): the raw request text is
kept in `request` and method/url/protocol are NULL where they cannot be read. Bytes may be '-'
(NULL) or absent. Every other line is rejected with a reason. Each input line ends up in exactly one
of the two.

Speed: almost every line has the plain shape `"METHOD URL[ PROTOCOL]" status bytes`. Those are
recognised by one DFA regex match and cut with string_split, which is several times faster than
regex capture groups. The few other lines go through the general regex. Both paths give the same
fields for a plain line (nasa_autoscale_tests checks it).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

# A plain line; the '\n' terminator that logfiles.split_lines keeps is allowed at the end.
PLAIN_PATTERN = (
    r"^[^ ]+ [^ ]+ [^ ]+ \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] "
    r'"[A-Z]+ [^ "]+( HTTP/[0-9.]+)?" \d{3} (\d+|-)\n?$'
)
# Any line (RE2 syntax). The request is matched lazily up to the last `"? status [bytes]` at the
# end of the line, so quotes inside it and a missing closing quote are both read.
LINE_PATTERN = r'^(\S+) (\S+) (\S+) \[([^\]]*)\] "?(.*?)"? (\d{3})(?: (\d+|-))?\s*$'
TIMESTAMP_PATTERN = r"^\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$"
REQUEST_PATTERN = r"^([A-Z]+) (\S+)(?: (HTTP/\S+))?$"
TS_FORMAT = "%d/%b/%Y:%H:%M:%S"

REQUEST_COLUMNS = (
    "ts, day, host, method, url, protocol, status, bytes, request, tz_offset, source_file, "
    "line_number"
)
REJECTED_COLUMNS = "source_file, line_number, raw_line, reason, day"

_PLAIN_SQL = f"""
CREATE OR REPLACE TEMP TABLE __OUT___plain AS
WITH flagged AS (
    SELECT line_number, raw_line, regexp_matches(raw_line, '{PLAIN_PATTERN}') AS plain
    FROM __LINES__
), cut AS (
    SELECT line_number, raw_line, p,
           try_strptime(p[4][2:], '{TS_FORMAT}') AS ts  -- NULL for a plain-looking 32/Jul
    FROM (SELECT *, CASE WHEN plain THEN string_split(raw_line, ' ') END AS p FROM flagged)
)
SELECT line_number, ts IS NOT NULL AS plain,
       CASE WHEN ts IS NULL THEN rtrim(raw_line, chr(10)) END AS other_line,
       ts,
       p[1] AS host,
       p[6][2:] AS method,
       CASE WHEN len(p) = 10 THEN p[7] ELSE p[7][:-2] END AS url,
       CASE WHEN len(p) = 10 THEN p[8][:-2] END AS protocol,
       CAST(p[-2] AS SMALLINT) AS status,
       CAST(nullif(rtrim(p[-1], chr(10)), '-') AS BIGINT) AS bytes,
       CAST(NULL AS VARCHAR) AS request,
       p[5][:-2] AS tz_offset
FROM cut
"""

_GENERAL_SQL = f"""
CREATE OR REPLACE TEMP TABLE __OUT___general AS
WITH matched AS (
    SELECT line_number, other_line AS raw_line,
           regexp_extract(other_line, '{LINE_PATTERN}',
                          ['host', 'ident', 'authuser', 'ts_text', 'request', 'status', 'bytes']) AS f
    FROM __OUT___plain WHERE NOT plain
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
    f.ts_text[22:26] AS tz_offset,
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

_FIELDS = "ts, host, method, url, protocol, status, bytes, request, tz_offset"
_REQUESTS_SQL = f"""
SELECT ts, CAST(ts AS DATE) AS day, host, method, url, protocol, status, bytes, request,
       tz_offset, $source_file AS source_file, line_number
FROM (
    SELECT line_number, {_FIELDS} FROM __OUT___plain WHERE plain
    UNION ALL
    SELECT line_number, {_FIELDS} FROM __OUT___general WHERE reason IS NULL
)
"""

# A rejected line belongs to the day of the nearest request before it in the file (the first
# request's day when none precedes it), so that every line of a file falls in one daily partition.
# Files with no request at all leave it NULL.
_REJECTED_SQL = """
WITH accepted AS (
    SELECT line_number, CAST(ts AS DATE) AS day FROM __OUT___plain WHERE plain
    UNION ALL
    SELECT line_number, CAST(ts AS DATE) AS day FROM __OUT___general WHERE reason IS NULL
)
SELECT $source_file AS source_file, r.line_number, r.raw_line, r.reason,
       coalesce(a.day, (SELECT min(day) FROM accepted)) AS day
FROM (SELECT line_number, raw_line, reason FROM __OUT___general WHERE reason IS NOT NULL) r
ASOF LEFT JOIN accepted a ON r.line_number >= a.line_number
"""


def parse_lines(
    con: duckdb.DuckDBPyConnection, lines: pa.Table, source_file: str, name: str = "parsed"
) -> tuple[duckdb.DuckDBPyRelation, duckdb.DuckDBPyRelation]:
    """Parse numbered lines into temp tables `{name}_requests` and `{name}_rejected`.

    `lines` has columns line_number and raw_line (see logfiles.read_lines). Returns relations over
    the two tables, which stay until parse_lines runs again with the same name.
    """
    view = f"{name}_lines"
    con.register(view, lines)
    try:
        con.execute(_PLAIN_SQL.replace("__OUT__", name).replace("__LINES__", view))
    finally:
        con.unregister(view)
    con.execute(_GENERAL_SQL.replace("__OUT__", name))
    params = {"source_file": source_file}
    for suffix, sql in (("requests", _REQUESTS_SQL), ("rejected", _REJECTED_SQL)):
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name}_{suffix} AS {sql.replace('__OUT__', name)}",
            params,
        )
    con.execute(f"DROP TABLE {name}_plain; DROP TABLE {name}_general")
    return con.table(f"{name}_requests"), con.table(f"{name}_rejected")
