import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nasa_autoscale.ingest.logfiles import index_lines
from nasa_autoscale.ingest.parse import drop_parsed, parse_lines
from nasa_autoscale.ingest.reference import per_second_values
from nasa_autoscale.settings import SAMPLES_DIR


def parse(con, data: bytes, force_general: bool = False, zone=None, log_format="auto"):
    lines = index_lines(data)
    if force_general:  # every line through the general regex, none through the plain fast path
        lines = dataclasses.replace(lines, has_special=np.ones(len(lines), dtype=bool))
    parsed = parse_lines(con, lines, "t", zone, log_format)
    requests = con.sql(f"SELECT * FROM {parsed.requests_table} ORDER BY line_number").df()
    rejected = con.sql(f"SELECT * FROM {parsed.rejected_table} ORDER BY line_number").df()
    drop_parsed(con, parsed)
    return parsed, requests, rejected


def test_real_lines_parse_as_the_reference_parser_did(con, sample_2k):
    parsed, requests, rejected = parse(con, sample_2k)
    assert (parsed.n_lines, parsed.n_requests, parsed.n_rejected) == (2000, 2000, 0)
    # Rows have two trailing empty fields that the header lacks.
    names = ["host", "logname", "time", "method", "url", "response", "bytes", "_1", "_2"]
    expected = pd.read_csv(
        SAMPLES_DIR / "nasa_19950701.tsv", sep="\t", skiprows=1, nrows=2000, names=names
    )
    # The TSV keeps UTC epoch seconds; the log's wall clock is UTC-4.
    wall_clock = pd.to_datetime(expected["time"], unit="s") - pd.Timedelta(hours=4)
    assert (requests["ts"] == wall_clock).all()
    assert (requests["host"] == expected["host"]).all()
    assert (requests["method"] == expected["method"]).all()
    assert (requests["url"] == expected["url"]).all()
    assert (requests["status"] == expected["response"]).all()
    dash = sample_2k.decode().splitlines()
    is_dash = pd.Series([line.endswith(" -") for line in dash])
    assert requests["bytes"].isna().equals(is_dash)  # '-' is NULL, not 0 as in the TSV
    assert (requests["bytes"][~is_dash] == expected["bytes"][~is_dash]).all()
    # One real line has no protocol: "GET /shuttle/missions/sts-71/movies/sts-71-mir-dock.mpg"
    assert requests["protocol"].value_counts(dropna=False).to_dict() == {"HTTP/1.0": 1999, None: 1}
    assert (requests["tz_offset"] == -400).all()


def test_real_lines_counted_per_second_match_the_reference_series(con, sample_2k):
    _, requests, _ = parse(con, sample_2k)
    seconds = (requests["ts"] - pd.Timestamp("1995-07-01 00:00:01")).dt.total_seconds()
    counts = np.bincount(seconds.astype(int))
    # The sample stops inside its last second, so that second is left out.
    reference = per_second_values()[: len(counts) - 1]
    assert counts[:-1].tolist() == reference.tolist()


def test_malformed_real_lines_are_requests_with_their_raw_request_kept(con, malformed_lines):
    _, requests, rejected = parse(con, b"\n".join(malformed_lines))
    assert rejected.empty
    assert len(requests) == 5
    assert requests[["method", "url", "protocol"]].isna().all().all()
    assert requests["request"].tolist()[:3] == [
        "\x05\x01",
        "1/history/apollo/images/",
        "1/history/apollo/images/",
    ]
    assert "\x83\xfb" in requests["request"][3]  # high bytes read as latin-1
    assert (requests["status"] == 400).all()


ODD_LINES = [
    # (line, expected: "request" or the start of the rejection reason)
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET /a"b HTTP/1.0" 200 -', "request"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET /no-protocol" 200 12', "request"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET /unclosed 200 12', "request"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "" 400 -', "request"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200', "request"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 -\r', "request"),
    (b'h - - [01/Jul/1995:00:00:01 +0100] "GET / HTTP/1.0" 200 5', "request"),
    (b'h - - [32/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 5', "invalid timestamp"),
    (b'h - - [01/Jux/1995:00:00:01 -0400] "GET / HTTP/1.0" 200 5', "invalid timestamp"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET / HTTP/1.0" 20', "no status"),
    (b'h - - [01/Jul/1995:00:00:01 -0400] "GET / HTT', "no status"),
    (b"h - - [01/Jul/1995:00:0", "no host and [timestamp]"),
    (b"", "blank line"),
    (b"   \t", "blank line"),
    (b"\x00\x00\x00", "no host and [timestamp]"),
    (b'{"json": "log"}', "no host and [timestamp]"),
    (b"x" * 100_000, "no host and [timestamp]"),
]


