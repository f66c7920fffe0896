import datetime as dt

import pytest

from nasa_autoscale.ingest.load import ingest_days
from nasa_autoscale.ingest.traffic import (
    MINUTE_DETAIL,
    mark_missing_minutes,
    traffic_buckets,
    whole_days,
    write_traffic,
)

DAY1, DAY2 = dt.date(1995, 7, 1), dt.date(1995, 7, 2)


def log_line(ts: dt.datetime, status: int = 200, size: str = "100") -> bytes:
    stamp = ts.strftime("%d/%b/%Y:%H:%M:%S")
    return f'h{ts.minute % 3} - - [{stamp} -0400] "GET /x HTTP/1.0" {status} {size}'.encode()


def minutes(day: dt.date, first: str, last: str) -> list[dt.datetime]:
    """One timestamp (second 30) per minute from first to last (HH:MM, inclusive)."""
    start = dt.datetime.combine(day, dt.time.fromisoformat(first))
    end = dt.datetime.combine(day, dt.time.fromisoformat(last))
    out = []
    while start <= end:
        out.append(start + dt.timedelta(seconds=30))
        start += dt.timedelta(minutes=1)
    return out


def ingest(con, tmp_path, stamps, first_day, last_day, name="access.log"):
    path = tmp_path / name
    path.write_bytes(b"\n".join(log_line(ts) for ts in sorted(stamps)) + b"\n")
    ingest_days(con, [path], first_day, last_day, "real")


def table(con, name, day=DAY1):
    return (
        con.sql(
            f"SELECT * FROM nasa.{name} WHERE CAST(bucket_start AS DATE) = DATE '{day}' ORDER BY 1"
        )
        .df()
        .set_index("bucket_start")
    )


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm))


def test_a_30_minute_silence_is_missing_a_29_minute_one_is_zero(con, tmp_path):
    # Quiet 10:00-10:29 (30 minutes) and 12:00-12:28 (29 minutes).
    stamps = minutes(DAY1, "00:00", "09:59") + minutes(DAY1, "10:30", "11:59")
    stamps += minutes(DAY1, "12:29", "23:59")
    ingest(con, tmp_path, stamps, DAY1, DAY1)
    rows = write_traffic(con, DAY1, DAY1)
    assert rows == {"traffic_1m": 1440, "traffic_5m": 288, "traffic_15m": 96}
    t1 = table(con, "traffic_1m")
    assert t1.loc[at(DAY1, "10:00") : at(DAY1, "10:29"), "is_missing"].all()
    assert t1.loc[at(DAY1, "10:00") : at(DAY1, "10:29"), "requests"].isna().all()  # never 0
    assert not t1.loc[at(DAY1, "12:00") : at(DAY1, "12:28"), "is_missing"].any()
    assert (t1.loc[at(DAY1, "12:00") : at(DAY1, "12:28"), "requests"] == 0).all()
    assert t1["requests"].sum() == len(stamps)
    assert t1["busy_s"].isna().all()  # the Common Log Format logs no time taken: unknown, not 0
    t5 = table(con, "traffic_5m")
    assert t5.is_missing.sum() == 6
    assert t5.loc[at(DAY1, "12:25"), "missing_minutes"] == 0
    t15 = table(con, "traffic_15m")
    assert t15.loc[[at(DAY1, "10:00"), at(DAY1, "10:15")], "is_missing"].all()
    assert t15.loc[at(DAY1, "10:30"), "requests"] == 15
    assert t15.loc[at(DAY1, "12:00"), "requests"] == 0


def test_minutes_outside_the_files_span_are_missing_and_partial_buckets_say_so(con, tmp_path):
    stamps = minutes(DAY1, "08:00", "20:10")
    ingest(con, tmp_path, stamps, DAY1, DAY1)
    write_traffic(con, DAY1, DAY1)
    t5 = table(con, "traffic_5m")
    assert t5.loc[: at(DAY1, "07:55"), "is_missing"].all()
    assert t5.loc[at(DAY1, "20:15") :, "is_missing"].all()
    partial = t5.loc[at(DAY1, "20:10")]
    assert not partial.is_missing and partial.missing_minutes == 4 and partial.requests == 1
    assert t5.requests.sum() == len(stamps)
    assert t5.loc[at(DAY1, "08:00"), "unique_hosts"] == 3
    assert t5.loc[at(DAY1, "08:00"), "bytes"] == 500
    assert t5.loc[at(DAY1, "08:00"), "error_rate"] == 0


