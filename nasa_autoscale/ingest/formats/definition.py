"""A log format as data: one RE2 pattern whose named groups are the line's fields, and the SQL
that turns its matches into the `requests` contract (parse.py runs it, vectorised in DuckDB).

Group names the warehouse knows (every other group goes to `extra`, a JSON object):

    host            the client address
    vhost           the virtual host / Host header
    time_clf        dd/Mon/yyyy:HH:MM:SS +hhmm
    time_iso        yyyy-mm-ddTHH:MM:SS[.fff](+hh:mm|Z)
    time_local_ms   dd/Mon/yyyy:HH:MM:SS.mmm, no offset: in the site's zone (HAProxy)
    msec            seconds since the epoch (UTC)
    usec            microseconds since the epoch (UTC)
    date, time      yyyy-mm-dd and HH:MM:SS, in UTC
    request         "METHOD URL PROTOCOL"               method, url, query, protocol (when apart)
    status          three digits                        bytes       digits or '-'
    referer, user_agent
    duration_s, duration_ms, duration_us                 the time taken -> duration_ms

A line that the pattern matches with a time and a status is a request; any other line is
rejected with a reason that names the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from nasa_autoscale.ingest.formats.template import Pieces, fast_path

KNOWN = {
    "host",
    "vhost",
    "time_clf",
    "time_iso",
    "time_local_ms",
    "msec",
    "usec",
    "date",
    "time",
    "request",
    "method",
    "url",
    "query",
    "protocol",
    "status",
    "bytes",
    "referer",
    "user_agent",
    "duration_s",
    "duration_ms",
    "duration_us",
}
DURATION_MS = {"duration_s": 1000.0, "duration_ms": 1.0, "duration_us": 0.001}
TIME_FIELDS = (
    {"time_clf"},
    {"time_iso"},
    {"time_local_ms"},
    {"msec"},
    {"usec"},
    {"date", "time"},
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class FormatError(ValueError):
    """A format definition that cannot read requests; the message names what is missing."""


@dataclass(frozen=True)
class LogFormat:
    name: str
    pattern: str  # RE2, matched against the whole line
    groups: tuple[str, ...]  # one name per capture group, in order
    description: str = ""
    unescape: str = "default"  # nginx escape=: default (\xHH) or json (\", \\, \uXXXX); csv ("")
    header_prefix: bytes | None = None  # lines starting so are headers, neither kind of line
    template: Pieces | None = None  # the same fields as a template: its plain lines' fast path
    fast_prefix: str | None = None  # RE2: a leading text the fast path drops (a syslog prefix)
    origin_in_url: bool = False  # the request's URL starts scheme://host[:port] (a balancer)
    plain_shapes: tuple[tuple[str, str], ...] = ()  # (field, RE2) where the pattern is stricter
    extras: tuple[str, ...] = field(default=())

    def __post_init__(self):
        names = [g for g in self.groups if g]
        for group in names:
            if not _NAME.fullmatch(group):
                raise FormatError(f"format {self.name}: field name {group!r} is not a-z0-9_")
        if not any(required <= set(names) for required in TIME_FIELDS):
            raise FormatError(
                f"format {self.name}: no time field (one of $time_local, $time_iso8601, $msec, "
                "%t, or a date and a time): a request needs a time"
            )
        if "status" not in names:
            raise FormatError(f"format {self.name}: no status field ($status, %>s, %s)")
        if not ({"host"} & set(names)):
            raise FormatError(f"format {self.name}: no client address ($remote_addr, %h, %a)")
        try:
            compiled = re.compile(self.pattern)
        except re.error as error:
            raise FormatError(f"format {self.name}: bad pattern: {error}") from None
        if compiled.groups != len(self.groups):
            raise FormatError(
                f"format {self.name}: {compiled.groups} groups in the pattern, "
                f"{len(self.groups)} names"
            )
        if self.template:
            unknown = {f for _, f in self.template if f and f != "_"} - set(names)
            if unknown:
                raise FormatError(
                    f"format {self.name}: template fields {sorted(unknown)} are not in the pattern"
                )
        object.__setattr__(self, "extras", tuple(dict.fromkeys(g for g in names if g not in KNOWN)))

    @property
    def fields(self) -> set[str]:
        return {g for g in self.groups if g}


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _unescaped(expr: str, unescape: str) -> str:
    """SQL: a quoted field's text with its escapes undone, '-' and '' as NULL."""
    if unescape == "csv":  # a quoted CSV value doubles its quotes
        return f"nullif(nullif(replace({expr}, '\"\"', '\"'), '-'), '')"
    if unescape == "json":
        undone = f"replace(replace({expr}, '\\\"', '\"'), '\\\\\\\\', '\\\\')"
    else:
        undone = f"replace(replace({expr}, '\\\"', '\"'), '\\x22', '\"')"
    # nearly every value has no backslash: only those are searched for escapes
    expr = f"CASE WHEN contains({expr}, '\\') THEN {undone} ELSE {expr} END"
    return f"nullif(nullif({expr}, '-'), '')"


