"""The one access-log parser, in DuckDB SQL: Common, Combined and vhost Combined Log Format.

    common:          host ident authuser [dd/Mon/yyyy:HH:MM:SS -0400] "request" status bytes
    combined:        common + ' "referer" "user agent"' (+ anything after: kept in `extra`)
    vhost_combined:  'vhost:port ' + combined

A line with a host, a valid timestamp and a 3-digit status is a request, even when its request
string is odd (no method, no protocol, control or high bytes, quotes inside): the raw request text
is kept in `request` and method/url/protocol are NULL where they cannot be read. Bytes may be '-'
(NULL) or absent. A combined file's line without referer and agent is still a request. Every other
line is rejected with a reason. Each input line ends up in exactly one of the two.

Time: each line's own offset is honoured. `ts_utc` is the instant (naive UTC), `ts` the site's
local wall-clock time (see sitezone.py) and `day` the local date.

Speed: nearly every line has a plain shape (`"METHOD URL[ PROTOCOL]" status bytes`, then for
combined `"referer" "agent"` without escaped quotes). Those are recognised by one DFA regex match
and cut with string_split, several times faster than regex capture groups. The other lines (and
those with control or high bytes) go through the general regex, which reads a plain line the same
way (nasa_autoscale_tests checks it).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from nasa_autoscale.ingest import formats
from nasa_autoscale.ingest.formats.definition import offset_minutes_sql, select_sql
from nasa_autoscale.ingest.formats.jsonlines import JsonFormat
from nasa_autoscale.ingest.formats.jsonlines import select_sql as json_select_sql
from nasa_autoscale.ingest.formats.w3c import W3CFormat, segments
from nasa_autoscale.ingest.formats.w3c import select_sql as w3c_select_sql
from nasa_autoscale.ingest.logfiles import Lines, string_view
from nasa_autoscale.ingest.sitezone import SiteZone, first_offset
from nasa_autoscale.settings import LOG_FORMATS

FORMATS = LOG_FORMATS  # common, combined, vhost_combined
TS_FORMAT = "%d/%b/%Y:%H:%M:%S"
_TS = r"\[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\]"
_PLAIN_HEAD = r"^[^ ]+ [^ ]+ [^ ]+ " + _TS + r' "[A-Z]+ [^ "]+( HTTP/[^ "]+)?" \d{3} (\d{1,18}|-)'
PLAIN_PATTERNS = {
    "common": _PLAIN_HEAD + "$",
    "combined": _PLAIN_HEAD + r' "[^"\\]*" "[^"\\]*"$',
}
# Any line (RE2 syntax), one pattern per format with the same 11 groups. The request is matched
# lazily up to the last `"? status [bytes]` before what must follow it (the end of the line, or
# the referer and agent), so quotes inside it and a missing closing quote are both read. Quotes
# inside referer and agent are escaped (Apache `\"`, nginx `\x22`).
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
_CORE = r'(\S+) (\S+) (\S+) \[([^\]]*)\] "?(.*?)"? (\d{3})'
LINE_PATTERNS = {
    "common": r"^()" + _CORE + r"(?: (\d+|-))?()()()\s*$",
    "combined": r"^()" + _CORE + r" (\d+|-) " + _QUOTED + " " + _QUOTED + r"((?: .*)?)\s*$",
    "vhost_combined": r"^(\S+) "
    + _CORE
    + r" (\d+|-) "
    + _QUOTED
    + " "
    + _QUOTED
    + r"((?: .*)?)\s*$",
}
# Apache before 2.0.46 and nginx with escape=none write raw quotes inside the referer and the
# user agent, and a cut line may lose its last quote. Such a line still has an unambiguous
# request, status and bytes: its referer runs to the last `" "`, its agent to the line's end
# (its closing quote optional), and whatever followed the agent stays in it.
_LOOSE_TAIL = r' (\d+|-) "(.*)" "(.*?)"?()\s*$'
LINE_PATTERNS["combined_loose"] = r"^()" + _CORE + _LOOSE_TAIL
LINE_PATTERNS["vhost_combined_loose"] = r"^(\S+) " + _CORE + _LOOSE_TAIL
# A file of one format may hold lines of a simpler one; each line takes the first that matches.
_FALLBACKS = {
    "common": ["common"],
    "combined": ["combined", "combined_loose", "common"],
    "vhost_combined": [
        "vhost_combined",
        "vhost_combined_loose",
        "combined",
        "combined_loose",
        "common",
    ],
}
_GROUPS = [
    "vhost",
    "host",
    "ident",
    "authuser",
    "ts_text",
    "request",
    "status",
    "bytes",
    "referer",
    "user_agent",
    "extra",
]
TIMESTAMP_PATTERN = r"^\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}$"
REQUEST_PATTERN = r"^([A-Z]+) (\S+)(?: (HTTP/\S+))?$"

# Columns of a parsed request, in the order of nasa.requests (day and source_file are added there).
FIELDS = (
    "line_number, ts, host, method, url, protocol, status, bytes, request, tz_offset, ts_utc, "
    "referer, user_agent, vhost, extra, duration_ms"
)
_UNESCAPE = "nullif(replace(replace({x}, '\\\"', '\"'), '\\x22', '\"'), '-')"


# The instants a request may have: a line stamped outside them (year 0001 or 9999, an offset
# past +-14:00 or with 60 minutes or more) is rejected with the reason, never stored as a request
# days away from where it belongs.
FIRST_INSTANT, END_INSTANT = "1990-01-01", "2101-01-01"


def insane_time_sql(ts_utc: str, tz_offset: str) -> str:
    """SQL: why a request's instant cannot be (NULL when it can): `tz_offset` +-hhmm beyond
    +-14:00 or with 60 minutes or more, or `ts_utc` outside FIRST_INSTANT..END_INSTANT."""
    return f"""CASE
        WHEN abs({tz_offset}) > 1400 OR abs({tz_offset}) % 100 >= 60
            THEN 'impossible UTC offset: ' || {tz_offset}
        WHEN {ts_utc} < TIMESTAMP '{FIRST_INSTANT}' OR {ts_utc} >= TIMESTAMP '{END_INSTANT}'
            THEN 'time outside {FIRST_INSTANT[:4]}..{int(END_INSTANT[:4]) - 1}: ' || {ts_utc}
    END"""


def _utc(wall: str, offset: str) -> str:
    """SQL: the instant (naive UTC) of a wall clock at a +-hhmm offset."""
    return f"({wall} - INTERVAL ({offset_minutes_sql(offset)}) MINUTE)"


def _times(wall: str, offset: str, zone: SiteZone) -> str:
    """SQL select items ts_utc, ts from the line's wall clock and its +-hhmm offset."""
    utc = _utc(wall, offset)
    return f"{utc} AS ts_utc, {zone.local_sql(utc)} AS ts"


