"""Many sites in one deployment (sites.py): the sites file checked whole, each site's own
warehouse, store, keys and lake partition, the API and the workspace per site, and two sites
through the dagster CLI at once on an S3 lake."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from nasa_autoscale import warehouse
from nasa_autoscale.api.app import create_app
from nasa_autoscale.resources import WarehouseResource
from nasa_autoscale.settings import PROJECT_ROOT, SAMPLES_DIR, Settings, SettingsError
from nasa_autoscale.sites import SiteError, load_sites, workspace

USASK = SAMPLES_DIR / "formats" / "usask-sample" / "usask_access_log"  # common, -0600, 4 days
HACKERS = SAMPLES_DIR / "formats" / "basjes-hackers" / "hackers-access.log"  # combined, +0100
KEY = "a-key-of-at-least-16-characters"


def sites_file(
    tmp_path: Path, extra: str = "", first=("usask", USASK, "1995-06-01", "1995-06-04")
) -> Path:
    """Two sites: by default neither NASA's, the University of Saskatchewan's Common Log Format
    at -0600, and a personal site's combined log at +0100."""
    name, source, start, end = first
    for site, log in ((name, source), ("hackers", HACKERS)):
        folder = tmp_path / "logs" / site
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, folder / "access.log")
    path = tmp_path / "sites.toml"
    path.write_text(
        f"""
[[site]]
name = "{name}"
raw_dir = "logs/{name}"
start_date = "{start}"
end_date = "{end}"

[[site]]
name = "hackers"
raw_dir = "logs/hackers"
log_format = "combined"
events = "none"
start_date = "2015-10-25"
end_date = "2015-10-30"
{extra}"""
    )
    return path


