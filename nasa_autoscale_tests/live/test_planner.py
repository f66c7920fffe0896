"""The live planner on a site that is not NASA's (nginx combined lines, +0100, today's dates):
it forecasts with the stored model exactly what the model forecasts from the same actuals, its
policy decides as the simulator does, a restart resumes, and /scaling serves its decision."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from nasa_autoscale import warehouse
from nasa_autoscale.features.events import load_events
from nasa_autoscale.forecasting.models import LightGBMDirect
from nasa_autoscale.ingest.load import ingest_days
from nasa_autoscale.ingest.logfiles import find_log_files
from nasa_autoscale.ingest.traffic import whole_days, write_traffic
from nasa_autoscale.live.follower import Follower
from nasa_autoscale.live.planner import PLAN_TABLE, LivePlanner, PlannerError
from nasa_autoscale.scaling.forecasts import MODEL_COLUMNS
from nasa_autoscale.scaling.policies import build
from nasa_autoscale.scaling.recommend import FALLBACK_PARAMS, FALLBACK_POLICY
from nasa_autoscale.scaling.simulator import ScalingRules, simulate

ZONE = dt.timedelta(hours=1)  # the site logs +0100
RULES = {"web": ScalingRules(capacity=60.0, min_servers=1, max_servers=40)}
DAYS = 10


def nginx_lines(start: dt.datetime, end: dt.datetime, seed: int = 0) -> str:
    """Combined-format lines, local time +0100, a daily cycle of 2..14 requests a minute."""
    rng = np.random.default_rng(seed)
    out, minute = [], start
    while minute < end:
        phase = (minute.hour * 60 + minute.minute) / 1440
        count = rng.poisson(8 + 6 * math.sin(2 * math.pi * (phase - 0.3)))
        for k in sorted(rng.integers(0, 60, count)):
            at = minute + dt.timedelta(seconds=int(k))
            out.append(
                f'10.0.{k % 7}.{k % 11} - - [{at:%d/%b/%Y:%H:%M:%S} +0100] "GET /p/{k} '
                f'HTTP/1.1" 200 {100 + k} "-" "curl/8"\n'
            )
        minute += dt.timedelta(minutes=1)
    return "".join(out)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A warehouse of the DAYS whole days before today (site time), a model fitted on them and
    stored in scaling_models, and an empty cost report (the untuned fallback policy)."""
    root = tmp_path_factory.mktemp("shop")
    local_now = dt.datetime.now(dt.UTC).replace(tzinfo=None) + ZONE
    today = dt.datetime.combine(local_now.date(), dt.time())
    old = root / "old"
    old.mkdir()
    (old / "access.log-history").write_text(nginx_lines(today - dt.timedelta(days=DAYS), today))
    path = root / "warehouse.duckdb"
    con = warehouse.connect(path)
    first, last = (today - dt.timedelta(days=DAYS)).date(), (today - dt.timedelta(days=1)).date()
    ingest_days(con, find_log_files(old), first, last, "own logs", progress=lambda _: None)
    write_traffic(con, first, last)
    traffic = whole_days(con, 5, detail=False).set_index("bucket_start")
    model = LightGBMDirect([1, 2], pd.Timestamp(today - dt.timedelta(days=2)), n_estimators=25)
    model.fit(traffic, 5, load_events(None))
    rows = pd.DataFrame(
        [{**row, "window": "test", "minutes": 5, "mlflow_run_id": "r"} for row in model.boosters()]
    )[MODEL_COLUMNS]
    warehouse.replace_table(con, "scaling_models", rows)
    warehouse.replace_table(con, "special_events", load_events(None))
    warehouse.replace_table(con, "cost_report", pd.DataFrame({"setting": [], "policy": []}))
    con.close()
    return {"path": path, "root": root, "today": today, "model": model, "traffic": traffic}


def _follow_until(site, tmp_path, local_end: dt.datetime):
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "access.log").write_text(nginx_lines(site["today"], local_end, seed=1))
    store = tmp_path / "warehouse.live.duckdb"
    Follower(logs, store, timezone="+0100").poll(now=local_end - ZONE + dt.timedelta(seconds=15))
    return store