def _plain_sql(log_format: str, zone: SiteZone) -> str:
    pattern = PLAIN_PATTERNS.get(log_format)
    if pattern is None:  # no fast path: every line takes the general one
        return f"""
        CREATE OR REPLACE TEMP TABLE __NAME___plain AS
        SELECT file, {FIELDS} FROM (SELECT 0 AS file, 0 AS line_number, NULL::TIMESTAMP AS ts,
            NULL AS host,
            NULL AS method, NULL AS url, NULL AS protocol, NULL::SMALLINT AS status,
            NULL::BIGINT AS bytes, NULL AS request, NULL::SMALLINT AS tz_offset,
            NULL::TIMESTAMP AS ts_utc, NULL AS referer, NULL AS user_agent, NULL AS vhost,
            NULL AS extra, NULL::DOUBLE AS duration_ms) WHERE FALSE
        """
    if log_format == "common":
        # host ident user [dd/Mon/yyyy:HH:MM:SS -0400] "METHOD URL PROTO" status bytes
        cut = "string_split(raw_line, ' ') AS p"
        columns = """
            p[1] AS host, p[6][2:] AS method,
            CASE WHEN len(p) = 10 THEN p[7] ELSE p[7][:-2] END AS url,
            CASE WHEN len(p) = 10 THEN p[8][:-2] END AS protocol,
            CAST(p[-2] AS SMALLINT) AS status, CAST(nullif(p[-1], '-') AS BIGINT) AS bytes,
            NULL AS referer, NULL AS user_agent"""
    else:
        # split on '"': [head ] [request] [ status bytes ] [referer] [ ] [agent] []
        cut = (
            "string_split(raw_line, '\"') AS q, string_split(q[1], ' ') AS p, "
            "string_split(q[2], ' ') AS r, string_split(q[3], ' ') AS s"
        )
        columns = """
            p[1] AS host, r[1] AS method, r[2] AS url, r[3] AS protocol,
            CAST(s[2] AS SMALLINT) AS status, CAST(nullif(s[3], '-') AS BIGINT) AS bytes,
            nullif(q[4], '-') AS referer, nullif(q[6], '-') AS user_agent"""
    # p: the space-separated head, [.., '[dd/Mon/yyyy:HH:MM:SS', '-0400]', ..] in both formats
    wall, offset = f"try_strptime(p[4][2:], '{TS_FORMAT}')", "CAST(p[5][:-2] AS SMALLINT)"
    return f"""
    CREATE OR REPLACE TEMP TABLE __NAME___plain AS
    WITH cut AS (
        SELECT file, line_number, {cut}
        FROM __NAME___input WHERE regexp_matches(raw_line, '{pattern}')
    ), typed AS (
        SELECT file, line_number, {wall} AS wall, {offset} AS tz_offset, {columns}
        FROM cut
    )
    SELECT file, line_number, host, method, url, protocol, status, bytes,
        CAST(NULL AS VARCHAR) AS request, tz_offset, {_times("wall", "tz_offset", zone)},
        referer, user_agent, CAST(NULL AS VARCHAR) AS vhost, CAST(NULL AS VARCHAR) AS extra,
        CAST(NULL AS DOUBLE) AS duration_ms
    FROM typed WHERE ({insane_time_sql(_utc("wall", "tz_offset"), "tz_offset")}) IS NULL
    """  # a plain-looking 32/Jul has a NULL ts, an impossible time no row: the general path
    # rejects both with a reason


