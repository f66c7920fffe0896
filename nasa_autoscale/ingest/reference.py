"""The committed NASA reference data (data/reference, see data/README.md) and its alignment rules.

The per-second series is the real trace's request count per second. Its alignment to wall-clock
seconds follows data/reference/MANIFEST.txt exactly; the constants below are that file's rules.
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

from nasa_autoscale.settings import REFERENCE_DIR

PER_SECOND_ARCHIVE = REFERENCE_DIR / "workload.tbz2"
TRAFFIC_5M_CSV = REFERENCE_DIR / "nasa_traffic_5m.csv"

JULY_FIRST_SECOND = np.datetime64("1995-07-01T00:00:01")
JULY_VALUES = 2_381_544
AUGUST_FIRST_SECOND = np.datetime64("1995-08-01T00:00:01")
# August values after this index are 14 s late: the series holds 14 extra zero seconds there.
AUGUST_SHIFT_AFTER = 2_650_781
AUGUST_SHIFT_S = 14
EXPECTED_SUM = 3_461_610

# The series never wrote each file's last second. The line counts say what was there: the July file
# has 1,891,715 lines = series 1,891,713 + its last second + one line the script skipped (position
# unknown), so the last second held 1 line; August's 1,569,898 = 1,569,897 + the final second.
FILE_LAST_SECONDS = {
    "NASA_access_log_Jul95.gz": (np.datetime64("1995-07-28T13:32:25"), 1),
    "NASA_access_log_Aug95.gz": (np.datetime64("1995-08-31T23:59:53"), 1),
}


@dataclass(frozen=True)
class FileSeconds:
    """One source file's non-empty seconds and their request counts, in time order."""

    file_name: str
    seconds: np.ndarray  # datetime64[s]
    requests: np.ndarray  # int64


@cache
def per_second_values() -> np.ndarray:
    """The raw per-second series as stored: 5,059,950 integers."""
    with tarfile.open(PER_SECOND_ARCHIVE, "r:bz2") as tar:
        member = tar.extractfile("workload.txt")
        if member is None:
            raise FileNotFoundError(f"{PER_SECOND_ARCHIVE} holds no workload.txt")
        text = member.read()
    # One integer per space-separated field; Arrow's CSV reader parses 5M of them in ~0.1 s.
    table = pa_csv.read_csv(
        pa.py_buffer(text.replace(b" ", b"\n")),
        read_options=pa_csv.ReadOptions(column_names=["v"]),
        convert_options=pa_csv.ConvertOptions(column_types={"v": pa.int64()}),
    )
    values = table.column("v").to_numpy()
    if int(values.sum()) != EXPECTED_SUM:
        raise ValueError(f"{PER_SECOND_ARCHIVE}: sum {values.sum():,} != {EXPECTED_SUM:,}")
    return values


def file_seconds(include_last_seconds: bool = True) -> list[FileSeconds]:
    """The series aligned to wall-clock seconds, per source file (MANIFEST.txt rules).

    With include_last_seconds, each file's final second (which the series lacks) is added from
    FILE_LAST_SECONDS, so the counts are those of the real files but for one July line.
    """
    values = per_second_values()
    july = values[:JULY_VALUES]
    august = values[JULY_VALUES:]
    j = np.arange(len(august))
    extra = (j > AUGUST_SHIFT_AFTER) & (j <= AUGUST_SHIFT_AFTER + AUGUST_SHIFT_S)
    if august[extra].any():
        raise ValueError("the 14 seconds the MANIFEST calls extra zeros are not all zero")
    aug_offsets = np.where(j > AUGUST_SHIFT_AFTER, j - AUGUST_SHIFT_S, j)[~extra]
    parts = [
        ("NASA_access_log_Jul95.gz", JULY_FIRST_SECOND + np.arange(len(july)), july),
        ("NASA_access_log_Aug95.gz", AUGUST_FIRST_SECOND + aug_offsets, august[~extra]),
    ]
    out = []
    for name, seconds, counts in parts:
        keep = counts > 0
        seconds, counts = seconds[keep].astype("datetime64[s]"), counts[keep]
        if include_last_seconds:
            last, n = FILE_LAST_SECONDS[name]
            seconds = np.append(seconds, last)
            counts = np.append(counts, n)
        out.append(FileSeconds(name, seconds, counts.astype(np.int64)))
    return out


def reference_counts(minutes: int, include_last_seconds: bool = True) -> pd.Series:
    """Requests per `minutes`-minute bucket from the per-second series (non-empty buckets only)."""
    frames = [
        pd.Series(f.requests, index=pd.DatetimeIndex(f.seconds))
        for f in file_seconds(include_last_seconds)
    ]
    series = pd.concat(frames)
    return series.groupby(series.index.floor(f"{minutes}min")).sum().rename("requests")


def reference_traffic_5m() -> pd.DataFrame:
    """The published 5-minute aggregate with bytes and status classes (naive local bucket starts).

    Its request counts lack 43 unparsed lines and its outage bins are blank (NaN): see MANIFEST.txt.
    """
    df = pd.read_csv(TRAFFIC_5M_CSV)
    df["bucket_start"] = pd.to_datetime(df.pop("timestamp").str[:19])
    return df.set_index("bucket_start")
