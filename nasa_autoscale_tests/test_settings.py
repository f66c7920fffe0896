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
        ("NASA_START_DATE", "July 1st", "NASA_START_DATE 'July 1st' is not a date"),
        ("NASA_END_DATE", "1995-06-01", "NASA_END_DATE 1995-06-01 is before NASA_START_DATE"),
        ("NASA_END_DATE", "9999-12-31", "NASA_END_DATE 9999-12-31 is outside 1990-01-01"),
        ("NASA_START_DATE", "1989-12-31", "NASA_START_DATE 1989-12-31 is outside"),
        ("NASA_DOWNLOAD_TIMEOUT", "soon", "NASA_DOWNLOAD_TIMEOUT='soon' is not a number"),
        ("NASA_DOWNLOAD_TIMEOUT", "nan", "NASA_DOWNLOAD_TIMEOUT='nan' is outside"),
        ("NASA_DOWNLOAD_TIMEOUT", "1e308", "is outside 0.1..3600"),
        ("NASA_STALE_AFTER_HOURS", "inf", "NASA_STALE_AFTER_HOURS='inf' is outside"),
        ("NASA_REFIT_DAYS", "100000", "NASA_REFIT_DAYS='100000' is outside 1..366"),
        ("NASA_HISTORY_DAYS", "99999", "NASA_HISTORY_DAYS='99999' is outside"),
        ("NASA_REJECT_THRESHOLD", "nan", "NASA_REJECT_THRESHOLD='nan' is outside"),
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


def test_a_users_logs_need_only_a_start_date(monkeypatch):
    import datetime as dt

    from nasa_autoscale.partitions import daily_partitions_for

    monkeypatch.delenv("NASA_END_DATE", raising=False)
    monkeypatch.setenv("NASA_START_DATE", "2026-11-20")
    settings = Settings.from_env()
    assert settings.open_ended and settings.end_date == dt.date.today().isoformat()
    keys = daily_partitions_for(settings).get_partition_keys()
    assert keys[0] == "2026-11-20" and keys[-1] == dt.date.today().isoformat()  # today included
    # a user's logs that start on the NASA trace's first day are still a user's (live) logs:
    # only no start date at all means the trace
    monkeypatch.setenv("NASA_START_DATE", "1995-07-01")
    assert Settings.from_env().open_ended
    monkeypatch.setenv("NASA_START_DATE", "2026-11-20")
    monkeypatch.setenv("NASA_END_DATE", "2026-11-22")
    fixed = Settings.from_env()
    assert not fixed.open_ended
    assert daily_partitions_for(fixed).get_partition_keys() == [
        "2026-11-20",
        "2026-11-21",
        "2026-11-22",
    ]


def test_the_new_settings_have_defaults_and_name_bad_values(monkeypatch, tmp_path):
    for name in (
        "NASA_TIMEZONE",
        "NASA_LOG_FORMAT",
        "NASA_TEST_DAYS",
        "NASA_VALIDATION_DAYS",
        "NASA_REJECT_THRESHOLD",
        "NASA_EVENTS_PATH",
    ):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert (settings.timezone, settings.log_format, settings.reject_threshold) == (
        "auto",
        "auto",
        0.5,
    )
    assert (settings.test_days, settings.validation_days) == (9, 7)
    assert settings.events_path.name == "special_events.csv"
    monkeypatch.setenv("NASA_TIMEZONE", "utc")
    monkeypatch.setenv("NASA_EVENTS_PATH", "none")
    assert (Settings.from_env().timezone, Settings.from_env().events_path) == ("+0000", None)
    for name, value, message in [
        ("NASA_TIMEZONE", "Mars/Olympus", "neither an IANA time zone"),
        (
            "NASA_LOG_FORMAT",
            "apache",
            "is none of auto, common, combined, vhost_combined, caddy, w3c",
        ),
        ("NASA_LOG_FORMAT", "log_format x '$remote_addr $status';", "no time field"),
        ("NASA_TEST_DAYS", "nine", "not a whole number"),
        ("NASA_VALIDATION_DAYS", "0", "outside 1..366"),
        ("NASA_REJECT_THRESHOLD", "2", "outside 0.0..1.0"),
        ("NASA_EVENTS_PATH", str(tmp_path / "nope.csv"), "is not a file"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(SettingsError, match=message):
            Settings.from_env()
        monkeypatch.delenv(name)


def test_the_settings_resource_carries_every_setting(tmp_path, monkeypatch):
    from nasa_autoscale.resources import SettingsResource

    monkeypatch.setenv("NASA_EVENTS_PATH", "none")
    monkeypatch.setenv("NASA_FORECAST_GRANULARITIES", "5m,15m")
    settings = Settings.from_env()
    assert settings.events_path is None and settings.forecast_granularities == ("5m", "15m")
    assert SettingsResource.from_settings(settings).get() == settings
    moved = SettingsResource.from_env(reports_dir=tmp_path).get()
    assert moved.reports_dir == tmp_path and moved.forecast_granularities == ("5m", "15m")


def test_an_unknown_granularity_is_named(monkeypatch):
    monkeypatch.setenv("NASA_FORECAST_GRANULARITIES", "5m,2m")
    with pytest.raises(SettingsError, match=r"unknown \['2m'\]"):
        Settings.from_env()


@pytest.mark.slow  # a fresh Python process
def test_loading_the_definitions_reads_the_environment_once():
    """One settings object per process: the resources and the partitions share it."""
    import subprocess
    import sys

    script = (
        "from nasa_autoscale import settings\n"
        "calls = []\n"
        "original = settings.Settings.from_env.__func__\n"
        "settings.Settings.from_env = classmethod(lambda cls: calls.append(1) or original(cls))\n"
        "import nasa_autoscale.definitions\n"
        "print(len(calls))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "1"


def test_the_history_window_must_hold_the_test_and_validation_days(monkeypatch):
    monkeypatch.setenv("NASA_HISTORY_DAYS", "29")
    with pytest.raises(SettingsError, match="NASA_HISTORY_DAYS=29 is too short.*need 30"):
        Settings.from_env()
    monkeypatch.setenv("NASA_HISTORY_DAYS", "30")
    assert Settings.from_env().history_days == 30


@pytest.mark.parametrize(
    "variable, content, says",
    [
        ("NASA_EVENTS_PATH", b"name,kind\ncaf\xe9,x\n", "not UTF-8 text"),
        ("NASA_EVENTS_PATH", b"name,kind\nx,y\n", "missing column"),
        ("NASA_LOG_FORMAT", b"log_format x '$remote_addr \xff';", "not UTF-8 text"),
    ],
)
def test_a_bad_events_or_format_file_stops_the_settings_naming_the_file(
    tmp_path, monkeypatch, variable, content, says
):
    path = tmp_path / "file.txt"
    path.write_bytes(content)
    monkeypatch.setenv(variable, str(path))
    with pytest.raises(SettingsError, match=says) as error:
        Settings.from_env()
    assert str(path) in str(error.value)