def _general_sql(log_format: str, zone: SiteZone) -> str:
    tries = [
        f"regexp_extract(raw_line, '{LINE_PATTERNS[f]}', {_GROUPS})" for f in _FALLBACKS[log_format]
    ]
    picked = tries[-1]
    for attempt in reversed(tries[:-1]):
        picked = f"CASE WHEN ({attempt}).host <> '' THEN {attempt} ELSE {picked} END"
    not_format = f"truncated or not {log_format.replace('_', ' ')} log format"
    return f"""
    CREATE OR REPLACE TEMP TABLE __NAME___general AS
    WITH others AS (
        SELECT i.file, i.line_number, i.raw_line FROM __NAME___input i
        ANTI JOIN (SELECT file, line_number FROM __NAME___plain WHERE ts IS NOT NULL)
            USING (file, line_number)
        UNION ALL
        SELECT file, line_number, raw_line FROM __NAME___special
    ), matched AS (
        SELECT file, line_number, raw_line, {picked} AS f FROM others
    ), typed AS (
        SELECT *,
            CASE WHEN f.host <> '' AND regexp_matches(f.ts_text, '{TIMESTAMP_PATTERN}')
                 THEN try_strptime(f.ts_text[1:20], '{TS_FORMAT}') END AS wall,
            TRY_CAST(replace(f.ts_text[22:26], '+', '') AS SMALLINT) AS tz_offset,
            regexp_extract(f.request, '{REQUEST_PATTERN}', ['method', 'url', 'protocol']) AS r
        FROM matched
    )
    SELECT file, line_number, raw_line, {_times("wall", "tz_offset", zone)}, f.host AS host,
        nullif(r.method, '') AS method, nullif(r.url, '') AS url,
        nullif(r.protocol, '') AS protocol,
        CAST(nullif(f.status, '') AS SMALLINT) AS status,
        TRY_CAST(nullif(nullif(f.bytes, '-'), '') AS BIGINT) AS bytes,
        CASE WHEN r.method = '' THEN f.request END AS request, tz_offset,
        {_UNESCAPE.format(x="nullif(f.referer, '')")} AS referer,
        {_UNESCAPE.format(x="nullif(f.user_agent, '')")} AS user_agent,
        nullif(f.vhost, '') AS vhost, nullif(trim(f.extra), '') AS extra,
        CAST(NULL AS DOUBLE) AS duration_ms,
        CASE
            WHEN wall IS NOT NULL AND TRY_CAST(nullif(nullif(f.bytes, '-'), '') AS BIGINT) IS NULL
                AND nullif(nullif(f.bytes, '-'), '') IS NOT NULL
                THEN 'bytes out of range: ' || f.bytes
            WHEN wall IS NOT NULL THEN {insane_time_sql(_utc("wall", "tz_offset"), "tz_offset")}
            WHEN trim(raw_line, ' ' || chr(9) || chr(13)) = '' THEN 'blank line'
            WHEN f.host <> '' THEN 'invalid timestamp: ' || f.ts_text
            WHEN regexp_matches(raw_line, '^(\\S+ )?\\S+ \\S+ \\S+ \\[[^\\]]*\\]')
                THEN 'no status after the request: {not_format}'
            ELSE 'no host and [timestamp]: not an access log line'
        END AS reason
    FROM typed
    """


