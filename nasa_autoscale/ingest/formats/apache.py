"""An Apache `LogFormat` string compiled to a LogFormat (mod_log_config's directives):

    LogFormat "%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-Agent}i\\" %D" timed

%h %a: client; %t: [time]; %r: request; %s %>s: status; %b %B: bytes; %v %V: virtual host;
%{Referer}i, %{User-Agent}i, %{Host}i: headers; %D: microseconds, %T: seconds taken; every
other directive is kept in `extra` under a name of its own (%l -> ident, %u -> user,
%{X-Forwarded-For}i -> header_x_forwarded_for, ...). As for nginx, a quoted value may hold
quotes: the whole line must match, so the last quoted fields are anchored on its end.
"""

from __future__ import annotations

import re

from nasa_autoscale.ingest.formats.definition import FormatError, LogFormat
from nasa_autoscale.ingest.formats.nginx import _SHAPES, anchored, value_pattern

_DIRECTIVE = re.compile(r"%([<>]?)(?:\{([^}]*)\})?([a-zA-Z%])")
_LETTERS = {
    "h": "host",
    "a": "host",
    "t": "time_clf",
    "r": "request",
    "s": "status",
    "b": "bytes",
    "B": "bytes",
    "v": "vhost",
    "V": "vhost",
    "D": "duration_us",
    "T": "duration_s",
    "l": "ident",
    "u": "user",
    "m": "method",
    "U": "url",
    "q": "query",
    "H": "protocol",
    "p": "port",
    "I": "bytes_received",
    "O": "bytes_sent",
}
_HEADERS = {"referer": "referer", "user-agent": "user_agent", "host": "vhost"}
_STRING = re.compile(r'^\s*(?:LogFormat\s+)?"((?:[^"\\]|\\.)*)"\s*(\S+)?\s*$', re.S)


def compile_apache(text: str) -> LogFormat:
    """A LogFormat from `LogFormat "..." name`, a quoted format string, or the bare string."""
    match = _STRING.match(text)
    if match:
        body, name = match.group(1).replace('\\"', '"'), match.group(2) or "custom"
    else:
        body, name = text.strip().removeprefix("LogFormat").strip(), "custom"
    if "%" not in body:
        raise FormatError(f"Apache LogFormat {text!r}: no % directive")
    pattern, groups, used, pieces = ["^"], [], set(), []
    position, quoted, carried = 0, False, ""  # carried: literal text not yet in a piece
    for found in _DIRECTIVE.finditer(body):
        literal = body[position : found.start()]
        quoted ^= literal.count('"') % 2 == 1
        position = found.end()
        _, argument, letter = found.groups()
        if letter == "%":
            pattern.append(re.escape(literal + "%"))
            carried += literal + "%"
            continue
        pattern.append(re.escape(literal))
        if letter == "i" and argument:
            field = _HEADERS.get(argument.lower(), "header_" + re.sub(r"\W", "_", argument.lower()))
        elif letter == "t" and argument:
            field = "time_" + re.sub(r"\W", "_", argument)  # a strftime-formatted time: extra
        else:
            suffix = re.sub(r"\W", "_", argument or "")
            field = _LETTERS.get(letter, f"{letter}_{suffix}".strip("_"))
        if field in used:
            field = f"{field}_{len(groups)}"
        used.add(field)
        groups.append(field)
        literal, carried = carried + literal, ""
        if field == "time_clf":  # %t writes its brackets
            pattern.append(r"\[(" + _SHAPES["time_clf"] + r")\]")
            pieces.append((literal + "[", field))
            carried = "]"
        else:
            pattern.append(value_pattern(field, quoted))
            pieces.append((literal, field))
    pieces.append((carried + body[position:], ""))
    return LogFormat(
        f"apache {name}",
        anchored(pattern, body[position:]),
        tuple(groups),
        description=f"Apache LogFormat {name}: {body}",
        template=tuple(pieces),
    )
