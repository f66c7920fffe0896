"""The daily path replayed: NASA days land one at a time in the landing folder, and each is
ingested and refreshed as the sensor would; the day-ahead scores it accumulates equal the
benchmark's day-ahead RMSE for the same model and refit rule."""

import datetime as dt
import gzip
import json

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.assets import daily, features, forecasting, ingest
from nasa_autoscale.forecasting import backtest, deploy, metrics, protocols, registry
from nasa_autoscale.ingest.logfiles import read_lines
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.resources import MLflowResource, SettingsResource, WarehouseResource

FIRST, LAST = dt.date(1995, 8, 16), dt.date(1995, 8, 31)
DEPLOYED = ("sarima_fourier", {"daily_order": 10})


def lines_by_day(replica_dir) -> dict[dt.date, bytes]:
    """The replica's August lines, split by the day in their timestamp."""
    lines = read_lines(replica_dir / "NASA_access_log_Aug95.gz")
    out: dict[dt.date, list[bytes]] = {}
    for s, e in zip(lines.starts.tolist(), lines.ends.tolist(), strict=True):
        line = lines.data[s:e]
        at = line.find(b"[")
        day = int(line[at + 1 : at + 3]) if at >= 0 and line[at + 1 : at + 3].isdigit() else 0
        if FIRST.day <= day <= LAST.day:
            out.setdefault(dt.date(1995, 8, day), []).append(line)
    return {day: b"\n".join(kept) + b"\n" for day, kept in out.items()}


def landing_resources(warehouse_path, tmp_path, **settings) -> dict:
    """Resources of a site that gets its logs only through tmp_path/landing (and its own MLflow
    store): no raw folder, no replica."""
    return {
        "warehouse": WarehouseResource(duckdb_path=str(warehouse_path)),
        "mlflow": MLflowResource(
            tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
            artifact_dir=str(tmp_path / "mlruns"),
        ),
        "settings": SettingsResource.from_env(
            raw_dir=tmp_path / "raw",
            replica_dir=tmp_path / "none",
            landing_dir=tmp_path / "landing",
            reports_dir=tmp_path / "reports",
            **settings,
        ),
    }


def land_day(day: str, resources: dict) -> dict:
    """What the sensor's ingest run and the daily forecast job after it materialize for a day;
    returns the day's forecast_scores metadata."""
    ingested = dg.materialize(
        [ingest.parsed_log_lines, ingest.traffic_tables], partition_key=day, resources=resources
    )
    assert ingested.success
    scored = dg.materialize(
        [daily.daily_forecasts, daily.forecast_scores], partition_key=day, resources=resources
    )
    assert scored.success
    return scored.asset_materializations_for_node("forecast_scores")[0].metadata


def test_refit_days_follow_the_calendar():
    anchor = dt.date(1995, 7, 1)
    assert deploy.refit_day(dt.date(1995, 7, 7), anchor, 7) == anchor
    assert deploy.refit_day(dt.date(1995, 7, 8), anchor, 7) == dt.date(1995, 7, 8)
    assert deploy.refit_day(dt.date(1995, 8, 31), anchor, 53) == dt.date(1995, 8, 23)


def test_a_day_with_an_outage_is_scored_on_its_logged_buckets_only():
    day = pd.Timestamp("1995-08-02")
    buckets = pd.date_range(day, periods=288, freq="5min")
    forecast = pd.DataFrame(
        {"day": day.date(), "model": "m", "bucket_start": buckets, "yhat": 10.0}
    ).assign(yhat_lower=5.0, yhat_upper=15.0)
    actual = pd.Series(12.0, index=buckets)
    actual.iloc[:12] = np.nan  # an hour without a log: not zero traffic
    scores = deploy.score_day(forecast, pd.DataFrame({"requests": actual}))
    assert scores["rmse"] == pytest.approx(2.0) and scores["coverage"] == 1.0
    assert (scores["n"], scores["missing_buckets"], scores["complete"]) == (276, 12, False)
    passed, meta = deploy.drift(scores, benchmark_rmse=1.0)
    assert not passed and meta["limit"] == 1.5  # 2.0 > 1.5 x 1.0: drift
    assert deploy.drift(scores, benchmark_rmse=2.0)[0]


