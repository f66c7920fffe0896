"""Replay equals benchmark: the test window of the trace written into a log folder line by line
under a clock this benchmark drives, followed by the live follower and planned by the live
planner exactly as `make live` runs them, then scored beside the benchmark's own figures.

    make bench-live                 # after make run -> reports/bench_live.json
    python -m nasa_autoscale.benchmarks.live --days 2   # the first 2 days of the test window
    python -m nasa_autoscale.benchmarks.live --fallback # only the fallback plans, no replay

What it does:
- The lines are the site's own raw lines of the test window (source_files' paths, the line
  numbers of nasa.requests and nasa.rejected_lines), in file order, each written once its
  instant has come on the clock. The clock moves in POLL_S steps just after every bucket's end
  (of the finest fleet), as `make live --interval 5` polls, and once in the middle of a bucket.
  A third of the way in, a logrotate (rename, new file); two thirds in, a copytruncate whose
  copy is gzipped an hour later.
- The planner reads the warehouse's traffic before the test window (the replay starts where
  the benchmark's forecasts start), the test window's model (scaling_models) and the selected
  policies (cost_report); each fleet starts from the fleet the cost report's simulation starts
  from.

What it prints (and writes to reports/bench_live.json):
- lines written, taken, lost and doubled (per minute, against nasa.requests and rejected_lines);
- the live forecasts' RMSE per step beside scaling_forecasts' (the cost report's forecasts) on
  the same buckets, and the benchmark's one_step / hour_ahead RMSE of the selected 5-minute
  model (model_metrics) for context;
- per fleet, the live decisions' cost and dropped share (the simulator's billing of the
  provisioned counts the planner served) beside the selected policy simulated on the same
  buckets with scaling_forecasts, and the cost report's figure for the whole window;
- the lag from a bucket's end to its decision in the store: the clock's lag plus the decision's
  measured computing time, p50 / p95 / max;
- the follower's CPU at 1x, 100x and 1000x the trace's rate (benchmarks/follower.measure);
- what a tick of Dagster's live_follower sensor costs (live_status on the replay's store);
- the fallback (the daily provisioning_plan, the AWS export) replayed on the same days as fixed
  schedules: each day planned at midnight on the deployed day-ahead forecast, nothing observed
  after it, beside each fleet's dropped budget.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from nasa_autoscale import warehouse
from nasa_autoscale.ingest.logfiles import index_lines
from nasa_autoscale.live.follower import Follower, connect_store
from nasa_autoscale.live.planner import PLAN_TABLE, LivePlanner, live_status
from nasa_autoscale.scaling.simulator import execute, initial_servers, simulate, summarize
from nasa_autoscale.settings import Settings
from nasa_autoscale.warehouse import SCHEMA

POLL_S = 5  # make live's default interval
LATENESS_S = 10  # the follower's default allowed lateness


def window_lines(con, start_utc, end_utc) -> list[tuple[dt.datetime, bytes]]:
    """(instant, raw line) of every line the warehouse stored for instants in [start, end)
    (requests and rejections of those days alike: a rejection takes the instant of the line
    before it), in file order."""
    kept = con.execute(
        f"""
        SELECT source_file, line_number, ts_utc, FALSE AS rejected FROM {SCHEMA}.requests
        WHERE ts_utc >= $a AND ts_utc < $b
        UNION ALL
        SELECT r.source_file, r.line_number, NULL, TRUE FROM {SCHEMA}.rejected_lines r
        WHERE r.day >= CAST($a AS DATE) AND r.day <= CAST($b AS DATE)
        ORDER BY 1, 2
        """,
        {"a": start_utc, "b": end_utc},
    ).fetchall()
    paths = dict(con.execute(f"SELECT source_file, path FROM {SCHEMA}.source_files").fetchall())
    out, last = [], None
    by_file: dict[str, list] = {}
    for name, number, ts, rejected in kept:
        by_file.setdefault(name, []).append((number, ts, rejected))
    for name, rows in by_file.items():
        data = Path(paths[name]).read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        lines = index_lines(data)
        for number, ts, _ in rows:
            begin, end = lines.starts[number - 1], lines.ends[number - 1]
            last = ts or last
            if last is not None:
                out.append((last, data[begin:end] + b"\n"))
    return out


def clock_ticks(start: dt.datetime, end: dt.datetime, minutes: int) -> list[dt.datetime]:
    """The replay's ticks: around each bucket's end (of the finest fleet) every POLL_S seconds
    as make live polls, until the watermark (LATENESS_S behind the data) has passed it; one tick
    mid-bucket."""
    ticks, t = [], start
    bucket = dt.timedelta(minutes=minutes)
    after_end = range(POLL_S, LATENESS_S + 3 * POLL_S + 1, POLL_S)
    while t <= end + bucket:
        ticks += [t + dt.timedelta(seconds=s) for s in after_end]
        ticks.append(t + bucket / 2)
        t += bucket
    return sorted(set(ticks))


def replay(settings: Settings, days: float | None, progress=print) -> dict:
    fleets = {name: fleet.rules for name, fleet in settings.fleets().items()}
    with warehouse.reading(settings.duckdb_path) as con:
        traffic = {
            m: warehouse.read(
                con,
                f"SELECT bucket_start, bucket_start_utc, requests FROM {SCHEMA}.traffic_{m}m "
                "ORDER BY bucket_start",
            ).set_index("bucket_start")
            for m in sorted({r.minutes for r in fleets.values()})
        }
    calendar = settings.calendar(traffic[max(traffic)].rename(columns={}))
    start, end = calendar.test_start, calendar.test_end
    if days:
        end = min(end, start + pd.Timedelta(days=days))
    coarse = traffic[max(traffic)]
    offset = coarse["bucket_start_utc"].iloc[0] - coarse.index[0]
    start_utc, end_utc = (start + offset).to_pydatetime(), (end + offset).to_pydatetime()
    with warehouse.reading(settings.duckdb_path) as con:
        lines = window_lines(con, start_utc, end_utc)
        written_total = len(lines)
    progress(f"replaying {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M}: {len(lines):,} lines")
    demand = {
        m: t.loc[(t.index >= start) & (t.index < end), "requests"] for m, t in traffic.items()
    }
    initial = {
        name: rules.clamp(initial_servers(demand[rules.minutes].to_numpy(float), rules))
        for name, rules in fleets.items()
    }
    finest = min(r.minutes for r in fleets.values())
    ticks = clock_ticks(start_utc, end_utc, finest)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "logs"
        folder.mkdir()
        store = Path(tmp) / "live.duckdb"
        follower = Follower(folder, store, timezone=_zone(settings))
        planner = LivePlanner(
            settings.duckdb_path,
            store,
            fleets,
            history_end=start,
            initial=initial,
            first_origin=start,
        )
        con = connect_store(store)  # one connection for the replay: no other reader
        log = folder / "access.log"
        position, decisions, rotations = 0, [], []
        rotate_at = start_utc + (end_utc - start_utc) / 3
        copy_at = start_utc + (end_utc - start_utc) * 2 / 3
        gzip_at = copy_at + dt.timedelta(hours=1)
        cpu, began = time.process_time(), time.perf_counter()
        for n, now in enumerate(ticks):
            chunk = []
            while position < len(lines) and lines[position][0] < now:
                chunk.append(lines[position][1])
                position += 1
            if chunk:
                with open(log, "ab") as stream:
                    stream.write(b"".join(chunk))
            if rotate_at is not None and now >= rotate_at and (end_utc > rotate_at):
                log.rename(folder / "access.log.1")  # logrotate: create
                log.touch()
                rotations.append(f"rename at {now:%Y-%m-%d %H:%M:%S} UTC")
                rotate_at = None
            if copy_at is not None and now >= copy_at and end_utc > copy_at:
                shutil.copyfile(log, folder / "access.log.0")  # logrotate: copytruncate
                with open(log, "r+b") as stream:
                    stream.truncate(0)
                rotations.append(f"copytruncate at {now:%Y-%m-%d %H:%M:%S} UTC")
                copy_at = None
            if gzip_at is not None and copy_at is None and now >= gzip_at:
                copy = folder / "access.log.0"
                if copy.exists():
                    (folder / "access.log.0.gz").write_bytes(gzip.compress(copy.read_bytes()))
                    copy.unlink()
                    rotations.append(f"gzip of the copy at {now:%Y-%m-%d %H:%M:%S} UTC")
                gzip_at = None
            follower.poll(now=now, con=con)
            for decision in planner.plan(now=now, con=con):
                decisions.append({**decision, "decided_at": now})
            if n % 2000 == 0:
                progress(
                    f"  {now:%Y-%m-%d %H:%M} UTC: {position:,} lines written, "
                    f"{len(decisions):,} decisions, {time.perf_counter() - began:.0f} s"
                )
        replay_cpu = time.process_time() - cpu
        plan = con.execute(f"SELECT * FROM {SCHEMA}.{PLAN_TABLE} ORDER BY fleet, origin, step").df()
        taken = con.execute(
            f"SELECT date_trunc('minute', ts_utc) AS minute, count(*) AS n "
            f"FROM {SCHEMA}.live_requests GROUP BY 1"
        ).df()
        rejected_taken = con.execute(f"SELECT count(*) FROM {SCHEMA}.live_rejected").fetchall()
        con.close()
        sensor_s = []  # what a tick of Dagster's live_follower sensor reads (assets/live.py)
        for _ in range(20):
            began = time.perf_counter()
            live_status(store, ticks[-1], 900.0)
            sensor_s.append(time.perf_counter() - began)
    with warehouse.reading(settings.duckdb_path) as con:
        expected = con.execute(
            f"SELECT date_trunc('minute', ts_utc) AS minute, count(*) AS n "
            f"FROM {SCHEMA}.requests WHERE ts_utc >= $a AND ts_utc < $b GROUP BY 1",
            {"a": start_utc, "b": end_utc},
        ).df()
        forecasts = warehouse.read(
            con,
            f"SELECT * FROM {SCHEMA}.scaling_forecasts WHERE \"window\" = 'test'",
        )
        cost_report = warehouse.read(con, f"SELECT * FROM {SCHEMA}.cost_report")
        metrics = warehouse.read(
            con,
            f"SELECT model, protocol, rmse, selected FROM {SCHEMA}.model_metrics "
            "WHERE granularity = '5m' AND protocol IN ('one_step', 'hour_ahead') "
            "AND (selected OR model = 'lightgbm_direct') ORDER BY protocol, model",
        )
    both = expected.merge(taken, on="minute", how="outer", suffixes=("_expected", "_taken"))
    both = both.fillna(0)
    lost = int((both["n_expected"] - both["n_taken"]).clip(lower=0).sum())
    doubled = int((both["n_taken"] - both["n_expected"]).clip(lower=0).sum())
    out = {
        "window": f"{start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} (site time)",
        "ticks": len(ticks),
        "rotations": rotations,
        "lines": {
            "written": written_total,
            "requests_expected": int(expected["n"].sum()),
            "requests_taken": int(taken["n"].sum()),
            "rejected_taken": int(rejected_taken[0][0]),
            "lost": lost,
            "doubled": doubled,
        },
        "replay_cpu_s": round(replay_cpu, 1),
        "forecasts": _forecast_scores(plan, forecasts, traffic, metrics),
        "fleets": _fleet_costs(plan, fleets, demand, initial, forecasts, cost_report),
        "lag_s": _lags(plan, decisions, planner.compute_s, offset),
        "fallback_day_ahead_plan": fallback_plans(settings, fleets, start, end),
        "dagster_sensor_tick_ms": round(1000 * float(np.median(sensor_s)), 1),
        "decision_compute_s": {
            "mean": round(float(np.mean(planner.compute_s)), 3) if planner.compute_s else None,
            "p95": round(float(np.quantile(planner.compute_s, 0.95)), 3)
            if planner.compute_s
            else None,
        },
    }
    return out


def _zone(settings: Settings) -> str:
    """The zone the warehouse read the site's lines in (the replay reads them in the same)."""
    from nasa_autoscale.ingest.sitezone import recorded_zone

    with warehouse.reading(settings.duckdb_path) as con:
        return recorded_zone(con).name


