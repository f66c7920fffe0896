"""Special events: the dated list in data/special_events.csv (each with its source).

Events that are scheduled or known ahead (holidays, launches, landings, missions, anniversaries)
may feed models; outages and no-data periods are known only afterwards and never do. Each event
says when it became known (`known_from`, with `known_source`): a forecast from origin o uses an
event only if known_from <= o (a launch window from its announcement, a scrub from the moment it
was called). A file without the column, or a row with it blank, counts an event as known from its
start: never earlier than it began.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from nasa_autoscale.settings import DEFAULT_EVENTS_PATH

EVENTS_CSV = DEFAULT_EVENTS_PATH  # NASA's list, the default of NASA_EVENTS_PATH
COLUMNS = [
    "name",
    "kind",
    "start_ts",
    "end_ts",
    "known_from",
    "expected_impact",
    "source",
    "known_source",
]
REQUIRED = ["name", "kind", "start_ts", "end_ts", "expected_impact", "source"]
TIMES = ("start_ts", "end_ts", "known_from")
IMPACTS = {"high_traffic", "low_traffic", "outage"}
# Kinds known only after the fact: never a model input.
HINDSIGHT_KINDS = {"outage", "no_data"}
# Event flags offered as features: flag name -> event kinds it covers.
FEATURE_FLAGS = {
    "is_holiday": {"holiday"},
    "is_launch": {"launch", "countdown"},
    "is_landing": {"landing"},
    "is_mission": {"mission"},
    "is_anniversary": {"anniversary"},
    "is_special_event": {
        "holiday",
        "launch",
        "countdown",
        "landing",
        "mission",
        "anniversary",
        "astronomy",
        "weather",
    },
}


class EventsError(ValueError):
    """The events file is malformed; the message names the row and the problem."""


def load_events(path: Path | None = DEFAULT_EVENTS_PATH) -> pd.DataFrame:
    """The events, validated: every column present, times parse, start <= end, known impact.

    path: Settings.events_path (NASA's list unless NASA_EVENTS_PATH says otherwise); None: no
    events, an empty table, so every event feature is 0. NASA's events lie in 1995: they flag
    nothing in other logs."""
    if path is None:
        return pd.DataFrame(
            {c: pd.Series(dtype="datetime64[ns]" if c in TIMES else "string") for c in COLUMNS}
        )
    from nasa_autoscale.configfile import ConfigFileError, read_text

    try:
        text = read_text(path, "NASA_EVENTS_PATH")
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except ConfigFileError as error:
        raise EventsError(str(error)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise EventsError(f"{path}: not a CSV of events ({error})") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise EventsError(f"{path}: missing column(s) {missing}")
    if "known_from" not in df.columns:
        df["known_from"] = ""
    if "known_source" not in df.columns:
        df["known_source"] = ""
    blank = df["known_from"].str.strip() == ""
    df.loc[blank, "known_from"] = df.loc[blank, "start_ts"]
    df.loc[blank, "known_source"] = "not given: known from its start"
    for column in TIMES:
        parsed = pd.to_datetime(df[column], errors="coerce", format="%Y-%m-%d %H:%M:%S")
        bad = parsed.isna()
        if bad.any():
            row = int(bad.idxmax()) + 2  # 1-based, after the header
            raise EventsError(
                f"{path}: line {row}: {column} {df.at[bad.idxmax(), column]!r} "
                "is not YYYY-MM-DD HH:MM:SS"
            )
        df[column] = parsed
    for i, event in df.iterrows():
        where = f"{path}: line {i + 2} ({event['name']!r})"
        if event.start_ts > event.end_ts:
            raise EventsError(f"{where}: start_ts is after end_ts")
        if event.expected_impact not in IMPACTS:
            raise EventsError(f"{where}: expected_impact must be one of {sorted(IMPACTS)}")
        if not event.source.strip() or not event["name"].strip() or not event.kind.strip():
            raise EventsError(f"{where}: name, kind and source are required")
    return df[COLUMNS]


def read_events(con) -> pd.DataFrame:
    """The special_events table as the asset wrote it (load_events' frame): what every model,
    detector and report reads, so that the CSV is read once, by its asset."""
    from nasa_autoscale.warehouse import SCHEMA, read

    events = read(con, f"SELECT {', '.join(COLUMNS)} FROM {SCHEMA}.special_events")
    for column in COLUMNS:
        if column in TIMES:
            events[column] = pd.to_datetime(events[column]).astype("datetime64[ns]")
        else:
            events[column] = events[column].astype(object)
    return events