def _definition_sql(definition, zone: SiteZone) -> str:
    """The general table for a format definition (ingest/formats): every line through its
    pattern (no fast path yet), or a W3C log through its #Fields headers."""
    if isinstance(definition, W3CFormat):
        select = w3c_select_sql("others", "__NAME___segments", definition)
    elif isinstance(definition, JsonFormat):
        select = json_select_sql(definition, "others")
    else:
        select = select_sql(definition, "others", zone)
    return f"""
    CREATE OR REPLACE TEMP TABLE __NAME___general AS
    WITH others AS (
        SELECT file, line_number, raw_line FROM __NAME___input
        UNION ALL
        SELECT file, line_number, raw_line FROM __NAME___special
    ), parsed AS ({select}
    ), checked AS (
        SELECT * REPLACE (coalesce(reason, {insane_time_sql("ts_utc", "tz_offset")}) AS reason)
        FROM parsed
    )
    SELECT * REPLACE (CASE WHEN reason IS NOT NULL THEN raw_line END AS raw_line),
        {zone.local_sql("ts_utc")} AS ts
    FROM checked  -- a request's raw line is not kept: only a rejection's
    """


_PARSED_SQL = f"""
CREATE OR REPLACE TEMP VIEW __NAME___parsed AS
SELECT file, {FIELDS}, CAST(ts AS DATE) AS day FROM __NAME___plain WHERE ts IS NOT NULL
UNION ALL
SELECT file, {FIELDS}, CAST(ts AS DATE) AS day FROM __NAME___general WHERE reason IS NULL
"""
# The site's days are __FIRST__..__LAST__: a request outside them is a rejection that says so
# (stored on the nearest of the site's days), never a line stored nowhere.
_REQUESTS_SQL = """
CREATE OR REPLACE TEMP VIEW __NAME___requests AS
SELECT * FROM __NAME___parsed WHERE day BETWEEN __FIRST__ AND __LAST__
"""
_OUTSIDE_SQL = """
CREATE OR REPLACE TEMP TABLE __NAME___outside AS
SELECT o.file, o.line_number, i.raw_line,
       'outside the site''s days (__RANGE__): ' || CAST(o.day AS VARCHAR) AS reason,
       greatest(least(o.day, __LAST__), __FIRST__) AS day
FROM (SELECT file, line_number, day FROM __NAME___parsed
      WHERE NOT day BETWEEN __FIRST__ AND __LAST__) o
JOIN (SELECT file, line_number, CAST(raw_line AS VARCHAR) AS raw_line FROM __NAME___input
      UNION ALL SELECT file, line_number, raw_line FROM __NAME___special) i
    USING (file, line_number)
"""

