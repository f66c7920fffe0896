"""Log formats: what NASA_LOG_FORMAT may name, one room per kind.

- `auto`, `common`, `combined`, `vhost_combined`: the Common Log Format family, detected per file
  (parse.py, with its fast path);
- a preset name (presets.py: `haproxy`);
- an nginx `log_format` directive or its format text (nginx.py), an Apache `LogFormat` string
  (apache.py), or the path of a file holding either.

resolve() turns the setting into a format name or a LogFormat, or a FormatError that says why,
before anything is read.
"""

from __future__ import annotations

from pathlib import Path

from nasa_autoscale.ingest.formats.apache import compile_apache
from nasa_autoscale.ingest.formats.definition import FormatError, LogFormat
from nasa_autoscale.ingest.formats.nginx import compile_nginx
from nasa_autoscale.ingest.formats.presets import PRESETS

CLF_FAMILY = ("common", "combined", "vhost_combined")

__all__ = ["CLF_FAMILY", "PRESETS", "FormatError", "LogFormat", "resolve"]


def resolve(spec: str) -> str | LogFormat:
    """`auto` or a CLF family name as given; else the LogFormat the setting names or defines."""
    text = spec.strip()
    if text in ("auto", *CLF_FAMILY):
        return text
    if text in PRESETS:
        return PRESETS[text]
    if "$" not in text and "%" not in text:
        path = Path(text).expanduser()
        if path.is_file():
            from nasa_autoscale.configfile import ConfigFileError, read_text

            try:
                return resolve(read_text(path, "NASA_LOG_FORMAT"))
            except ConfigFileError as error:
                raise FormatError(str(error)) from None
        known = ", ".join(["auto", *CLF_FAMILY, *PRESETS])
        raise FormatError(
            f"NASA_LOG_FORMAT={spec!r} is none of {known}, no nginx log_format or Apache "
            "LogFormat, and no file of that name"
        )
    if text.startswith("log_format") or ("$" in text and "%" not in text):
        return compile_nginx(text)
    return compile_apache(text)
