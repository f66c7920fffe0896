"""Readable progress for the dagster CLI: one line per finished step and the assets' own INFO
messages, with the full log kept in a file.

    dagster job execute ... 2>&1 | python -m nasa_autoscale.progress LOGFILE

`make run` pipes through it; `make run LOG=debug` shows Dagster's whole log instead. Failures
are printed in full (the error and its traceback), whatever the level.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

# "<date> <time> +0000 - dagster - LEVEL - <job> - <run id> - [<pid> - ]<step> - <message>"
_EVENT = re.compile(
    r"^\S+ \S+ \S+ - dagster - (?P<level>[A-Z]+) - (?P<job>[^ ]+) - [0-9a-f-]{36} - "
    r"(?:\d+ - )?(?P<step>[^ ]+) - (?P<message>.*)$"
)
_DONE = re.compile(r'^STEP_SUCCESS - Finished execution of step "(?P<step>[^"]+)" in (?P<t>.+)\.$')
_NOISE = (
    "SupersessionWarning",
    "return callback(*args, **kwargs)",
    "Importing plotly failed",
    "cmdstanpy - INFO",
    " INFO mlflow",
    "is neither a file nor a directory",
)


def condense(line: str) -> str | None:
    """The line to show for one line of Dagster's log (None: nothing)."""
    line = re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip("\n"))  # colours off
    event = _EVENT.match(line)
    if event is None:
        return None if any(noise in line for noise in _NOISE) or not line.strip() else line
    level, step, message = event["level"], event["step"], event["message"]
    done = _DONE.match(message)
    if done:
        return f"  done  {done['step']} ({done['t']})"
    if level in ("ERROR", "CRITICAL") or "STEP_FAILURE" in message or "RUN_FAILURE" in message:
        return f"  FAIL  {step}: {message}"
    if level in ("INFO", "WARNING") and not message.startswith(("RUN_", "STEP_", "ASSET_")):
        return f"        {step}: {message}" if step != event["job"] else f"        {message}"
    return None


def step_seconds(lines) -> dict[str, float]:
    """{step: seconds} from the STEP_SUCCESS lines of Dagster's log ("in 1.43s", "in 1m32s",
    "in 226ms")."""
    out = {}
    for line in lines:
        event = _EVENT.match(re.sub(r"\x1b\[[0-9;]*m", "", line.rstrip("\n")))
        done = event and _DONE.match(event["message"])
        if done:
            out[done["step"]] = _seconds(done["t"])
    return out


def _seconds(text: str) -> float:
    parts = re.findall(r"([0-9.]+)(ms|m|s)", text)
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}
    return sum(float(value) * scale[unit] for value, unit in parts)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    log = Path(args[0]) if args else Path(".dagster_home/last_run.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with log.open("w") as full:
        for line in sys.stdin:
            full.write(line)
            full.flush()
            shown = condense(line)
            if shown is not None:
                print(f"[{time.monotonic() - started:6.0f} s] {shown}", flush=True)
    print(f"(the whole log: {log})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
