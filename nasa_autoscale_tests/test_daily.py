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
from nasa_autoscale.assets import daily, forecasting, ingest
from nasa_autoscale.forecasting import backtest, deploy, metrics, protocols, registry
from nasa_autoscale.ingest.logfiles import read_lines
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.resources import SettingsResource, WarehouseResource

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
    resources = {
        "warehouse": WarehouseResource(duckdb_path=str(replica_copy)),
        # the benchmark's rule: one fit before the test window (Aug 23), none inside it
        "settings": SettingsResource.from_env(
            raw_dir=tmp_path / "raw",
            replica_dir=tmp_path / "none",
            landing_dir=landing,
            reports_dir=tmp_path / "reports",
            refit_days=53,  # from Jul 1: refits on Jul 1 and Aug 23
        ),
    }
    for i in range((LAST - FIRST).days + 1):
        day = FIRST + dt.timedelta(days=i)
        (landing / f"access.log-{day:%Y%m%d}.gz").write_bytes(gzip.compress(days[day]))
        key = day.isoformat()
        ingested = dg.materialize(
            [ingest.parsed_log_lines, ingest.traffic_tables], partition_key=key, resources=resources
        )
        assert ingested.success
        refreshed = dg.materialize(
            [daily.daily_forecasts, daily.forecast_scores], partition_key=key, resources=resources
        )
        assert refreshed.success
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
            "SELECT * FROM nasa.forecast_scores WHERE day >= '1995-08-23' ORDER BY day"
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
