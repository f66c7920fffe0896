import pytest

from nasa_autoscale import warehouse
from nasa_autoscale.settings import Settings, SettingsError


def test_defaults_are_the_nasa_trace(monkeypatch):
    for name in ("NASA_START_DATE", "NASA_END_DATE", "NASA_DOWNLOAD_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.start_date, settings.end_date) == ("1995-07-01", "1995-08-31")


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("NASA_START_DATE", "July 1st", "NASA_START_DATE='July 1st' is not a date"),
        ("NASA_END_DATE", "1995-06-01", "NASA_END_DATE 1995-06-01 is before NASA_START_DATE"),
        ("NASA_DOWNLOAD_TIMEOUT", "soon", "NASA_DOWNLOAD_TIMEOUT must be a number"),
    ],
)
def test_bad_environment_values_are_named(monkeypatch, name, value, message):
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        Settings.from_env()


def test_an_unwritable_warehouse_path_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(warehouse.WarehouseError, match="cannot open the DuckDB warehouse"):
        warehouse.connect(blocker / "sub" / "warehouse.duckdb")