def test_the_planner_forecasts_and_decides_as_the_benchmark_would(site, tmp_path):
    today = site["today"]
    store = _follow_until(site, tmp_path, today + dt.timedelta(hours=1))
    planner = LivePlanner(site["path"], store, RULES, first_origin=pd.Timestamp(today))
    decisions = planner.plan(now=today - ZONE + dt.timedelta(hours=1, seconds=15))
    assert len(decisions) == 12 + 1  # 00:00 .. 01:00: each bucket the watermark closed
    plan = duckdb.connect(str(store), read_only=True).sql(f"FROM nasa.{PLAN_TABLE}").df()
    # the truth: today's first hour ingested by the daily path, fed to the same fitted model
    truth = whole_days_with_today(site, tmp_path, today)
    origins = pd.date_range(today, today + dt.timedelta(hours=1), freq="5min")
    for origin in origins[:3]:
        seen = truth[truth.index < origin + pd.Timedelta(minutes=10)].copy()
        seen.loc[seen.index >= origin, "requests"] = np.nan
        expected = site["model"].predict(seen, [(origin, 2)])["yhat"].to_numpy()
        got = plan[plan["origin"] == origin].sort_values("step")["yhat"].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-9)
    # the decisions are the simulator's on the same forecasts
    forecasts = np.stack(
        [
            plan[plan["origin"] == o]
            .sort_values("step")[["yhat", "yhat_lower", "yhat_upper"]]
            .to_numpy()
            for o in origins
        ]
    )
    demand = truth["requests"].reindex(origins).to_numpy(float)
    initial = planner.fleets["web"].stepper.initial
    simulated = simulate(
        demand, build(FALLBACK_POLICY, FALLBACK_PARAMS), RULES["web"], forecasts, None, initial
    )
    assert [d["provisioned"] for d in decisions] == simulated["provisioned"].tolist()

    # a restarted planner resumes after the last decision instead of starting over
    store2 = _follow_until(site, tmp_path, today + dt.timedelta(hours=1, minutes=20))
    assert store2 == store
    again = LivePlanner(site["path"], store, RULES)
    later = again.plan(now=today - ZONE + dt.timedelta(hours=1, minutes=20, seconds=15))
    assert [d["origin"] for d in later] == list(
        pd.date_range(today + dt.timedelta(minutes=65), periods=4, freq="5min")
    )


def whole_days_with_today(site, tmp_path, today):
    """The site's traffic with today's first hours ingested as the daily path would."""
    import shutil

    path = tmp_path / "truth.duckdb"
    shutil.copy(site["path"], path)
    con = warehouse.connect(path)
    ingest_days(
        con,
        find_log_files(tmp_path / "logs"),
        today.date(),
        today.date(),
        "own logs",
        progress=lambda _: None,
    )
    write_traffic(con, today.date(), today.date())
    traffic = whole_days(con, 5, detail=False).set_index("bucket_start")
    con.close()
    return traffic


def test_the_api_serves_the_live_decision_and_falls_back_to_the_daily_plan(site, tmp_path):
    """/scaling on a live site: the planner's decision for the current bucket; without one, the
    daily provisioning_plan, and it says which."""
    from nasa_autoscale.api.app import create_app
    from nasa_autoscale.settings import Settings

    utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    local_now = utc_now + ZONE
    today = site["today"]
    if local_now - today < dt.timedelta(minutes=20):
        pytest.skip("too close to the site's midnight for a few complete buckets")
    path = tmp_path / "warehouse.duckdb"
    import shutil

    shutil.copy(site["path"], path)
    con = warehouse.connect(path)
    grid = pd.date_range(today, today + dt.timedelta(days=2), freq="5min", inclusive="left")
    daily = pd.DataFrame(
        {"setting": "web", "bucket_start": grid, "yhat": 100.0, "yhat_lower": 50.0}
    ).assign(yhat_upper=150.0, servers=3)
    warehouse.replace_table(con, "provisioning_plan", daily)
    con.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(nginx_lines(today, local_now, seed=2))
    store = path.with_name("warehouse.live.duckdb")
    fleets_file = tmp_path / "fleets.toml"
    fleets_file.write_text(
        '[[fleet]]\nname = "web"\nrequests_per_minute = 12\nmin_servers = 1\nmax_servers = 40\n'
        "price_per_hour = 0.1\nboot_s = 300\nscale_in_stabilization_s = 300\n"
        'billing = "second"\ndecision_interval_s = 300\n'
    )
    settings = dataclasses.replace(
        Settings.from_env(), open_ended=True, duckdb_path=path, fleets_path=fleets_file
    )
    client = TestClient(create_app(path, settings, api_keys=()))
    Follower(logs, store, timezone="+0100").poll(now=utc_now)
    fallback = client.get("/scaling/web").json()
    assert fallback.get("plan", "").startswith("day_ahead"), fallback
    assert fallback["planned_servers"] == 3
    rules = {"web": settings.fleets()["web"].rules}
    LivePlanner(path, store, rules).plan(now=utc_now)
    served = client.get("/scaling/web").json()
    assert served["plan"].startswith("live"), served
    newest = (
        duckdb.connect(str(store), read_only=True)
        .sql(f"SELECT provisioned FROM nasa.{PLAN_TABLE} ORDER BY origin DESC LIMIT 1")
        .fetchall()[0][0]
    )
    assert served["planned_servers"] == newest


