import duckdb
import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.features.build import build_features, feature_names
from nasa_autoscale.features.events import load_events

TWO_WEEKS = slice(0, 14 * 288)


def features_of(frame: pd.DataFrame, horizon: int = 1, minutes: int = 5) -> pd.DataFrame:
    con = duckdb.connect()
    con.register("traffic", frame)
    return build_features(con, "traffic", load_events(), minutes, horizon).set_index("bucket_start")


@pytest.fixture
def traffic(real_traffic_5m):
    return real_traffic_5m.iloc[TWO_WEEKS].reset_index(drop=True)


@pytest.mark.parametrize("horizon", [1, 3, 12])
def test_no_feature_of_row_t_reads_bucket_t_or_later(traffic, horizon):
    t = 10 * 288 + 137  # a weekday afternoon
    before = features_of(traffic, horizon)
    changed = traffic.copy()
    rng = np.random.default_rng(0)
    later = slice(t - horizon + 1, None)  # with horizon h, buckets after t - h are unknown
    for column in ("requests", "bytes", "status_2xx", "status_3xx", "status_4xx", "status_5xx"):
        values = rng.integers(0, 5000, len(changed))[later]
        changed.loc[changed.index[later], column] = values
    changed.loc[changed.index[later], "error_rate"] = rng.random(len(changed))[later]
    after = features_of(changed, horizon)
    row = traffic.bucket_start[t]
    columns = feature_names(5)
    pd.testing.assert_series_equal(before.loc[row, columns], after.loc[row, columns])
    # ...while a row at or after the change does move: the test can fail.
    assert not before.loc[traffic.bucket_start[t + 1], columns].equals(
        after.loc[traffic.bucket_start[t + 1], columns]
    )


def test_about_85_features_in_five_families():
    names = feature_names(5)
    assert 80 <= len(names) <= 95
    for prefix in ("hour", "lag_", "rolling_", "spike_score", "bytes_lag_1", "is_launch"):
        assert any(n.startswith(prefix) for n in names), prefix


def test_lag_and_rolling_features_read_the_buckets_before(traffic):
    f = features_of(traffic)
    y = traffic.set_index("bucket_start")["requests"].astype(float)
    i = 5 * 288 + 100
    t = y.index[i]
    assert f.at[t, "lag_1"] == y.iloc[i - 1]
    assert f.at[t, "lag_12"] == y.iloc[i - 12]
    assert f.at[t, "lag_day"] == y.iloc[i - 288]
    assert f.at[t, "rolling_mean_3"] == pytest.approx(y.iloc[i - 3 : i].mean())
    assert f.at[t, "rolling_max_12"] == y.iloc[i - 12 : i].max()
    assert f.at[t, "rolling_std_36"] == pytest.approx(y.iloc[i - 36 : i].std())
    assert f.at[t, "diff_1_2"] == y.iloc[i - 1] - y.iloc[i - 2]
    assert f.at[t, "change_vs_yesterday"] == y.iloc[i - 1] - y.iloc[i - 1 - 288]
    assert pd.isna(f["lag_week"].iloc[7 * 288 - 1]) and f["lag_week"].notna().iloc[7 * 288]


def test_time_and_event_features(traffic, real_traffic_5m):
    f = features_of(traffic)
    t = pd.Timestamp("1995-07-13 09:45")  # STS-70 liftoff 09:41:55, a Thursday
    assert f.loc[t, ["hour", "minute_of_day", "day_of_week", "is_weekend"]].tolist() == [
        9,
        585,
        3,
        0,
    ]
    assert f.loc[t, ["is_launch", "is_mission", "is_special_event"]].tolist() == [1, 1, 1]
    assert f.at[pd.Timestamp("1995-07-04 12:00"), "is_holiday"] == 1
    assert f.at[pd.Timestamp("1995-07-08 12:00"), "is_weekend"] == 1
    assert f["hour_sin"].between(-1, 1).all()
    # Outages are known only afterwards: no feature flags them (the hurricane's forecast window,
    # known ahead, ends at noon on Aug 2; the outage goes on to Aug 3 04:36).
    later = features_of(real_traffic_5m)
    assert later.loc["1995-08-02 11:55", "is_special_event"] == 1
    assert not later.loc["1995-08-02 12:05":"1995-08-02 23:55", "is_special_event"].any()


def test_aggregation_features_are_lagged_like_the_target(traffic):
    f = features_of(traffic)
    i = 3 * 288 + 50
    row = traffic.iloc[i - 1]
    t = traffic.bucket_start[i]
    assert f.at[t, "bytes_lag_1"] == row.bytes
    assert f.at[t, "share_3xx_lag_1"] == pytest.approx(row.status_3xx / row.requests)
    assert f.at[t, "error_rate_lag_1"] == pytest.approx(row.error_rate)


def test_missing_buckets_stay_missing_never_zero(real_traffic_5m):
    f = features_of(real_traffic_5m)
    outage = f.loc["1995-08-02"]  # Hurricane Erin: no log all day
    assert outage["requests"].isna().all() and outage["is_missing"].all()
    assert outage["lag_1"].isna().all() and outage["lag_12"].isna().all()
    assert outage["rolling_mean_12"].isna().all()  # no bucket present in the window
    assert outage["missing_in_last_day"].iloc[-1] == 288
    # A day later the daily window averages only the buckets that were logged.
    t = pd.Timestamp("1995-08-03 12:00")
    y = real_traffic_5m.set_index("bucket_start")["requests"].astype(float)
    window = y.loc[t - pd.Timedelta(days=1) : t - pd.Timedelta(minutes=5)]
    assert f.at[t, "rolling_mean_day"] == pytest.approx(window.mean())  # NaN skipped, not 0


