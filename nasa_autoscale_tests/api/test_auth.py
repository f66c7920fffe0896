"""API keys: each way KEDA's metrics-api scaler sends one, 401 without, the launcher's refusal to
listen beyond loopback with none, and a bad NASA_API_KEYS stopping the API before it starts."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys

import httpx
import pytest
from fastapi.testclient import TestClient

from nasa_autoscale.api.app import create_app
from nasa_autoscale.api.auth import ApiKeyAuth, api_keys_from_env, is_loopback, key_matches
from nasa_autoscale.settings import SettingsError
from nasa_autoscale_tests.servers import free_port, wait_for

KEY = "k3da-scaler-key-0123456789"
OTHER = "second-key-abcdefghijklmnop"


@pytest.fixture(scope="module")
def guarded(served_warehouse):
    return TestClient(create_app(served_warehouse, api_keys=(KEY, OTHER)))


def basic(password: str, user: str = "keda") -> dict:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-KEY": KEY},  # KEDA's apiKey mode, its default header
        {"x-api-key": OTHER},  # any configured key, header names are case-blind
        {"Authorization": f"Bearer {KEY}"},
        basic(KEY),
    ],
)
def test_each_way_of_sending_a_key_is_let_in(guarded, headers):
    answer = guarded.get("/fleets", headers=headers)
    assert answer.status_code == 200 and answer.json()["fleets"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-KEY": KEY[:-1]},  # a prefix of a key is not the key
        {"X-API-KEY": KEY + "x"},
        {"Authorization": f"Bearer {KEY.upper()}"},
        {"Authorization": f"Token {KEY}"},  # an unknown scheme
        basic("wrong-password-0123456789"),
        {"Authorization": "Basic !!!not-base64"},
    ],
)
def test_no_valid_key_is_a_401_on_every_endpoint(guarded, headers):
    for method, url in (("GET", "/health"), ("GET", "/metrics"), ("POST", "/forecast")):
        answer = guarded.request(method, url, headers=headers)
        assert answer.status_code == 401, (url, headers)
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert "API key" in answer.json()["detail"]


def test_keys_compare_whole_and_only_to_configured_keys():
    assert key_matches(KEY, (OTHER, KEY))
    assert not key_matches(None, (KEY,)) and not key_matches("", (KEY,))
    assert not key_matches(KEY, ())


def test_without_keys_a_request_reaching_a_non_loopback_address_is_refused():
    reached = []

    async def inner(scope, receive, send):
        reached.append(scope["server"])

    sent = []

    async def send(message):
        sent.append(message)

    guard = ApiKeyAuth(inner, keys=())
    for server in (("127.0.0.1", 8000), ("::1", 8000)):
        asyncio.run(guard({"type": "http", "server": server, "headers": []}, None, send))
    assert reached == [("127.0.0.1", 8000), ("::1", 8000)] and not sent
    asyncio.run(guard({"type": "http", "server": ("10.0.0.5", 8000), "headers": []}, None, send))
    assert sent[0]["status"] == 403 and b"NASA_API_KEYS" in sent[1]["body"]
    assert len(reached) == 2


def test_loopback_is_127_slash_8_and_ipv6_one_only():
    assert is_loopback("127.0.0.1") and is_loopback("127.3.2.1") and is_loopback("::1")
    assert is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    assert not is_loopback("example.com") and not is_loopback(None)


@pytest.mark.parametrize(
    "value, says",
    [
        ("short", "key 1 has 5 characters"),
        (f"{KEY},tiny", "key 2 has 4"),
        ("a" * 8 + " " + "b" * 8, "space"),
    ],
)
def test_a_bad_key_list_is_an_error_naming_the_variable(value, says):
    with pytest.raises(SettingsError, match="NASA_API_KEYS") as error:
        api_keys_from_env({"NASA_API_KEYS": value})
    assert says in str(error.value)
    assert api_keys_from_env({"NASA_API_KEYS": f" {KEY} , {OTHER} "}) == (KEY, OTHER)
    assert api_keys_from_env({}) == ()


def launch(args, env):
    return subprocess.run(
        [sys.executable, "-m", "nasa_autoscale.api", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_the_launcher_refuses_beyond_loopback_without_keys_and_bad_keys(served_warehouse):
    env = {k: v for k, v in os.environ.items() if k != "NASA_API_KEYS"}
    env["NASA_DUCKDB_PATH"] = str(served_warehouse)
    open_bind = launch(["--host", "0.0.0.0", "--port", str(free_port())], env)
    assert open_bind.returncode == 2 and "refusing to start on 0.0.0.0" in open_bind.stderr
    bad = launch(["--port", str(free_port())], {**env, "NASA_API_KEYS": "short"})
    assert bad.returncode == 2 and "NASA_API_KEYS: key 1" in bad.stderr


@pytest.mark.slow
def test_a_launched_api_with_a_key_answers_only_with_it(served_warehouse):
    port = free_port()
    env = {**os.environ, "NASA_DUCKDB_PATH": str(served_warehouse), "NASA_API_KEYS": KEY}
    server = subprocess.Popen(
        [sys.executable, "-m", "nasa_autoscale.api", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/fleets"
    try:
        assert wait_for(url, server).status_code == 401
        assert httpx.get(url, headers={"X-API-KEY": KEY}, timeout=10).status_code == 200
        bearer = {"Authorization": f"Bearer {KEY}"}
        assert httpx.get(url, headers=bearer, timeout=10).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
