import pandas as pd
import pytest

from nasa_autoscale.features.events import EVENTS_CSV, EventsError, load_events

REQUIRED = [
    ("Independence Day", "1995-07-04"),
    ("STS-71 landing at KSC", "1995-07-07"),
    ("STS-70 launch", "1995-07-13"),
    ("STS-70 mission in orbit", "1995-07-13"),
    ("STS-70 landing at KSC", "1995-07-22"),
    ("Apollo 11 Moon landing anniversary (26th)", "1995-07-20"),
    ("No log collected (end of the July file to Aug 1)", "1995-07-28"),
    ("Hurricane Erin server outage", "1995-08-01"),
    ("STS-69 launch attempt scrubbed (fuel cell)", "1995-08-31"),
]


def test_the_event_list_has_what_the_issue_asks_for():
    events = load_events()
    assert len(events) >= 15
    starts = dict(zip(events["name"], events["start_ts"].dt.strftime("%Y-%m-%d"), strict=True))
    for name, day in REQUIRED:
        assert starts.get(name) == day, name
    assert events["source"].str.len().min() > 10
    launch = events.set_index("name").loc["STS-70 launch"]
    assert launch.start_ts <= pd.Timestamp("1995-07-13 09:41:55") <= launch.end_ts
    erin = events.set_index("name").loc["Hurricane Erin server outage"]
    assert (erin.start_ts, erin.end_ts) == (pd.Timestamp("1995-08-01 14:52:01"),
                                            pd.Timestamp("1995-08-03 04:36:13"))  # fmt: skip


@pytest.mark.parametrize(
    "row, message",
    [
        ("x,holiday,1995-07-04 00:00:00,1995-07-03 00:00:00,low_traffic,src", "after end_ts"),
        ("x,holiday,1995-07-04,1995-07-05 00:00:00,low_traffic,src", "not YYYY-MM-DD HH:MM:SS"),
        ("x,holiday,1995-07-04 00:00:00,1995-07-05 00:00:00,sideways,src", "expected_impact"),
        ("x,holiday,1995-07-04 00:00:00,1995-07-05 00:00:00,low_traffic,", "source are required"),
    ],
)
def test_a_bad_row_is_named(tmp_path, row, message):
    path = tmp_path / "events.csv"
    path.write_text(EVENTS_CSV.read_text().splitlines()[0] + "\n" + row + "\n")
    with pytest.raises(EventsError, match=f"line 2.*{message}|{message}"):
        load_events(path)
