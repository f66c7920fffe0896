"""JSON-lines access logs: one JSON object per line, its fields found by JSON path (DuckDB's
json_extract_string parses each line once for all paths).

Presets: Caddy's access log (`caddy`, its default JSON encoder). An nginx `log_format` whose text
is a JSON object (`escape=json '{"time":"$time_iso8601","addr":"$remote_addr",...}'`) compiles to
one (nginx.py): each key whose value is a variable is that variable's path.

Time kinds: `epoch` (seconds, UTC), `iso` (ISO 8601 with its offset or Z), `clf`
(dd/Mon/yyyy:HH:MM:SS +hhmm). A line that is not JSON, or lacks a time, a client or a status, is
rejected with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nasa_autoscale.ingest.formats.definition import (
    FormatError,
    clf_time_sql,
    epoch_time_sql,
    iso_time_sql,
)

WAREHOUSE = (
    "host",
    "method",
    "url",
    "protocol",
    "status",
    "bytes",
    "referer",
    "user_agent",
    "vhost",
    "request",
    "duration_s",
    "duration_ms",
)


@dataclass(frozen=True)
class JsonFormat:
    name: str
    time_path: str
    time_kind: str  # epoch, iso or clf
    paths: dict[str, str]  # warehouse field -> JSON path
    extras: dict[str, str] = field(default_factory=dict)  # kept in `extra`: name -> JSON path
    description: str = ""

    def __post_init__(self):
        if self.time_kind not in ("epoch", "iso", "clf"):
            raise FormatError(f"format {self.name}: time kind {self.time_kind!r}")
        for required in ("host", "status"):
            if required not in self.paths:
                raise FormatError(f"format {self.name}: no {required} field")
        unknown = set(self.paths) - set(WAREHOUSE)
        if unknown:
            raise FormatError(f"format {self.name}: unknown fields {sorted(unknown)}")


def _string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def select_sql(fmt: JsonFormat, source: str) -> str:
    """SQL over `source` (file, line_number, raw_line): parse.py's general columns, a reason
    for every line that is not a request."""
    names = ["__time", *fmt.paths, *fmt.extras]
    paths = [fmt.time_path, *fmt.paths.values(), *fmt.extras.values()]
    at = {name: i + 1 for i, name in enumerate(names)}
    value = lambda name: f"nullif(nullif(v[{at[name]}], ''), '-')" if name in at else "NULL"  # noqa: E731
    text = value("__time")
    kinds = {"epoch": epoch_time_sql, "iso": iso_time_sql, "clf": clf_time_sql}
    wall, minutes = kinds[fmt.time_kind](text)
    request_parts = (
        f"regexp_extract({value('request')}, '^([A-Z]+) (\\S+)(?: (HTTP/\\S+))?$', "
        "['method', 'url', 'protocol'])"
    )
    part = lambda name: (  # noqa: E731
        value(name) if name in at else f"nullif(r.{name}, '')" if "request" in at else "NULL"
    )
    extra = "NULL"
    if fmt.extras:
        pairs = ", ".join(f"{_string(n)}, {value(n)}" for n in fmt.extras)
        extra = f"CAST(json_object({pairs}) AS VARCHAR)"
    status = f"TRY_CAST(TRY_CAST({value('status')} AS DOUBLE) AS SMALLINT)"
    duration = "CAST(NULL AS DOUBLE)"
    for name, per_ms in (("duration_s", 1000.0), ("duration_ms", 1.0)):
        if name in at:
            duration = f"TRY_CAST({value(name)} AS DOUBLE) * {per_ms}"
    label = fmt.name.replace("'", "''")
    path_list = "[" + ", ".join(_string(p) for p in paths) + "]"
    return f"""
    WITH valued AS (
        SELECT file, line_number, raw_line, json_valid(raw_line) AS is_json,
            CASE WHEN json_valid(raw_line) THEN json_extract_string(raw_line, {path_list}) END AS v
        FROM {source}
    ), typed AS (
        SELECT *, {wall} AS wall, {minutes} AS offset_minutes, {request_parts} AS r,
            {status} AS code
        FROM valued
    )
    SELECT file, line_number, raw_line,
        wall - INTERVAL (offset_minutes) MINUTE AS ts_utc,
        CAST((offset_minutes // 60) * 100 + offset_minutes % 60 AS SMALLINT) AS tz_offset,
        {value("host")} AS host, {part("method")} AS method, {part("url")} AS url,
        {part("protocol")} AS protocol, code AS status,
        TRY_CAST(TRY_CAST({value("bytes")} AS DOUBLE) AS BIGINT) AS bytes,
        CASE WHEN r.method = '' THEN {value("request")} END AS request,
        {value("referer")} AS referer, {value("user_agent")} AS user_agent,
        {value("vhost")} AS vhost, {extra} AS extra, {duration} AS duration_ms,
        CASE
            WHEN is_json AND wall IS NOT NULL AND code IS NOT NULL AND {value("host")} IS NOT NULL
                THEN NULL
            WHEN trim(raw_line, ' ' || chr(9) || chr(13)) = '' THEN 'blank line'
            WHEN NOT is_json THEN 'not JSON: not {label} log format'
            WHEN wall IS NULL THEN 'no valid time: not {label} log format'
            ELSE 'no status or client: not {label} log format'
        END AS reason
    FROM typed
    """


CADDY = JsonFormat(
    "caddy",
    "$.ts",
    "epoch",
    {
        "host": "$.request.client_ip",
        "method": "$.request.method",
        "url": "$.request.uri",
        "protocol": "$.request.proto",
        "status": "$.status",
        "bytes": "$.size",
        "vhost": "$.request.host",
        "user_agent": '$.request.headers."User-Agent"[0]',
        "referer": '$.request.headers."Referer"[0]',
        "duration_s": "$.duration",
    },
    {"remote_ip": "$.request.remote_ip", "logger": "$.logger"},
    description="Caddy's JSON access log (http.log.access)",
)