# A rejected line belongs to the day of the nearest request before it in its file (the file's
# first request's day when none precedes it; the file's fallback day when it has no request at
# all), within the site's days, so that every line of a file falls in one of the site's daily
# partitions and none is lost.
_REJECTED_SQL = """
CREATE OR REPLACE TEMP TABLE __NAME___rejected AS
SELECT r.file, r.line_number, r.raw_line, r.reason,
       greatest(least(coalesce(q.day, first.day, CAST(fallback.day AS DATE)), __LAST__),
                __FIRST__) AS day
FROM (SELECT file, line_number, raw_line, reason FROM __NAME___general
      WHERE reason IS NOT NULL) r
ASOF LEFT JOIN (SELECT file, line_number, day FROM __NAME___requests) q
    ON r.file = q.file AND r.line_number >= q.line_number
LEFT JOIN (SELECT file, min(day) AS day FROM __NAME___requests GROUP BY file) first
    ON first.file = r.file
LEFT JOIN __NAME___fallback fallback ON fallback.file = r.file
UNION ALL
SELECT file, line_number, raw_line, reason, day FROM __NAME___outside
"""

# DuckDB scans Arrow batches in parallel: even a small (daily) file is cut into several.
_BATCH_ROWS, _MIN_BATCH_ROWS, _BATCHES = 256 * 1024, 8 * 1024, 8
_DETECT_LINES = 1000
_PRESET_DETECTORS = {
    name: re.compile(preset.pattern.encode("latin-1"))
    for name, preset in formats.PRESETS.items()
    if isinstance(preset, formats.LogFormat)
}
# presets known by a header line of their own (W3C's `#` lines are told apart above)
_HEADER_DETECTORS = {
    name: preset.header_prefix
    for name, preset in formats.PRESETS.items()
    if isinstance(preset, formats.LogFormat) and preset.header_prefix
}
_DETECTORS = {  # the most specific first: a line counts for the first that reads it
    **_PRESET_DETECTORS,
    **{
        name: re.compile(LINE_PATTERNS[name].encode("latin-1"))
        for name in ("vhost_combined", "combined", "common")
    },
}


@dataclass(frozen=True)
class ParsedLog:
    """Files of one format, parsed together into the temp view `{name}_requests` and temp table
    `{name}_rejected`; their column `file` is the file's position in the batch."""

    name: str
    n_lines: int
    n_requests: int
    n_rejected: int
    log_format: str = "common"
    # per file: lines, requests, rejected, first and last instant (UTC), first and last local day
    per_file: tuple[tuple, ...] = ()
    # per file: header lines (W3C `#...`), neither requests nor rejections
    header_lines: tuple[int, ...] = ()
    # per file: the rejected lines that are requests outside the site's days
    outside: tuple[int, ...] = ()

    @property
    def requests_table(self) -> str:
        return f"{self.name}_requests"

    @property
    def rejected_table(self) -> str:
        return f"{self.name}_rejected"


def _votes(lines: Lines) -> tuple[str | None, Counter[str]]:
    """A header's format (a file's first lines name it outright), else how many of the file's
    first non-blank lines each format reads (a line counts for the first that reads it)."""
    counts: Counter[str] = Counter()
    seen = 0
    for start, end in zip(lines.starts, lines.ends, strict=True):
        line = lines.data[start:end].rstrip(b"\r")
        if not line.strip():
            continue
        if not seen:  # a header is a file's first lines: it names the format outright
            if line[:8].lower() == b"#fields:":  # CloudFront's name its edge fields
                return ("cloudfront" if b"x-edge-" in line else "w3c"), counts
            if line[:1] == b"#":  # W3C's #Software, #Version, #Date before its #Fields
                continue
            for name, prefix in _HEADER_DETECTORS.items():
                if line.startswith(prefix):
                    return name, counts
        seen += 1
        if line[:1] == b"{" and b'"http.log.access' in line:
            counts["caddy"] += 1
            continue
        for name, detector in _DETECTORS.items():
            if detector.match(line):
                counts[name] += 1
                break
        if seen >= _DETECT_LINES:
            break
    return None, counts


