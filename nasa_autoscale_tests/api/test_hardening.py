"""Bad input never makes the API fail (no 500), answers hold no secrets and no server paths,
and keys are checked whole: every key a request carries, scoped to its site, ASCII only."""

from __future__ import annotations

import itertools
import json

import pytest
from fastapi.testclient import TestClient

from nasa_autoscale.api.app import create_app, public_text
from nasa_autoscale.api.auth import MAX_HEADER_BYTES, api_keys_from_env
from nasa_autoscale.settings import Settings, SettingsError

KEY = "k3da-scaler-key-0123456789"
SHOP = "shop-only-key-abcdefghijkl"
BAD_NUMBERS = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1e308", "-5", "-1e308"]


@pytest.fixture(scope="module")
def client(served_warehouse):
    return TestClient(create_app(served_warehouse), raise_server_exceptions=False)


def raw_post(client, url: str, text: str):
    return client.post(url, content=text, headers={"content-type": "application/json"})


def bodies() -> list[tuple[str, str]]:
    """(route, JSON text) with one field set to a bad number: every numeric field of every
    body, every list element, and the policy state's values."""
    base = {"predicted_load": [10, 20], "current_servers": 2, "policy": "predictive"}
    out = []
    for bad in BAD_NUMBERS:
        out.append(("/forecast", f'{{"recent_loads": [1, {bad}]}}'))
        rest = json.dumps({k: v for k, v in base.items() if k != "predicted_load"})[1:-1]
        out.append(("/recommend-scaling", f'{{"predicted_load": [{bad}], {rest}}}'))
        for field in ("current_servers", "observed_load"):
            body = json.dumps({**base, field: 0})
            out.append(("/recommend-scaling", body.replace(f'"{field}": 0', f'"{field}": {bad}')))
        for key in ("log_m", "planned", "wait", "target", "anything"):
            state = json.dumps({**base, "state": {"policy": {key: 0}}})
            out.append(("/recommend-scaling", state.replace(f'"{key}": 0', f'"{key}": {bad}')))
        state = json.dumps({**base, "state": {"recent_recommendations": [0]}})
        out.append(("/recommend-scaling", state.replace("[0]", f"[{bad}]")))
    return out


def test_every_bad_number_in_every_field_is_a_4xx_never_a_500(client):
    answers = [raw_post(client, route, text) for route, text in bodies()]
    failed = [key for key, a in zip(bodies(), answers, strict=True) if a.status_code >= 500]
    assert not failed, f"a 500 from input: {failed[:3]}"
    for (route, text), answer in zip(bodies(), answers, strict=True):
        if answer.status_code == 200:  # only values a policy can take: finite and in range
            assert "NaN" not in text and "Infinity" not in text and "1e309" not in text
            continue
        assert answer.status_code == 422, (route, text, answer.text)
        answer.json()  # the body is JSON (a NaN echoed back would not be)
    assert sum(a.status_code == 422 for a in answers) >= len(answers) * 3 // 4


def test_the_state_of_a_policy_is_checked_with_the_reason(client):
    body = {"predicted_load": [10], "current_servers": 2, "policy": "predictive"}
    answer = client.post("/recommend-scaling", json={**body, "state": {"policy": {"log_m": 900}}})
    assert answer.status_code == 422 and "log_m" in answer.json()["detail"]


def test_query_parameters_out_of_range_are_4xx(client):
    for query in ("horizon=NaN", "horizon=1e309", "horizon=-1", "horizon=99999999999999999999"):
        assert client.post(f"/forecast?{query}").status_code == 422, query


def test_answers_show_no_secret_and_no_server_path(served_warehouse, tmp_path):
    settings = Settings.from_env()
    import dataclasses

    secret = dataclasses.replace(
        settings, mlflow_uri="postgresql://mlflow:hunter2-secret@db.internal:5432/mlflow"
    )
    client = TestClient(create_app(served_warehouse, settings=secret))
    health = client.get("/health").text
    assert "hunter2" not in health and "mlflow:***@db.internal" in health
    assert str(served_warehouse.parent) not in health
    fleets = client.get("/fleets").json()
    assert fleets["source"] == "fleets.toml"
    gone = TestClient(create_app(tmp_path / "nowhere" / "warehouse.duckdb", settings=secret))
    answer = gone.get("/scaling/realistic")
    assert answer.status_code == 503 and str(tmp_path) not in answer.text