def test_a_silence_across_midnight_is_measured_whole(con, tmp_path):
    # Quiet from 23:51 to 00:24 the next day: 34 minutes, 25 of them on day 2.
    stamps = minutes(DAY1, "00:00", "23:50") + minutes(DAY2, "00:25", "23:59")
    ingest(con, tmp_path, stamps, DAY1, DAY2)
    write_traffic(con, DAY2, DAY2)  # a one-day run still sees day 1's side of the silence
    t1 = table(con, "traffic_1m", DAY2)
    assert t1.loc[: at(DAY2, "00:24"), "is_missing"].all()
    assert not t1.loc[at(DAY2, "00:25") :, "is_missing"].any()


def test_a_day_never_ingested_does_not_lengthen_a_silence(con, tmp_path):
    stamps = minutes(DAY1, "00:00", "23:50") + minutes(DAY2, "00:25", "23:59")
    ingest(con, tmp_path, stamps, DAY2, DAY2)  # day 1 is in the file but not ingested
    write_traffic(con, DAY2, DAY2)
    t1 = table(con, "traffic_1m", DAY2)
    # 25 quiet minutes seen, the rest of the silence unknown: not enough to call it an outage.
    assert not t1.is_missing.any()


def test_rewriting_a_day_replaces_it(con, tmp_path):
    stamps = minutes(DAY1, "00:00", "23:59")
    ingest(con, tmp_path, stamps, DAY1, DAY1)
    write_traffic(con, DAY1, DAY1)
    first = table(con, "traffic_5m")
    write_traffic(con, DAY1, DAY1)
    assert table(con, "traffic_5m").equals(first)
    assert con.sql("SELECT count(*) FROM nasa.traffic_5m").fetchall()[0][0] == 288


def test_bucket_size_is_checked(con):
    mark_missing_minutes(con, DAY1, DAY1)
    with pytest.raises(ValueError, match="bucket size"):
        traffic_buckets(con, 7, DAY1, DAY1)


def stamped(ts: dt.datetime, offset: str) -> bytes:
    return f'h - - [{ts:%d/%b/%Y:%H:%M:%S} {offset}] "GET / HTTP/1.1" 200 1'.encode()


