"""Daily refresh benchmark: what the daily path costs each morning, on the warehouse `make run`
built. Ingest one day (the last of the partitions by default, NASA's Aug 31) from the dagster
CLI, then the daily refresh job (events, features, anomaly flags, forecast_next, the
recommendation) and the daily forecast job for that day (the next day's forecast from the
deployed model, the day's score); no benchmark. Target: <= 60 s wall.

    python -m nasa_autoscale.benchmarks.daily [--day YYYY-MM-DD]     (make bench-daily)

Writes reports/bench_daily.json with the two parts and each step's seconds (from Dagster's log).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from nasa_autoscale.progress import step_seconds
from nasa_autoscale.settings import Settings

TARGET_SECONDS = 60.0
DEFS = ["-m", "nasa_autoscale.definitions"]


def _run(name: str, command: list[str]) -> dict:
    """Run one dagster CLI command; its wall seconds and the seconds of each step."""
    print(f"{name}: {' '.join(command)}", flush=True)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    log = (done.stdout + done.stderr).splitlines()
    if done.returncode != 0:
        tail = "\n".join(log[-30:])
        raise RuntimeError(f"{name} failed (exit {done.returncode}); the end of its log:\n{tail}")
    steps = step_seconds(log)
    print(f"  {wall:.1f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in steps.items()), flush=True)
    return {"wall_seconds": round(wall, 2), "steps": steps}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--day", help="the day to ingest (default: the last partition)")
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if not settings.duckdb_path.exists():
        print(f"no warehouse at {settings.duckdb_path}: run `make run` first", file=sys.stderr)
        return 1
    day = args.day or settings.end_date
    dagster = [sys.executable, "-m", "dagster"]
    partition = json.dumps({"dagster/partition": day})  # the day's partition of ingest_job
    try:
        ingest = _run(
            f"ingest {day}",
            [*dagster, "job", "execute", *DEFS, "-j", "ingest_job", "--tags", partition],
        )
        refresh = _run(
            "daily refresh", [*dagster, "job", "execute", *DEFS, "-j", "daily_refresh_job"]
        )
        scores = _run(
            "next day's forecast and the day's score",
            [*dagster, "job", "execute", *DEFS, "-j", "daily_forecast_job", "--tags", partition],
        )
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 1
    wall = ingest["wall_seconds"] + refresh["wall_seconds"] + scores["wall_seconds"]
    result = {
        "command": "python -m nasa_autoscale.benchmarks.daily",
        "day": day,
        "wall_seconds": round(wall, 2),
        "target_seconds": TARGET_SECONDS,
        "ingest": ingest,
        "refresh": refresh,
        "forecast_and_score": scores,
    }
    out = settings.reports_dir / "bench_daily.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    verdict = "met" if wall <= TARGET_SECONDS else "missed"
    print(f"\none daily refresh: {wall:.1f} s (target {TARGET_SECONDS:.0f} s: {verdict}); {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