def test_public_text_masks_passwords_and_cuts_paths():
    assert public_text("s3://k:secret@b/x") == "s3://k:***@b/x"
    assert public_text("open /srv/data/w.duckdb failed") == "open w.duckdb failed"
    assert public_text("sqlite:////srv/data/mlflow.db") == "sqlite:///mlflow.db"
    assert public_text("relative/path stays") == "relative/path stays"


@pytest.fixture(scope="module")
def guarded(served_warehouse):
    return TestClient(create_app(served_warehouse, api_keys=(KEY,)))


def test_an_empty_x_api_key_does_not_hide_a_valid_bearer(guarded):
    headers = {"X-API-KEY": "", "Authorization": f"Bearer {KEY}"}
    assert guarded.get("/fleets", headers=headers).status_code == 200
    wrong = {"X-API-KEY": "wrong-key-wrong-key-wrong", "Authorization": f"Bearer {KEY}"}
    assert guarded.get("/fleets", headers=wrong).status_code == 200  # one valid key suffices
    assert guarded.get("/fleets", headers={"X-API-KEY": ""}).status_code == 401


def test_headers_past_the_limit_are_refused(guarded):
    big = {"X-API-KEY": KEY, "X-Padding": "a" * (MAX_HEADER_BYTES + 1)}
    assert guarded.get("/fleets", headers=big).status_code == 431
    assert guarded.get("/fleets", headers={"X-API-KEY": KEY}).status_code == 200


@pytest.mark.parametrize(
    "value, says",
    [
        ("kéy-with-an-accent-0123456", "not ASCII"),
        ("shop:short", "key 1 has 5 characters"),
    ],
)
def test_keys_must_be_ascii_and_long_whatever_their_scope(value, says):
    with pytest.raises(SettingsError, match=says):
        api_keys_from_env({"NASA_API_KEYS": value})
    assert api_keys_from_env({"NASA_API_KEYS": f"shop:{SHOP},*:{KEY}"}) == (
        f"shop:{SHOP}",
        f"*:{KEY}",
    )


def test_a_key_scoped_to_a_site_opens_that_site_only(served_warehouse):
    settings = Settings.from_env()
    import dataclasses

    for site, code in (("shop", 200), ("other", 403)):
        one = dataclasses.replace(settings, site=site)
        client = TestClient(create_app(served_warehouse, settings=one, api_keys=(f"shop:{SHOP}",)))
        assert client.get("/fleets", headers={"X-API-KEY": SHOP}).status_code == code
    admin = TestClient(
        create_app(served_warehouse, settings=settings, api_keys=(f"shop:{SHOP}", f"*:{KEY}"))
    )
    assert admin.get("/fleets", headers={"X-API-KEY": KEY}).status_code == 200


def test_request_site_reads_the_sites_path():
    from nasa_autoscale.api.auth import request_site

    assert request_site("/sites/shop/scaling/x", None) == "shop"
    assert request_site("/health", None) is None and request_site("/sites", None) is None
    assert request_site("/anything", "main") == "main"


def test_every_combination_of_key_headers_is_decided_without_error(guarded):
    values = ["", KEY, "x" * 20, "é"]
    for api_key, bearer in itertools.product(values, values):
        headers = {"X-API-KEY": api_key, "Authorization": f"Bearer {bearer}"}
        headers = {k: v.encode("utf-8") for k, v in headers.items()}  # raw bytes, as sent
        code = guarded.get("/fleets", headers=headers).status_code
        assert code == (200 if KEY in (api_key, bearer) else 401), headers


@pytest.mark.parametrize("port", ["abc", "0", "65536", "-1", "1e3"])
def test_a_bad_port_stops_the_launcher_with_a_message(port, monkeypatch, capsys):
    from nasa_autoscale.api.__main__ import main

    monkeypatch.setenv("NASA_API_PORT", port)
    assert main([]) == 2
    assert "NASA_API_PORT" in capsys.readouterr().err
    assert main(["--port", port]) == 2
    assert "--port" in capsys.readouterr().err