@pytest.fixture
def two_sites(tmp_path, monkeypatch) -> Path:
    path = sites_file(tmp_path)
    monkeypatch.setenv("NASA_SITES_PATH", str(path))
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(tmp_path / "data" / "warehouse.duckdb"))
    monkeypatch.setenv("NASA_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.delenv("NASA_SITE", raising=False)
    monkeypatch.delenv("NASA_LAKE", raising=False)
    monkeypatch.delenv("NASA_MLFLOW_URI", raising=False)
    return path


def test_each_site_has_its_own_files_and_dates_and_shares_the_lake(two_sites, tmp_path):
    first = Settings.from_env()  # no NASA_SITE: the file's first
    sites = first.all_sites()
    assert list(sites) == ["usask", "hackers"] and first == sites["usask"]
    usask, hackers = sites["usask"], sites["hackers"]
    data = tmp_path / "data"
    assert hackers.duckdb_path == data / "sites" / "hackers" / "warehouse.duckdb"
    assert hackers.mlflow_uri == f"sqlite:///{data / 'sites' / 'hackers' / 'mlflow.db'}"
    assert hackers.reports_dir == tmp_path / "reports" / "hackers"
    assert usask.duckdb_path != hackers.duckdb_path and usask.lake == hackers.lake == str(
        data / "lake"
    )
    assert (hackers.start_date, hackers.end_date, hackers.open_ended) == (
        "2015-10-25",
        "2015-10-30",
        False,
    )
    assert hackers.log_format == "combined" and hackers.events_path is None
    assert hackers.raw_dir == tmp_path / "logs" / "hackers"
    assert usask.events_path is not None  # not named: the environment's (NASA's events)
    assert hackers.asset_prefix() == ["hackers"]


def test_without_a_sites_file_the_environment_is_the_one_site(monkeypatch):
    monkeypatch.delenv("NASA_SITES_PATH", raising=False)
    settings = Settings.from_env()
    assert settings.asset_prefix() == [] and list(settings.all_sites()) == [settings.site]


@pytest.mark.parametrize(
    "extra, words",
    [
        ('[[site]]\nname = "Bad Name"\nraw_dir = "logs"', ["site 3", "name", "Bad Name"]),
        ('[[site]]\nname = "x"', ["'x'", "raw_dir is required"]),
        ('[[site]]\nname = "x"\nraw_dir = "nowhere"', ["'x'", "raw_dir", "not a folder"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\ntimezone = "Mars/Base"', ["'x'", "timezone"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nlog_format = "$nothing"', ["'x'", "log_format"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nevents = "no.csv"', ["'x'", "events"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nfleets = "sites.toml"', ["'x'", "fleets"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nstart_date = "1 May"', ["'x'", "start_date"]),
        (
            '[[site]]\nname = "x"\nraw_dir = "logs"\nstart_date = "2026-05-02"\n'
            'end_date = "2026-05-01"',
            ["'x'", "end_date", "before"],
        ),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nend_date = "2026-05-01"', ["'x'", "start_date"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nzone = "UTC"', ["site 3", "unknown", "zone"]),
        ('[[site]]\nname = "x"\nraw_dir = "logs"\nstart_date = 2026-05-01', ["start_date"]),
        ('[[site]]\nname = "usask"\nraw_dir = "logs"', ["site 3", "'usask'", "twice"]),
        ("[other]\nname = 'x'", ["unknown top-level", "other"]),
    ],
)
def test_a_bad_value_in_the_sites_file_fails_before_any_work_naming_it(
    tmp_path, monkeypatch, extra, words
):
    path = sites_file(tmp_path, extra)
    with pytest.raises(SiteError) as error:
        load_sites(path)
    for word in [str(path), *words]:
        assert word in str(error.value)
    monkeypatch.setenv("NASA_SITES_PATH", str(path))
    with pytest.raises(SettingsError):  # and so the settings: nothing starts
        Settings.from_env()


def test_the_good_file_loads(tmp_path):  # the same file without the bad part: the check can pass
    assert list(load_sites(sites_file(tmp_path))) == ["usask", "hackers"]


def test_a_site_the_file_lacks_and_a_shared_mlflow_store_are_refused(two_sites, monkeypatch):
    monkeypatch.setenv("NASA_SITE", "shop")
    with pytest.raises(SettingsError, match="NASA_SITE='shop' is not a site of .*usask, hackers"):
        Settings.from_env()
    monkeypatch.setenv("NASA_SITE", "hackers")
    assert Settings.from_env().site == "hackers"
    monkeypatch.setenv("NASA_MLFLOW_URI", "sqlite:///shared.db")
    with pytest.raises(SettingsError, match="NASA_MLFLOW_URI cannot be set with NASA_SITES_PATH"):
        Settings.from_env()


def test_sites_in_one_lake_each_read_their_own(two_sites, tmp_path):
    from nasa_autoscale.ingest.load import ingest_days

    sites = Settings.from_env().all_sites()
    counts = {}
    for name, settings in sites.items():
        resource = WarehouseResource(
            duckdb_path=str(settings.duckdb_path), lake=settings.lake, site=name
        )
        days = (
            dt.date.fromisoformat(settings.start_date),
            dt.date.fromisoformat(settings.end_date),
        )
        with resource.for_ingest() as (con, hold):
            summary = ingest_days(con, sorted(settings.raw_dir.iterdir()), *days, "real", hold=hold)
        counts[name] = summary.requests + summary.rejected
    assert counts == {"usask": 400, "hackers": 3456}  # every line of each log
    for name, settings in sites.items():
        con = warehouse.connect(settings.duckdb_path, read_only=True)
        rows = con.sql("SELECT site, count(*) FROM nasa.requests GROUP BY site").fetchall()
        con.close()
        assert rows == [(name, counts[name])]


def test_the_api_serves_each_site_under_its_name(two_sites):
    client = TestClient(create_app(api_keys=(KEY,)))
    assert client.get("/sites").status_code == 401  # the key guards every site too
    assert client.get("/sites/hackers/health").status_code == 401
    headers = {"X-API-KEY": KEY}
    listed = client.get("/sites", headers=headers).json()
    assert [(s["site"], s["first_day"], s["api"]) for s in listed] == [
        ("usask", "1995-06-01", "/sites/usask/"),
        ("hackers", "2015-10-25", "/sites/hackers/"),
    ]
    health = client.get("/health", headers=headers).json()
    assert set(health["sites"]) == {"usask", "hackers"} and health["status"] == "degraded"
    one = client.get("/sites/hackers/health", headers=headers).json()
    # its own warehouse, named without the server's folders (answers hold no paths)
    assert one["site"] == "hackers" and one["warehouse"]["file"] == "warehouse.duckdb"
    assert "/sites/hackers/" not in str(one)
    assert client.get("/sites/shop/health", headers=headers).status_code == 404


def test_the_workspace_has_a_code_location_per_site(two_sites, tmp_path):
    out = workspace(two_sites, tmp_path / "home")
    text = out.read_text()
    assert text.count("python_file:") == 2 and "location_name: hackers" in text
    loader = (tmp_path / "home" / "sites" / "hackers.py").read_text()
    assert "os.environ['NASA_SITE'] = 'hackers'" in loader
    assert f"os.environ['NASA_SITES_PATH'] = {str(two_sites)!r}" in loader


def _keys(env: dict) -> list[str]:
    code = (
        "from nasa_autoscale.definitions import defs; "
        "print('\\n'.join(k.to_user_string() for k in defs.resolve_all_asset_keys()))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


@pytest.mark.slow
def test_a_sites_asset_keys_start_with_its_name_and_one_sites_are_bare(two_sites):
    env = {**os.environ, "NASA_SITE": "hackers"}
    keys = _keys(env)
    assert "hackers/requests" in keys and all(k.startswith("hackers/") for k in keys)
    env.pop("NASA_SITES_PATH")
    env.pop("NASA_SITE")
    assert "requests" in _keys(env)


def _dagster(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "dagster", *args, "-m", "nasa_autoscale.definitions"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _all_ok(runs: list[subprocess.Popen]) -> None:
    outputs = [run.communicate(timeout=900)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]


def test_two_sites_on_an_s3_lake_run_at_once_with_every_line_accounted(
    tmp_path, s3_lake, monkeypatch, replica_dir
):
    """Both sites' make run (raw, ingest, analysis) and daily path through the dagster CLI, the
    two sites side by side in separate processes, one Dagster instance, the lake on moto's S3.
    The sites: a personal site's combined log at +0100 (6 days) and NASA's first 3 days (the
    Saskatchewan sample is too sparse for any forecast: a test below)."""
    import isal.igzip as igzip

    july = igzip.decompress((replica_dir / "NASA_access_log_Jul95.gz").read_bytes())
    three_days = tmp_path / "nasa_3days.log"
    three_days.write_bytes(july[: july.index(b"[04/Jul/1995:")].rsplit(b"\n", 1)[0] + b"\n")
    lines = three_days.read_bytes().count(b"\n")
    path = sites_file(tmp_path, first=("nasa", three_days, "1995-07-01", "1995-07-03"))
    monkeypatch.setenv("NASA_SITES_PATH", str(path))
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(tmp_path / "data" / "warehouse.duckdb"))
    monkeypatch.setenv("NASA_REPORTS_DIR", str(tmp_path / "reports"))
    for name in ("NASA_SITE", "NASA_MLFLOW_URI"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    base = {**os.environ, "DAGSTER_HOME": str(home), "NASA_LAKE": s3_lake}
    subprocess.run([sys.executable, "-m", "dagster", "instance", "migrate"], env=base, check=True)
    sites = Settings.from_env().all_sites()
    envs = {name: {**base, "NASA_SITE": name} for name in sites}
    _all_ok(
        [_dagster(envs[n], "asset", "materialize", "--select", f"{n}/raw_log_files") for n in sites]
    )
    ingest = []
    for name, settings in sites.items():
        selection = ",".join(
            f"{name}/{table}"
            for table in ("requests", "rejected_lines", "traffic_1m", "traffic_5m", "traffic_15m")
        )
        span = f"{settings.start_date}...{settings.end_date}"
        ingest.append(
            _dagster(
                envs[name], "asset", "materialize", "--select", selection, "--partition-range", span
            )
        )
    _all_ok(ingest)
    _all_ok([_dagster(envs[n], "job", "execute", "-j", "analysis_job") for n in sites])
    for name, settings in sites.items():
        last = json.dumps({"dagster/partition": settings.end_date})
        _all_ok([_dagster(envs[name], "job", "execute", "-j", "ingest_job", "--tags", last)])
        _all_ok([_dagster(envs[name], "job", "execute", "-j", "daily_refresh_job")])
        _all_ok(
            [_dagster(envs[name], "job", "execute", "-j", "daily_forecast_job", "--tags", last)]
        )
    from nasa_autoscale.ingest.checks import lines_accounted
    from nasa_autoscale.lake import Lake

    lake = Lake.from_setting(s3_lake)
    assert not lake.local
    expected = {"nasa": lines, "hackers": 3456}
    for name, settings in sites.items():
        con = warehouse.connect(settings.duckdb_path, read_only=True)
        first = dt.date.fromisoformat(settings.start_date)
        last = dt.date.fromisoformat(settings.end_date)
        assert lines_accounted(con, first, last)[0]
        stored = con.sql(
            "SELECT (SELECT count(*) FROM nasa.requests) "
            "+ (SELECT count(*) FROM nasa.rejected_lines)"
        ).fetchall()[0][0]
        assert stored == expected[name]
        assert con.sql("SELECT DISTINCT site FROM nasa.requests").fetchall() == [(name,)]
        assert con.sql("SELECT count(*) FROM nasa.forecast_next").fetchall()[0][0] == 288
        assert con.sql("SELECT count(*) FROM nasa.provisioning_plan").fetchall()[0][0] > 0
        con.close()
        assert lake.days("requests", name)  # its days are in the lake, under its name
        assert settings.reports_dir.is_dir()  # its own reports


def test_a_log_too_sparse_for_a_forecast_says_so(tmp_path):
    """The Saskatchewan sample (400 lines over 4 days): no bucket has data a day after another,
    so the fallback model cannot measure its errors: a clear HistoryTooShort, not a crash."""
    import pandas as pd

    from nasa_autoscale.forecasting.models import HistoryTooShort, SeasonalNaive

    index = pd.date_range("1995-06-01", periods=4 * 288, freq="5min")
    sparse = pd.DataFrame({"requests": float("nan")}, index=index)
    sparse.iloc[[10, 400, 700]] = 3.0  # never a day apart
    with pytest.raises(HistoryTooShort, match="errors cannot be measured"):
        SeasonalNaive(1).fit(sparse, 5)
    sparse.iloc[10 + 288] = 5.0  # one pair a day apart: it fits
    assert SeasonalNaive(1).fit(sparse, 5).quantiles[1] == pytest.approx(2.0)


def test_a_live_site_starting_after_today_is_refused(tmp_path, monkeypatch):
    path = sites_file(
        tmp_path, '[[site]]\nname = "soon"\nraw_dir = "logs"\nstart_date = "2099-01-01"'
    )
    monkeypatch.setenv("NASA_SITES_PATH", str(path))
    monkeypatch.delenv("NASA_MLFLOW_URI", raising=False)
    monkeypatch.setenv("NASA_SITE", "usask")
    with pytest.raises(SettingsError, match="site 'soon': start_date 2099-01-01 is after"):
        Settings.from_env().all_sites()


@pytest.mark.parametrize(
    "text, message",
    [
        (b'[[site]]\nname = "caf\xe9"\nraw_dir = "logs"\n', "not UTF-8 text"),
        (b"x = " + b"[" * 100_000, "nested more than 32"),
        (b"site = [1]\n", "site 1 must be a [[site]] table, not int"),
        (b'[[site]]\nname = "shop\\n"\nraw_dir = "logs"\n', "name: site name 'shop\\n'"),
        (b'[[site]]\nname = "shop"\nraw_dir = ["logs"]\n', "raw_dir must be a string, not list"),
        (
            b'[[site]]\nname = "shop"\nraw_dir = "logs"\nstart_date = "2026-01-01"\n'
            b'end_date = "9999-12-31"\n',
            "end_date 9999-12-31 is outside",
        ),
    ],
)
def test_a_sites_file_of_any_bad_shape_names_the_file_and_the_field(tmp_path, text, message):
    (tmp_path / "logs").mkdir()
    path = tmp_path / "sites.toml"
    path.write_bytes(text)
    with pytest.raises(SiteError) as error:
        load_sites(path)
    assert message in str(error.value) and str(path) in str(error.value)