def detect_format(lines: Lines) -> str:
    """The format most of a file's first non-blank lines are in (common when none matches):
    a W3C log by its `#Fields:` header, a preset with a pattern (HAProxy), or the Common Log
    Format family. A vhost_combined line also reads as combined, and a combined one as common
    (with the rest as part of the request), so the most specific format wins unless fewer
    lines take it."""
    header, counts = _votes(lines)
    if header:
        return header
    if not counts:
        return "common"
    order = [*_PRESET_DETECTORS, "caddy", *FORMATS[::-1]]
    return max(order, key=lambda name: counts[name])  # ties go to the most specific


def not_access_log(lines: Lines) -> str | None:
    """Why a file is not an access log (None when it is, or has no line at all): none of its
    first non-blank lines is an access line in any known format, and no header names one
    (an error log, notes, a stack trace). Used with NASA_LOG_FORMAT=auto only."""
    header, counts = _votes(lines)
    if header or counts or not any(lines.data[a:b].strip() for a, b in _first(lines)):
        return None
    return f"none of its first {_DETECT_LINES:,} lines is an access line in a known format"


def _first(lines: Lines, n: int = _DETECT_LINES):
    return zip(lines.starts[:n], lines.ends[:n], strict=True)


def parse_lines(
    con: duckdb.DuckDBPyConnection,
    lines: Lines,
    name: str = "parsed",
    zone: SiteZone | None = None,
    log_format: str = "auto",
    fallback_day: dt.date | None = None,
    days: tuple[dt.date | None, dt.date | None] = (None, None),
) -> ParsedLog:
    """Parse one file's indexed lines; see parse_batch."""
    return parse_batch(con, [lines], name, zone, log_format, [fallback_day], days)