def _forecast_scores(plan, forecasts, traffic, metrics) -> dict:
    """Live RMSE per bucket length and step beside scaling_forecasts' on the same buckets."""
    out = {}
    for minutes, rows in plan.groupby("minutes"):
        rows = rows.drop_duplicates(["origin", "step"])
        actual = traffic[minutes]["requests"]
        bench = forecasts.loc[forecasts["minutes"] == minutes, ["origin", "step", "yhat"]]
        merged = rows.merge(bench, on=["origin", "step"], suffixes=("_live", "_bench"))
        merged["actual"] = actual.reindex(merged["bucket_start"]).to_numpy(float)
        merged = merged.dropna(subset=["actual"])
        per_step = {}
        for step, part in merged.groupby("step"):
            live = float(np.sqrt(np.mean((part["yhat_live"] - part["actual"]) ** 2)))
            scored = float(np.sqrt(np.mean((part["yhat_bench"] - part["actual"]) ** 2)))
            per_step[int(step)] = {
                "buckets": len(part),
                "live_rmse": round(live, 3),
                "benchmark_rmse": round(scored, 3),
                "ratio": round(live / scored, 5) if scored else None,
                "max_abs_difference": round(
                    float((part["yhat_live"] - part["yhat_bench"]).abs().max()), 6
                ),
            }
        out[f"{minutes}m"] = per_step
    # the benchmark's 5-minute test RMSE of the same model (lightgbm_direct, refitted as the
    # benchmark does) and of the models it selected per protocol, for context
    out["model_metrics_5m_test"] = metrics.round(3).to_dict("records")
    return out


