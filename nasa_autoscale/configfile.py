"""Reading a user's configuration file (fleets, sites, a log format) so that whatever is wrong
with it is an error naming the file, never a traceback: unreadable, not UTF-8, not TOML, nested
past reason, or a value of the wrong shape.

Bounds shared by every setting and file live here too, so that the environment's settings and
the files' fields are held to the same limits.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import tomllib
from pathlib import Path

# The bounds every setting is held to (issue: settings without upper bounds).
MAX_SECONDS = 7 * 24 * 3600  # any duration: a week
MAX_SERVERS = 10**6
MAX_RATE_PER_SECOND = 1e9  # requests per second one server (or a whole site) can serve
MAX_PRICE_PER_HOUR = 1e6
FIRST_DATE, LAST_DATE = dt.date(1990, 1, 1), dt.date(2100, 12, 31)  # any date a setting names
MAX_NESTING = 32  # brackets or braces deep: a config file is shallow
MAX_CONFIG_BYTES = 4 << 20  # a config file is small


class ConfigFileError(ValueError):
    """A configuration file that cannot be read; the message names the file."""


def read_text(path: Path, setting: str) -> str:
    """A config file's text: an error naming `setting` and the file when it cannot be read,
    is too large or is not UTF-8."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ConfigFileError(f"{setting}={path}: cannot read it ({error.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigFileError(
            f"{path}: {len(data):,} bytes is too large for a configuration file "
            f"(at most {MAX_CONFIG_BYTES:,})"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigFileError(
            f"{path}: not UTF-8 text (byte {error.start}: {data[error.start : error.start + 1]!r})"
        ) from None


def _nesting(text: str) -> int:
    """How deep brackets and braces go, strings ignored only roughly (over-counting is safe)."""
    depth = deepest = 0
    for char in text:
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def read_toml(path: Path, setting: str) -> dict:
    """A TOML config file as a dict; ConfigFileError naming the file for anything unreadable."""
    text = read_text(path, setting)
    if _nesting(text) > MAX_NESTING:
        raise ConfigFileError(f"{path}: nested more than {MAX_NESTING} levels deep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(f"{path}: not valid TOML ({error})") from None
    except RecursionError:  # pragma: no cover - the nesting bound comes first
        raise ConfigFileError(f"{path}: nested too deep") from None


def tables(document: dict, key: str, path: Path) -> list[dict]:
    """The array of tables `[[key]]` of a document: each one a table, at least one."""
    entries = document.get(key)
    if not isinstance(entries, list) or not entries:
        raise ConfigFileError(f"{path}: no [[{key}]] tables")
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigFileError(
                f"{path}: {key} {i} must be a [[{key}]] table, not {type(entry).__name__}"
            )
    return entries


def finite_number(value, field: str, low: float, high: float, integer: bool = False):
    """`value` as checked: a (whole) number, finite, within low..high; ValueError naming field."""
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"{field} must be a {'whole ' if integer else ''}number, not {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{field} must be within {low:g}..{high:g}, got {value!r}")
    return value


def checked_date(value: str, field: str) -> str:
    """An ISO date within FIRST_DATE..LAST_DATE, as YYYY-MM-DD; ValueError naming field."""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{field} {value!r} is not a date (YYYY-MM-DD)") from None
    if not FIRST_DATE <= day <= LAST_DATE:
        raise ValueError(f"{field} {value} is outside {FIRST_DATE}..{LAST_DATE}")
    return day.isoformat()


def matches(pattern: str, value: str) -> bool:
    """The whole of `value` matches `pattern` (a trailing newline does not slip through, as it
    does past `$`)."""
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None
