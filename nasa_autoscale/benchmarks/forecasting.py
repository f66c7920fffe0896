"""Forecasting benchmark: the whole 5-minute training and evaluation (every model, every
protocol), timed on the warehouse that `make run` built. Target: <= 3 minutes wall.

    python -m nasa_autoscale.benchmarks.forecasting     (make bench-forecast)

Writes reports/bench_forecast.json and prints the time per model, slowest first.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from nasa_autoscale import warehouse
from nasa_autoscale.features.events import read_events
from nasa_autoscale.forecasting.benchmark import run_granularity
from nasa_autoscale.ingest.traffic import GRANULARITIES, whole_days
from nasa_autoscale.settings import Settings

TARGET_SECONDS = 180.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--granularity", default="5m", choices=sorted(GRANULARITIES))
    args = parser.parse_args(argv)
    minutes = GRANULARITIES[args.granularity]
    settings = Settings.from_env()  # the command's entry point: the environment, read here
    with warehouse.reading(settings.duckdb_path) as con:
        traffic = whole_days(con, minutes).set_index("bucket_start")
        events = read_events(con)
    started = time.perf_counter()
    _, metrics, timings = run_granularity(
        traffic, args.granularity, minutes, events, settings.calendar(traffic)
    )
    wall = time.perf_counter() - started
    timings = timings.sort_values("total_s", ascending=False)
    report = {
        "command": "python -m nasa_autoscale.benchmarks.forecasting",
        "granularity": args.granularity,
        "wall_seconds": wall,
        "target_seconds": TARGET_SECONDS,
        "per_model_seconds": dict(zip(timings.model, timings.total_s.round(2), strict=True)),
        "rmse": metrics.pivot(index="model", columns="protocol", values="rmse").round(2).to_dict(),
    }
    out = settings.reports_dir / "bench_forecast.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{args.granularity} training and evaluation, all models and protocols: {wall:.1f} s "
        f"[target <= {TARGET_SECONDS:.0f} s]"
    )
    for row in timings.itertuples():
        print(f"  {row.model:22s} {row.total_s:6.1f} s (fit {row.fit_s:.1f} s)")
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
