"""The scale-out configuration: runs on the multiprocess executor with their history in Postgres
(deploy/dagster-postgres.yaml), a server from Debian's packages started here on loopback."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from nasa_autoscale.settings import PROJECT_ROOT
from nasa_autoscale_tests.servers import free_port

pytestmark = pytest.mark.slow  # subprocesses, servers and whole-graph runs

POSTGRES_USER = "postgres"  # Debian's package creates this system user; initdb refuses root


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    command = args if os.geteuid() != 0 else ["runuser", "-u", POSTGRES_USER, "--", *args]
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway Postgres on 127.0.0.1 (installed from Debian's packages when absent)."""
    if _pg_bin() is None:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-q"],
            ["apt-get", "install", "-y", "-q", "postgresql"],
        ):
            done = subprocess.run(command, env=env, capture_output=True, text=True)
            assert done.returncode == 0, f"installing postgresql failed: {done.stderr[-2000:]}"
    bin_dir = _pg_bin()
    # outside pytest's private temp folder, which the postgres user cannot enter
    root = Path(tempfile.mkdtemp(prefix="nasa_pg_"))
    data = root / "data"
    data.mkdir()
    for path in (root, data):
        shutil.chown(path, POSTGRES_USER)
    port = free_port()
    init = _as_postgres([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
    assert init.returncode == 0, init.stderr
    options = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    start = _as_postgres(
        [
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(data / "server.log"),
            "-w",
            "start",
        ]
    )
    assert start.returncode == 0, start.stderr + start.stdout
    try:
        created = _as_postgres(
            [
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "postgres",
                "dagster",
            ]
        )
        assert created.returncode == 0, created.stderr
        yield port
    finally:
        _as_postgres([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def test_runs_use_the_multiprocess_executor_with_postgres_run_storage(
    postgres, replica_dir, tmp_path
):
    import psycopg2

    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    url = f"postgresql+psycopg2://postgres@127.0.0.1:{postgres}/dagster"
    env = {
        **os.environ,
        "NASA_PG_URL": url,
        "DAGSTER_HOME": str(home),
        "NASA_RAW_DIR": str(replica_dir),
        "NASA_DUCKDB_PATH": str(tmp_path / "wh.duckdb"),
    }
    started = time.time()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "asset",
            "materialize",
            "-m",
            "nasa_autoscale.definitions",
            "--select",
            "requests,rejected_lines,traffic_1m,traffic_5m,traffic_15m",
            "--partition",
            "1995-07-13",
        ],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "multiprocess executor" in output.lower()
    con = psycopg2.connect(host="127.0.0.1", port=postgres, user="postgres", dbname="dagster")
    with con, con.cursor() as cursor:
        cursor.execute("SELECT status FROM runs")
        assert [row[0] for row in cursor.fetchall()] == ["SUCCESS"]
        cursor.execute(
            "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
        )
        assert cursor.fetchone()[0] == 5  # requests, rejected_lines, traffic_1m/5m/15m
    con.close()
    assert time.time() - started < 600
