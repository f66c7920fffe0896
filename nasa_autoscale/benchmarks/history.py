"""History benchmark: what the graph costs as its history grows. The NASA logs (or their replica)
repeated end to end with their dates moved on make 2, 6 and 12 months of traffic; each runs
through what `make run` runs (raw, the ingest of every day, analysis_job) and then the daily path
(`make bench-daily`'s three jobs for the last day), into a scratch warehouse, lake, MLflow store
and Dagster home of its own.

    python -m nasa_autoscale.benchmarks.history [--months 2 6 12]     (make bench-history)

How the history is made (said in the report too): copy k of the 62-day trace is moved on by
k x 63 days (nine whole weeks, so weekdays stay weekdays); the 63rd day of each copy has no log
and reads as missing (an outage), as a gap in a real log would. 2 months = the trace, 6 months =
3 copies (188 days), 12 months = 6 copies (377 days). Only the dates in each line change.

For each history: the wall time of each command, each step's seconds (Dagster's log) and the
peak memory (the largest resident set of any process the command started). Writes
reports/bench_history.json and prints the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from nasa_autoscale.ingest.download import locate_logs
from nasa_autoscale.progress import step_seconds
from nasa_autoscale.settings import NASA_FIRST_DAY, NASA_LAST_DAY, PROJECT_ROOT, Settings

COPY_DAYS = 63  # each copy moves on by nine weeks: a Monday stays a Monday
MONTHS_TO_COPIES = {2: 1, 6: 3, 12: 6}
DEFS = ["-m", "nasa_autoscale.definitions"]
INGEST_SELECTION = "requests,rejected_lines,traffic_1m,traffic_5m,traffic_15m"
DAILY_TARGET_S = 60.0
# The step keys of benchmark_job: "the benchmark" of the issue, timed inside analysis_job.
BENCHMARK_STEPS = (
    "benchmark_models",
    "scaling_forecasts",
    "policy_sweep",
    "cost_robustness",
    "anomaly_injection",
)


def history_range(copies: int) -> tuple[dt.date, dt.date]:
    first = dt.date.fromisoformat(NASA_FIRST_DAY)
    last = dt.date.fromisoformat(NASA_LAST_DAY) + dt.timedelta(days=COPY_DAYS * (copies - 1))
    return first, last


def _date_tokens(day: dt.date) -> bytes:
    return day.strftime("[%d/%b/%Y:").encode()


def shift_log(text: bytes, days: int) -> bytes:
    """Every CLF timestamp's date in `text` moved on by `days` (the trace's days only: the
    shifted dates lie after the trace, so no date is moved twice)."""
    if days == 0:
        return text
    first = dt.date.fromisoformat(NASA_FIRST_DAY)
    last = dt.date.fromisoformat(NASA_LAST_DAY)
    if days <= (last - first).days:
        raise ValueError(f"a shift of {days} days would move dates onto the trace's own")
    day = first
    while day <= last:
        text = text.replace(_date_tokens(day), _date_tokens(day + dt.timedelta(days=days)))
        day += dt.timedelta(days=1)
    return text


def build_history(source_files: list[Path], out_dir: Path, copies: int) -> list[Path]:
    """`copies` copies of the trace's files in out_dir, copy k moved on by k x 63 days."""
    import isal.igzip as igzip

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(source_files):
        text = igzip.decompress(source.read_bytes())
        for k in range(copies):
            target = out_dir / f"copy{k}_{source.name}"
            if not target.exists():
                partial = target.with_suffix(".partial")
                partial.write_bytes(igzip.compress(shift_log(text, k * COPY_DAYS), 1))
                partial.rename(target)
            written.append(target)
    return written