def offset_minutes_sql(hhmm: str) -> str:
    """SQL: minutes east of UTC from a +-hhmm SMALLINT expression (e.g. -400 -> -240)."""
    return f"(sign({hhmm}) * ((abs({hhmm}) // 100) * 60 + abs({hhmm}) % 100))"


def clf_time_sql(text: str) -> tuple[str, str]:
    """(SQL wall clock, its offset in minutes) of a dd/Mon/yyyy:HH:MM:SS +hhmm expression."""
    wall = f"try_strptime({text}[1:20], '%d/%b/%Y:%H:%M:%S')"
    hhmm = f"TRY_CAST(replace({text}[22:26], '+', '') AS SMALLINT)"
    minutes = offset_minutes_sql(hhmm)
    shape = "^\\d\\d/[A-Za-z]{3}/\\d{4}:\\d\\d:\\d\\d:\\d\\d [+-]\\d{4}$"
    return f"CASE WHEN regexp_matches({text}, '{shape}') THEN {wall} END", minutes


def iso_time_sql(text: str) -> tuple[str, str]:
    """(SQL wall clock, its offset in minutes) of an ISO 8601 expression: fractional seconds
    kept, offset +hh:mm, +hhmm or Z (none: UTC). No regex: a cast reads the wall clock (it
    ignores the offset) and the offset is cut from the end."""
    wall = f"CASE WHEN length({text}) >= 19 THEN TRY_CAST({text} AS TIMESTAMP) END"

    def signed(position: int, hours: str, minutes: str) -> str:
        return (
            f"(CASE WHEN {text}[{position}] = '-' THEN -1 ELSE 1 END) * "
            f"(TRY_CAST({text}[{hours}] AS INTEGER) * 60 + TRY_CAST({text}[{minutes}] AS INTEGER))"
        )

    long = f"length({text}) > 19"
    minutes = (
        f"CASE WHEN {long} AND {text}[-6] IN ('+', '-') AND {text}[-3] = ':' "
        f"THEN {signed(-6, '-5:-4', '-2:')} "
        f"WHEN {long} AND {text}[-5] IN ('+', '-') THEN {signed(-5, '-4:-3', '-2:')} ELSE 0 END"
    )
    return wall, minutes


def epoch_time_sql(text: str) -> tuple[str, str]:
    """(SQL naive UTC instant, 0) of seconds since the epoch."""
    return f"timezone('UTC', to_timestamp(TRY_CAST({text} AS DOUBLE)))", "0"


def _time_sql(fmt: LogFormat, zone) -> tuple[str, str]:
    """(SQL wall clock at the line's own offset as naive TIMESTAMP, its offset in minutes)."""
    fields = fmt.fields
    if "time_local_ms" in fields:
        wall = "try_strptime(f.time_local_ms, '%d/%b/%Y:%H:%M:%S.%g')"
        minutes = f"datediff('minute', {zone.utc_sql(wall)}, {wall})"
        return wall, minutes
    if "time_clf" in fields:
        return clf_time_sql("f.time_clf")
    if "time_iso" in fields:
        return iso_time_sql("f.time_iso")
    if "msec" in fields:
        return epoch_time_sql("f.msec")
    if "usec" in fields:
        return epoch_time_sql("(TRY_CAST(f.usec AS DOUBLE) / 1e6)")
    wall = "try_strptime(f.date || ' ' || f.time[1:8], '%Y-%m-%d %H:%M:%S')"
    return wall, "0"


def _matched_sql(fmt: LogFormat, source: str, names: list[str], struct: str) -> str:
    """SQL CTE `matched` (file, line_number, raw_line, f: the fields as a struct of strings):
    plain lines cut by the template's fast path, the others (or all) by the regex."""
    general = f"regexp_extract(raw_line, {_sql_string(fmt.pattern)}, {struct})"
    fast = fast_path(fmt.template, dict(fmt.plain_shapes)) if fmt.template else None
    if fast is None:
        return f"matched AS (SELECT file, line_number, raw_line, {general} AS f FROM {source})"
    line = "raw_line"
    if fmt.fast_prefix:
        prefix = _sql_string(fmt.fast_prefix)  # tested first: most lines have none to copy
        line = f"CASE WHEN regexp_matches(raw_line, {prefix}) THEN "
        line += f"regexp_replace(raw_line, {prefix}, '') ELSE raw_line END"
    cuts = "".join(f", {sql} AS t{k}" for k, sql in sorted(fast.token_lists.items()))
    packed = ", ".join(f"{_sql_string(n)}: {fast.fields.get(n, chr(39) * 2)}" for n in names)
    # one pass (a CTE read twice is materialized): the CASE cuts only the plain lines and runs
    # the regex only on the others
    return f"""flagged AS (
        SELECT file, line_number, raw_line, {line} AS line,
            regexp_matches(line, {_sql_string(fast.pattern)}) AS plain
        FROM {source}
    ), cut AS (
        SELECT file, line_number, raw_line, plain, string_split(line, '"') AS q{cuts}
        FROM flagged
    ), matched AS (
        SELECT file, line_number, raw_line,
            CASE WHEN plain THEN {{{packed}}} ELSE {general} END AS f
        FROM cut
    )"""


