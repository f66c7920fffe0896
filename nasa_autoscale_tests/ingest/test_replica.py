"""The replica and its full ingest against the reference data (session fixtures: ~30 s)."""

import datetime as dt

import numpy as np
import pandas as pd

from nasa_autoscale import warehouse
from nasa_autoscale.ingest.checks import buckets_complete, lines_accounted, matches_reference
from nasa_autoscale.ingest.reference import (
    EXPECTED_SUM,
    FILE_LAST_SECONDS,
    reference_counts,
    reference_traffic_5m,
)
from nasa_autoscale.settings import NASA_LOG_FILES

FIRST, LAST = dt.date(1995, 7, 1), dt.date(1995, 8, 31)


def test_replica_files_have_the_nasa_names_and_line_counts(replica_dir):
    assert sorted(p.name for p in replica_dir.glob("*.gz")) == sorted(NASA_LOG_FILES)
    assert (replica_dir / "README.md").read_text().startswith("# REPLICA")


def test_traffic_5m_equals_the_reference_series_bucket_for_bucket(replica_warehouse):
    con = warehouse.connect(replica_warehouse, read_only=True)
    ours = con.sql("SELECT bucket_start, requests, is_missing FROM nasa.traffic_5m ORDER BY 1").df()
    ours = ours.set_index("bucket_start")
    assert len(ours) == 62 * 288
    reference = reference_counts(5).reindex(ours.index, fill_value=0)
    present = ~ours.is_missing
    assert (ours.requests[present] == reference[present]).all()
    assert (reference[~ours.is_missing.eq(False)] == 0).all()  # missing buckets had no request
    # The only differences from the raw series: each file's last second (MANIFEST line counts).
    raw = reference_counts(5, include_last_seconds=False).reindex(ours.index, fill_value=0)
    differs = ours.requests.fillna(0) != raw
    assert differs.sum() == len(FILE_LAST_SECONDS)
    assert int(ours.requests.sum()) == EXPECTED_SUM + len(FILE_LAST_SECONDS)
    passed, metadata = matches_reference(con, FIRST, LAST)
    assert passed and metadata["total_abs_difference"] == 0


def test_known_gaps_are_missing_never_zero(replica_warehouse):
    con = warehouse.connect(replica_warehouse, read_only=True)
    t5 = con.sql("SELECT * FROM nasa.traffic_5m ORDER BY 1").df().set_index("bucket_start")
    assert t5.loc["1995-07-28 13:35":"1995-07-31 23:55", "is_missing"].all()  # no log file
    assert t5.loc["1995-08-01 14:55":"1995-08-03 04:30", "is_missing"].all()  # Hurricane Erin
    assert not t5.loc["1995-08-03 04:35", "is_missing"]  # 10 requests after the outage
    assert t5.loc[t5.is_missing, "requests"].isna().all()
    for table, minutes in (("traffic_1m", 1), ("traffic_5m", 5), ("traffic_15m", 15)):
        passed, metadata = buckets_complete(con, table, minutes, FIRST, LAST)
        assert passed, (table, metadata)
    assert lines_accounted(con, FIRST, LAST)[0]


def test_status_classes_and_bytes_follow_the_5_minute_aggregate(replica_warehouse):
    con = warehouse.connect(replica_warehouse, read_only=True)
    ours = con.sql("SELECT * FROM nasa.traffic_5m WHERE NOT is_missing").df()
    ours = ours.set_index("bucket_start")
    ref = reference_traffic_5m().reindex(ours.index)
    same_count = ref.request_count == ours.requests
    assert same_count.mean() > 0.97
    for column in ("status_2xx", "status_3xx", "status_4xx", "status_5xx"):
        assert (ours.loc[same_count, column] == ref.loc[same_count, column]).all(), column
    has_bytes = ref.total_bytes.notna()
    assert np.allclose(ours.bytes[has_bytes], ref.total_bytes[has_bytes], rtol=0, atol=1)
    assert pd.Series(ours.unique_hosts).max() > 100


def test_the_traffic_checks_fail_on_a_lost_bucket_a_zero_outage_or_a_wrong_count(replica_copy):
    con = warehouse.connect(replica_copy)
    day = dt.date(1995, 8, 2)  # inside Hurricane Erin's outage: missing buckets
    assert buckets_complete(con, "traffic_5m", 5, day, day)[0]
    assert matches_reference(con, day, day)[0]
    # an outage read as zero traffic
    con.execute("UPDATE nasa.traffic_5m SET requests = 0 WHERE bucket_start = '1995-08-02 06:00'")
    passed, metadata = buckets_complete(con, "traffic_5m", 5, day, day)
    assert not passed and metadata["missing_with_a_count"] == 1
    # a bucket lost
    con.execute("DELETE FROM nasa.traffic_5m WHERE bucket_start = '1995-08-02 06:00'")
    passed, metadata = buckets_complete(con, "traffic_5m", 5, day, day)
    assert not passed and metadata["buckets"] == metadata["expected_buckets"] - 1
    # one request too many, against the reference series
    busy = dt.date(1995, 8, 4)
    con.execute(
        "UPDATE nasa.traffic_5m SET requests = requests + 1 WHERE bucket_start = '1995-08-04 12:00'"
    )
    passed, metadata = matches_reference(con, busy, busy)
    assert not passed and metadata["total_abs_difference"] == 1