def _fleet_costs(plan, fleets, demand, initial, forecasts, cost_report) -> dict:
    """Per fleet: the live decisions billed by the simulator, the selected policy simulated on
    the same buckets with the benchmark's forecasts, and the cost report's row."""
    from nasa_autoscale.scaling.recommend import resolve_policy

    out = {}
    for name, rules in fleets.items():
        mine = plan[(plan["fleet"] == name) & (plan["step"] == 1)].set_index("origin")
        series = demand[rules.minutes]
        decided = mine["provisioned"].reindex(series.index)
        if decided.isna().any():
            out[name] = {"error": f"{int(decided.isna().sum())} buckets were never decided"}
            continue
        choice = resolve_policy(cost_report, name, fleets)
        live = summarize(
            execute(decided.to_numpy(), series.to_numpy(float), choice.rules, initial[name]),
            choice.rules,
            initial[name],
        )
        span = (series.index[0], series.index[-1] + pd.Timedelta(minutes=rules.minutes))
        benchmark, provisioned = _benchmark_policy(choice, series, initial[name], span, forecasts)
        row = cost_report[(cost_report["setting"] == name) & (cost_report["policy"] == choice.name)]
        out[name] = {
            "policy": choice.name,
            "live": {"cost": round(live["cost"], 4), "dropped": round(live["dropped_fraction"], 5)},
            "benchmark_same_buckets": benchmark,
            "cost_report": {
                "cost": round(float(row["cost"].iloc[0]), 4),
                "dropped": round(float(row["dropped_fraction"].iloc[0]), 5),
            }
            if len(row)
            else None,
            "cost_ratio": round(live["cost"] / benchmark["cost"], 5) if benchmark["cost"] else None,
            "buckets_deciding_differently": int((provisioned != decided.to_numpy()).sum()),
        }
    return out