def test_absent_buckets_are_added_as_missing(traffic):
    gap = traffic.drop(index=range(1000, 1010)).reset_index(drop=True)
    f = features_of(gap)
    assert len(f) == len(traffic)
    t = traffic.bucket_start[1010]
    assert pd.isna(f.at[t, "lag_1"]) and f.loc[traffic.bucket_start[1005], "is_missing"]


def test_horizon_must_be_positive(traffic):
    with pytest.raises(ValueError, match="horizon"):
        features_of(traffic, horizon=0)


def test_missing_stays_missing_is_judged_against_the_traffic_and_can_fail(con, tmp_path):
    """The check compares lag_1 with the traffic table the features came from: features built
    from zero-filled traffic (an outage read as quiet) fail it."""
    import datetime as dt

    from nasa_autoscale.features.build import build_features
    from nasa_autoscale.features.checks import lag_check
    from nasa_autoscale.features.events import load_events
    from nasa_autoscale.ingest.load import ingest_days
    from nasa_autoscale.ingest.traffic import local_buckets, write_traffic
    from nasa_autoscale.warehouse import replace_table

    day = dt.date(2024, 6, 1)
    lines = [
        f'h - - [01/Jun/2024:{m // 60:02d}:{m % 60:02d}:00 +0000] "GET / HTTP/1.1" 200 1'
        for m in range(24 * 60)
        if not 600 <= m < 700
    ]  # an outage 10:00-11:39
    log = tmp_path / "access.log"
    log.write_text("\n".join(lines) + "\n")
    ingest_days(con, [log], day, day, "real", timezone="UTC")
    write_traffic(con, day, day)
    buckets = local_buckets(con, 5)
    replace_table(con, "features_5m", build_features(con, buckets, load_events(), 5))
    passed, metadata = lag_check(con, "features_5m", buckets)
    assert passed and metadata == {"lag_mismatches": 0, "missing_with_a_target": 0}
    # the same features had the outage been read as zero traffic: internally consistent, wrong
    con.execute(
        "UPDATE nasa.features_5m SET requests = coalesce(requests, 0), "
        "lag_1 = coalesce(lag_1, 0), is_missing = FALSE"
    )
    passed, metadata = lag_check(con, "features_5m", buckets)
    assert not passed and metadata["lag_mismatches"] == 20  # the 20 buckets after missing ones


def test_host_features_read_only_earlier_buckets_too(replica_warehouse):
    """The published aggregate has no unique hosts; the replica's ingest has them (counted from
    its sampled lines), so the host features are exercised here."""
    con = duckdb.connect(str(replica_warehouse), read_only=True)
    traffic = con.sql("SELECT * EXCLUDE (bucket_start_utc) FROM nasa.traffic_5m ORDER BY 1").df()
    con.close()
    traffic = traffic.iloc[TWO_WEEKS].reset_index(drop=True)
    assert traffic["unique_hosts"].notna().mean() > 0.9
    t = 10 * 288 + 137
    before = features_of(traffic)
    changed = traffic.copy()
    changed.loc[changed.index[t:], "unique_hosts"] = 1
    after = features_of(changed)
    host_features = [n for n in feature_names(5) if "host" in n]
    assert len(host_features) >= 4
    row, next_row = traffic.bucket_start[t], traffic.bucket_start[t + 1]
    pd.testing.assert_series_equal(before.loc[row, host_features], after.loc[row, host_features])
    assert not before.loc[next_row, host_features].equals(after.loc[next_row, host_features])
    assert before[host_features].notna().mean().min() > 0.5  # the features are there to test


def test_an_event_flags_a_row_only_once_known_at_the_rows_origin(traffic):
    con = duckdb.connect()
    con.register("traffic", traffic)
    start = pd.Timestamp("1995-07-10 12:00")
    event = {
        "name": "x",
        "kind": "launch",
        "start_ts": start,
        "end_ts": start + pd.Timedelta(hours=2),
        "expected_impact": "high_traffic",
        "source": "s",
        "known_source": "s",
    }

    def flags(known_from, horizon):
        events = pd.DataFrame([{**event, "known_from": known_from}])
        table = build_features(con, "traffic", events, 5, horizon).set_index("bucket_start")
        return table.loc[start : start + pd.Timedelta(hours=2), "is_launch"]

    # known a day ahead: every bucket of the window is flagged, whatever the horizon
    assert flags(start - pd.Timedelta(days=1), 12).eq(1).all()
    # known only when it starts: a one-step forecast (origin t) sees it from its first bucket;
    # a 12-step one (origin t - 11 buckets) only from the 12th bucket on
    assert flags(start, 1).eq(1).all()
    twelve = flags(start, 12)
    assert twelve.iloc[:11].eq(0).all() and twelve.iloc[11:].eq(1).all()
    # known an hour in: before then no origin knows it
    late = flags(start + pd.Timedelta(hours=1), 1)
    assert late.iloc[:12].eq(0).all() and late.iloc[12:].eq(1).all()
