"""Ingest benchmark: the whole trace -> requests, rejected_lines and the three traffic tables,
timed side by side with a straightforward line-by-line Python `re` parser that builds a DataFrame.

    python -m nasa_autoscale.benchmarks.ingest [--repeat N] [--compare-with REV]
                                                              (make bench-ingest)

Each measurement runs in a fresh subprocess, so peak memory (max RSS) is its own. The runs
alternate (ours, baseline, combined, ...) and the best of each is kept: this machine is shared
and noisy, and a ratio measured side by side in one run means more than an absolute time.

`combined` is the same trace rewritten as a modern site logs it (nginx combined format, UTC, one
gzip file per day: benchmarks/combined_logs.py), ingested by the same code: its rate per line is
set beside the Common Log Format one. `--compare-with REV` also times the ingest of an earlier
revision of this repository (a git worktree) on the same files, alternating with ours.
Then every other format (benchmarks/format_logs.py): the first 1,000,000 lines of the first
file rendered in it, parsed side by side with the Common Log Format, lines per second and
whether the 5-minute counts are the same. Writes reports/bench_ingest.json and prints the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nasa_autoscale.settings import Settings

TARGET_SECONDS = 4.0
TARGET_RATIO = 8.0
TARGET_PEAK_MB = 2048
TARGET_COMBINED_RATE = 0.7  # combined lines per second, as a share of Common Log Format lines
TARGET_SAME_AS_BEFORE = 1.1  # our time on the NASA files against an earlier revision's
TARGET_FORMAT_RATE = 0.5  # every other format's parse rate, as a share of common's
FORMAT_LINES = 1_000_000


def run_ours(files: list[Path], data_source: str) -> dict:
    """Our ingest, as the assets run it, into a fresh warehouse file."""
    from nasa_autoscale import warehouse
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale.ingest.traffic import write_traffic

    settings = Settings.from_env()
    first = dt.date.fromisoformat(settings.start_date)
    last = dt.date.fromisoformat(settings.end_date)
    with tempfile.TemporaryDirectory() as tmp:
        con = warehouse.connect(Path(tmp) / "bench.duckdb")
        start = time.perf_counter()
        summary = ingest_days(con, files, first, last, data_source, progress=lambda m: None)
        parsed = time.perf_counter()
        rows = write_traffic(con, first, last)
        con.execute("CHECKPOINT")
        end = time.perf_counter()
        con.close()
    return {
        "seconds": end - start,
        "ingest_seconds": parsed - start,
        "traffic_seconds": end - parsed,
        "lines": summary.lines_read,
        "requests": summary.requests,
        "rejected": summary.rejected,
        "traffic_rows": rows,
    }


BASELINE_LINE = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "(.*)" (\d{3}) (\S+)$')


def run_baseline(files: list[Path], data_source: str) -> dict:
    """The straightforward parser: gzip.open, one regex match per line, a DataFrame at the end."""
    import gzip

    import pandas as pd

    start = time.perf_counter()
    rows, rejected, lines = [], [], 0
    for path in files:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="latin-1") as f:
            for line in f:
                lines += 1
                match = BASELINE_LINE.match(line.rstrip("\n"))
                if match:
                    rows.append(match.groups())
                else:
                    rejected.append(line)
    df = pd.DataFrame(rows, columns=["host", "ident", "user", "ts", "request", "status", "bytes"])
    df["ts"] = pd.to_datetime(df["ts"], format="%d/%b/%Y:%H:%M:%S %z", errors="coerce")
    df["status"] = df["status"].astype("int16")
    df["bytes"] = pd.to_numeric(df["bytes"].replace("-", None), errors="coerce")
    end = time.perf_counter()
    return {"seconds": end - start, "lines": lines, "requests": len(df), "rejected": len(rejected)}


RUNNERS = {"ours": run_ours, "baseline": run_baseline}


def _child(kind: str, files: list[str], data_source: str) -> None:
    result = RUNNERS[kind]([Path(f) for f in files], data_source)
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def measure(kind: str, files: list[Path], data_source: str, root: Path | None = None) -> dict:
    """One run in a fresh process; `root`: another checkout whose code runs instead."""
    command = [
        sys.executable,
        "-m",
        "nasa_autoscale.benchmarks.ingest",
        "--child",
        kind,
        "--data-source",
        data_source,
        *map(str, files),
    ]
    env = None
    if root is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env, cwd=root)
    if done.returncode != 0:
        raise RuntimeError(f"{kind} run failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each (best is kept)")
    parser.add_argument("--child", choices=sorted(RUNNERS), help=argparse.SUPPRESS)
    parser.add_argument("--data-source", default="real", help=argparse.SUPPRESS)
    parser.add_argument("--compare-with", metavar="REV", help="also time this git revision")
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.files, args.data_source)
        return 0

    from nasa_autoscale.benchmarks.combined_logs import write_combined_logs
    from nasa_autoscale.ingest.download import locate_logs

    settings = Settings.from_env()
    source = locate_logs(settings, fetch=True)
    print(f"data: {source.data_source} ({source.note})", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        print("writing the combined-format copy (nginx, UTC, daily files) ...", flush=True)
        combined = write_combined_logs(source.files, Path(tmp) / "combined")
        before = _worktree(args.compare_with, Path(tmp) / "before") if args.compare_with else None
        plan = {
            "ours": (source.files, None),
            "baseline": (source.files, None),
            "combined": (combined, None),
        }
        if before:
            plan["before"] = (source.files, before)
        runs: dict[str, list[dict]] = {kind: [] for kind in plan}
        for i in range(args.repeat):
            for kind, (files, root) in plan.items():
                child = "ours" if kind in ("combined", "before") else kind
                result = measure(child, files, source.data_source, root)
                runs[kind].append(result)
                print(
                    f"run {i + 1}/{args.repeat} {kind:8s} {result['seconds']:7.2f} s  "
                    f"peak {result['peak_mb']:6.0f} MB",
                    flush=True,
                )
        if before:
            subprocess.run(["git", "worktree", "remove", "--force", str(before)], check=False)
    best = {kind: min(results, key=lambda r: r["seconds"]) for kind, results in runs.items()}
    ours, baseline, combined_run = best["ours"], best["baseline"], best["combined"]
    rates = {
        kind: best[kind]["lines"] / best[kind]["ingest_seconds"] for kind in ("ours", "combined")
    }
    report = {
        "command": "python -m nasa_autoscale.benchmarks.ingest",
        "measured_at": dt.datetime.now().isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {platform.python_implementation()} "
        f"{platform.python_version()}, {_cpus()} cpus",
        "data_source": source.data_source,
        "files": [p.name for p in source.files],
        "lines": ours["lines"],
        "ours": ours,
        "baseline": baseline,
        "all_runs": runs,
        "speedup": baseline["seconds"] / ours["seconds"],
        "speedup_parse_only": baseline["seconds"] / ours["ingest_seconds"],
        "combined": combined_run,
        "lines_per_second": rates,
        "combined_rate_ratio": rates["combined"] / rates["ours"],
        "targets": {
            "seconds": TARGET_SECONDS,
            "speedup": TARGET_RATIO,
            "peak_mb": TARGET_PEAK_MB,
            "combined_rate_ratio": TARGET_COMBINED_RATE,
            "time_against_before": TARGET_SAME_AS_BEFORE,
        },
    }
    report["per_format"] = format_table(source.files[0], args.repeat)
    report["targets"]["format_rate_vs_common"] = TARGET_FORMAT_RATE
    if "before" in best:
        report["before"] = {"revision": args.compare_with, **best["before"]}
        report["time_against_before"] = ours["seconds"] / best["before"]["seconds"]
    out = settings.reports_dir / "bench_ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\n{ours['lines']:,} lines ({source.data_source}), best of {args.repeat}:\n"
        f"  ours (requests + rejected + traffic_1m/5m/15m): {ours['seconds']:.2f} s "
        f"(parse and write {ours['ingest_seconds']:.2f} s, traffic {ours['traffic_seconds']:.2f} s)"
        f", peak {ours['peak_mb']:.0f} MB   "
        f"[target <= {TARGET_SECONDS} s, <= {TARGET_PEAK_MB} MB]\n"
        f"  baseline (line-by-line re -> DataFrame, parse only): {baseline['seconds']:.2f} s, "
        f"peak {baseline['peak_mb']:.0f} MB\n"
        f"  speedup: {report['speedup']:.1f}x for our whole ingest, "
        f"{report['speedup_parse_only']:.1f}x parse against parse   [target >= {TARGET_RATIO}x]\n"
        f"  combined format, {len(combined)} daily files: {combined_run['seconds']:.2f} s (parse "
        f"and write {combined_run['ingest_seconds']:.2f} s): {rates['combined']:,.0f} lines/s "
        f"against {rates['ours']:,.0f} for Common Log Format = "
        f"{report['combined_rate_ratio']:.2f}   [target >= {TARGET_COMBINED_RATE}]"
    )
    if "before" in best:
        print(
            f"  revision {args.compare_with}: {best['before']['seconds']:.2f} s on the same files;"
            f" ours / before = {report['time_against_before']:.2f}   "
            f"[target <= {TARGET_SAME_AS_BEFORE}]"
        )
    print(
        f"  every format on the first {FORMAT_LINES:,} lines of {source.files[0].name}, rendered "
        f"(benchmarks/format_logs.py), parse only, best of {args.repeat}   "
        f"[target >= {TARGET_FORMAT_RATE} of common's rate, same 5-minute counts]"
    )
    for row in report["per_format"]:
        print(
            f"    {row['format']:13s} {row['lines_per_second']:11,.0f} lines/s  "
            f"x{row['rate_vs_common']:.2f}  {row['mb_per_second']:6.1f} MB/s  "
            f"same 5-minute counts: {row['same_5m_counts']}"
        )
    print(f"written to {out}")
    return 0


def format_table(path: Path, repeat: int) -> list[dict]:
    """compare_formats on the first FORMAT_LINES lines of a CLF file (in this process: the
    rates are parse-only, side by side)."""
    from nasa_autoscale.benchmarks.format_logs import compare_formats
    from nasa_autoscale.ingest.logfiles import index_lines, read_bytes
    from nasa_autoscale.ingest.sitezone import SiteZone, first_offset

    data = read_bytes(path)
    cut = 0
    for _ in range(FORMAT_LINES):
        cut = data.find(b"\n", cut) + 1
        if cut == 0:
            cut = len(data)
            break
    zone = SiteZone.parse(first_offset(data[: 1 << 20]) or "UTC")
    return compare_formats(index_lines(data[:cut]), zone, repeat)


def _worktree(revision: str, path: Path) -> Path:
    """A checkout of `revision` of this repository at `path` (git worktree)."""
    from nasa_autoscale.settings import PROJECT_ROOT

    subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "worktree", "add", "--detach", str(path), revision],
        check=True,
        capture_output=True,
    )
    return path


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    sys.exit(main())
