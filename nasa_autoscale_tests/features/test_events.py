import pandas as pd
import pytest

from nasa_autoscale.features.events import EventsError, load_events

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
    assert (erin.start_ts, erin.end_ts) == (
        pd.Timestamp("1995-08-01 14:52:01"),
        pd.Timestamp("1995-08-03 04:36:13"),
    )


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
    path.write_text("name,kind,start_ts,end_ts,expected_impact,source\n" + row + "\n")
    with pytest.raises(EventsError, match=f"line 2.*{message}|{message}"):
        load_events(path)


def test_every_nasa_event_says_when_it_was_known_and_how():
    events = load_events().set_index("name")
    assert events["known_from"].notna().all() and events["known_source"].str.len().min() > 10
    # a scrub is never known in advance; the countdown's end is the planned launch
    scrub = events.loc["STS-69 launch attempt scrubbed (fuel cell)"]
    assert scrub.known_from == scrub.start_ts == pd.Timestamp("1995-08-31 03:30")
    countdown = events.loc["STS-69 launch countdown"]
    assert countdown.end_ts == pd.Timestamp("1995-08-31 11:04")
    assert countdown.known_from <= countdown.start_ts
    # the Jul 22 landing was known once the Jul 21 attempts were waved off, not before
    landing = events.loc["STS-70 landing at KSC"]
    assert landing.known_from == pd.Timestamp("1995-07-21 09:31")


def test_a_file_without_known_from_counts_each_event_known_from_its_start(tmp_path):
    path = tmp_path / "events.csv"
    path.write_text(
        "name,kind,start_ts,end_ts,expected_impact,source\n"
        "sale,launch,2024-03-01 09:00:00,2024-03-01 12:00:00,high_traffic,our calendar\n"
    )
    event = load_events(path).iloc[0]
    assert event.known_from == event.start_ts and "start" in event.known_source