def parse_batch(
    con: duckdb.DuckDBPyConnection,
    batch: list[Lines],
    name: str = "parsed",
    zone: SiteZone | None = None,
    log_format: str = "auto",
    fallback_days: list[dt.date | None] | None = None,
    days: tuple[dt.date | None, dt.date | None] = (None, None),
) -> ParsedLog:
    """Parse the indexed lines of one or more files (one query for all: a year of daily files
    costs what one big file does) into a temp view `{name}_requests` (file, FIELDS, day) and a
    temp table `{name}_rejected` (file, line_number, raw_line, reason, day); drop_parsed frees
    them. `file` is the position in `batch`.

    zone: the site's time zone (default: the first offset in the lines, as NASA_TIMEZONE=auto).
    log_format: one of FORMATS, or auto to detect it from the first file's first lines.
    fallback_days: per file, the day of its rejected lines if it has no request at all.
    days: the site's first and last day (None: open): a request outside them is rejected with
    the reason and stored on the nearest of them, as is a rejected line that would fall outside.
    """
    if zone is None:
        zone = SiteZone.parse(first_offset(batch[0].data[: 1 << 20]) or "UTC")
    if log_format == "auto":
        log_format = detect_format(batch[0])
    definition = None if log_format in FORMATS else formats.resolve(log_format)
    fallback_days = fallback_days or [None] * len(batch)
    w3c = isinstance(definition, W3CFormat)
    ordinary_batches, special_tables, headers, segment_tables = [], [], [], []
    for file, lines in enumerate(batch):
        # header lines (W3C `#...`, a CSV header) are neither requests nor rejections
        prefix = getattr(definition, "header_prefix", None)
        heads = lines.starts_with(prefix) if prefix else np.zeros(len(lines), bool)
        if w3c:
            segment_tables.append(segments(file, lines.data, lines.starts, lines.ends, heads))
        headers.append(int(heads.sum()))
        ordinary = np.flatnonzero(~lines.has_special & ~heads)
        special = np.flatnonzero(lines.has_special & ~heads)
        # Lines of printable ASCII are read in place; the rare others are decoded from latin-1.
        table = pa.table(
            {
                "file": pa.array(np.full(len(ordinary), file, dtype=np.int32)),
                "line_number": pa.array(ordinary + 1),
                "raw_line": string_view(lines.buf, lines.starts[ordinary], lines.ends[ordinary]),
            }
        )
        rows = min(_BATCH_ROWS, max(_MIN_BATCH_ROWS, -(-len(ordinary) // _BATCHES)))
        ordinary_batches += table.to_batches(max_chunksize=rows)
        special_tables.append(
            pa.table(
                {
                    "file": pa.array(np.full(len(special), file, dtype=np.int32)),
                    "line_number": pa.array(special + 1),
                    "raw_line": lines.text(special),
                }
            )
        )
    schema = pa.schema(
        [("file", pa.int32()), ("line_number", pa.int64()), ("raw_line", pa.string_view())]
    )
    fallback = pa.table(
        {
            "file": pa.array(range(len(batch)), pa.int32()),
            "day": pa.array(fallback_days, pa.date32()),
        }
    )
    inputs = {
        "input": pa.Table.from_batches(ordinary_batches, schema=schema),
        "special": pa.concat_tables(special_tables),
        "fallback": fallback,
    }
    if w3c:
        inputs["segments"] = pa.concat_tables(segment_tables)
    for suffix, table in inputs.items():
        con.register(f"{name}_{suffix}", table)
    statements = [
        _plain_sql(log_format if definition is None else "none", zone),
        _general_sql(log_format, zone) if definition is None else _definition_sql(definition, zone),
        _PARSED_SQL,
        _REQUESTS_SQL,
        _OUTSIDE_SQL,
        _REJECTED_SQL,
    ]
    first, last = days
    bounds = {
        "__FIRST__": f"DATE '{first}'" if first else "DATE '0001-01-01'",
        "__LAST__": f"DATE '{last}'" if last else "DATE '9999-12-31'",
        "__RANGE__": f"{first or '..'}..{last or ''}",
        "__NAME__": name,
    }
    try:
        for sql in statements:
            for marker, value in bounds.items():
                sql = sql.replace(marker, value)
            con.execute(sql)
    finally:
        for suffix in inputs:
            con.unregister(f"{name}_{suffix}")
    stats = dict.fromkeys(range(len(batch)), (0, 0, None, None, None, None))
    for file, *row in con.execute(
        f"""
        SELECT file, count(ts_utc), count(*) - count(ts_utc), min(ts_utc), max(ts_utc),
               min(day), max(day)
        FROM (SELECT file, ts_utc, day FROM {name}_requests
              UNION ALL SELECT file, NULL, day FROM {name}_rejected)
        GROUP BY file
        """
    ).fetchall():
        stats[file] = tuple(row)
    per_file = tuple((len(lines) - headers[i], *stats[i]) for i, lines in enumerate(batch))
    outside = dict.fromkeys(range(len(batch)), 0)
    outside.update(
        con.execute(f"SELECT file, count(*) FROM {name}_outside GROUP BY file").fetchall()
    )
    return ParsedLog(
        name,
        sum(row[0] for row in per_file),  # the lines that are requests or rejections
        sum(row[1] for row in per_file),
        sum(row[2] for row in per_file),
        log_format if definition is None else definition.name,
        per_file,
        tuple(headers),
        tuple(outside[i] for i in range(len(batch))),
    )


def drop_parsed(con: duckdb.DuckDBPyConnection, parsed: ParsedLog) -> None:
    """Free the temp tables behind a ParsedLog."""
    con.execute(f"DROP VIEW IF EXISTS {parsed.name}_requests")
    con.execute(f"DROP VIEW IF EXISTS {parsed.name}_parsed")
    for suffix in ("rejected", "outside", "plain", "general"):
        con.execute(f"DROP TABLE IF EXISTS {parsed.name}_{suffix}")
