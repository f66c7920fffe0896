"""The one read path (warehouse.reading / read): what the assets, the API and the dashboard see
when a table is missing, stale or the file absent."""

import subprocess
import sys

import pandas as pd
import pytest

from nasa_autoscale import warehouse


def test_a_missing_table_names_the_asset_that_writes_it(tmp_path):
    path = tmp_path / "wh.duckdb"
    warehouse.connect(path).close()
    with warehouse.reading(path) as con:
        assert warehouse.read(con, "SELECT count(*) AS n FROM nasa.traffic_5m")["n"][0] == 0
        with pytest.raises(warehouse.MissingTable, match="materialize the asset `model_metrics`"):
            warehouse.read(con, "SELECT * FROM nasa.model_metrics WHERE selected")
        # source_files is written by the requests asset
        assert warehouse.PRODUCERS["source_files"] == "requests"
        assert warehouse.row_count(con, "cost_report") is None
        assert warehouse.data_source(con) == "none"


def test_a_table_from_an_older_version_says_rematerialize(tmp_path):
    path = tmp_path / "wh.duckdb"
    con = warehouse.connect(path)
    warehouse.replace_table(con, "cost_report", pd.DataFrame({"setting": ["default"]}))
    con.close()
    with warehouse.reading(path) as con, pytest.raises(warehouse.MissingTable) as error:
        warehouse.read(con, "SELECT selected FROM nasa.cost_report")
    assert "older version: rematerialize the asset `cost_report`" in str(error.value)


def test_no_file_and_a_busy_file_are_clear_errors(tmp_path):
    absent = warehouse.reading(tmp_path / "absent.duckdb")
    with pytest.raises(warehouse.WarehouseError, match="run `make run` first"), absent:
        pass
    path = tmp_path / "wh.duckdb"
    warehouse.connect(path).close()
    holder = subprocess.Popen(  # another process writing: DuckDB locks the file
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(path)!r}); "
            "print('open', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(warehouse.WarehouseBusy, match="busy"), warehouse.reading(path):
            pass
    finally:
        holder.kill()
        holder.wait()
