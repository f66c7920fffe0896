"""An nginx `log_format` directive, as written in nginx.conf, compiled to a LogFormat:

    log_format main [escape=default|json|none] '$remote_addr - $remote_user [$time_local] '
                                               '"$request" $status $body_bytes_sent ...';

Each `$variable` becomes a group; literal text must appear as written. Inside double quotes a
value may hold anything, quotes included (escape=none, or old logs): it is read lazily up to the
text that must follow it, and the whole line must match, so the last quoted fields are anchored
on the line's end. Variables the warehouse has no column for are kept in `extra`.
"""

from __future__ import annotations

import re

from nasa_autoscale.ingest.formats.definition import FormatError, LogFormat

# nginx variable -> warehouse field (None: kept in extra under its own name)
FIELDS = {
    "remote_addr": "host",
    "binary_remote_addr": "host",
    "http_x_forwarded_for": None,
    "time_local": "time_clf",
    "time_iso8601": "time_iso",
    "msec": "msec",
    "request": "request",
    "request_method": "method",
    "request_uri": "url",
    "uri": "url",
    "args": "query",
    "query_string": "query",
    "server_protocol": "protocol",
    "status": "status",
    "body_bytes_sent": "bytes",
    "http_referer": "referer",
    "http_user_agent": "user_agent",
    "host": "vhost",
    "server_name": "vhost",
    "http_host": "vhost",
    "request_time": "duration_s",
}
# what a variable's value looks like outside quotes
_SHAPES = {
    "time_clf": r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",
    "time_iso": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?",
    "msec": r"\d+(?:\.\d+)?",
    "status": r"\d{3}",
    "bytes": r"\d+|-",
}
_DIRECTIVE = re.compile(r"^\s*log_format\s+(\S+)\s+((?:escape=\S+\s+)?)(.*?);?\s*$", re.S)
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def value_pattern(field: str, quoted: bool) -> str:
    """A field's group: inside quotes anything, read lazily up to what must follow (so raw
    quotes are kept); outside, the shape of its values."""
    return "(.*?)" if quoted else f"({_SHAPES.get(field, r'[^ ]*')})"


def anchored(parts: list[str], tail: str) -> str:
    """The whole-line pattern from its parts and the literal text after the last field."""
    return ("".join(parts) + re.escape(tail) + r"\s*$").replace("\\ ", " ")


def _strings(text: str) -> str:
    """The format's text: nginx's quoted pieces joined (or the text as given, unquoted)."""
    pieces = re.findall(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"", text)
    if not pieces:
        return text.strip()
    return "".join(single or double for single, double in pieces)


def compile_nginx(directive: str) -> LogFormat:
    """A LogFormat from `log_format name [escape=...] '...' '...';` (or the bare format text)."""
    match = _DIRECTIVE.match(directive)
    if match:
        name, escape, body = match.group(1), match.group(2).strip(), match.group(3)
        escape = escape.removeprefix("escape=") or "default"
        if escape not in ("default", "json", "none"):
            raise FormatError(
                f"nginx log_format {name}: escape={escape} is not default, json or none"
            )
        text = _strings(body)
    else:
        name, escape, text = "custom", "default", _strings(directive)
    if not text:
        raise FormatError("nginx log_format: no format text")
    if text.lstrip().startswith("{"):
        return _compile_json(name, text)
    pattern, groups, used, pieces = ["^"], [], set(), []
    position, quoted = 0, False
    for found in _VARIABLE.finditer(text):
        literal = text[position : found.start()]
        quoted ^= literal.count('"') % 2 == 1
        pattern.append(re.escape(literal))
        variable = found.group(1) or found.group(2)
        field = FIELDS.get(variable, variable) or variable
        if field in used:  # a second variable for one field: kept under its own name
            field = variable if variable not in used else f"{variable}_{len(groups)}"
        used.add(field)
        groups.append(field)
        pieces.append((literal, field))
        pattern.append(value_pattern(field, quoted))
        position = found.end()
    pieces.append((text[position:], ""))
    return LogFormat(
        f"nginx {name}",
        anchored(pattern, text[position:]),
        tuple(groups),
        description=f"nginx log_format {name}: {text}",
        unescape="json" if escape == "json" else "default",
        template=tuple(pieces),
    )


_TIME_KINDS = {"time_iso": "iso", "time_clf": "clf", "msec": "epoch"}


def _compile_json(name: str, text: str):
    """A JSON log_format (`'{"time":"$time_iso8601","status":$status,...}'`): each key whose
    value is a variable is that variable's JSON path."""
    import json

    from nasa_autoscale.ingest.formats.jsonlines import WAREHOUSE, JsonFormat

    quoted = re.sub(r"(:\s*)(\$\{?\w+\}?)(\s*[,}])", r'\1"\2"\3', text)
    try:
        document = json.loads(quoted)
    except json.JSONDecodeError as error:
        raise FormatError(f"nginx log_format {name}: its JSON does not parse: {error}") from None
    paths, extras, time = {}, {}, None

    def walk(node, path):
        nonlocal time
        for key, value in node.items():
            here = f'{path}."{key}"'
            if isinstance(value, dict):
                walk(value, here)
                continue
            found = _VARIABLE.fullmatch(str(value).strip())
            if not found:
                continue
            variable = found.group(1) or found.group(2)
            field = FIELDS.get(variable, variable) or variable
            if field in _TIME_KINDS and time is None:
                time = (here, _TIME_KINDS[field])
            elif field in WAREHOUSE and field not in paths:
                paths[field] = here
            else:
                extras[variable if field in paths else field] = here

    walk(document, "$")
    if time is None:
        raise FormatError(
            f"nginx log_format {name}: no time field ($time_iso8601, $time_local or $msec)"
        )
    return JsonFormat(
        f"nginx {name}", time[0], time[1], paths, extras, description=f"nginx JSON {name}"
    )
