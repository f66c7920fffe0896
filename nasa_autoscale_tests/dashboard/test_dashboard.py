"""The dashboard: every page renders from the warehouse (Streamlit's AppTest), and once in a real
headless Chromium, whose screenshot must show the page, not a blank or an error."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import nasa_autoscale.dashboard.app as dashboard
from nasa_autoscale_tests.servers import free_port, wait_for

APP = Path(dashboard.__file__)
HEADERS = {
    "Tomorrow": "Tomorrow: the 24 hours from 1995-09-01 00:00",  # the day after the data
    "Traffic": "Traffic, 1995-07-01 .. 1995-08-31",  # the span of the data
    "Forecasts": "Forecast vs actual, test window (5-minute buckets)",
    "Scaling simulator": "Scaling simulation, test window",
    "Benchmarks": "Benchmarks",
}


@pytest.fixture
def app(served_warehouse, monkeypatch):
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(served_warehouse))
    dashboard.query.clear()
    return AppTest.from_file(str(APP), default_timeout=120)


def test_every_page_renders_plots_without_errors(app):
    app.run()
    for page, header in HEADERS.items():
        app.sidebar.radio[0].set_value(page).run()
        assert not app.exception, app.exception
        assert [h.value for h in app.header] == [header]
        assert not app.warning, [w.value for w in app.warning]
    assert app.title[0].value == "nasa_autoscale"


def test_tomorrow_shows_each_fleets_shadow_mode_scores(app, served_warehouse):
    app.run()
    assert "Shadow mode: each fleet's plan against the days that came" in [
        h.value for h in app.subheader
    ]
    totals = next(d.value for d in app.dataframe if "worst_day_dropped" in d.value.columns)
    with duckdb.connect(str(served_warehouse), read_only=True) as con:
        expected = con.execute(
            "SELECT plan_setting, count(*), sum(plan_cost) FROM nasa.forecast_scores "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()
    shown = [(f, int(r.days), r.plan_cost) for f, r in totals.sort_index().iterrows()]
    assert [(f, n) for f, n, _ in shown] == [(f, n) for f, n, _ in expected]
    assert [round(c, 2) for *_, c in shown] == [round(c, 2) for *_, c in expected]
    app.radio(key="shadow_fleet").set_value("default").run()
    days = next(d.value for d in app.dataframe if "fleet" in d.value.columns)
    assert set(days["fleet"]) == {"default"} and not app.exception


def test_the_scaling_page_follows_the_users_fleet(app):
    app.run()
    app.sidebar.radio[0].set_value("Scaling simulator").run()
    before = app.dataframe[0].value.set_index("policy")
    assert before.at["hindsight_optimal", "above optimum (%)"] == 0
    assert (before["above optimum (%)"] >= 0).all()
    sliders = {s.label: s for s in app.sidebar.slider}
    sliders["requests per server per 5 minute(s)"].set_value(100).run()
    sliders = {s.label: s for s in app.sidebar.slider}
    sliders["price per server-hour ($)"].set_value(0.5).run()
    after = app.dataframe[0].value.set_index("policy")
    # bigger servers: fewer of them; 5x the price: the optimum's bill follows
    assert after.at["hindsight_optimal", "cost ($)"] != before.at["hindsight_optimal", "cost ($)"]
    assert not app.exception


def test_tomorrow_without_scores_yet_shows_the_forecast_and_says_how_to_get_them(
    served_warehouse, tmp_path, monkeypatch
):
    import shutil

    path = tmp_path / "no_scores.duckdb"
    shutil.copy(served_warehouse, path)
    with duckdb.connect(str(path)) as con:
        con.execute("DROP TABLE nasa.forecast_scores")
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(path))
    dashboard.query.clear()
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception and not app.warning
    assert [h.value for h in app.header] == [HEADERS["Tomorrow"]]
    assert "No day scored yet" in app.info[0].value


def test_a_missing_table_names_the_asset(tmp_path, monkeypatch):
    from nasa_autoscale import warehouse

    path = tmp_path / "empty.duckdb"
    warehouse.connect(path).close()
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(path))
    dashboard.query.clear()
    app = AppTest.from_file(str(APP), default_timeout=60).run()
    assert not app.exception
    assert "is missing: materialize the asset `forecast_next`" in app.warning[0].value


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium, installed here when absent (the test set-up needs root and apt)."""
    found = shutil.which("chromium")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        assert done.returncode == 0, (
            f"installing chromium failed: {' '.join(command)}\n" + (done.stderr[-2000:])
        )
    return shutil.which("chromium")