@pytest.mark.parametrize(
    ("days", "change", "hours"),
    [
        # fall back: 2023-11-05 02:00 EDT -> 01:00 EST; Apache writes -0400, then -0500
        ((dt.date(2023, 11, 4), dt.date(2023, 11, 5)), dt.datetime(2023, 11, 5, 6), (24, 25)),
        # spring forward: 2024-03-10 02:00 EST -> 03:00 EDT
        ((dt.date(2024, 3, 9), dt.date(2024, 3, 10)), dt.datetime(2024, 3, 10, 7), (24, 23)),
    ],
)
def test_a_daylight_saving_change_loses_no_bucket_and_merges_none(
    con, tmp_path, days, change, hours
):
    from zoneinfo import ZoneInfo

    from nasa_autoscale.ingest.sitezone import resolve

    # a request every minute (UTC instants) across both local days, written as Apache does
    zone = ZoneInfo("America/New_York")
    start = dt.datetime.combine(days[0], dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(days[1] + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    lines, t = [], start
    while t < end:
        local = t.astimezone(zone)
        offset = local.strftime("%z")
        lines.append(stamped(local.replace(tzinfo=None) + dt.timedelta(seconds=30), offset))
        t += dt.timedelta(minutes=1)
    path = tmp_path / "access.log"
    path.write_bytes(b"\n".join(lines) + b"\n")
    resolve(con, "America/New_York")
    ingest_days(con, [path], days[0], days[1], "real", timezone="America/New_York")
    write_traffic(con, days[0], days[1])
    for name, per_hour in (("traffic_1m", 60), ("traffic_5m", 12), ("traffic_15m", 4)):
        per_day = con.sql(
            f"SELECT CAST(bucket_start AS DATE) AS day, count(*), count(DISTINCT "
            f"bucket_start_utc), sum(requests), count(*) FILTER (WHERE is_missing) "
            f"FROM nasa.{name} GROUP BY 1 ORDER BY 1"
        ).fetchall()
        expected = [
            (d, h * per_hour, h * per_hour, h * 60, 0) for d, h in zip(days, hours, strict=True)
        ]
        assert per_day == expected, name
    from nasa_autoscale.ingest.checks import buckets_complete

    assert buckets_complete(con, "traffic_5m", 5, days[0], days[1])[0]
    repeated = con.sql(
        "SELECT count(*) FROM (SELECT bucket_start FROM nasa.traffic_5m GROUP BY 1 "
        "HAVING count(*) > 1)"
    ).fetchall()[0][0]
    assert repeated == (12 if hours[1] == 25 else 0)  # 01:00-01:55 twice, as the clock shows


def test_utc_logs_follow_the_sites_zone(con, tmp_path):
    # a server in UTC, a site in Paris (+0200 in June): 23:30 UTC is 01:30 the next local day
    path = tmp_path / "access.log"
    path.write_bytes(
        stamped(dt.datetime(2024, 6, 1, 23, 30), "+0000")
        + b"\n"
        + stamped(dt.datetime(2024, 6, 1, 12, 0), "+0000")
        + b"\n"
    )
    first, last = dt.date(2024, 6, 1), dt.date(2024, 6, 2)
    ingest_days(con, [path], first, last, "real", timezone="Europe/Paris")
    rows = con.sql("SELECT day, ts, ts_utc FROM nasa.requests ORDER BY ts").fetchall()
    assert [(str(d), str(t)) for d, t, _ in rows] == [
        ("2024-06-01", "2024-06-01 14:00:00"),
        ("2024-06-02", "2024-06-02 01:30:00"),
    ]
    write_traffic(con, first, last)
    busy = con.sql("SELECT bucket_start FROM nasa.traffic_1m WHERE requests > 0 ORDER BY 1")
    assert [str(t) for (t,) in busy.fetchall()] == ["2024-06-01 14:00:00", "2024-06-02 01:30:00"]
    first_bucket = con.sql("SELECT min(bucket_start), min(bucket_start_utc) FROM nasa.traffic_5m")
    assert [str(t) for t in first_bucket.fetchall()[0]] == [
        "2024-06-01 00:00:00",
        "2024-05-31 22:00:00",
    ]


def test_coarse_buckets_carry_their_minute_detail(con, tmp_path):
    # 10:00-10:04: 1, 2, 3, 4, 5 requests a minute (rising); 10:05-10:09: 5, 0, 0, 0, 1; the
    # rest of the day one a minute; 11:00-11:59 has no log (a silence of an hour: missing)
    stamps = minutes(DAY1, "00:00", "09:59") + minutes(DAY1, "10:10", "10:59")
    stamps += minutes(DAY1, "12:00", "23:59")
    for minute, count in enumerate([1, 2, 3, 4, 5, 5, 0, 0, 0, 1]):
        stamps += [at(DAY1, f"10:{minute:02d}") + dt.timedelta(seconds=s) for s in range(count)]
    ingest(con, tmp_path, stamps, DAY1, DAY1)
    write_traffic(con, DAY1, DAY1)
    five = whole_days(con, 5).set_index("bucket_start")
    rising, falling = five.loc[at(DAY1, "10:00")], five.loc[at(DAY1, "10:05")]
    assert rising[list(MINUTE_DETAIL)].tolist() == [1, 5, 5, 1]  # first, last, max, min
    assert falling[list(MINUTE_DETAIL)].tolist() == [5, 1, 5, 0]
    assert five.loc[at(DAY1, "11:00"), list(MINUTE_DETAIL)].isna().all()  # no log, not 0
    fifteen = whole_days(con, 15).set_index("bucket_start").loc[at(DAY1, "10:00")]
    assert fifteen[list(MINUTE_DETAIL)].tolist() == [1, 1, 5, 0]
    assert "minute_last" not in whole_days(con, 1)
    # without traffic_1m the columns are there and NULL
    con.execute("DROP TABLE nasa.traffic_1m")
    assert whole_days(con, 5)[list(MINUTE_DETAIL)].isna().all().all()


def test_whole_days_reads_only_the_last_days_asked_for_and_never_past_through(con, tmp_path):
    days = [DAY1 + dt.timedelta(days=k) for k in range(4)]  # Jul 1 .. Jul 4
    ingest(con, tmp_path, [at(day, "12:00") for day in days], days[0], days[-1])
    write_traffic(con, days[0], days[-1])
    whole = whole_days(con, 5, detail=False)
    assert whole["bucket_start"].dt.date.unique().tolist() == days
    last_two = whole_days(con, 5, detail=False, days=2)
    assert last_two["bucket_start"].dt.date.unique().tolist() == days[2:]
    assert last_two.reset_index(drop=True).equals(
        whole[whole["bucket_start"].dt.date >= days[2]].reset_index(drop=True)
    )
    middle = whole_days(con, 5, detail=False, days=2, through=days[2])
    assert middle["bucket_start"].dt.date.unique().tolist() == days[1:3]
    past_the_end = whole_days(con, 5, detail=False, days=100, through=days[-1] + dt.timedelta(9))
    assert past_the_end.equals(whole)  # never past the data's last day, nor before its first
