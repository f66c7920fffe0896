"""What following a live log costs: the follower (live/follower.py) polled every INTERVAL
seconds while a log grows at 1x, 100x and 1000x the NASA trace's mean rate (the lines of the
trace's first file by name, appended poll by poll), its CPU seconds per hour of log and per
poll, and the cost of a poll with nothing new.

    make bench-follower            # -> reports/bench_follower.json

The lines are the NASA trace's (the replica without the real logs), so the rates are the
trace's mean rate times the factor; a poll reads only what was appended since the last one.
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

from nasa_autoscale.live.follower import Follower
from nasa_autoscale.settings import Settings

NASA_LINES, NASA_SECONDS = 3_461_612, 62 * 86400  # the trace: its lines over its 62 days
FACTORS = (1, 100, 1000)


def measure(lines: list[bytes], factor: int, interval: float, polls: int) -> dict:
    """Append `factor` x the trace's mean rate for `polls` polls, polling after each."""
    per_poll = max(1, round(NASA_LINES / NASA_SECONDS * factor * interval))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        folder.mkdir()
        follower = Follower(folder, Path(tmp) / "live.duckdb", timezone="-0400")
        log, position, taken, written = folder / "access.log", 0, 0, 0
        cpu = time.process_time()
        for _ in range(polls):
            chunk = lines[position : position + per_poll]  # the trace's next lines, if any
            with open(log, "ab") as stream:
                stream.write(b"".join(chunk))
            position += per_poll
            written += len(chunk)
            taken += follower.poll().lines
        busy = time.process_time() - cpu
        idle = time.process_time()
        for _ in range(10):
            follower.poll()
        idle = (time.process_time() - idle) / 10
    log_seconds = polls * interval
    return {
        "factor": factor,
        "lines_per_second": per_poll / interval,
        "lines_taken": taken,
        "lines_written": written,
        "cpu_s_per_hour_of_log": round(busy / log_seconds * 3600, 2),
        "share_of_a_core": round(busy / log_seconds, 4),
        "cpu_ms_per_poll": round(busy / polls * 1000, 1),
        "cpu_ms_idle_poll": round(idle * 1000, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interval", type=float, default=5.0, help="seconds of log per poll")
    parser.add_argument("--polls", type=int, default=60, help="polls per rate")
    args = parser.parse_args(argv)
    from nasa_autoscale.ingest.download import locate_logs

    settings = Settings.from_env()
    source = locate_logs(settings, fetch=True)
    first = min(source.files, key=lambda p: p.name)
    lines = gzip.decompress(first.read_bytes()).splitlines(keepends=True)
    print(f"lines: {first.name} ({source.data_source}), {len(lines):,}", flush=True)
    results = []
    for factor in FACTORS:
        result = measure(lines, factor, args.interval, args.polls)
        results.append(result)
        print(
            f"{factor:>5}x ({result['lines_per_second']:,.0f} lines/s): "
            f"{result['share_of_a_core']:.3%} of a core, {result['cpu_s_per_hour_of_log']} CPU s "
            f"per hour of log, {result['cpu_ms_per_poll']} ms a poll "
            f"({result['cpu_ms_idle_poll']} ms idle); lines taken {result['lines_taken']:,} "
            f"of {result['lines_written']:,}",
            flush=True,
        )
    out = settings.reports_dir / "bench_follower.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"interval_s": args.interval, "rates": results}, indent=2))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