def fallback_plans(settings: Settings, fleets: dict, start, end) -> dict:
    """The daily path's fallback replayed on [start, end) as fixed schedules: each day planned at
    its midnight by the fleet's selected policy on the deployed model's day-ahead forecast
    (forecasts, protocol day_ahead, the selected 5-minute model), nothing observed after
    midnight, as provisioning_plan and the AWS export are (scaling/plan.score_plan, the daily
    path's own pricing); summed over the days, beside the fleet's dropped budget."""
    from nasa_autoscale.scaling.plan import score_plan

    with warehouse.reading(settings.duckdb_path) as con:
        model = con.execute(
            f"SELECT model FROM {SCHEMA}.model_metrics WHERE granularity = '5m' "
            "AND protocol = 'day_ahead' AND selected"
        ).fetchall()
        if not model:
            return {}
        forecasts = warehouse.read(
            con,
            f"SELECT origin, bucket_start, yhat, yhat_lower, yhat_upper FROM {SCHEMA}.forecasts "
            "WHERE model = ? AND granularity = '5m' AND protocol = 'day_ahead' "
            "AND bucket_start >= ? AND bucket_start < ? ORDER BY bucket_start",
            [model[0][0], start.to_pydatetime(), end.to_pydatetime()],
        )
        cost_report = warehouse.read(con, f"SELECT * FROM {SCHEMA}.cost_report")
        demand = {
            m: warehouse.read(
                con,
                f"SELECT bucket_start, requests FROM {SCHEMA}.traffic_{m}m ORDER BY bucket_start",
            )
            .set_index("bucket_start")["requests"]
            .astype(float)
            for m in sorted({r.minutes for r in fleets.values()} | {5})
        }
    out = {}
    for name, rules in fleets.items():
        series = demand[rules.minutes]
        days = [
            (group, series[(series.index >= day) & (series.index < day + pd.Timedelta(days=1))])
            for day, group in forecasts.groupby(forecasts["bucket_start"].dt.normalize())
        ]
        scores = [score_plan(group, series, cost_report, fleets, name) for group, _ in days]
        totals = [float(np.nansum(day.to_numpy())) for _, day in days]
        dropped = sum(s["plan_dropped"] * t for s, t in zip(scores, totals, strict=True))
        out[name] = {
            "model": model[0][0],
            "policy": scores[0]["plan_policy"] if scores else None,
            "days": len(scores),
            "cost": round(sum(s["plan_cost"] for s in scores), 4),
            "optimum_cost": round(sum(s["optimum_cost"] for s in scores), 4),
            "dropped": round(dropped / max(sum(totals), 1.0), 5),
            "dropped_budget": rules.dropped_budget,
            "within_budget": dropped / max(sum(totals), 1.0) <= rules.dropped_budget,
        }
    return out


