"""GET /scaling/{fleet} played from KEDA's metrics-api side, by its documented rules: a 200, a
number at the GJSON valueLocation, the key in the header it sends, and an error status (so its
fallback takes over) when the data is stale or the plan does not cover now."""

from __future__ import annotations

import dataclasses
import datetime as dt
import math

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from nasa_autoscale.api.app import create_app
from nasa_autoscale.scaling.signal import NoSignal, scaling_signal
from nasa_autoscale.scaling.simulator import ScalingRules
from nasa_autoscale.settings import Settings
from nasa_autoscale_tests.keda import LOCATIONS, gjson

KEY = "metrics-api-key-0123456789"


@pytest.fixture(scope="module")
def keda_client(served_warehouse):
    return TestClient(create_app(served_warehouse, api_keys=(KEY,)))


def test_keda_reads_a_number_at_each_value_location_for_every_fleet(keda_client):
    fleets = keda_client.get("/fleets", headers={"X-API-KEY": KEY}).json()["fleets"]
    for fleet in fleets:
        answer = keda_client.get(f"/scaling/{fleet['name']}", headers={"X-API-KEY": KEY})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        for location in LOCATIONS:
            value = gjson(body, location)
            assert isinstance(value, int | float) and math.isfinite(value) and value >= 0
        # KEDA's AverageValue on the forecast: ceil(value / targetValue) is the desired count
        replicas = math.ceil(body["forecast"]["load_rps"] / body["server_rps"] - 1e-9)
        bounded = min(max(replicas, fleet["min_servers"]), fleet["max_servers"])
        assert body["desired_servers"] == bounded
        assert body["server_rps"] == pytest.approx(fleet["requests_per_second"], rel=1e-5)
        assert keda_client.get(f"/scaling/{fleet['name']}").status_code == 401


def test_a_stale_refresh_is_an_error_never_an_old_number(served_warehouse):
    live = dataclasses.replace(Settings.from_env(), open_ended=True, stale_after_hours=26.0)
    answer = TestClient(create_app(served_warehouse, live, api_keys=())).get("/scaling/realistic")
    assert answer.status_code == 503 and "older than 26 h" in answer.json()["detail"]
    assert "load_rps" not in answer.text


def test_an_unknown_fleet_is_a_422_listing_the_known_ones(keda_client):
    answer = keda_client.get("/scaling/nope", headers={"X-API-KEY": KEY})
    assert answer.status_code == 422 and "known: " in answer.json()["detail"]


RULES = ScalingRules(capacity=60.0, min_servers=2, max_servers=10, boot_delay_s=120, minutes=1)
START = pd.Timestamp("2026-01-01 10:00")


def plan_of(uppers):
    buckets = pd.date_range(START, periods=len(uppers), freq="1min")
    uppers = pd.Series(uppers, dtype=float)
    return pd.DataFrame(
        {
            "bucket_start": buckets,
            "yhat": uppers * 0.8,
            "yhat_lower": uppers * 0.6,
            "yhat_upper": uppers,
            "servers": 3,
        }
    )


def traffic_of(requests):
    buckets = pd.date_range(
        START - pd.Timedelta(minutes=len(requests)), periods=len(requests), freq="1min"
    )
    return pd.DataFrame({"bucket_start": buckets, "requests": requests, "is_missing": False})


def test_the_signal_is_the_upper_bound_maximised_over_the_boot():
    plan = plan_of([60, 300, 120, 900, 900])  # boot 120 s: now, +1 and +2 minutes count
    now = START + pd.Timedelta(seconds=20)
    signal = scaling_signal(plan, traffic_of([30, 90]), RULES, now, START, None)
    assert signal["forecast"]["load_rps"] == 300 / 60 and signal["forecast"]["buckets"] == 3
    assert signal["desired_servers"] == 5 and signal["planned_servers"] == 3
    assert signal["observed"]["load_rps"] == 90 / 60  # the last complete minute
    current, following = signal["forecast"]["current"], signal["forecast"]["next"]
    assert (current["upper_rps"], current["lower_rps"]) == (1.0, 0.6)
    assert following["bucket_start"] == "2026-01-01T10:01:00" and following["upper_rps"] == 5.0
    big = scaling_signal(plan_of([6000]), traffic_of([1]), RULES, START, START, None)
    low = scaling_signal(plan_of([0]), traffic_of([1]), RULES, START, START, None)
    assert (big["desired_servers"], low["desired_servers"]) == (10, 2)  # the fleet's bounds