class DevTools:
    """Just enough of the Chrome DevTools protocol: navigate, evaluate, screenshot."""

    def __init__(self, url: str):
        from websockets.sync.client import connect

        self.socket = connect(url, max_size=50 * 2**20, open_timeout=30)
        self.next_id = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.socket.close()

    def call(self, method: str, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == self.next_id:
                assert "error" not in message, message
                return message["result"]

    def evaluate(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)[
            "result"
        ].get("value")


def test_headless_chromium_screenshot_shows_the_dashboard(chromium, served_warehouse, tmp_path):
    port, debug_port = free_port(), free_port()
    env = {**os.environ, "NASA_DUCKDB_PATH": str(served_warehouse)}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(APP),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    browser = subprocess.Popen(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,1000",
            f"--remote-debugging-port={debug_port}",
            "--remote-allow-origins=*",
            f"--user-data-dir={tmp_path / 'profile'}",
            "about:blank",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(f"http://127.0.0.1:{port}/_stcore/health", server)
        pages = wait_for(f"http://127.0.0.1:{debug_port}/json/list", browser).json()
        page = next(p for p in pages if p["type"] == "page")["webSocketDebuggerUrl"]
        with DevTools(page) as tools:
            tools.call("Page.enable")
            tools.call("Page.navigate", url=f"http://127.0.0.1:{port}/")
            deadline, text = time.time() + 90, ""
            while time.time() < deadline:  # until the first page's plot is drawn
                text = tools.evaluate("document.body.innerText") or ""
                plotted = tools.evaluate(
                    "document.querySelectorAll('[data-testid=stImage] img, img[src*=media]').length"
                )
                if HEADERS["Tomorrow"] in text and plotted:
                    break
                time.sleep(1)
            time.sleep(2)  # let the last elements settle
            shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
    finally:
        browser.terminate()
        server.terminate()
        browser.wait(timeout=10)
        server.wait(timeout=10)
    out = Path(os.environ.get("NASA_SCREENSHOT_DIR", tmp_path)) / "dashboard.png"
    out.write_bytes(shot)
    assert HEADERS["Tomorrow"] in text and "nasa_autoscale" in text, text[:500]
    assert "Traceback" not in text and "Error" not in text.split("Tomorrow")[0]
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))
    assert pixels.shape[1] == 1400 and pixels.shape[0] > 600  # the viewport, minus the window
    ink = (pixels < 200).any(axis=2).mean()  # share of pixels that are not near-white
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 120) & (pixels[..., 2] < 120)
    red = red.mean()  # the forecast line's red
    print(f"screenshot {out}: {ink:.1%} ink, {colours} colours, {red:.2%} plot red")
    assert ink > 0.02 and colours > 100 and red > 0.001


def test_tomorrow_shows_the_plan_as_a_step_line_of_servers_per_setting(app):
    app.run()
    plan = duckdb.connect(str(dashboard.Settings.from_env().duckdb_path), read_only=True)
    with plan:
        rows = plan.sql("SELECT * FROM nasa.provisioning_plan WHERE setting = 'default'").df()
    assert len(rows) == 288
    [choice] = [r for r in app.radio if r.label == "setting"]
    assert choice.value == "realistic"  # the setting the scores price, as the API's default
    choice.set_value("default").run()
    assert not app.exception
    [title] = [h.value for h in app.subheader if h.value.startswith("The plan")]
    assert rows["policy"].iloc[0] in title
    steps = int((rows["action"] != "hold").sum())
    assert any(
        f"{steps} scaling step(s); peak {rows['servers'].max()}" in c.value for c in app.caption
    )


def test_with_a_sites_file_the_sidebar_picks_the_site_every_page_reads(
    served_warehouse, tmp_path, monkeypatch
):
    for name in ("served", "empty"):
        (tmp_path / "logs" / name).mkdir(parents=True)
    sites = tmp_path / "sites.toml"
    sites.write_text(
        '[[site]]\nname = "served"\nraw_dir = "logs/served"\n\n'
        '[[site]]\nname = "empty"\nraw_dir = "logs/empty"\n'
    )
    own = tmp_path / "data" / "sites" / "served" / "warehouse.duckdb"
    own.parent.mkdir(parents=True)
    shutil.copy(served_warehouse, own)
    monkeypatch.setenv("NASA_SITES_PATH", str(sites))
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(tmp_path / "data" / "warehouse.duckdb"))
    monkeypatch.delenv("NASA_MLFLOW_URI", raising=False)
    dashboard.query.clear()
    app = AppTest.from_file(str(APP), default_timeout=120)
    app.run()
    assert app.sidebar.selectbox[0].options == ["served", "empty"]
    app.sidebar.radio[0].set_value("Traffic").run()
    assert not app.exception and [h.value for h in app.header] == [HEADERS["Traffic"]]
    app.sidebar.selectbox[0].set_value("empty").run()  # a site with no warehouse yet: says so
    assert not app.exception and "sites/empty/warehouse.duckdb" in app.warning[0].value