def test_a_planner_without_a_model_says_what_to_run(tmp_path):
    path = tmp_path / "empty.duckdb"
    warehouse.connect(path).close()
    with pytest.raises(PlannerError, match="materialize"):
        LivePlanner(path, tmp_path / "live.duckdb", RULES)


@pytest.mark.slow  # a live process for about a minute
def test_make_live_and_the_api_follow_a_growing_log_through_a_rotation(site, tmp_path):
    """The "done when" of the live path, on a site that is not NASA's: `python -m
    nasa_autoscale.live` follows a log written line by line with the wall clock's times, through
    a logrotate rename; /scaling's data_through stays within a minute of the clock, its plan is
    the live planner's, and the follower took exactly the lines written."""
    import os
    import shutil
    import subprocess
    import sys
    import time

    from nasa_autoscale.api.app import create_app
    from nasa_autoscale.live.follower import taken
    from nasa_autoscale.settings import Settings

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(site["path"], path)
    con = warehouse.connect(path)
    today = site["today"]
    grid = pd.date_range(today, today + dt.timedelta(days=2), freq="5min", inclusive="left")
    daily = pd.DataFrame({"setting": "web", "bucket_start": grid, "yhat": 100.0})
    daily = daily.assign(yhat_lower=50.0, yhat_upper=150.0, servers=3)
    warehouse.replace_table(con, "provisioning_plan", daily)
    con.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    fleets = tmp_path / "fleets.toml"
    fleets.write_text(
        '[[fleet]]\nname = "web"\nrequests_per_minute = 12\nmin_servers = 1\nmax_servers = 40\n'
        "price_per_hour = 0.1\nboot_s = 300\nscale_in_stabilization_s = 300\n"
        'billing = "second"\ndecision_interval_s = 300\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("NASA_")}
    env.update(
        NASA_RAW_DIR=str(logs),
        NASA_DUCKDB_PATH=str(path),
        NASA_FLEETS_PATH=str(fleets),
        NASA_START_DATE=(today - dt.timedelta(days=DAYS)).strftime("%Y-%m-%d"),
        NASA_TIMEZONE="+0100",
    )
    # the morning so far, then a line a second while the follower runs
    (logs / "access.log").write_text(
        nginx_lines(today, dt.datetime.now(dt.UTC).replace(tzinfo=None) + ZONE, seed=3)
    )
    follower = subprocess.Popen(
        [sys.executable, "-m", "nasa_autoscale.live", "--interval", "1"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    settings = dataclasses.replace(
        Settings.from_env(), open_ended=True, duckdb_path=path, fleets_path=fleets
    )
    client = TestClient(create_app(path, settings, api_keys=()))
    served = []
    try:
        for second in range(50):
            now = dt.datetime.now(dt.UTC).replace(tzinfo=None) + ZONE
            with open(logs / "access.log", "a") as stream:
                stream.write(
                    f'10.1.0.{second} - - [{now:%d/%b/%Y:%H:%M:%S} +0100] "GET /live/{second} '
                    f'HTTP/1.1" 200 7 "-" "curl/8"\n'
                )
            if second == 25:  # logrotate: rename, then a new file
                (logs / "access.log").rename(logs / "access.log.1")
                (logs / "access.log").touch()
            if second >= 20 and second % 5 == 0:
                answer = client.get("/scaling/web")
                if answer.status_code == 200:
                    served.append((now, answer.json()))
            time.sleep(1)
        time.sleep(3)  # the last poll
    finally:
        follower.terminate()
        output = follower.communicate(timeout=30)[0].decode(errors="replace")
    assert served, output
    for now, body in served:
        behind = now - dt.datetime.fromisoformat(body["data_through"])
        assert behind <= dt.timedelta(minutes=1), (now, body["data_through"])
    assert served[-1][1]["plan"].startswith("live"), (served[-1][1], output)
    written = sum(
        len(p.read_text().splitlines()) for p in logs.iterdir() if p.name.startswith("access")
    )
    local_day = (dt.datetime.now(dt.UTC).replace(tzinfo=None) + ZONE).date()
    requests, rejected = taken(path.with_name("warehouse.live.duckdb"), local_day)
    if local_day == today.date():  # (not across the site's midnight)
        assert (requests, rejected) == (written, 0), output
