"""A real Prometheus server (Debian's `prometheus`, installed when absent, started here on
loopback) scrapes /metrics/prometheus with an API key, and the PromQL queries docs/keda.md gives
KEDA's prometheus scaler return the numbers GET /scaling serves."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from nasa_autoscale_tests.servers import free_port, wait_for

pytestmark = pytest.mark.slow  # two server processes
DOCS = Path(__file__).parents[2] / "docs" / "keda.md"
KEY = "prometheus-scrape-key-0123456789"


def _prometheus() -> str:
    found = shutil.which("prometheus")
    if found is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "prometheus"],
        ):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"installing prometheus failed: {done.stderr[-2000:]}"
        found = shutil.which("prometheus")
    assert found, "Debian's prometheus package is needed (apt-get install prometheus)"
    return found


def documented_queries() -> dict[str, str]:
    """The PromQL queries of docs/keda.md's prometheus-scaler triggers, by the /scaling field
    each stands for (the comment after the query names it)."""
    found = re.findall(r"query: '([^']+)'\s+# (\S+)", DOCS.read_text())
    assert found, "docs/keda.md gives no PromQL query for KEDA's prometheus scaler"
    return {field: query for query, field in found}


def test_prometheus_scrapes_with_the_key_and_the_documented_queries_give_the_scaling_numbers(
    served_warehouse, tmp_path
):
    binary = _prometheus()
    api_port, prom_port = free_port(), free_port()
    env = {**os.environ, "NASA_DUCKDB_PATH": str(served_warehouse), "NASA_API_KEYS": KEY}
    api = subprocess.Popen(
        [sys.executable, "-m", "nasa_autoscale.api", "--port", str(api_port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    root = Path(tempfile.mkdtemp(prefix="nasa_prom_"))
    (root / "key").write_text(KEY)
    (root / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        "  - job_name: nasa-autoscale\n"
        "    metrics_path: /metrics/prometheus\n"
        f"    authorization: {{credentials_file: {root / 'key'}}}\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{api_port}']}}]\n"
    )
    prometheus = subprocess.Popen(
        [
            binary,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base, headers = f"http://127.0.0.1:{api_port}", {"X-API-KEY": KEY}
    try:
        assert wait_for(f"{base}/fleets", api).status_code == 401
        wait_for(f"http://127.0.0.1:{prom_port}/-/ready", prometheus)
        answer = httpx.get(f"{base}/scaling/realistic", headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        served = answer.json()
        values = {
            "forecast.load_rps": served["forecast"]["load_rps"],
            "planned_servers": served["planned_servers"],
            "desired_servers": served["desired_servers"],
        }
        queries = documented_queries()
        assert set(queries) <= set(values)
        for field, documented in queries.items():
            query = documented.replace('fleet="pods"', 'fleet="realistic"')
            result = _query_until_present(prom_port, query, prometheus)
            assert float(result) == pytest.approx(values[field]), (field, query)
        # the scrape authenticated: the target is up, and without the key the page is a 401
        assert float(_query_until_present(prom_port, 'up{job="nasa-autoscale"}', prometheus)) == 1
        assert httpx.get(f"{base}/metrics/prometheus", timeout=30).status_code == 401
    finally:
        for process in (prometheus, api):
            process.terminate()
            process.wait(timeout=20)
        shutil.rmtree(root, ignore_errors=True)


def _query_until_present(port: int, query: str, process, seconds: float = 60) -> str:
    """The first value of an instant PromQL query, waiting for the scrapes to bring one."""
    deadline = time.time() + seconds
    while True:
        body = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/query", params={"query": query}, timeout=10
        ).json()
        assert body["status"] == "success", body
        if body["data"]["result"]:
            return body["data"]["result"][0]["value"][1]
        assert process.poll() is None, process.stdout.read().decode(errors="replace")
        assert time.time() < deadline, f"{query} gave no value within {seconds} s"
        time.sleep(0.5)