def test_no_plan_for_now_or_stale_data_gives_no_signal():
    plan = plan_of([60, 60])
    with pytest.raises(NoSignal, match="does not cover"):
        scaling_signal(plan, traffic_of([1]), RULES, START + pd.Timedelta(hours=1), START, None)
    with pytest.raises(NoSignal, match="does not cover"):
        scaling_signal(plan, traffic_of([1]), RULES, START - pd.Timedelta(minutes=5), START, None)
    late = START + pd.Timedelta(hours=3)
    with pytest.raises(NoSignal, match="older than 2 h"):
        scaling_signal(plan, traffic_of([1]), RULES, late, START, dt.timedelta(hours=2))


def test_a_live_site_serves_the_followers_complete_buckets(served_warehouse, tmp_path):
    """The daily plan shifted to today, and a follower that took today's log so far: /scaling
    observes the follower's last complete bucket and its data runs to the watermark, not to
    the last nightly ingest (midnight)."""
    import shutil

    import duckdb

    from nasa_autoscale.live.follower import Follower

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(served_warehouse, path)
    utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    local_now = utc_now - dt.timedelta(hours=4)  # NASA's logs are -0400
    today = dt.datetime.combine(local_now.date(), dt.time())
    con = duckdb.connect(str(path))
    first = con.sql("SELECT min(bucket_start) FROM nasa.provisioning_plan").fetchall()[0][0]
    shift = today - first
    con.execute("UPDATE nasa.provisioning_plan SET bucket_start = bucket_start + ?", [shift])
    con.execute(
        "UPDATE nasa.traffic_5m SET bucket_start = bucket_start + $s, "
        "bucket_start_utc = bucket_start_utc + $s",
        {"s": shift},
    )
    con.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    minutes = int((local_now - today).total_seconds() // 60)
    lines = [
        f"h{i % 9} - - [{(today + dt.timedelta(minutes=i)):%d/%b/%Y:%H:%M:%S} -0400] "
        f'"GET /{i} HTTP/1.0" 200 10'
        for i in range(minutes)
    ]
    (logs / "access.log").write_text("\n".join(lines) + "\n" if lines else "")
    Follower(logs, path.with_name("warehouse.live.duckdb"), timezone="-0400").poll(now=utc_now)
    live = dataclasses.replace(
        Settings.from_env(), open_ended=True, stale_after_hours=26.0, duckdb_path=path
    )
    answer = TestClient(create_app(path, live, api_keys=())).get("/scaling/realistic")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    through = dt.datetime.fromisoformat(body["data_through"])
    if minutes >= 15:  # a few complete buckets after midnight: the follower's data is served
        assert local_now - through <= dt.timedelta(minutes=10)
        assert body["observed"]["load_rps"] == pytest.approx(5 / 300, abs=1e-5)  # 1 a minute
    else:
        assert through >= today


def test_a_stalled_follower_makes_scaling_a_503_within_minutes(served_warehouse, tmp_path):
    """The follower's watermark is an hour old: NASA_STALE_AFTER_S (15 minutes), not the daily
    path's 26 hours, decides; the autoscaler falls back."""
    import shutil

    import duckdb

    from nasa_autoscale.live.follower import Follower

    path = tmp_path / "warehouse.duckdb"
    shutil.copy(served_warehouse, path)
    utc_now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    today = dt.datetime.combine((utc_now - dt.timedelta(hours=4)).date(), dt.time())
    con = duckdb.connect(str(path))
    first = con.sql("SELECT min(bucket_start) FROM nasa.provisioning_plan").fetchall()[0][0]
    con.execute(
        "UPDATE nasa.provisioning_plan SET bucket_start = bucket_start + ?", [today - first]
    )
    con.execute(
        "UPDATE nasa.traffic_5m SET bucket_start = bucket_start + $s, "
        "bucket_start_utc = bucket_start_utc + $s",
        {"s": today - first},
    )
    con.close()
    logs = tmp_path / "logs"
    logs.mkdir()
    stopped = today - dt.timedelta(hours=1)  # the log's last line: yesterday, 23:00
    (logs / "access.log").write_text(
        f'h - - [{stopped:%d/%b/%Y:%H:%M:%S} -0400] "GET / HTTP/1.0" 200 1\n'
    )
    follower = Follower(logs, path.with_name("warehouse.live.duckdb"), timezone="-0400")
    follower.poll(now=stopped + dt.timedelta(hours=4, seconds=20))  # read then, quiet since
    live = dataclasses.replace(
        Settings.from_env(), open_ended=True, stale_after_hours=26.0, duckdb_path=path
    )
    answer = TestClient(create_app(path, live, api_keys=())).get("/scaling/realistic")
    if utc_now - (stopped + dt.timedelta(hours=4)) > dt.timedelta(minutes=20):
        assert answer.status_code == 503, answer.text
        assert "older than" in answer.json()["detail"]