@pytest.mark.parametrize("force_general", [False, True])
def test_every_odd_line_lands_once_with_a_reason(con, force_general):
    data = b"\n".join(line for line, _ in ODD_LINES)
    parsed, requests, rejected = parse(con, data, force_general)
    assert parsed.n_requests + parsed.n_rejected == parsed.n_lines == len(ODD_LINES)
    assert set(requests.line_number).isdisjoint(rejected.line_number)
    for number, (_, expected) in enumerate(ODD_LINES, start=1):
        if expected == "request":
            assert number in set(requests.line_number), number
        else:
            reason = rejected.set_index("line_number").loc[number, "reason"]
            assert reason.startswith(expected), (number, reason)


def test_odd_requests_are_read_as_documented(con):
    data = b"\n".join(line for line, _ in ODD_LINES)
    _, requests, _ = parse(con, data)
    by_line = requests.set_index("line_number")
    assert by_line.loc[1, "url"] == '/a"b'
    assert by_line.loc[2, ["method", "url"]].tolist() == ["GET", "/no-protocol"]
    assert pd.isna(by_line.loc[2, "protocol"])
    assert by_line.loc[3, ["method", "url"]].tolist() == ["GET", "/unclosed"]  # no closing quote
    assert by_line.loc[4, "request"] == ""  # an empty request is kept as such
    assert pd.isna(by_line.loc[5, "bytes"])  # a line without bytes still is a request
    assert by_line.loc[7, "tz_offset"] == 100


def test_plain_and_general_paths_read_plain_lines_identically(con, sample_2k):
    _, fast, _ = parse(con, sample_2k)
    _, general, _ = parse(con, sample_2k, force_general=True)
    pd.testing.assert_frame_equal(fast, general)


def test_rejected_lines_take_the_day_of_the_request_before_them(con):
    data = b"\n".join(
        [
            b"garbage before any request",
            b'h - - [02/Jul/1995:23:59:59 -0400] "GET / HTTP/1.0" 200 1',
            b"garbage",
            b'h - - [03/Jul/1995:00:00:00 -0400] "GET / HTTP/1.0" 200 1',
            b"more garbage",
        ]
    )
    _, _, rejected = parse(con, data)
    days = rejected.set_index("line_number")["day"].astype(str).to_dict()
    assert days == {1: "1995-07-02", 3: "1995-07-02", 5: "1995-07-03"}


# Lines as a fuzzer makes them: random bytes (NUL and high bytes included), real lines cut
# anywhere, huge lines; never a newline inside (that would make two lines).
_REAL = b'199.72.81.55 - - [01/Jul/1995:00:00:01 -0400] "GET /history/apollo/ HTTP/1.0" 200 6245'
_fuzz_line = st.one_of(
    st.binary(max_size=300).map(lambda b: b.replace(b"\n", b"")),
    st.integers(0, len(_REAL)).map(lambda n: _REAL[:n]),
    st.tuples(st.integers(0, len(_REAL)), st.binary(max_size=40)).map(
        lambda t: (_REAL[: t[0]] + t[1] + _REAL[t[0] :]).replace(b"\n", b"")
    ),
    st.integers(10_000, 200_000).map(
        lambda n: b'h - - [01/Jul/1995:00:00:02 -0400] "GET /' + b"x" * n
    ),
    st.just(b"\x00" * 50),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(lines=st.lists(_fuzz_line, min_size=1, max_size=40))
def test_fuzzed_lines_never_crash_and_every_line_is_accounted_for(tmp_path_factory, lines):
    import datetime as dt

    from nasa_autoscale import warehouse
    from nasa_autoscale.ingest.load import ingest_days

    folder = tmp_path_factory.mktemp("fuzz")
    log = folder / "fuzz.log"
    log.write_bytes(b"\n".join([_REAL, *lines]) + b"\n")  # a first real line anchors the day
    con = warehouse.connect(folder / "fuzz.duckdb")
    day = dt.date(1995, 7, 1)
    summary = ingest_days(con, [log], day, day, "real", progress=lambda _: None)
    requests, rejected = con.sql(
        "SELECT (SELECT count(*) FROM nasa.requests), (SELECT count(*) FROM nasa.rejected_lines)"
    ).fetchall()[0]
    numbers = con.sql(
        "SELECT line_number FROM nasa.requests UNION ALL SELECT line_number FROM "
        "nasa.rejected_lines ORDER BY 1"
    ).fetchall()
    con.close()
    assert summary.lines_read == len(lines) + 1
    assert requests + rejected == len(lines) + 1
    assert [n for (n,) in numbers] == list(range(1, len(lines) + 2))  # each line once