def select_sql(fmt: LogFormat, source: str, zone) -> str:
    """SQL over `source` (file, line_number, raw_line): parse.py's general table columns, with a
    reason for every line that is not a request."""
    names = [g or f"_unnamed{i}" for i, g in enumerate(fmt.groups)]
    struct = "[" + ", ".join(_sql_string(n) for n in names) + "]"
    fields = fmt.fields
    wall, minutes = _time_sql(fmt, zone)
    get = lambda name: f"nullif(f.{name}, '')" if name in fields else "NULL"  # noqa: E731
    if "request" in fields:
        # METHOD URL[ HTTP/x]: one DFA match, then cut on its one or two spaces
        shape = "^[A-Z]+ \\S+( HTTP/\\S+)?$"
        request = (
            f"CASE WHEN regexp_matches(f.request, '{shape}') THEN string_split(f.request, ' ') END"
        )
        method, url, protocol = "r[1]", "r[2]", "r[3]"
        raw_request = "CASE WHEN r IS NULL THEN nullif(f.request, '') END"
    else:
        request = "NULL"
        method, url, protocol = get("method"), get("url"), get("protocol")
        raw_request = "NULL"
    vhost = f"nullif({get('vhost')}, '-')"
    if fmt.origin_in_url:  # "GET https://host:443/path": the path is the url, the host a vhost
        origin = "'^[A-Za-z][A-Za-z0-9+.-]*://([^/:]*)(:[0-9]+)?'"
        vhost = f"coalesce({vhost}, nullif(regexp_extract({url}, {origin}, 1), ''))"
        path = f"coalesce(nullif(regexp_replace({url}, {origin}, ''), ''), '/')"
        url = f"CASE WHEN contains({url}, '://') THEN {path} ELSE {url} END"
    if "query" in fields:
        url = f"CASE WHEN nullif(f.query, '-') IS NULL THEN {url} ELSE {url} || '?' || f.query END"
    extra = "NULL"
    if fmt.extras:
        pairs = ", ".join(f"{_sql_string(n)}, nullif(f.{n}, '')" for n in fmt.extras)
        extra = f"CAST(json_object({pairs}) AS VARCHAR)"
    status = "TRY_CAST(f.status AS SMALLINT)"
    label = fmt.name.replace("'", "''")
    durations = [f"TRY_CAST(f.{g} AS DOUBLE) * {k}" for g, k in DURATION_MS.items() if g in fields]
    duration = durations[0] if durations else "CAST(NULL AS DOUBLE)"
    return f"""
    WITH {_matched_sql(fmt, source, names, struct)}, typed AS (
        SELECT *, CASE WHEN f.status <> '' THEN {wall} END AS wall, {minutes} AS offset_minutes,
            {request} AS r
        FROM matched
    )
    SELECT file, line_number, raw_line,
        wall - INTERVAL (offset_minutes) MINUTE AS ts_utc,
        CAST((offset_minutes // 60) * 100 + offset_minutes % 60 AS SMALLINT) AS tz_offset,
        nullif(f.host, '') AS host, {method} AS method, {url} AS url, {protocol} AS protocol,
        {status} AS status,
        TRY_CAST(nullif(nullif({get("bytes")}, '-'), '') AS BIGINT) AS bytes,
        {raw_request} AS request,
        {_unescaped(get("referer"), fmt.unescape) if "referer" in fields else "NULL"} AS referer,
        {_unescaped(get("user_agent"), fmt.unescape) if "user_agent" in fields else "NULL"}
            AS user_agent,
        {vhost} AS vhost, {extra} AS extra, {duration} AS duration_ms,
        CASE
            WHEN f.host <> '' AND wall IS NOT NULL AND {status} IS NOT NULL THEN NULL
            WHEN trim(raw_line, ' ' || chr(9) || chr(13)) = '' THEN 'blank line'
            WHEN f.host <> '' AND wall IS NULL THEN 'invalid timestamp: not {label} log format'
            ELSE 'not {label} log format'
        END AS reason
    FROM typed
    """