_MEASURE = (
    "import resource, subprocess, sys; "
    "code = subprocess.call(sys.argv[2:]); "
    "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


# "... - <run id> - <pid> - <step> - STEP_START - ...": which process ran which step
_STEP_PID = re.compile(r" - [0-9a-f-]{36} - (?P<pid>\d+) - (?P<step>\w+) - STEP_START ")


def _process_peaks(root: int, peaks: dict[int, int]) -> None:
    """Each descendant of `root`: its peak resident set so far (VmHWM, kB), kept in `peaks`."""
    parents, hwm = {}, {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            text = status.read_text()
        except OSError:  # gone between the listing and the read
            continue
        fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
        pid = int(status.parent.name)
        parents[pid] = int(fields.get("PPid", "0"))
        if "VmHWM" in fields:
            hwm[pid] = int(fields["VmHWM"].split()[0])
    for pid, peak in hwm.items():
        ancestor = parents.get(pid)
        while ancestor and ancestor != root:
            ancestor = parents.get(ancestor)
        if ancestor == root:
            peaks[pid] = max(peaks.get(pid, 0), peak)


def measured(name: str, command: list[str], env: dict, log_dir: Path) -> dict:
    """Run a command in a fresh process that waits for it: wall seconds, each Dagster step's
    seconds, the peak resident memory of any process it started (ru_maxrss of children) and of
    each step's process (its VmHWM, sampled every 0.5 s: a lower bound; the steps of an
    in-process job share one process)."""
    print(f"  {name} ...", flush=True)
    peak_file = log_dir / f"{name}.peak"
    log_file = log_dir / f"{name}.log"
    started = time.perf_counter()
    peaks: dict[int, int] = {}
    with log_file.open("w") as log:
        run = subprocess.Popen(
            [sys.executable, "-c", _MEASURE, str(peak_file), *command],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
        while run.poll() is None:
            _process_peaks(run.pid, peaks)
            time.sleep(0.5)
    wall = time.perf_counter() - started
    lines = log_file.read_text(errors="replace").splitlines()
    if run.returncode != 0:
        tail = "\n".join(lines[-30:])
        raise RuntimeError(
            f"{name} failed (exit {run.returncode}); its log {log_file} ends:\n{tail}"
        )
    peak_mb = int(peak_file.read_text()) / 1024
    step_peaks: dict[str, int] = {}
    for line in lines:
        found = _STEP_PID.search(line)
        if found and int(found["pid"]) in peaks:
            peak = round(peaks[int(found["pid"])] / 1024)
            step_peaks[found["step"]] = max(step_peaks.get(found["step"], 0), peak)
    print(f"  {name}: {wall:.1f} s, peak {peak_mb:,.0f} MB", flush=True)
    return {
        "wall_seconds": round(wall, 2),
        "peak_mb": round(peak_mb),
        "steps": step_seconds(lines),
        "step_peak_mb": step_peaks,
    }


def run_history(months: int, work: Path, sources: list[Path]) -> dict:
    copies = MONTHS_TO_COPIES[months]
    first, last = history_range(copies)
    root = work / f"{months}m"
    if root.exists():
        shutil.rmtree(root / "state", ignore_errors=True)
    raw = build_history(sources, root / "raw", copies)
    state = root / "state"
    home = state / "dagster_home"
    home.mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "NASA_RAW_DIR": str(root / "raw"),
        "NASA_START_DATE": first.isoformat(),
        "NASA_END_DATE": last.isoformat(),
        "NASA_DUCKDB_PATH": str(state / "warehouse.duckdb"),
        "NASA_MLFLOW_URI": f"sqlite:///{state / 'mlflow.db'}",
        "NASA_MLFLOW_ARTIFACTS": str(state / "mlruns"),
        "NASA_REPORTS_DIR": str(state / "reports"),
        "NASA_LANDING_DIR": str(state / "landing"),
    }
    env.pop("NASA_LAKE", None)  # the default lake, beside the scratch warehouse
    print(f"{months} months: {first} .. {last}, {len(raw)} files", flush=True)
    dagster = [sys.executable, "-m", "dagster"]
    partition = json.dumps({"dagster/partition": last.isoformat()})
    parts = {
        "raw": measured(
            "raw",
            [*dagster, "asset", "materialize", *DEFS, "--select", "raw_log_files"],
            env,
            state,
        ),
        "ingest": measured(
            "ingest",
            [
                *dagster,
                "asset",
                "materialize",
                *DEFS,
                "--select",
                INGEST_SELECTION,
                "--partition-range",
                f"{first}...{last}",
            ],
            env,
            state,
        ),
        "analysis": measured(
            "analysis", [*dagster, "job", "execute", *DEFS, "-j", "analysis_job"], env, state
        ),
        "daily_ingest": measured(
            "daily_ingest",
            [*dagster, "job", "execute", *DEFS, "-j", "ingest_job", "--tags", partition],
            env,
            state,
        ),
        "daily_refresh": measured(
            "daily_refresh",
            [*dagster, "job", "execute", *DEFS, "-j", "daily_refresh_job"],
            env,
            state,
        ),
        "daily_forecast": measured(
            "daily_forecast",
            [*dagster, "job", "execute", *DEFS, "-j", "daily_forecast_job", "--tags", partition],
            env,
            state,
        ),
    }
    make_run = sum(parts[name]["wall_seconds"] for name in ("raw", "ingest", "analysis"))
    daily = sum(parts[name]["wall_seconds"] for name in ("daily_ingest", "daily_refresh"))
    daily += parts["daily_forecast"]["wall_seconds"]
    steps = parts["analysis"]["steps"]
    return {
        "months": months,
        "copies": copies,
        "first_day": first.isoformat(),
        "last_day": last.isoformat(),
        "days": (last - first).days + 1,
        "make_run_seconds": round(make_run, 1),
        "benchmark_seconds": round(sum(steps.get(s, 0.0) for s in BENCHMARK_STEPS), 1),
        "daily_seconds": round(daily, 1),
        "peak_mb": max(part["peak_mb"] for part in parts.values()),
        "parts": parts,
    }


def table(rows: list[dict]) -> str:
    lines = [
        "| history | days | make run | benchmark steps | daily refresh | peak memory |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['months']} months | {row['days']} | {row['make_run_seconds']:.0f} s "
            f"| {row['benchmark_seconds']:.0f} s | {row['daily_seconds']:.1f} s "
            f"| {row['peak_mb']:,} MB |"
        )
    steps = sorted({s for row in rows for s in row["parts"]["analysis"]["steps"]})
    lines += ["", "| step (analysis_job) | " + " | ".join(f"{r['months']} m" for r in rows) + " |"]
    lines.append("|---|" + "---|" * len(rows))
    for step in steps:
        cells = []
        for r in rows:
            analysis = r["parts"]["analysis"]
            peak = analysis.get("step_peak_mb", {}).get(step)
            memory = f", {peak:,} MB" if peak else ""
            cells.append(f"{analysis['steps'].get(step, 0.0):.1f} s{memory}")
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    for part in ("ingest", "daily_ingest", "daily_refresh", "daily_forecast"):
        cells = [
            f"{r['parts'][part]['wall_seconds']:.1f} s, {r['parts'][part]['peak_mb']:,} MB"
            for r in rows
        ]
        lines.append(f"| ({part} command) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, nargs="+", default=[2, 6, 12])
    parser.add_argument(
        "--work", type=Path, default=PROJECT_ROOT / "data" / "bench_history", help="scratch"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.months) - set(MONTHS_TO_COPIES))
    if unknown:
        parser.error(f"--months takes {sorted(MONTHS_TO_COPIES)}, not {unknown}")
    settings = Settings.from_env()
    source = locate_logs(settings, fetch=True, progress=print)
    rows = []
    for months in args.months:
        try:
            rows.append(run_history(months, args.work, list(source.files)))
        except RuntimeError as error:
            print(error, file=sys.stderr)
            return 1
        out = settings.reports_dir / "bench_history.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        result = {
            "command": "python -m nasa_autoscale.benchmarks.history",
            "data": source.data_source,
            "history": "the trace repeated, copy k moved on by k x 63 days",
            "daily_target_seconds": DAILY_TARGET_S,
            "rows": rows,
        }
        out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(table(rows))
    print(f"\n{out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
