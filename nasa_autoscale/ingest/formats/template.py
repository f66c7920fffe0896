"""The fast path of a format written as a template: literal text and fields, as an nginx
`log_format` or an Apache `LogFormat` is (presets give theirs in the same `$field` syntax).

Nearly every line of a log has a plain shape: quoted values without quotes or backslashes
inside, unquoted values without spaces. Such a line is recognised by one DFA match (no capture
groups) and cut with string_split, as the Common Log Format's plain lines are (parse.py): on
`"` into segments (a quoted value is a segment of its own), an unquoted segment on ' ' into
tokens, a token with several fields (`$host:$port`, HAProxy's `$tq/$tw/$tc/$tr/$tt`) on the one
character between them, its first field taking what is left (an IPv6 client keeps its colons).
Every other line takes the format's regex, which reads a plain line the same way (a test checks
it on every preset). A template the cut cannot follow (two fields in one quoted value, two
separators in one token, fields with nothing between them) has no fast path: its lines all take
the regex.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Pieces = tuple[tuple[str, str], ...]  # (literal text before, field); the last: (tail, "")

_FIELD = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
# how a field's value looks outside quotes on a plain line (default: not empty, no space,
# quote or backslash)
PLAIN_SHAPES = {
    "time_clf": r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}",  # its one space: 2 tokens
    "time_iso": r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:?\d\d|Z)?",
    "time_local_ms": r"\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3}",
    "msec": r"\d+(\.\d+)?",
    "status": r"\d{3}",
    "bytes": r"\d+|-",
}
_SPACES = {"time_clf": 1}
# numbers by their name's ending (a preset's regex may allow more: such lines take the regex)
_SUFFIX_SHAPES = {
    "_port": r"\d+",
    "_bytes": r"\d+",
    "_ms": r"\d+",
    "_us": r"\d+",
    "_s": r"\d+(\.\d+)?",
}
REST = "rest"  # a last field so named takes the rest of the line, whatever it holds
_QUOTED = r'[^"\\]*'


def parse_template(text: str) -> Pieces:
    """Pieces of a `$field`-style template (`${field}` where a letter follows); `$_` is a value
    that is skipped."""
    pieces, position = [], 0
    for found in _FIELD.finditer(text):
        pieces.append((text[position : found.start()], found.group(1) or found.group(2)))
        position = found.end()
    pieces.append((text[position:], ""))
    return tuple(pieces)


@dataclass(frozen=True)
class FastPath:
    pattern: str  # RE2, whole line, no groups
    fields: dict[str, str]  # field -> SQL over q (the '"' segments) and t<k> (tokens of q[k])
    token_lists: dict[int, str]  # k -> SQL of segment k's tokens


def _unquoted_shape(field: str, separator: str, shapes: dict[str, str]) -> str:
    shape = shapes.get(field) or PLAIN_SHAPES.get(field)
    suffix = next((s for s in _SUFFIX_SHAPES if field.endswith(s)), None)
    shape = shape or (_SUFFIX_SHAPES[suffix] if suffix else None)
    if shape is None:
        return f'[^\\s"\\\\{re.escape(separator)}]+'
    return f"(?:{shape})"


def fast_path(pieces: Pieces, shapes: dict[str, str] | None = None) -> FastPath | None:
    """The DFA pattern and the split expressions of a template's plain lines, or None.
    `shapes`: a field's plain values where the format's regex is stricter than the default."""
    shapes = shapes or {}
    pattern, quoted = ["^"], False
    segment, token = 1, 1  # 1-based: q[segment], t<segment>[token]
    fields: dict[str, str] = {}
    token_lists: dict[int, str] = {}
    run: list[tuple[str, str]] = []  # fields sharing the current token, with their prefix
    run_prefix = ""

    def close_run(suffix: str) -> bool:
        """Assign the fields of the token just ended; False when the cut cannot follow."""
        nonlocal run, run_prefix
        if not run:
            return True
        separators = {sep for sep, _ in run[1:]}
        if len(separators) > 1 or any(len(sep) != 1 for sep in separators):
            return False
        width = _SPACES.get(run[0][1], 0) if len(run) == 1 else 0
        if width and len(run) > 1:
            return False
        tokens = f"t{segment}"
        token_lists[segment] = f"string_split(q[{segment}], ' ')"
        text = (
            f"array_to_string({tokens}[{token - width}:{token}], ' ')"
            if width
            else f"{tokens}[{token}]"
        )
        core = text
        if run_prefix or suffix:
            core = f"{text}[{len(run_prefix) + 1}:{-len(suffix) - 1 if suffix else ''}]"
        names = [name for _, name in run]
        if len(names) == 1:
            if names[0] != "_":
                fields[names[0]] = core
        else:
            sep = separators.pop().replace("'", "''")
            parts = f"string_split({core}, '{sep}')"
            for i, name in enumerate(names[1:], start=1):
                if name != "_":
                    fields[name] = f"{parts}[{i - len(names)}]"
            if names[0] != "_":
                fields[names[0]] = f"array_to_string({parts}[:{-len(names)}], '{sep}')"
        run, run_prefix = [], ""
        return True

    for index, (literal, field) in enumerate(pieces):
        # walk the literal: quotes change segment, spaces end tokens
        pending = ""  # literal characters since the last token boundary
        for char in literal:
            if char in ' "':
                if not close_run(pending):
                    return None
                pending = ""
                if char == '"':
                    quoted, segment, token = not quoted, segment + 1, 1
                else:
                    token += 1
            else:
                pending += char
        pattern.append(re.escape(literal).replace("\\ ", " "))
        if not field:
            if not close_run(pending):
                return None
            continue
        following = pieces[index + 1][0] if index + 1 < len(pieces) else ""
        if quoted:
            if pending or not following.startswith('"'):
                return None  # a quoted value must be its whole segment
            if field != "_":
                fields[field] = f"q[{segment}]"
            pattern.append(_QUOTED)
            continue
        if run and not pending:
            return None  # two fields with nothing between them
        # a token's later fields are cut from its end: they may not hold the separator
        if field == REST and index == len(pieces) - 2 and not pieces[-1][0] and not pending:
            if run:
                return None
            rest = f"array_to_string(t{segment}[{token}:], ' ')"
            more = f"'\"' || array_to_string(q[{segment + 1}:], '\"')"
            fields[field] = f"{rest} || CASE WHEN len(q) > {segment} THEN {more} ELSE '' END"
            # the t-list of this segment is needed even when no other field sits in it
            token_lists[segment] = f"string_split(q[{segment}], ' ')"
            return FastPath("".join(pattern) + ".*$", fields, token_lists)
        pattern.append(_unquoted_shape(field, pending if run else "", shapes))
        if run:
            run.append((pending, field))
        else:
            run, run_prefix = [("", field)], pending
        token += _SPACES.get(field, 0)
    if quoted:
        return None
    return FastPath("".join(pattern) + "$", fields, token_lists)
