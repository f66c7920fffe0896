import shutil

from nasa_autoscale.benchmarks import ingest as bench
from nasa_autoscale.settings import SAMPLES_DIR


def test_both_sides_of_the_ingest_benchmark_read_the_same_lines(tmp_path, malformed_lines):
    log = tmp_path / "access.log"
    shutil.copy(SAMPLES_DIR / "nasa_2k.log", log)
    with log.open("ab") as f:
        f.write(b"\n".join(malformed_lines) + b"\ngarbage\n")
    ours = bench.run_ours([log], "real")
    assert (ours["lines"], ours["requests"], ours["rejected"]) == (2006, 2005, 1)
    assert ours["traffic_rows"]["traffic_5m"] == 62 * 288
    baseline = bench.measure("baseline", [log], "real")  # in a subprocess, as the benchmark runs
    assert baseline["lines"] == 2006 and baseline["peak_mb"] > 0
    # The line-by-line regex needs a quoted request and bytes: it reads the same lines here.
    assert baseline["requests"] == 2005


def test_the_scaling_benchmark_says_what_to_run_first(tmp_path, monkeypatch, capsys):
    from nasa_autoscale import warehouse
    from nasa_autoscale.benchmarks import scaling

    path = tmp_path / "empty.duckdb"
    warehouse.connect(path).close()  # the contract tables, no scaling forecasts yet
    monkeypatch.setenv("NASA_DUCKDB_PATH", str(path))
    assert scaling.main([]) == 1
    assert "make run" in capsys.readouterr().err
