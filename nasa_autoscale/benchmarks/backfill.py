"""Backfill benchmark: the full ingest backfill (every day of the partitions) as runs of a week
each, launched by the dagster CLI with 1 and then 2 runs at a time, into fresh warehouses and
Dagster instances that use the project's dagster.yaml (one writer at a time through the pool).

    python -m nasa_autoscale.benchmarks.backfill     (make bench-backfill)

Also times the one-run backfill (`make ingest`'s way) for reference. Writes
reports/bench_backfill.json. Each configuration checks its result: no duplicate line, every day
in the ledger.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.download import locate_logs
from nasa_autoscale.settings import PROJECT_ROOT, Settings
from nasa_autoscale.warehouse import SCHEMA

SELECTION = "requests,rejected_lines,traffic_1m,traffic_5m,traffic_15m"


def chunks(first: dt.date, last: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    out, start = [], first
    while start <= last:
        end = min(last, start + dt.timedelta(days=days - 1))
        out.append((start, end))
        start = end + dt.timedelta(days=1)
    return out


def run_backfill(raw_dir: Path, ranges, workers: int, workdir: Path, lake: bool = False) -> dict:
    home = workdir / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    warehouse = workdir / "wh.duckdb"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "NASA_RAW_DIR": str(raw_dir),
        "NASA_DUCKDB_PATH": str(warehouse),
        "NASA_LAKE": str(workdir / "lake") if lake else "",
    }
    # create the instance's storage once: two first runs at once would race to create its tables
    subprocess.run(
        [sys.executable, "-m", "dagster", "instance", "migrate"],
        env=env,
        capture_output=True,
        check=True,
    )

    def one(span):
        first, last = span
        command = [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "nasa_autoscale.definitions",
            "--select",
            SELECTION,
            "--partition-range",
            f"{first}...{last}",
        ]
        done = subprocess.run(command, env=env, cwd=PROJECT_ROOT, capture_output=True)
        if done.returncode:
            raise RuntimeError(f"run {first}..{last} failed:\n{done.stderr.decode()[-2000:]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(one, ranges))
    wall = time.perf_counter() - started
    con = duckdb.connect(str(warehouse), read_only=True)
    total, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT (source_file, line_number)) FROM {SCHEMA}.requests"
    ).fetchall()[0]
    days = con.execute(f"SELECT count(DISTINCT day) FROM {SCHEMA}.ingest_ledger").fetchall()[0][0]
    con.close()
    return {
        "storage": "lake" if lake else "duckdb",
        "workers": workers,
        "runs": len(ranges),
        "wall_seconds": round(wall, 1),
        "requests": total,
        "duplicates": total - distinct,
        "days": days,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days-per-run", type=int, default=7)
    parser.add_argument(
        "--storage",
        choices=["lake", "duckdb", "both"],
        default="both",
        help="where requests live: a lake (NASA_LAKE), the DuckDB file, or each in turn",
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    source = locate_logs(settings, fetch=False)
    raw_dir = source.files[0].parent
    first = dt.date.fromisoformat(settings.start_date)
    last = dt.date.fromisoformat(settings.end_date)
    ranges = chunks(first, last, args.days_per_run)
    storages = ["duckdb", "lake"] if args.storage == "both" else [args.storage]
    results, speedups = [], {}
    with tempfile.TemporaryDirectory(prefix="bench_backfill_") as tmp:
        for storage in storages:
            lake = storage == "lake"
            for label, spans, workers in (
                ("one run", [(first, last)], 1),
                (f"{len(ranges)} runs", ranges, 1),
                (f"{len(ranges)} runs", ranges, 2),
            ):
                print(f"{storage}: {label}, {workers} at a time ...", flush=True)
                workdir = Path(tmp) / f"{len(results)}"
                result = run_backfill(raw_dir, spans, workers, workdir, lake)
                print(
                    f"  {result['wall_seconds']} s, {result['days']} days, "
                    f"{result['requests']:,} requests, {result['duplicates']} duplicates",
                    flush=True,
                )
                results.append(result)
            one, two = results[-2]["wall_seconds"], results[-1]["wall_seconds"]
            speedups[storage] = round(one / two, 2)
    report = {
        "command": "python -m nasa_autoscale.benchmarks.backfill",
        "data_source": source.data_source,
        "days": (last - first).days + 1,
        "results": results,
        "speedup_2_vs_1": speedups,
        "target_speedup_with_lake": 1.7,
    }
    out = settings.reports_dir / "bench_backfill.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{len(ranges)} runs of {args.days_per_run} days, 2 workers against 1:")
    for row in results:
        print(
            f"  {row['storage']:6s} {row['runs']:2d} run(s), {row['workers']} at a time: "
            f"{row['wall_seconds']:7.1f} s  {row['requests']:,} requests"
        )
    for storage, speedup in speedups.items():
        target = "   [target >= 1.7]" if storage == "lake" else ""
        print(f"  {storage}: x{speedup}{target}")
    print(f"Written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