def _benchmark_policy(choice, series, initial, span, forecasts) -> tuple[dict, np.ndarray]:
    """The selected policy simulated over the replayed buckets with the test window's
    scaling_forecasts (what the cost report does, on the same span): its figures and its
    provisioned counts."""
    from nasa_autoscale.scaling.forecasts import forecast_array

    rules = choice.rules
    rows = forecasts[(forecasts["origin"] >= span[0]) & (forecasts["origin"] < span[1])]
    array = forecast_array(rows, "test", span, rules.minutes, rules.boot + 1)
    outcome = simulate(series.to_numpy(float), choice.build(), rules, array, None, initial)
    figures = summarize(outcome, rules, initial)
    rounded = {"cost": round(figures["cost"], 4), "dropped": round(figures["dropped_fraction"], 5)}
    return rounded, outcome["provisioned"].to_numpy()


def _lags(plan, decisions, compute_s, offset) -> dict:
    """Seconds from a decided bucket's start (the end of the data it needed) to the clock tick
    its decision was written at, plus the decision's computing time."""
    if not decisions:
        return {}
    frame = pd.DataFrame(decisions)
    ends = pd.to_datetime(frame["origin"]) + offset
    clock = (pd.to_datetime(frame["decided_at"]) - ends).dt.total_seconds().to_numpy()
    compute = np.asarray(compute_s[: len(clock)], float)
    total = clock + compute
    return {
        "p50": round(float(np.quantile(total, 0.5)), 2),
        "p95": round(float(np.quantile(total, 0.95)), 2),
        "max": round(float(total.max()), 2),
        "clock_part_p95": round(float(np.quantile(clock, 0.95)), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nasa_autoscale.benchmarks.live")
    parser.add_argument(
        "--days", type=float, default=0, help="replay only the first N test days (0: all)"
    )
    parser.add_argument("--out", type=Path, default=None, help="default reports/bench_live.json")
    parser.add_argument("--no-cpu", action="store_true", help="skip the follower CPU runs")
    parser.add_argument(
        "--fallback", action="store_true", help="only the fallback plans, on the whole test window"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env()
    if args.fallback:
        fleets = {name: fleet.rules for name, fleet in settings.fleets().items()}
        with warehouse.reading(settings.duckdb_path) as con:
            traffic = warehouse.read(
                con, f"SELECT bucket_start, requests FROM {SCHEMA}.traffic_5m ORDER BY 1"
            ).set_index("bucket_start")
        calendar = settings.calendar(traffic)
        result = fallback_plans(settings, fleets, calendar.test_start, calendar.test_end)
        print(json.dumps(result, indent=2, default=str))
        return 0
    result = replay(settings, args.days or None)
    if not args.no_cpu:
        from nasa_autoscale.benchmarks.follower import FACTORS, measure

        sample = [line for _, line in window_lines_sample(settings)]
        result["follower_cpu"] = [measure(sample, factor, POLL_S, 60) for factor in FACTORS]
    out = args.out or settings.reports_dir / "bench_live.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(json.dumps(result, indent=2, default=str))
    print(f"wrote {out}")
    return 0


def window_lines_sample(settings: Settings):
    with warehouse.reading(settings.duckdb_path) as con:
        first = con.execute(f"SELECT min(ts_utc) FROM {SCHEMA}.requests").fetchall()[0][0]
        lines = window_lines(con, first, first + dt.timedelta(days=4))
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
