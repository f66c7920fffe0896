import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.anomalies.detect import detect_anomalies, seasonal_baseline
from nasa_autoscale.anomalies.evaluate import evaluate, score_flags
from nasa_autoscale.anomalies.report import write_report
from nasa_autoscale.features.events import load_events

SPIKE = pd.Timestamp("1995-07-25 14:00")
DIP = pd.Timestamp("1995-07-26 11:00")


@pytest.fixture
def july(real_traffic_5m):
    """Real July traffic (to Jul 27) with one injected spike and one dip."""
    frame = real_traffic_5m[real_traffic_5m.bucket_start < "1995-07-28"].reset_index(drop=True)
    frame = frame.copy()
    at = frame.bucket_start == SPIKE
    frame.loc[at, "requests"] = frame.loc[at, "requests"] * 6
    frame.loc[frame.bucket_start == DIP, "requests"] = 0
    return frame


def test_the_baseline_is_the_median_of_the_same_slot_on_same_type_days(july):
    base = seasonal_baseline(july, 5).set_index(july.bucket_start)
    t = pd.Timestamp("1995-07-26 10:00")  # a Wednesday
    same_slot = july.set_index("bucket_start")["requests"].astype(float)
    weekdays = [t - pd.Timedelta(days=d) for d in range(1, 22)]
    weekdays = [d for d in weekdays if d.dayofweek < 5 and d >= pd.Timestamp("1995-07-01")]
    assert base.at[t, "baseline"] == np.median(same_slot.loc[weekdays])
    assert base.at[t, "history_days"] == len(weekdays)
    assert base.loc["1995-07-01", "baseline"].isna().all()  # no history yet


def test_injected_spike_and_dip_are_found_and_typed(july):
    a = detect_anomalies(july, 5).set_index("bucket_start")
    assert a.at[SPIKE, "is_anomaly_z"] and a.at[SPIKE, "kind"] == "spike"
    assert a.at[DIP, "is_anomaly_z"] and a.at[DIP, "kind"] == "dip"
    assert a.at[SPIKE, "is_anomaly_iforest"] and a.at[SPIKE, "is_anomaly"]
    judged = a["is_anomaly_iforest"].notna()
    assert a.loc[judged, "is_anomaly_iforest"].mean() == pytest.approx(0.01, abs=0.002)
    assert a.loc[a.is_anomaly & a.kind.ne("outage"), "is_anomaly_z"].all()  # both agree


def test_missing_data_is_an_outage_not_a_dip(real_traffic_5m):
    a = detect_anomalies(real_traffic_5m, 5).set_index("bucket_start")
    erin = a.loc["1995-08-02"]
    assert (erin["kind"] == "outage").all() and erin["is_anomaly"].all()
    assert erin["is_anomaly_z"].isna().all() and erin["is_anomaly_iforest"].isna().all()
    assert not (a["kind"] == "dip").loc["1995-08-02"].any()


def test_precision_and_recall_are_counted_per_event_without_point_adjustment():
    events = pd.DataFrame(
        {
            "name": ["a", "b", "c"],
            "start_ts": pd.to_datetime(
                ["1995-07-01 10:00", "1995-07-02 10:00", "1995-07-03 10:00"]
            ),
            "end_ts": pd.to_datetime(["1995-07-01 12:00", "1995-07-02 12:00", "1995-07-03 12:00"]),
        }
    )
    flags = pd.to_datetime(
        ["1995-07-01 10:05", "1995-07-01 10:10", "1995-07-01 11:00", "1995-07-02 09:00"]
    ).to_numpy()
    covered = pd.Series(pd.date_range("1995-07-01", "1995-07-02 23:55", freq="5min"))
    score = score_flags(flags, events, covered)
    # Three flags in event a count once for recall; the 09:00 flag is a false alarm; event c
    # lies outside the covered data and does not count.
    assert (score["events"], score["events_found"], score["recall"]) == (2, 1, 0.5)
    assert (score["flags"], score["flags_in_an_event"], score["precision"]) == (4, 3, 0.75)
    # Random flags on the covered two days would land in a or b 2 x 25 / 576 of the time.
    assert score["precision_if_random"] == pytest.approx(50 / 576)


def test_report_and_figure_are_written(july, tmp_path):
    a = detect_anomalies(july, 5)
    scores = evaluate(a, load_events())
    assert set(scores.method) == {"z", "iforest", "both", "outage (missing data)"}
    report = write_report(a, scores, load_events(), "real", tmp_path)
    text = report.read_text()
    assert "| z " in text and "precision" in text and "figures/anomalies_5m.png" in text
    assert (tmp_path / "figures" / "anomalies_5m.png").stat().st_size > 10_000