def test_replaying_days_gives_the_benchmarks_day_ahead_rmse(replica_copy, replica_dir, tmp_path):
    days = lines_by_day(replica_dir)
    con = duckdb.connect(str(replica_copy))  # the warehouse as it stood on the night of Aug 15
    for table in ("requests", "rejected_lines", "ingest_ledger"):
        con.execute(f"DELETE FROM nasa.{table} WHERE day >= DATE '1995-08-16'")
    for minutes in ("1m", "5m", "15m"):
        con.execute(f"DELETE FROM nasa.traffic_{minutes} WHERE bucket_start >= '1995-08-16'")
    name, params = DEPLOYED  # what a benchmark selected on its validation window
    selected = pd.DataFrame(
        [[name, "5m", "day_ahead", 70.0, 60.0, json.dumps(params), None, True]],
        columns=[
            "model",
            "granularity",
            "protocol",
            "rmse",
            "validation_rmse",
            "params",
            "calibration",
            "selected",
        ],
    )
    warehouse.replace_table(con, "model_metrics", selected)
    con.close()
    (tmp_path / "raw").mkdir()
    landing = tmp_path / "landing"
    landing.mkdir()
    # the benchmark's rule: one fit before the test window (Aug 23), none inside it
    resources = landing_resources(replica_copy, tmp_path, refit_days=53)  # refits Jul 1, Aug 23
    # as `make run` left it: the events the daily forecasts read
    assert dg.materialize([features.special_events], resources=resources).success
    for i in range((LAST - FIRST).days + 1):
        day = FIRST + dt.timedelta(days=i)
        (landing / f"access.log-{day:%Y%m%d}.gz").write_bytes(gzip.compress(days[day]))
        land_day(day.isoformat(), resources)
        with duckdb.connect(str(replica_copy), read_only=True) as check:
            made = check.execute(
                "SELECT max(data_through), max(fitted_before) FROM nasa.daily_forecasts "
                "WHERE day = ?",
                [day + dt.timedelta(days=1)],
            ).fetchall()[0]
        # tomorrow's forecast was made from data through today, before tomorrow's lines landed
        assert made[0] < pd.Timestamp(day + dt.timedelta(days=1)) and made[1] <= made[0] + (
            pd.Timedelta("5min")
        )
    # forecast_next, made after the last day, is the deployed model's: the daily path's own
    assert dg.materialize([forecasting.forecast_next], resources=resources).success
    with duckdb.connect(str(replica_copy), read_only=True) as con:
        upcoming = con.sql("SELECT yhat FROM nasa.forecast_next ORDER BY bucket_start").df()
        sep1 = con.sql(
            "SELECT yhat FROM nasa.daily_forecasts WHERE day = '1995-09-01' ORDER BY step"
        ).df()
    np.testing.assert_allclose(upcoming["yhat"], sep1["yhat"], rtol=1e-9)
    with duckdb.connect(str(replica_copy), read_only=True) as con:
        scores = con.sql(
            "SELECT * FROM nasa.forecast_scores WHERE day >= '1995-08-23' "
            "AND plan_setting = 'realistic' ORDER BY day"
        ).df()
        traffic = whole_days(con, 5).set_index("bucket_start")
    assert len(scores) == 9 and scores["complete"].all()
    replayed = float(np.sqrt((scores["n"] * scores["rmse"] ** 2).sum() / scores["n"].sum()))
    # the benchmark's day-ahead protocol on the whole data, the model fitted before Aug 23
    calendar = protocols.Calendar.of(traffic, 9, 7)
    assert calendar.test_start == pd.Timestamp("1995-08-23")
    forecasts, _ = backtest.run(
        registry.build(name, params), traffic, 5, "5m", ("day_ahead",), calendar
    )
    benchmark = metrics.score(forecasts, traffic["requests"].astype(float), np.nan)["rmse"]
    assert 30 < benchmark < 150  # a real forecast's error, not an empty comparison
    assert replayed == pytest.approx(benchmark, abs=1e-6)


def site_lines(day: dt.date, start_s: int = 0, end_s: int = 86400) -> str:
    """A small site's combined-format log in UTC (not NASA's): a request every 20 seconds from
    start_s to end_s of `day`, more by day than by night."""
    lines = []
    for s in range(start_s, end_s, 20):
        if s // 3600 < 7 and s % 60:  # the night: one request a minute
            continue
        stamp = f"{day:%d/%b/%Y}:{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d} +0000"
        lines.append(
            f'198.51.100.{s % 97} - - [{stamp}] "GET /shop/{s % 13} HTTP/1.1" 200 {300 + s % 700}'
            f' "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64)"'
        )
    return "".join(line + "\n" for line in lines)


