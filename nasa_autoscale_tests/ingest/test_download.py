import dataclasses
import functools
import gzip
import http.server
import threading

import pytest

from nasa_autoscale.ingest.download import DownloadError, download, locate_logs
from nasa_autoscale.ingest.logfiles import LogFileError
from nasa_autoscale.settings import NASA_LOG_FILES, Settings


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/www; yields its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def settings_for(tmp_path, url: str, replica_dir=None, make_raw_dir=True) -> Settings:
    if make_raw_dir:
        (tmp_path / "raw").mkdir(exist_ok=True)
    return dataclasses.replace(
        Settings.from_env(),
        raw_dir=tmp_path / "raw",
        replica_dir=replica_dir or tmp_path / "replica",
        log_url=url,
        download_timeout_s=5,
    )


def test_download_writes_the_file_and_reports_progress(server, tmp_path):
    root, url = server
    (root / "x.gz").write_bytes(gzip.compress(b"line\n" * 100_000))
    messages = []
    got = download(url + "x.gz", tmp_path / "x.gz", 5, messages.append)
    assert gzip.decompress(got.read_bytes()) == b"line\n" * 100_000
    assert messages and messages[-1].startswith("x.gz: 100%")
    assert not list(tmp_path.glob("*.part"))


def test_download_errors_leave_nothing_behind(server, tmp_path):
    root, url = server
    (root / "fake.gz").write_bytes(b"<html>not gzip</html>")
    with pytest.raises(DownloadError, match="404"):
        download(url + "missing.gz", tmp_path / "missing.gz", 5, print)
    with pytest.raises(DownloadError, match="not a gzip file"):
        download(url + "fake.gz", tmp_path / "fake.gz", 5, print)
    assert list(tmp_path.iterdir()) == [root.parent / "www"]


def test_locate_logs_downloads_both_nasa_files(server, tmp_path):
    root, url = server
    for name in NASA_LOG_FILES:
        (root / name).write_bytes(gzip.compress(b"x\n"))
    source = locate_logs(settings_for(tmp_path, url), progress=lambda m: None)
    assert source.data_source == "real"
    assert [p.name for p in source.files] == list(NASA_LOG_FILES)
    # Files now in the raw folder are used as they are, nothing is fetched.
    again = locate_logs(settings_for(tmp_path, "http://127.0.0.1:9/"), fetch=False)
    assert sorted(again.files) == sorted(source.files)


def test_a_failed_download_falls_back_to_the_replica_and_says_so(server, tmp_path, replica_dir):
    root, url = server
    (root / NASA_LOG_FILES[0]).write_bytes(gzip.compress(b"x\n"))  # the second one is missing
    messages = []
    source = locate_logs(settings_for(tmp_path, url, replica_dir), progress=messages.append)
    assert source.data_source == "replica"
    assert "REPLICA" in source.note
    assert any("download failed" in m for m in messages)
    assert not (tmp_path / "raw" / NASA_LOG_FILES[0]).exists()  # no half real, half replica


def test_without_fetch_and_without_logs_the_error_says_how_to_get_them(tmp_path):
    with pytest.raises(LogFileError, match="no log files in .*NASA_RAW_DIR.*raw_log_files"):
        locate_logs(settings_for(tmp_path, "http://127.0.0.1:9/"), fetch=False)


def test_a_named_raw_folder_that_does_not_exist_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(LogFileError, match="raw \\(NASA_RAW_DIR\\): no such folder"):
        locate_logs(settings_for(tmp_path, "http://127.0.0.1:9/", make_raw_dir=False))
