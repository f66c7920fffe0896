"""GET /metrics/prometheus parsed with prometheus-client's own parser, and read as KEDA's
metrics-api scaler reads `format: prometheus` (a PromQL selector as valueLocation: the first
series of that name whose labels match; no match is an error, so its fallback takes over)."""

from __future__ import annotations

import dataclasses
import math

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from nasa_autoscale.api.app import create_app
from nasa_autoscale.settings import Settings
from nasa_autoscale_tests.keda import prometheus_value

KEY = "prometheus-scaler-key-0123"


@pytest.fixture(scope="module")
def page(served_warehouse) -> str:
    client = TestClient(create_app(served_warehouse, api_keys=(KEY,)))
    answer = client.get("/metrics/prometheus", headers={"Authorization": f"Bearer {KEY}"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    assert client.get("/metrics/prometheus").status_code == 401
    return answer.text


def test_every_fleet_has_its_gauges_and_they_agree_with_the_json_signal(page, served_warehouse):
    client = TestClient(create_app(served_warehouse, api_keys=()))
    families = {f.name: f for f in text_string_to_metric_families(page)}
    assert all(family.type == "gauge" for family in families.values())
    for fleet in client.get("/fleets").json()["fleets"]:
        name = fleet["name"]
        signal = client.get(f"/scaling/{name}").json()

        def value(metric, extra="", name=name):
            return prometheus_value(page, f'nasa_autoscale_{metric}{{fleet="{name}"{extra}}}')

        assert value("signal_available") == 1
        assert value("provision_load_rps") == pytest.approx(signal["forecast"]["load_rps"])
        assert value("desired_servers") == signal["desired_servers"]
        assert value("planned_servers") == signal["planned_servers"]
        assert value("observed_load_rps") == pytest.approx(signal["observed"]["load_rps"])
        assert value("server_capacity_rps") == pytest.approx(fleet["requests_per_second"])
        for bucket in ("current", "next"):
            lower, expected, upper = (
                value("forecast_load_rps", f',bucket="{bucket}",bound="{bound}"')
                for bound in ("lower", "expected", "upper")
            )
            assert 0 <= lower <= expected <= upper
        assert value("forecast_load_rps", ',bucket="current",bound="upper"') == pytest.approx(
            signal["forecast"]["current"]["upper_rps"]
        )
        # the shadow mode's scores: the daily path's plans against what came
        assert value("shadow_days") > 0
        # a plan may cost less than the optimum by dropping what the optimum serves
        assert value("shadow_plan_cost_dollars") > 0 and value("shadow_optimum_cost_dollars") > 0
        assert 0 <= value("shadow_dropped_ratio") < 1
        rmse = value("day_ahead_rmse_requests")  # its model label left to match any
        assert math.isfinite(rmse) and rmse > 0


def test_a_stale_fleet_has_no_load_gauges_so_the_scaler_falls_back(served_warehouse):
    live = dataclasses.replace(Settings.from_env(), open_ended=True, stale_after_hours=26.0)
    page = TestClient(create_app(served_warehouse, live, api_keys=())).get("/metrics/prometheus")
    text = page.text
    assert prometheus_value(text, 'nasa_autoscale_signal_available{fleet="realistic"}') == 0
    assert prometheus_value(text, 'nasa_autoscale_data_age_seconds{fleet="realistic"}') > (
        26 * 3600
    )
    for metric in ("provision_load_rps", "desired_servers", "forecast_load_rps"):
        with pytest.raises(KeyError):
            prometheus_value(text, f'nasa_autoscale_{metric}{{fleet="realistic"}}')


def test_the_reader_fails_on_a_series_that_is_not_there(page):
    with pytest.raises(KeyError):
        prometheus_value(page, 'nasa_autoscale_desired_servers{fleet="nope"}')