@pytest.mark.slow  # Dagster runs of the daily path
def test_a_live_access_log_is_reingested_as_it_grows_and_a_partial_day_is_not_scored_as_zero(
    tmp_path,
):
    from nasa_autoscale.definitions import defs

    yesterday, today = dt.date(1995, 8, 9), dt.date(1995, 8, 10)
    landing = tmp_path / "landing"
    landing.mkdir()
    path = tmp_path / "site.duckdb"
    resources = landing_resources(path, tmp_path)
    # a new site's set-up: its events (the daily refresh, or `make run`, writes them)
    assert dg.materialize([features.special_events], resources=resources).success
    sensor = defs.resolve_sensor_def("new_log_files")
    instance = dg.DagsterInstance.ephemeral()
    cursor = None

    def tick() -> list[str]:
        nonlocal cursor
        context = dg.build_sensor_context(
            instance=instance,
            cursor=cursor,
            repository_def=defs.get_repository_def(),
            resources={"settings": resources["settings"]},
        )
        result = sensor.evaluate_tick(context)
        cursor = result.cursor
        return sorted(r.partition_key for r in result.run_requests)

    def run(day: str) -> dict:
        return land_day(day, resources)

    def day_figures(day: dt.date):
        with duckdb.connect(str(path), read_only=True) as con:
            [(stored,)] = con.execute(
                "SELECT count(*) FROM nasa.requests WHERE day = ?", [day]
            ).fetchall()
            traffic = con.execute(
                "SELECT count(*) FILTER (WHERE is_missing), sum(requests) FROM nasa.traffic_5m "
                "WHERE bucket_start::DATE = ?",
                [day],
            ).fetchall()[0]
            scores = con.execute(
                "SELECT n, missing_buckets, complete, plan_cost FROM nasa.forecast_scores "
                "WHERE day = ? AND plan_setting = 'realistic'",
                [day],
            ).fetchall()
            fleets = con.execute(
                "SELECT list(plan_setting ORDER BY plan_setting) FROM nasa.forecast_scores "
                "WHERE day = ?",
                [day],
            ).fetchall()[0][0]
            assert fleets == ["default", "realistic"]  # every fleet's plan, priced (shadow mode)
            return stored, traffic, scores

    first = yesterday - dt.timedelta(days=1)
    (landing / f"access.log-{first:%Y%m%d}.gz").write_bytes(
        gzip.compress(site_lines(first).encode())
    )
    run(first.isoformat())  # the site's first day: nothing to forecast from yet, not an error
    with duckdb.connect(str(path), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM nasa.daily_forecasts").fetchall() == [(0,)]
    (landing / f"access.log-{yesterday:%Y%m%d}.gz").write_bytes(
        gzip.compress(site_lines(yesterday).encode())
    )
    morning = site_lines(today, 0, 12 * 3600)
    (landing / "access.log").write_text(morning)  # the live file, written as requests come
    assert tick() == [first.isoformat(), yesterday.isoformat(), today.isoformat()]
    run(yesterday.isoformat())  # yesterday's forecast of today
    run(today.isoformat())
    stored, (missing, total), scores = day_figures(today)
    assert stored == total == morning.count("\n")
    assert missing == 144  # the afternoon has no log yet: missing, not zero traffic
    [(n, missing_buckets, complete, plan_cost)] = scores
    assert (n, missing_buckets, complete) == (144, 144, False) and plan_cost > 0
    assert tick() == []  # nothing changed

    whole = morning + site_lines(today, 12 * 3600)
    (landing / "access.log").write_text(whole)  # the afternoon's lines arrive
    assert tick() == [today.isoformat()]
    shown = run(today.isoformat())  # the day's score, in its partition's metadata
    stored, (missing, total), scores = day_figures(today)
    assert shown["n"].value == 288 and shown["plan_cost"].value == pytest.approx(scores[0][3])
    assert stored == total == whole.count("\n")  # the morning read again, not counted twice
    assert missing == 0 and scores[0][:3] == (288, 0, True)

    # rotation: the day's file gets its dated name, a new live file starts the next day
    (landing / f"access.log-{today:%Y%m%d}.gz").write_bytes(gzip.compress(whole.encode()))
    (landing / "access.log").write_text(site_lines(today + dt.timedelta(days=1), 0, 3600))
    assert tick() == [today.isoformat(), (today + dt.timedelta(days=1)).isoformat()]
    run(today.isoformat())
    assert day_figures(today)[0] == whole.count("\n")
