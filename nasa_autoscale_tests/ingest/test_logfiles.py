import datetime as dt
import gzip
import os

import numpy as np
import pytest

from nasa_autoscale.ingest.logfiles import (
    LogFileError,
    find_log_files,
    index_lines,
    read_bytes,
    read_lines,
    string_view,
)


def lines_of(data: bytes) -> list[str]:
    lines = index_lines(data)
    return lines.text(np.arange(len(lines))).to_pylist()


def test_index_lines_keeps_every_line_and_drops_only_terminators():
    assert lines_of(b"a\nbb\n\nccc") == ["a", "bb", "", "ccc"]
    assert lines_of(b"a\r\nb\n") == ["a\r", "b"]  # CR is data: the parser decides about it
    assert lines_of(b"") == []
    assert lines_of(b"\n") == [""]


def test_high_and_control_bytes_are_kept_as_latin1_and_flagged():
    data = b"plain line\nhigh \x83\xfb byte\nnul \x00 and tab \t\nplain again\n"
    lines = index_lines(data)
    assert lines.has_special.tolist() == [False, True, True, False]
    assert lines_of(data)[1] == "high \x83\xfb byte"
    assert lines_of(data)[2] == "nul \x00 and tab \t"


def test_string_view_shares_the_buffer_and_handles_short_long_and_null_values():
    data = b"GET /a/rather/long/url/here.html HTTP/1.0 x"
    buf = np.frombuffer(data, np.uint8)
    starts = np.array([0, 4, 33, 42, 0])
    ends = np.array([3, 32, 41, 43, 0])
    valid = np.array([True, True, False, True, True])
    arr = string_view(buf, starts, ends, valid)
    assert arr.to_pylist() == ["GET", "/a/rather/long/url/here.html", None, "x", ""]


def test_gzip_with_several_members_is_read_whole(tmp_path):
    path = tmp_path / "two.gz"
    path.write_bytes(gzip.compress(b"one\n") + gzip.compress(b"two\n"))
    assert read_bytes(path) == b"one\ntwo\n"


def test_plain_and_empty_files(tmp_path):
    (tmp_path / "plain.log").write_bytes(b"x\n")
    (tmp_path / "empty.log").write_bytes(b"")
    assert read_bytes(tmp_path / "plain.log") == b"x\n"
    assert len(read_lines(tmp_path / "empty.log")) == 0


def test_truncated_gzip_names_the_file_and_where_it_broke(tmp_path):
    data = gzip.compress(os.urandom(200_000).hex().encode())
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(
        LogFileError, match=r"cut\.gz: truncated gzip file: it ends at compressed byte"
    ):
        read_bytes(path)


def test_corrupt_gzip_names_the_file(tmp_path):
    data = bytearray(gzip.compress(b"hello world\n" * 1000))
    data[20:40] = b"\xff" * 20
    path = tmp_path / "bad.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(LogFileError, match=r"bad\.gz: corrupt gzip data"):
        read_bytes(path)


def test_missing_file_says_how_to_get_the_logs(tmp_path):
    with pytest.raises(LogFileError, match="no such file.*NASA_access_log_Jul95.gz"):
        read_bytes(tmp_path / "nope.gz")


def test_a_folder_is_not_a_log_file(tmp_path):
    with pytest.raises(LogFileError, match="is a directory"):
        read_bytes(tmp_path)


def test_find_log_files_skips_hidden_partial_and_notes(tmp_path):
    for name in ["b.log", "a.gz", ".hidden", "c.gz.part", "README.md"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub").mkdir()
    assert [p.name for p in find_log_files(tmp_path)] == ["a.gz", "b.log"]
    assert find_log_files(tmp_path / "absent") == []


def test_find_log_files_reads_date_nested_prefixes_and_skips_by_rule(tmp_path):
    """An S3 sync of ALB logs: AWSLogs/<account>/elasticloadbalancing/<region>/YYYY/MM/DD/."""
    day = tmp_path / "AWSLogs" / "123456789012" / "elasticloadbalancing" / "eu-west-1" / "2026"
    for sub, name in [
        ("12/01", "123456789012_elasticloadbalancing_eu-west-1_app.web_20261201T0000Z_1.log.gz"),
        ("12/02", "123456789012_elasticloadbalancing_eu-west-1_app.web_20261202T0000Z_1.log.gz"),
        ("12/02", "ELBAccessLogTestFile"),
        ("12/02", "PROVENANCE.txt"),
        ("12/02", "x.log.gz.sha256"),
        ("12/02", "readme.md"),
    ]:
        (day / sub).mkdir(parents=True, exist_ok=True)
        (day / sub / name).write_bytes(b"")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"")
    names = [p.name for p in find_log_files(tmp_path)]
    assert names == [
        "123456789012_elasticloadbalancing_eu-west-1_app.web_20261201T0000Z_1.log.gz",
        "123456789012_elasticloadbalancing_eu-west-1_app.web_20261202T0000Z_1.log.gz",
        "ELBAccessLogTestFile",
    ]
    from nasa_autoscale.ingest.landing import days_from_name

    assert days_from_name(names[1]) == [dt.date(2026, 12, 2)]  # the date, not the account id
    (day / "12" / "01" / "ELBAccessLogTestFile").write_bytes(b"")
    with pytest.raises(LogFileError, match="two log files named ELBAccessLogTestFile"):
        find_log_files(tmp_path)
