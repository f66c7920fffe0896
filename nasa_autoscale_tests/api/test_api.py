"""The HTTP API: answers from the warehouse, rejects bad input clearly, writes nothing."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from nasa_autoscale import warehouse
from nasa_autoscale.api.app import MAX_BODY_BYTES, create_app
from nasa_autoscale_tests.servers import free_port, wait_for


@pytest.fixture(scope="module")
def client(served_warehouse):
    return TestClient(create_app(served_warehouse))


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_forecast_returns_the_latest_forecast_with_intervals(client):
    body = client.post("/forecast?horizon=6").json()
    assert body["model"] == "seasonal_naive_week" and body["origin"] == "1995-09-01T00:00:00"
    rows = body["forecast"]
    assert len(rows) == 6 and rows[0]["bucket_start"].startswith("1995-09-01T00:00")
    # which refresh: when forecast_next was made, and from data up to when
    assert body["refresh"] == {
        "forecast_made_at_utc": "2026-11-28T06:00:00",
        "data_through": "1995-08-31T23:55:00",
    }
    assert set(rows[0]) == {"bucket_start", "yhat", "yhat_lower", "yhat_upper"}
    assert all(r["yhat_lower"] <= r["yhat"] <= r["yhat_upper"] for r in rows)
    # conditioned on two observed buckets: the forecast starts after them, rescaled
    plain = client.post("/forecast?horizon=8").json()["forecast"]
    observed = [2 * plain[0]["yhat"], 2 * plain[1]["yhat"]]
    conditioned = client.post("/forecast?horizon=6", json={"recent_loads": observed}).json()
    assert conditioned["conditioned_on"] == 2 and conditioned["level_adjustment"] == 2.0
    assert conditioned["forecast"][0]["bucket_start"] == plain[2]["bucket_start"]
    assert conditioned["forecast"][0]["yhat"] == pytest.approx(2 * plain[2]["yhat"])


def test_recommend_scaling_carries_its_state_across_calls(client):
    first = client.post(
        "/recommend-scaling",
        json={
            "predicted_load": [500, 600],
            "current_servers": 5,
            "policy": "predictive",
        },
    ).json()
    assert first["action"] == "scale_out" and first["target_servers"] == 15  # ceil(600 / 40)
    assert first["chosen_by"] == "asked for" and first["refresh"]["data_through"].startswith(
        "1995-08-31T23:55"
    )
    assert "predictive" in first["reason"]
    # a drop in load: the stabilization window holds the fleet for one more bucket
    second = client.post(
        "/recommend-scaling",
        json={
            "predicted_load": [100, 100],
            "current_servers": 15,
            "policy": "predictive",
            "state": first["state"],
        },
    ).json()
    assert second["recommended"] == 3 and second["target_servers"] == 15
    third = client.post(
        "/recommend-scaling",
        json={
            "predicted_load": [100, 100],
            "current_servers": 15,
            "policy": "predictive",
            "state": second["state"],
        },
    ).json()
    assert third["action"] == "scale_in" and third["target_servers"] == 3
    # a reactive preset keeps its cooldown in the state
    hot = client.post(
        "/recommend-scaling",
        json={
            "predicted_load": [0],
            "current_servers": 2,
            "policy": "reactive_balanced",
            "observed_load": 200,
            "setting": "default",
        },
    ).json()
    assert hot["target_servers"] == 3 and hot["state"]["policy"]["wait"] == 2
    best = client.post(
        "/recommend-scaling", json={"predicted_load": [300], "current_servers": 4}
    ).json()
    assert best["policy"] != "best" and best["setting"] == "realistic"


def test_metrics_and_cost_report(client):
    everything = client.get("/metrics").json()
    assert everything["count"] == 4
    one = client.get("/metrics?protocol=one_step&granularity=5m&model=seasonal_naive_week").json()
    assert one["count"] == 1 and one["metrics"][0]["rmse"] > 0
    assert client.get("/metrics?model=nope").json()["count"] == 0
    report = client.get("/cost-report?setting=realistic").json()
    assert {r["setting"] for r in report["rows"]} == {"realistic"}
    assert report["settings"]["default"]["capacity"] == 100
    assert report["best_policy"]["realistic"] in {r["policy"] for r in report["rows"]}


def test_health_reports_tables_source_and_models(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["data_source"] == "replica"
    assert health["tables"]["forecast_next"] == 288
    assert health["models"]["forecast_next"] == "seasonal_naive_week"


@pytest.mark.parametrize(
    "method, url, payload, status, says",
    [
        ("post", "/forecast?horizon=0", None, 422, "greater than or equal to 1"),
        ("post", "/forecast?horizon=100000", None, 422, "less than or equal to 288"),
        ("post", "/forecast?horizon=abc", None, 422, "valid integer"),
        ("post", "/forecast?horizon=200", {"recent_loads": [1.0] * 100}, 422, "<= 288"),
        ("post", "/forecast", {"recent_loads": [-5]}, 422, "greater than or equal to 0"),
        (
            "post",
            "/recommend-scaling",
            {"predicted_load": [-1], "current_servers": 1},
            422,
            "greater than or equal to 0",
        ),
        (
            "post",
            "/recommend-scaling",
            {"predicted_load": [], "current_servers": 1},
            422,
            "at least 1",
        ),
        (
            "post",
            "/recommend-scaling",
            {"predicted_load": ["many"], "current_servers": 1},
            422,
            "valid number",
        ),
        (
            "post",
            "/recommend-scaling",
            {"predicted_load": [1], "current_servers": "two"},
            422,
            "valid integer",
        ),
        (
            "post",
            "/recommend-scaling",
            {"predicted_load": [1], "current_servers": 1, "policy": "crystal_ball"},
            422,
            "unknown policy",
        ),
        (
            "post",
            "/recommend-scaling",
            {"predicted_load": [1], "current_servers": 1, "colour": "red"},
            422,
            "Extra inputs",
        ),
        ("get", "/metrics?granularity=7m", None, 422, "'1m', '5m' or '15m'"),
        ("get", "/cost-report?setting=cheap", None, 422, "unknown fleet 'cheap'; known: default"),
        ("get", "/scaling/cheap", None, 422, "unknown fleet 'cheap'; known: default"),
        ("get", "/scaling/" + "x" * 65, None, 422, "at most 64 characters"),
        ("get", "/scaling/%27%3B%20DROP%20TABLE", None, 422, "unknown fleet"),
        ("post", "/metrics/prometheus", None, 405, "Method Not Allowed"),
    ],
)
def test_bad_input_gets_a_clear_422(client, method, url, payload, status, says):
    response = getattr(client, method)(url, **({"json": payload} if payload is not None else {}))
    assert response.status_code == status
    assert says in response.text


def test_huge_bodies_get_413_declared_or_streamed(client):
    huge = b'{"predicted_load": [' + b"1," * MAX_BODY_BYTES + b"1]}"
    response = client.post(
        "/recommend-scaling", content=huge, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and "over" in response.json()["detail"]

    def chunks():  # no content-length: the limit applies while it streams
        yield b'{"predicted_load": ['
        for _ in range(200):
            yield b"1," * 1000
        yield b"1]}"

    streamed = client.post(
        "/recommend-scaling", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_no_endpoint_writes_the_warehouse(client, served_warehouse):
    before = digest(served_warehouse)
    client.post("/forecast?horizon=3")
    client.post("/recommend-scaling", json={"predicted_load": [5], "current_servers": 1})
    client.get("/metrics")
    client.get("/cost-report")
    client.get("/health")
    client.get("/scaling/realistic")
    client.get("/metrics/prometheus")
    assert digest(served_warehouse) == before


def test_missing_materializations_give_503_naming_the_asset(tmp_path):
    path = tmp_path / "empty.duckdb"
    warehouse.connect(path).close()  # the ingest tables only
    client = TestClient(create_app(path))
    response = client.post("/forecast")
    assert response.status_code == 503 and "`forecast_next`" in response.json()["detail"]
    response = client.get("/cost-report")
    assert response.status_code == 503 and "`cost_report`" in response.json()["detail"]
    health = client.get("/health").json()
    assert health["status"] == "degraded" and "materialize `forecast_next`" in health["missing"]
    nothing = TestClient(create_app(tmp_path / "absent.duckdb")).get("/metrics")
    assert nothing.status_code == 503 and "make run" in nothing.json()["detail"]


@pytest.mark.slow  # a uvicorn process
def test_a_real_uvicorn_process_serves_on_loopback(served_warehouse):
    port = free_port()
    env = {**os.environ, "NASA_DUCKDB_PATH": str(served_warehouse)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "nasa_autoscale.api.app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        health = wait_for(f"http://127.0.0.1:{port}/health", server)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        docs = httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=5).json()
        assert {"/forecast", "/recommend-scaling", "/metrics", "/cost-report", "/health"} <= set(
            docs["paths"]
        )
        forecast = httpx.post(f"http://127.0.0.1:{port}/forecast?horizon=2", timeout=10)
        assert len(forecast.json()["forecast"]) == 2
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_short_history_is_served_by_the_untuned_predictive_policy(tmp_path):
    """A warehouse whose benchmark was skipped: empty model_metrics and cost_report."""
    import pandas as pd

    from nasa_autoscale import warehouse
    from nasa_autoscale.scaling.sweep import REPORT_COLUMNS

    path = tmp_path / "short.duckdb"
    con = warehouse.connect(path)
    times = pd.date_range("2026-11-24", periods=288, freq="5min")
    warehouse.replace_table(
        con, "traffic_5m", pd.DataFrame({"bucket_start": times, "requests": 100})
    )
    upcoming = pd.DataFrame(
        {
            "model": "seasonal_naive_day",
            "granularity": "5m",
            "origin": times[0],
            "bucket_start": times,
            "yhat": 100.0,
            "yhat_lower": 80.0,
            "yhat_upper": 120.0,
        }
    )
    warehouse.replace_table(con, "forecast_next", upcoming)
    warehouse.replace_table(con, "model_metrics", warehouse.empty_frame(["model", "rmse"]))
    warehouse.replace_table(con, "cost_report", warehouse.empty_frame(REPORT_COLUMNS))
    warehouse.replace_table(con, "recommendation", pd.DataFrame({"setting": ["realistic"]}))
    con.close()
    from fastapi.testclient import TestClient

    from nasa_autoscale.api.app import create_app

    client = TestClient(create_app(path))
    health = client.get("/health").json()
    assert health["missing"] == [] and len(health["skipped"]) == 2
    answer = client.post(
        "/recommend-scaling", json={"predicted_load": [420, 510], "current_servers": 9}
    )
    assert answer.status_code == 200
    body = answer.json()
    assert body["policy"] == "predictive" and body["target_servers"] == 13  # 510 / 40 up
    assert (
        client.post(
            "/recommend-scaling",
            json={"predicted_load": [1], "current_servers": 1, "policy": "hpa"},
        ).status_code
        == 422
    )


def test_health_says_how_fresh_the_data_is(served_warehouse, tmp_path, monkeypatch):
    import datetime as dt

    import pandas as pd

    from nasa_autoscale import warehouse

    # the NASA trace is a fixed range: history, not judged
    fixed = TestClient(create_app(served_warehouse)).get("/health").json()
    assert fixed["freshness"]["newest_bucket"] == "1995-08-31T23:55:00"
    assert fixed["freshness"]["state"].startswith("not judged") and fixed["status"] == "ok"
    # a live site (a start date, no end date): fresh within NASA_STALE_AFTER_HOURS, then stale
    monkeypatch.setenv("NASA_START_DATE", "2026-11-01")
    monkeypatch.delenv("NASA_END_DATE", raising=False)
    monkeypatch.setenv("NASA_STALE_AFTER_HOURS", "3")
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("5min")
    for age_h, state in ((1, "fresh"), (5, "stale")):
        path = tmp_path / f"live{age_h}.duckdb"
        con = warehouse.connect(path)
        newest = now - pd.Timedelta(hours=age_h)
        buckets = pd.date_range(newest - pd.Timedelta("1h"), newest, freq="5min")
        traffic = pd.DataFrame(
            {
                "bucket_start": buckets,
                "requests": 10,
                "is_missing": False,
                "bucket_start_utc": buckets,
            }
        )
        warehouse.replace_table(con, "traffic_5m", traffic)
        con.close()
        health = TestClient(create_app(path)).get("/health").json()
        assert health["freshness"]["state"] == state, health["freshness"]
        assert age_h - 0.2 < health["freshness"]["age_hours"] < age_h + 0.1
    assert health["status"] == "degraded"  # no forecast tables there either


def test_health_names_the_registered_champion_forecast_next_came_from(served_warehouse, tmp_path):
    import shutil

    import duckdb

    assert (
        TestClient(create_app(served_warehouse)).get("/health").json()["models"]["champion"] is None
    )  # a benchmark that registered nothing
    path = tmp_path / "registered.duckdb"
    shutil.copy(served_warehouse, path)
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE nasa.model_metrics ADD COLUMN champion_version VARCHAR")
        con.execute(
            "UPDATE nasa.model_metrics SET champion_version = '3' "
            "WHERE protocol = 'day_ahead' AND granularity = '5m'"
        )
    champion = TestClient(create_app(path)).get("/health").json()["models"]["champion"]
    assert champion == {
        "registered_model": "nasa_autoscale_5m",
        "alias": "champion",
        "version": "3",
        "model": "seasonal_naive_week",
    }


def test_fleets_lists_the_profiles_and_any_fleet_is_a_setting(served_warehouse, tmp_path):
    import dataclasses

    from nasa_autoscale.settings import DEFAULT_FLEETS_PATH, Settings

    path = tmp_path / "fleets.toml"
    path.write_text(
        DEFAULT_FLEETS_PATH.read_text()
        + '\n[[fleet]]\nname = "pods"\nrequests_per_second = 50\nmin_servers = 3\n'
        "max_servers = 400\nprice_per_hour = 0.034\nboot_s = 60\n"
        'scale_in_stabilization_s = 300\nbilling = "second"\n'
    )
    settings = dataclasses.replace(Settings.from_env(), fleets_path=path)
    client = TestClient(create_app(served_warehouse, settings))
    listed = client.get("/fleets").json()
    assert [f["name"] for f in listed["fleets"]] == ["default", "realistic", "pods"]
    assert listed["default"] == "realistic"
    pods = listed["fleets"][2]
    assert (pods["requests_per_second"], pods["max_servers"], pods["boot_s"]) == (50, 400, 60)
    # a fleet the last benchmark did not sweep: the untuned policy, under the fleet's own rules
    answer = client.post(
        "/recommend-scaling",
        json={"predicted_load": [600_000, 600_000], "current_servers": 3, "setting": "pods"},
    ).json()
    assert answer["setting"] == "pods" and answer["chosen_by"].startswith("the untuned")
    # a new fleet decides every minute: 600,000 a minute at 3,000 a server, and no cap of 50
    assert answer["target_servers"] == 200
    unknown = client.post(
        "/recommend-scaling",
        json={"predicted_load": [10], "current_servers": 3, "setting": "nope"},
    )
    assert unknown.status_code == 422
    assert "unknown fleet 'nope'; known: default, realistic, pods" in unknown.text
    costs = client.get("/cost-report").json()
    assert costs["settings"]["pods"]["capacity"] == 3_000
