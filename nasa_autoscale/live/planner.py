"""The intra-day forecast and plan: at every decision interval of every fleet, once the follower's
watermark has closed the interval's last bucket, the model the cost report priced forecasts from
the watermark and the fleet's selected policy decides, without refitting anything.

- The model is the test window's LightGBM of scaling_forecasts at the fleet's bucket length
  (scaling_models: LightGBM's own text format, restored without running stored code). It is fed
  the warehouse's traffic (the days the daily path ingested) and, after it, the follower's
  complete buckets; the next boot + 1 buckets are forecast from the origin at the watermark.
- The policy is resolve_policy's (cost_report.selected for the fleet), stepped one bucket at a
  time by scaling.stepper under the simulator's rules: the decisions of a replay equal the
  simulated ones on the same forecasts.
- Each decision is a row per forecast step of `live_plan` in the follower's store, which
  `/scaling/{fleet}` and `/metrics/prometheus` serve; refits stay in the daily path.

The live path gives no spike flags (the anomaly detectors are fitted in the daily path): a fleet
whose selected policy is anomaly_guard acts as its base policy here, and says so.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from nasa_autoscale.live.follower import local_watermark, open_read_only, read_state
from nasa_autoscale.scaling.recommend import PolicyChoice, fleet_for, resolve_policy
from nasa_autoscale.scaling.simulator import ScalingRules
from nasa_autoscale.scaling.stepper import FleetStepper
from nasa_autoscale.warehouse import SCHEMA

# Days of traffic fed to the model at each origin: its longest lag is a week and a bucket, its
# widest rolling window a day (features.build), and the steps shift both.
FEED_DAYS = 8
PLAN_TABLE = "live_plan"
RESUME_WITHIN = pd.Timedelta(hours=1)
PLAN_COLUMNS = """
    fleet VARCHAR NOT NULL,
    minutes INTEGER NOT NULL,
    origin TIMESTAMP NOT NULL,       -- the decided bucket (site time): data complete before it
    step INTEGER NOT NULL,           -- 1: the origin's own bucket
    bucket_start TIMESTAMP NOT NULL, -- site time
    yhat DOUBLE, yhat_lower DOUBLE, yhat_upper DOUBLE,
    recommended INTEGER NOT NULL,    -- the policy's count for the origin's bucket
    provisioned INTEGER NOT NULL,    -- after the stabilization window: what the fleet runs
    serving INTEGER NOT NULL,        -- provisioned ones past their boot
    demand_before DOUBLE,            -- the bucket before the origin, as observed
    policy VARCHAR NOT NULL,
    policy_state VARCHAR NOT NULL,   -- JSON: what the policy carries to the next decision
    watermark TIMESTAMP NOT NULL,    -- naive UTC, when decided
    decided_at TIMESTAMP NOT NULL    -- naive UTC (the planner's clock)
"""


class PlannerError(RuntimeError):
    """The planner cannot plan (no model, no cost report); the message says what to run."""


@dataclass
class FleetState:
    name: str
    choice: PolicyChoice  # the policy selected for the fleet, its parameters and rules
    stepper: FleetStepper | None = None
    next_origin: pd.Timestamp | None = None  # the next bucket to decide (site time)

    @property
    def rules(self) -> ScalingRules:
        return self.choice.rules


def live_traffic(con, minutes: int, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The follower's requests as traffic buckets (the columns of traffic_<minutes>m the models
    read) of site time [start, end), a quiet bucket a zero: only buckets the watermark closed
    may be asked for."""
    step = f"INTERVAL ({int(minutes)}) MINUTE"
    frame = con.execute(
        f"""
        WITH grid AS (
            SELECT unnest(generate_series(CAST($start AS TIMESTAMP),
                CAST($end AS TIMESTAMP) - {step}, {step})) AS bucket_start
        ), counted AS (
            SELECT time_bucket({step}, ts) AS bucket_start, count(*) AS requests,
                   coalesce(sum(bytes), 0) AS bytes, count(DISTINCT host) AS unique_hosts,
                   count(*) FILTER (WHERE status BETWEEN 200 AND 299) AS status_2xx,
                   count(*) FILTER (WHERE status BETWEEN 300 AND 399) AS status_3xx,
                   count(*) FILTER (WHERE status BETWEEN 400 AND 499) AS status_4xx,
                   count(*) FILTER (WHERE status BETWEEN 500 AND 599) AS status_5xx,
                   sum(duration_ms) / 1000.0 AS busy_s
            FROM {SCHEMA}.live_requests
            WHERE ts >= CAST($start AS TIMESTAMP) AND ts < CAST($end AS TIMESTAMP)
            GROUP BY 1
        )
        SELECT bucket_start, coalesce(requests, 0) AS requests, coalesce(bytes, 0) AS bytes,
               coalesce(unique_hosts, 0) AS unique_hosts,
               coalesce(status_2xx, 0) AS status_2xx, coalesce(status_3xx, 0) AS status_3xx,
               coalesce(status_4xx, 0) AS status_4xx, coalesce(status_5xx, 0) AS status_5xx,
               CAST(status_4xx + status_5xx AS DOUBLE) / nullif(requests, 0) AS error_rate,
               FALSE AS is_missing, 0 AS missing_minutes, busy_s
        FROM grid LEFT JOIN counted USING (bucket_start) ORDER BY bucket_start
        """,
        {"start": start.to_pydatetime(), "end": end.to_pydatetime()},
    ).df()
    frame["bucket_start"] = pd.to_datetime(frame["bucket_start"]).astype("datetime64[ns]")
    return frame.set_index("bucket_start")


class LivePlanner:
    """Plans every fleet from a follower's store (`store`) and a warehouse (`warehouse_path`,
    read once at start and again by reload() after the daily path wrote it). history_end: use
    the warehouse's traffic only before this site time (a replay starts where its history ends);
    None: all of it."""

    def __init__(
        self,
        warehouse_path: Path,
        store: Path,
        fleets: dict[str, ScalingRules],
        history_end: pd.Timestamp | None = None,
        progress=lambda message: None,
        initial: dict[str, int] | None = None,
        first_origin: pd.Timestamp | None = None,
    ):
        self.warehouse_path, self.store = Path(warehouse_path), Path(store)
        self.fleet_rules = fleets
        self.history_end, self.progress = history_end, progress
        self.initial = initial or {}  # a replay's starting fleet per fleet (else the last need)
        self.first_origin = first_origin  # a replay's first bucket to decide
        self.compute_s: list[float] = []  # seconds per decision (forecast + policy)
        self.reload()

    def reload(self) -> None:
        """Read the models, the policies and the warehouse's traffic."""
        from nasa_autoscale import warehouse
        from nasa_autoscale.features.events import read_events
        from nasa_autoscale.ingest.traffic import whole_days
        from nasa_autoscale.scaling.forecasts import load_scaling_model

        minutes = sorted({rules.minutes for rules in self.fleet_rules.values()})
        try:
            with warehouse.reading(self.warehouse_path) as con:
                cost_report = warehouse.read(con, f"SELECT * FROM {SCHEMA}.cost_report")
                events = read_events(con)
                self.models = {m: load_scaling_model(con, m, events) for m in minutes}
                self.history = {}
                for m in minutes:
                    traffic = whole_days(con, m, detail=False).set_index("bucket_start")
                    if self.history_end is not None:
                        traffic = traffic[traffic.index < self.history_end]
                    self.history[m] = traffic
        except (warehouse.WarehouseError, ValueError) as error:
            raise PlannerError(f"the live planner cannot start: {error}") from error
        fleets = {}
        for name in self.fleet_rules:
            choice = resolve_policy(cost_report, name, self.fleet_rules)
            kept = getattr(self, "fleets", {}).get(name)
            if kept and (kept.choice.name, kept.rules) == (choice.name, choice.rules):
                fleets[name] = kept  # the same policy goes on deciding where it was
            else:
                fleets[name] = FleetState(name, choice)
        self.fleets = fleets
        self.loaded_mtime = _mtime(self.warehouse_path)

    def reload_if_changed(self, settle_s: float = 30.0) -> bool:
        """reload() when the warehouse was written since (the daily path's refit and ingest) and
        has been still for settle_s; whether it reloaded."""
        mtime = _mtime(self.warehouse_path)
        if mtime == self.loaded_mtime or time.time() - mtime < settle_s:
            return False
        self.reload()
        return True

    def plan(self, now: dt.datetime | None = None, con=None) -> list[dict]:
        """Decide every fleet's buckets the watermark has closed since the last call (usually
        none or one); returns one dict per decision. con: the store already open (as for
        Follower.poll), else opened and closed here."""
        now = now or dt.datetime.now(dt.UTC).replace(tzinfo=None)
        own = con is None
        con = duckdb.connect(str(self.store)) if own else con
        try:
            con.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{PLAN_TABLE} ({PLAN_COLUMNS})")
            mark_utc, local_mark = local_watermark(con)
            if local_mark is None:
                return []
            local_mark = pd.Timestamp(local_mark)
            decisions, self._made = [], {}
            for state in self.fleets.values():
                decisions += self._plan_fleet(con, state, local_mark, mark_utc, now)
            return decisions
        finally:
            if own:
                con.close()

    def _plan_fleet(self, con, state: FleetState, local_mark, mark_utc, now) -> list[dict]:
        """Decide the fleet's closed buckets from state.next_origin on; rows into live_plan."""
        rules = state.rules
        step = pd.Timedelta(minutes=rules.minutes)
        closed = local_mark.floor(step)  # every bucket before it is complete
        if state.next_origin is None:
            self._resume(con, state, closed)
        if state.next_origin > closed:
            return []
        traffic = self._traffic(con, rules.minutes, state.next_origin, closed)
        rows, decisions = [], []
        while state.next_origin <= closed:
            origin = state.next_origin
            started = time.perf_counter()
            values = self._forecast(traffic, rules.minutes, origin, rules.boot + 1)
            before = traffic["requests"].get(origin - step, np.nan)
            decision = state.stepper.step(before, values, False)
            self.compute_s.append(time.perf_counter() - started)
            policy_state = json.dumps(state.stepper.policy.get_state())
            for k, row in enumerate(values):
                rows.append(
                    (state.name, rules.minutes, origin, k + 1, origin + k * step, *row)
                    + (decision["recommended"], decision["provisioned"], decision["serving"])
                    + (None if np.isnan(before) else float(before), state.choice.name)
                    + (policy_state, mark_utc, now)
                )
            decisions.append({"fleet": state.name, "origin": origin, **decision})
            state.next_origin = origin + step
        con.executemany(f"INSERT INTO {SCHEMA}.{PLAN_TABLE} VALUES ({', '.join(['?'] * 16)})", rows)
        return decisions

    def _traffic(self, con, minutes: int, first_origin, closed) -> pd.DataFrame:
        """The feed for origins first_origin .. closed: the warehouse's traffic and the
        follower's complete buckets after it, on a regular grid running a day past `closed`
        (unknown buckets missing); shared by the fleets of one bucket length."""
        key = ("traffic", minutes, first_origin, closed)
        if key not in self._made:
            step = pd.Timedelta(minutes=minutes)
            history = self.history[minutes]
            known_end = history.index[-1] + step if len(history) else first_origin
            feed_start = first_origin - pd.Timedelta(days=FEED_DAYS)
            live = live_traffic(con, minutes, max(known_end, feed_start), closed)
            parts = [part for part in (history[history.index >= feed_start], live) if len(part)]
            traffic = pd.concat(parts) if parts else live
            grid = pd.date_range(feed_start, closed + pd.Timedelta(days=1), freq=step)
            traffic = traffic[~traffic.index.duplicated(keep="last")].reindex(grid)
            missing = traffic["is_missing"].astype("boolean").fillna(True).astype(bool)
            traffic["is_missing"] = missing
            traffic.index.name = "bucket_start"
            self._made[key] = traffic
        return self._made[key]

    def _forecast(self, traffic: pd.DataFrame, minutes: int, origin, steps: int) -> np.ndarray:
        """(steps, 3) yhat, lower, upper from `origin`, the model seeing only buckets before it
        (shared by the fleets of one bucket length and boot)."""
        key = ("forecast", minutes, origin, steps)
        if key not in self._made:
            seen = traffic[traffic.index < origin + steps * pd.Timedelta(minutes=minutes)].copy()
            seen.loc[seen.index >= origin, ["requests", "is_missing"]] = [np.nan, True]
            forecast = self.models[minutes].predict(seen, [(origin, steps)])
            self._made[key] = forecast[["yhat", "yhat_lower", "yhat_upper"]].to_numpy(float)
        return self._made[key]

    def _resume(self, con, state: FleetState, closed: pd.Timestamp) -> None:
        """Start a fleet's stepper: from its last committed decision when the store has one
        within RESUME_WITHIN before `closed` (a restarted planner catches up on the buckets it
        missed), else fresh at `closed` with the fleet the last bucket needed."""
        rules = state.rules
        step = pd.Timedelta(minutes=rules.minutes)
        last = con.execute(
            f"SELECT origin, provisioned, policy_state FROM {SCHEMA}.{PLAN_TABLE} "
            "WHERE fleet = ? AND step = 1 ORDER BY origin DESC LIMIT 1",
            [state.name],
        ).fetchall()
        policy = state.choice.build()
        if last and closed - RESUME_WITHIN <= pd.Timestamp(last[0][0]) + step <= closed:
            origin, provisioned, saved = last[0]
            state.stepper = FleetStepper(policy, rules, provisioned)
            policy.set_state(json.loads(saved))
            state.next_origin = pd.Timestamp(origin) + step
            self.progress(f"{state.name}: resumed after {origin:%Y-%m-%d %H:%M}")
            return
        history = self.history[rules.minutes]
        seen = history["requests"] if len(history) else pd.Series(dtype=float)
        initial = self.initial.get(state.name, fleet_for(seen, rules))
        state.stepper = FleetStepper(policy, rules, initial)
        # a replay decides from its window's start; a deployment from the watermark on
        state.next_origin = closed if self.first_origin is None else self.first_origin


def _mtime(path: Path) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


def _has_plan(con) -> bool:
    """Whether the store holds live_plan yet (the planner creates it at its first decision)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM information_schema.tables "
            "WHERE table_schema = ? AND table_name = ?",
            [SCHEMA, PLAN_TABLE],
        ).fetchall()[0][0]
    )


def newest_plan(store: Path, fleet: str) -> pd.DataFrame | None:
    """The newest decision of a fleet in the store (its rows, one per forecast step), or None
    (no store, no plan yet, or the store busy for longer than a moment)."""
    con = open_read_only(store)
    if con is None:
        return None
    try:
        if not _has_plan(con):
            return None
        rows = con.execute(
            f"SELECT * FROM {SCHEMA}.{PLAN_TABLE} WHERE fleet = $f AND origin = "
            f"(SELECT max(origin) FROM {SCHEMA}.{PLAN_TABLE} WHERE fleet = $f) ORDER BY step",
            {"f": fleet},
        ).df()
    finally:
        con.close()
    return None if rows.empty else rows


def live_status(store: Path, now: dt.datetime, stale_after_s: float) -> dict | None:
    """What the follower and the planner have done, for Dagster and people: the watermark
    (naive UTC) and its age, the lines and requests taken, the files followed, and each fleet's
    newest decision; None without a store (or while it stays busy). Two small queries."""
    con = open_read_only(store)
    if con is None:
        return None
    try:
        state = read_state(con)
        taken = con.execute(
            f"SELECT (SELECT count(*) FROM {SCHEMA}.live_requests), "
            f"(SELECT count(*) FROM {SCHEMA}.live_rejected), "
            f"(SELECT count(*) FROM {SCHEMA}.follower_files)"
        ).fetchall()[0]
        newest = (
            con.execute(
                f"SELECT fleet, max(origin), arg_max(provisioned, origin) "
                f"FROM {SCHEMA}.{PLAN_TABLE} WHERE step = 1 GROUP BY fleet ORDER BY fleet"
            ).fetchall()
            if _has_plan(con)
            else []
        )
    finally:
        con.close()
    mark = state.get("watermark")
    age = None if mark is None else (now - mark).total_seconds()
    return {
        "watermark_utc": None if mark is None else mark.isoformat(),
        "age_s": age,
        "fresh": age is not None and age <= stale_after_s,
        "stale_after_s": stale_after_s,
        "requests_taken": int(taken[0]),
        "rejected_taken": int(taken[1]),
        "files_followed": int(taken[2]),
        "decisions": {
            fleet: {"origin": origin.isoformat(), "servers": int(servers)}
            for fleet, origin, servers in newest
        },
    }
