"""The HTTP API: what the graph materialized, for tools. Nothing here trains, refits or writes:
every request opens the warehouse read-only and reads tables the assets wrote.

    make api     # http://127.0.0.1:8000, OpenAPI docs at /docs (python -m nasa_autoscale.api)

With NASA_API_KEYS set, every request needs a key (api/auth.py); without, it answers on loopback
only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Literal

import duckdb
import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Query
from fastapi import Path as FastPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from nasa_autoscale import warehouse
from nasa_autoscale.api.auth import ApiKeyAuth, api_keys_from_env
from nasa_autoscale.api.prometheus import (
    PROMETHEUS_CONTENT_TYPE,
    SCORE_DAYS,
    exposition,
    recent_scores,
)
from nasa_autoscale.forecasting.next import selected_row
from nasa_autoscale.forecasting.protocols import PROTOCOLS
from nasa_autoscale.live.follower import live_observed
from nasa_autoscale.live.planner import newest_plan
from nasa_autoscale.scaling.fleets import rules_of
from nasa_autoscale.scaling.plan import plan_fleet
from nasa_autoscale.scaling.recommend import UnknownPolicy, decide_next, resolve_policy
from nasa_autoscale.scaling.signal import NoSignal, scaling_signal
from nasa_autoscale.scaling.sweep import best_policy
from nasa_autoscale.settings import Settings
from nasa_autoscale.warehouse import SCHEMA

MAX_BODY_BYTES = 256 * 1024
MAX_BUCKETS = 288  # forecast_next holds one day of 5-minute buckets
TABLE_ASSETS = ["traffic_5m", "model_metrics", "forecast_next", "cost_report", "recommendation"]
BENCHMARK_TABLES = ["model_metrics", "cost_report"]

Load = Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)]
StateValue = Annotated[float, Field(ge=-1e15, le=1e15, allow_inf_nan=False)]


class ForecastBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recent_loads: list[Load] = Field(
        default_factory=list,
        max_length=MAX_BUCKETS,
        description="Observed requests of the first buckets after the forecast's origin, oldest "
        "first. The forecast then starts after them, scaled by their ratio to what was forecast "
        "(clipped to 0.5-2).",
    )


class ScalingState(BaseModel):
    model_config = ConfigDict(extra="forbid")
    recent_recommendations: list[Annotated[int, Field(ge=0, le=100_000)]] = Field(
        default_factory=list, max_length=64
    )
    policy: dict[Annotated[str, Field(max_length=32)], StateValue | None] = Field(
        default_factory=dict, max_length=16
    )


class RecommendBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    predicted_load: list[Load] = Field(
        min_length=1,
        max_length=MAX_BUCKETS,
        description="Requests per bucket of the fleet's decision interval (GET /fleets: "
        "decision_interval_s; NASA's fleets decide every 5 minutes, a new fleet every minute) "
        "from the bucket being decided on, as the amount to provision for (pass a high "
        "quantile for headroom).",
    )
    current_servers: int = Field(ge=0, le=100_000)
    policy: str = Field(
        "best",
        max_length=64,
        description="'best' (the policy selected on the validation window) or a cost_report policy",
    )
    setting: str | None = Field(
        None,
        max_length=64,
        description="a fleet of the profiles (GET /fleets); default 'realistic' when there is "
        "one, else the first",
    )
    observed_load: Load | None = Field(None, description="requests in the last bucket")
    spike_flagged: bool = False
    state: ScalingState = Field(default_factory=ScalingState)


class Unavailable(Exception):
    def __init__(self, message: str):
        self.message = message


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; an HTTPException so FastAPI answers it as a 413."""

    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimit:
    """Rejects request bodies over `limit` bytes with 413, declared or streamed."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            return await self._reject(send)
        received = 0

        async def limited():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge(self.limit)
            return message

        try:
            await self.app(scope, limited, send)
        except BodyTooLarge:
            await self._reject(send)

    async def _reject(self, send):
        body = json.dumps({"detail": f"request body over {self.limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _refresh(forecast) -> dict:
    """Which refresh an answer comes from: when forecast_next was made, and from data up to
    when (the bucket before its origin)."""
    made = forecast["made_at"].iloc[0] if "made_at" in forecast else None
    origin = forecast["origin"].iloc[0]
    return {
        "forecast_made_at_utc": None if made is None or made != made else made.isoformat(),
        "data_through": (origin - dt.timedelta(minutes=5)).isoformat(),
    }


# An absolute path (a folder of this machine) in a message: shown as its last part only.
_ABSOLUTE = re.compile(r"(?<![\w.:/])(?:[A-Za-z]:)?(?:/[^\s'\"/,;()]+)+/([^\s'\"/,;()]+)")
_PASSWORD = re.compile(r"(://[^/:@\s]*:)[^@/\s]*@")
_SQLITE = re.compile(r"sqlite:///+(?:[^\s'\"]*/)?")


def public_text(text: str) -> str:
    """`text` as an API caller may see it: a URI's password masked, absolute paths cut to
    their file name (which folder of the server holds what is not the caller's business)."""
    text = _SQLITE.sub("sqlite:///", _PASSWORD.sub(r"\1***@", str(text)))
    return _ABSOLUTE.sub(r"\1", text)


def _json_safe(value):
    """A validation error's context as JSON can carry it (no NaN or infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


async def invalid_request(request, error: RequestValidationError):
    """422 with what is wrong and where, without echoing the values sent (a NaN or infinity
    cannot be written as JSON, and a secret sent by mistake is not repeated)."""
    detail = [
        {"loc": _json_safe(list(e.get("loc", ()))), "msg": e.get("msg"), "type": e.get("type")}
        for e in error.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": detail})


def _records(frame) -> list[dict]:
    return json.loads(frame.to_json(orient="records", date_format="iso"))


def _last_materializations(assets: list[str], prefix: list[str]) -> dict[str, str | None]:
    """When Dagster last materialized each asset (DAGSTER_HOME's run storage), if known; the
    keys start with `prefix` (Settings.asset_prefix)."""
    if not os.environ.get("DAGSTER_HOME"):
        return {}
    try:
        import datetime as dt

        import dagster as dg

        instance = dg.DagsterInstance.get()
        out = {}
        for asset in assets:
            event = instance.get_latest_materialization_event(dg.AssetKey([*prefix, asset]))
            when = None if event is None else dt.datetime.fromtimestamp(event.timestamp, dt.UTC)
            out[asset] = when and when.isoformat()
        return out
    except Exception:  # health must answer even when Dagster's storage cannot be read
        return {}


def freshness(con, settings: Settings, now_utc: dt.datetime) -> dict:
    """The newest 5-minute bucket with data (site time and UTC) and how old its end is. A live
    site (no NASA_END_DATE) is `stale` past settings.stale_after_hours; a fixed date range (the
    NASA trace) is history and not judged."""
    newest, newest_utc = con.execute(
        f"SELECT max(bucket_start), max(bucket_start_utc) FROM {SCHEMA}.traffic_5m "
        "WHERE NOT is_missing"
    ).fetchall()[0]
    if newest_utc is None:
        return {"state": "no data", "newest_bucket": None}
    age_h = (now_utc - (newest_utc + dt.timedelta(minutes=5))).total_seconds() / 3600
    if not settings.open_ended:
        state = f"not judged: a fixed date range ({settings.start_date} .. {settings.end_date})"
    else:
        state = "stale" if age_h > settings.stale_after_hours else "fresh"
    return {
        "state": state,
        "newest_bucket": newest.isoformat(),
        "newest_bucket_utc": newest_utc.isoformat(),
        "age_hours": round(age_h, 2),
        "stale_after_hours": settings.stale_after_hours,
    }


def create_app(
    duckdb_path: Path | None = None,
    settings: Settings | None = None,
    api_keys: tuple[str, ...] | None = None,
) -> FastAPI:
    """The API of the one site, or with a sites file of several (NASA_SITES_PATH), the sites'
    APIs under /sites/<name>/ with /sites and /health (every site's) at the root."""
    settings = settings or Settings.from_env()  # the API's entry point: read once, here
    keys = api_keys_from_env() if api_keys is None else api_keys
    sites = settings.all_sites() if duckdb_path is None else {settings.site: settings}
    one = len(sites) == 1
    app = site_app(next(iter(sites.values())), duckdb_path) if one else sites_app(sites)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    # the outermost: no key (or one for another site), nothing else runs
    app.add_middleware(ApiKeyAuth, keys=keys, site=settings.site if one else None)
    return app


def sites_app(sites: dict[str, Settings]) -> FastAPI:
    """Every site's API mounted at /sites/<name>/ (the same endpoints as a one-site API);
    /sites lists them, /health gives each one's health."""
    app = FastAPI(
        title="nasa_autoscale API (sites)",
        description="One API per site under /sites/<name>/ (its /docs there); /health: every "
        "site's health.",
        version="1.0",
    )
    apps = {name: site_app(settings) for name, settings in sites.items()}
    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.get("/sites", summary="The sites, their dates and their API's root")
    def site_list():
        return [
            {
                "site": name,
                "first_day": settings.start_date,
                "last_day": settings.end_date,
                "live": settings.open_ended,
                "api": f"/sites/{name}/",
            }
            for name, settings in sites.items()
        ]

    @app.get("/health", summary="Every site's health (as /sites/<name>/health gives it)")
    def health():
        each = {name: site.state.health() for name, site in apps.items()}
        states = {body["status"] for body in each.values()}
        status = "ok" if states == {"ok"} else "degraded" if "degraded" in states else "stale"
        return {"status": status, "sites": each}

    for name, site in apps.items():
        app.mount(f"/sites/{name}", site)
    return app


def site_app(settings: Settings, duckdb_path: Path | None = None) -> FastAPI:
    """One site's endpoints (no authentication of its own: create_app wraps it)."""
    path = Path(duckdb_path or settings.duckdb_path)
    fleets = settings.fleets()  # checked whole when the settings were read
    fleet_rules = rules_of(fleets)

    def fleet_named(name: str | None) -> str:
        """The fleet a request names (default plan_fleet's); 422 for one the profiles lack."""
        name = name or plan_fleet(fleets)
        if name not in fleets:
            raise HTTPException(422, f"unknown fleet {name!r}; known: {', '.join(fleets)}")
        return name

    def frame(sql: str, params: list | None = None):
        with warehouse.reading(path) as con:
            return warehouse.read(con, sql, params)

    def latest_forecast():
        """forecast_next as the latest daily refresh wrote it (503 when there is none)."""
        rows = frame(f"SELECT * FROM {SCHEMA}.forecast_next ORDER BY bucket_start")
        if rows.empty:
            raise Unavailable("forecast_next is empty: materialize the asset `forecast_next`")
        return rows

    app = FastAPI(
        title=f"nasa_autoscale API: site {settings.site}",
        description="Forecasts, model metrics, cost report and scaling recommendations from the "
        "materialized warehouse. Read-only: materialize the assets (make run) to refresh.",
        version="1.0",
    )

    app.add_exception_handler(RequestValidationError, invalid_request)

    @app.exception_handler(Unavailable)
    @app.exception_handler(warehouse.WarehouseError)
    async def unavailable(request, error: Exception):
        return JSONResponse(
            status_code=503,
            content={"detail": public_text(getattr(error, "message", str(error)))},
            headers={"Retry-After": "30"},
        )

    @app.post("/forecast", summary="The latest forecast from the best model, with intervals")
    def forecast(
        horizon: Annotated[int, Query(ge=1, le=MAX_BUCKETS, description="buckets")] = 12,
        body: ForecastBody | None = None,
    ):
        recent = (body or ForecastBody()).recent_loads
        if len(recent) + horizon > MAX_BUCKETS:
            raise HTTPException(
                422,
                f"len(recent_loads) + horizon must be <= {MAX_BUCKETS} "
                f"(the day forecast_next holds)",
            )
        rows = latest_forecast()
        level = 1.0
        if recent:
            expected = rows["yhat"].iloc[: len(recent)].sum()
            level = float(np.clip(sum(recent) / expected, 0.5, 2.0)) if expected > 0 else 1.0
        chosen = rows.iloc[len(recent) : len(recent) + horizon].copy()
        for column in ("yhat", "yhat_lower", "yhat_upper"):
            chosen[column] = chosen[column] * level
        return {
            "model": rows["model"].iloc[0],
            "granularity": rows["granularity"].iloc[0],
            "origin": rows["origin"].iloc[0].isoformat(),
            "refresh": _refresh(rows),
            "conditioned_on": len(recent),
            "level_adjustment": level,
            "interval": "80%",
            "forecast": _records(
                chosen.drop(columns=["model", "granularity", "origin", "made_at"], errors="ignore")
            ),
        }

    @app.post("/recommend-scaling", summary="Target servers for the next bucket, with the state")
    def recommend_scaling(body: RecommendBody):
        report = frame(
            "SELECT setting, policy, params, dropped_fraction, cost, selected "
            f"FROM {SCHEMA}.cost_report"
        )
        setting = fleet_named(body.setting)
        try:
            choice = resolve_policy(report, setting, fleet_rules, body.policy)
        except UnknownPolicy as error:
            raise HTTPException(422, str(error)) from None
        name, params, rules, chosen_by = choice.name, choice.params, choice.rules, choice.chosen_by
        policy = choice.build()
        policy.reset()
        try:
            policy.set_state(body.state.policy)
        except ValueError as error:
            raise HTTPException(422, str(error)) from None
        loads = np.asarray(body.predicted_load[: rules.boot + 1], float)
        observed = [] if body.observed_load is None else [body.observed_load]
        fleet = np.full(len(observed), body.current_servers)  # the last bucket ran on this fleet
        decision = decide_next(
            policy,
            rules,
            np.asarray(observed, float),
            fleet,
            fleet,
            body.current_servers,
            # no state sent: the fleet is taken to have been at current_servers all along
            body.state.recent_recommendations or [body.current_servers] * (rules.window - 1),
            np.column_stack([loads, loads, loads]),
            body.spike_flagged,
        )
        return {
            "policy": name,
            "setting": setting,
            "params": params,
            "chosen_by": chosen_by,
            "refresh": _refresh(latest_forecast()),
            **decision,
        }

    def fleet_signal(name: str) -> tuple[dict | None, str | None, float, bool]:
        """(the fleet's signal from the newest refresh, or None and why not; seconds from its
        data's end to now; whether the clock is live). 503 when there is no plan or traffic."""
        rules = fleet_rules[name]
        source = "day_ahead: provisioning_plan, made by the daily path"
        plan = frame(
            "SELECT bucket_start, yhat, yhat_lower, yhat_upper, servers "
            f"FROM {SCHEMA}.provisioning_plan WHERE setting = ? ORDER BY bucket_start",
            [name],
        )
        if plan.empty:
            raise Unavailable(f"no provisioning_plan for {name!r}: materialize `provisioning_plan`")
        observed = frame(
            "SELECT bucket_start, bucket_start_utc, requests, is_missing "
            f"FROM {SCHEMA}.traffic_{rules.minutes}m WHERE bucket_start >= ? ORDER BY bucket_start",
            [plan["bucket_start"].iloc[0] - dt.timedelta(days=2)],
        )
        seen = observed[~observed["is_missing"].astype(bool)]
        if seen.empty:
            raise Unavailable(f"no traffic_{rules.minutes}m before the plan: materialize it")
        newest = seen.iloc[-1]
        data_through = newest["bucket_start"] + dt.timedelta(seconds=rules.bucket_s)
        if settings.open_ended:  # a live site: now is the clock, in the site's time
            offset = newest["bucket_start_utc"] - newest["bucket_start"]
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None) - offset
            stale_after = dt.timedelta(hours=settings.stale_after_hours)
            observed, data_through, following = _with_live(observed, data_through, rules.minutes)
            if following:  # the follower's watermark is the clock's: stale within minutes
                stale_after = dt.timedelta(seconds=settings.stale_after_s)
                plan, source = _live_plan(name, plan, now, rules)
        else:  # a fixed date range (the NASA trace): as of its end, never stale
            now, stale_after = plan["bucket_start"].iloc[0], None
        age = (now - data_through).total_seconds()
        try:
            signal = scaling_signal(plan, observed, rules, now, data_through, stale_after)
        except NoSignal as error:
            return None, str(error), age, settings.open_ended
        return {**signal, "plan": source}, None, age, settings.open_ended

    @app.get(
        "/scaling/{fleet}",
        summary="What an autoscaler scales on now (KEDA metrics-api): forecast, desired, observed",
    )
    def scaling(fleet: Annotated[str, FastPath(max_length=64)]):
        name = fleet_named(fleet)
        signal, why_not, _, live = fleet_signal(name)
        if signal is None:
            return JSONResponse(
                status_code=503, content={"detail": public_text(why_not), "fleet": name}
            )
        return {
            "fleet": name,
            "clock": "live" if live else "history: as of the data's end",
            **signal,
        }

    @app.get(
        "/metrics/prometheus",
        summary="Every fleet's signal, freshness and shadow-mode scores as Prometheus gauges",
        response_class=PlainTextResponse,
    )
    def prometheus_page():
        states = {}
        for name in fleets:
            try:
                states[name] = fleet_signal(name)
            except Unavailable as error:
                states[name] = (None, error.message, None, settings.open_ended)
        scores = recent_scores(frame, SCORE_DAYS)
        body = exposition(states, scores, fleet_rules, settings.stale_after_hours, SCORE_DAYS)
        return PlainTextResponse(body, media_type=PROMETHEUS_CONTENT_TYPE)

    @app.get("/metrics", summary="model_metrics, filterable")
    def metrics(
        model: Annotated[str | None, Query(max_length=64)] = None,
        granularity: Literal["1m", "5m", "15m"] | None = None,
        protocol: Literal[PROTOCOLS] | None = None,
    ):
        where, params = [], []
        for column, value in (
            ("model", model),
            ("granularity", granularity),
            ("protocol", protocol),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = f"SELECT * FROM {SCHEMA}.model_metrics"
        sql += (" WHERE " + " AND ".join(where)) if where else ""
        rows = frame(sql + " ORDER BY granularity, protocol, rmse", params)
        return {"count": len(rows), "metrics": _records(rows)}

    @app.get("/cost-report", summary="cost_report and the simulation parameters")
    def cost_report(setting: Annotated[str | None, Query(max_length=64)] = None):
        rows = frame(f"SELECT * FROM {SCHEMA}.cost_report")
        if setting:
            rows = rows[rows["setting"] == fleet_named(setting)]
        return {
            # the default fleet's budget (each fleet's is in settings[...].dropped_budget)
            "sla_dropped_fraction": fleets[plan_fleet(fleets)].rules.dropped_budget,
            # each fleet's simulator rules (capacity per decision interval, ...) and its profile
            "settings": {
                name: {**fleet.rules.as_dict(), **fleet.as_dict()} for name, fleet in fleets.items()
            },
            "best_policy": {name: best_policy(rows, name) for name in dict.fromkeys(rows.setting)},
            "rows": _records(rows),
        }

    @app.get("/fleets", summary="The fleet profiles the graph decides for, with their rules")
    def fleet_profiles():
        return {
            "source": settings.fleets_path.name,
            "default": plan_fleet(fleets),
            "fleets": [fleet.as_dict() for fleet in fleets.values()],
        }

    @app.get("/health", summary="Warehouse and model availability, data source, freshness")
    def health():
        tables, source, model, fresh = {}, None, None, {"state": "unknown"}
        champion = None
        try:
            with warehouse.reading(path) as con:
                tables = {asset: warehouse.row_count(con, asset) for asset in TABLE_ASSETS}
                source = warehouse.data_source(con)
                fresh = freshness(con, settings, dt.datetime.now(dt.UTC).replace(tzinfo=None))
                if tables.get("forecast_next"):
                    model = con.execute(
                        f"SELECT any_value(model) FROM {SCHEMA}.forecast_next"
                    ).fetchall()[0][0]
                champion = _champion(con)
            warehouse_state = "ok"
        except (warehouse.WarehouseError, duckdb.Error) as error:
            warehouse_state = public_text(str(error))
        # The benchmark's tables are materialized empty while the history is too short for it.
        skipped = [asset for asset in BENCHMARK_TABLES if tables.get(asset) == 0]
        missing = [asset for asset, rows in tables.items() if not rows and asset not in skipped]
        mlflow_db = settings.mlflow_uri.removeprefix("sqlite:///")
        status = "ok" if warehouse_state == "ok" and not missing else "degraded"
        return {
            "status": "stale" if status == "ok" and fresh["state"] == "stale" else status,
            "warehouse": {"file": path.name, "state": warehouse_state},
            "tables": tables,
            "missing": [f"materialize `{asset}`" for asset in missing],
            "skipped": [
                f"`{asset}` is empty: the history is too short for the benchmark "
                "(reports/benchmark.md says how many more days it needs)"
                for asset in skipped
            ],
            "data_source": source,
            "freshness": fresh,
            "models": {
                "forecast_next": model,
                # the registered model forecast_next was made from (the daily path loads it)
                "champion": champion,
                "mlflow_store": public_text(settings.mlflow_uri),
                "mlflow_store_exists": Path(mlflow_db).exists(),
            },
            "last_materialization": _last_materializations(TABLE_ASSETS, settings.asset_prefix()),
            "site": settings.site,
        }

    def _live_plan(name: str, plan: pd.DataFrame, now: dt.datetime, rules):
        """(the plan to serve, where it comes from): the live planner's newest decision when it
        covers the current bucket (live/planner.py), else the daily path's provisioning_plan
        (the fallback while the planner is behind or down)."""
        rows = newest_plan(settings.live_store, name)
        current = pd.Timestamp(now).floor(pd.Timedelta(seconds=rules.bucket_s))
        if rows is None or current not in set(rows["bucket_start"]):
            return plan, "day_ahead: provisioning_plan (the live planner has no decision for now)"
        live = rows[["bucket_start", "yhat", "yhat_lower", "yhat_upper"]].copy()
        live["servers"] = rows["provisioned"]
        origin = pd.Timestamp(rows["origin"].iloc[0])
        return live, (
            f"live: {rows['policy'].iloc[0]} decided at {origin:%Y-%m-%d %H:%M} from the "
            "forecast made at the watermark"
        )

    def _with_live(observed, data_through, minutes: int):
        """The warehouse's traffic and, after it, the live follower's complete buckets (those
        that ended by its watermark, live/follower.live_observed); data_through moves to the
        watermark; and whether a follower is there. Without one, as they were."""
        live = live_observed(settings.live_store, minutes)
        if live is None:
            return observed, data_through, False
        buckets, mark = live
        newer = buckets[buckets["bucket_start"] >= data_through]
        if len(newer):
            observed = pd.concat([observed, newer], ignore_index=True)
        # the data is complete up to the watermark, whether or not a bucket has ended since
        return observed, max(data_through, mark.to_pydatetime()), True

    app.state.health = health
    return app


def _champion(con) -> dict | None:
    """The 5-minute champion's registry name and version, from model_metrics' selected
    day-ahead row (None before a benchmark that registered one)."""
    rows = selected_row(con)
    if rows.empty or "champion_version" not in rows or rows["champion_version"].isna().all():
        return None
    return {
        "registered_model": "nasa_autoscale_5m",
        "alias": "champion",
        "version": str(rows["champion_version"].iloc[0]),
        "model": rows["model"].iloc[0],
    }


app = create_app()
