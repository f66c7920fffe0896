"""Paths and knobs read from the environment, with defaults that need no set-up.

Every setting has one environment variable; the README lists them all.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
REFERENCE_DIR = DATA_DIR / "reference"
SAMPLES_DIR = DATA_DIR / "samples"
DEFAULT_RAW_DIR = DATA_DIR / "raw"
DEFAULT_EVENTS_PATH = DATA_DIR / "special_events.csv"  # NASA's; they apply only to their dates
DEFAULT_FLEETS_PATH = DATA_DIR / "fleets.toml"  # the NASA demo's two fleets
LOG_FORMATS = ("common", "combined", "vhost_combined")
NASA_FIRST_DAY, NASA_LAST_DAY = "1995-07-01", "1995-08-31"  # the reference trace's default range

# The Internet Traffic Archive's traces directory, where the NASA logs are published.
DEFAULT_LOG_URL = "https://ita.ee.lbl.gov/traces/"
NASA_LOG_FILES = ("NASA_access_log_Jul95.gz", "NASA_access_log_Aug95.gz")
GRANULARITY_NAMES = ("1m", "5m", "15m")
DEFAULT_REPORTS_DIR = PROJECT_ROOT / "reports"


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    raw_dir: Path
    replica_dir: Path
    duckdb_path: Path
    log_url: str
    download_timeout_s: float
    start_date: str
    end_date: str  # inclusive
    mlflow_uri: str = f"sqlite:///{DATA_DIR / 'mlflow.db'}"
    mlflow_artifacts: Path = DATA_DIR / "mlruns"
    landing_dir: Path = DATA_DIR / "landing"  # where log rotation drops new files
    timezone: str = "auto"  # the site's zone; auto: the first offset in the logs
    log_format: str = "auto"  # auto (per file), a name, or a format definition: ingest/formats
    reject_threshold: float = 0.5  # a file with more rejected lines than this fails the run
    test_days: int = 9  # the last whole days of the data: the test window
    validation_days: int = 7  # the days before it: every choice is made there
    events_path: Path | None = DEFAULT_EVENTS_PATH  # None: no special events
    open_ended: bool = False  # no end date given for a user's logs: partitions run to today
    reports_dir: Path = DEFAULT_REPORTS_DIR  # reports and figures
    forecast_granularities: tuple[str, ...] = GRANULARITY_NAMES  # what the benchmark forecasts
    stale_after_hours: float = 26.0  # a live site's newest data older than this is stale
    # with the live follower: a watermark older than this is stale (three 5-minute decisions)
    stale_after_s: float = 900.0
    refit_days: int = 7  # the deployed model is refitted every this many days from start_date
    # the analysis reads the last this many days of traffic (13 weeks): its cost stops growing
    # with the history; NASA's 62 days are read whole
    history_days: int = 91
    fleets_path: Path = DEFAULT_FLEETS_PATH  # the fleet profiles (scaling/fleets.py)
    lake: str = ""  # NASA_LAKE: where requests and rejected_lines live (lake.py); "": DuckDB
    # (from_env's default: the folder `lake` beside the warehouse file)
    site: str = "main"  # NASA_SITE: this site's name in the lake's partitions
    sites_path: Path | None = None  # NASA_SITES_PATH: many sites (sites.py); None: this one only

    @property
    def live_store(self) -> Path:
        """The live follower's own DuckDB file, beside the warehouse (live/follower.py)."""
        return self.duckdb_path.with_name(f"{self.duckdb_path.stem}.live.duckdb")

    def fleets(self):
        """The fleet profiles by name (scaling.fleets.Fleet), in the file's order."""
        from nasa_autoscale.scaling.fleets import load_fleets

        return load_fleets(self.fleets_path)

    def calendar(self, traffic):
        """The train / validation / test windows of `traffic` (index bucket_start) under these
        settings' day counts: the one way a window is cut."""
        from nasa_autoscale.forecasting.protocols import Calendar

        return Calendar.of(traffic, self.test_days, self.validation_days)

    def asset_prefix(self) -> list[str]:
        """What the site's asset keys start with: its name with a sites file, else nothing."""
        return [self.site] if self.sites_path is not None else []

    def all_sites(self) -> dict[str, Settings]:
        """Every site's settings by name: the sites file's (sites.py), else this one site."""
        if self.sites_path is None:
            return {self.site: self}
        from nasa_autoscale.sites import load_sites

        return {name: self.for_site(site) for name, site in load_sites(self.sites_path).items()}

    def for_site(self, site) -> Settings:
        """These settings for one site of the sites file (sites.Site): its logs, zone, format,
        events, fleets and dates; its own warehouse, MLflow store, landing folder and reports
        (`<warehouse folder>/sites/<name>/`, `<reports>/<name>`); the lake is shared."""
        own_start = bool(site.start_date)
        start = site.start_date or NASA_FIRST_DAY
        end = site.end_date or (dt.date.today().isoformat() if own_start else NASA_LAST_DAY)
        if end < start:  # a start in the future with no end: it would run to today
            raise SettingsError(
                f"{self.sites_path}: site {site.name!r}: start_date {start} is after {end}"
            )
        data, reports, landing = self._roots()
        home = data / "sites" / site.name
        return dataclasses.replace(
            self,
            site=site.name,
            raw_dir=site.raw_dir,
            timezone=site.timezone,
            log_format=site.log_format,
            events_path=self.events_path if site.events == "" else site.events,
            fleets_path=site.fleets or self.fleets_path,
            start_date=start,
            end_date=end,
            open_ended=own_start and not site.end_date,
            duckdb_path=home / "warehouse.duckdb",
            mlflow_uri=f"sqlite:///{home / 'mlflow.db'}",
            mlflow_artifacts=home / "mlruns",
            landing_dir=landing / site.name,
            reports_dir=reports / site.name,
        )

    def _roots(self) -> tuple[Path, Path, Path]:
        """The folders the sites' own ones are made in (the warehouse's, the reports', the
        landing one), also from settings that are already a site's (for_site's paths undone)."""
        own = self.duckdb_path.parent
        if (
            self.sites_path is not None
            and self.duckdb_path.name == "warehouse.duckdb"
            and own.name == self.site
            and own.parent.name == "sites"
            and self.reports_dir.name == self.landing_dir.name == self.site
        ):
            return own.parent.parent, self.reports_dir.parent, self.landing_dir.parent
        return own, self.reports_dir, self.landing_dir

    @classmethod
    def from_env(cls) -> Settings:
        """The environment's settings; with a sites file (NASA_SITES_PATH), those of its site
        NASA_SITE (default: the file's first)."""
        base = cls._from_env()
        if base.sites_path is None:
            return base
        from nasa_autoscale.sites import SiteError, load_sites

        try:
            sites = load_sites(base.sites_path)
        except SiteError as error:
            raise SettingsError(str(error)) from None
        chosen = os.environ.get("NASA_SITE", "").strip() or next(iter(sites))
        if chosen not in sites:
            raise SettingsError(
                f"NASA_SITE={chosen!r} is not a site of {base.sites_path}: {', '.join(sites)}"
            )
        return base.for_site(sites[chosen])

    @classmethod
    def _from_env(cls) -> Settings:
        # A start date of the user's own (any date, 1995-07-01 included) means live logs that run
        # to today unless an end is given; with none, the NASA trace's range, which ends in 1995.
        own_start = bool(os.environ.get("NASA_START_DATE", "").strip())
        start = _env_date("NASA_START_DATE", NASA_FIRST_DAY) if own_start else NASA_FIRST_DAY
        default_end = dt.date.today().isoformat() if own_start else NASA_LAST_DAY
        end = _env_date("NASA_END_DATE", default_end)
        if end < start:
            raise SettingsError(f"NASA_END_DATE {end} is before NASA_START_DATE {start}")
        timeout = _env_number("NASA_DOWNLOAD_TIMEOUT", 10.0, 0.1, 3600)
        raw_dir = _env_path("NASA_RAW_DIR", DEFAULT_RAW_DIR)
        # A log folder of the user's own gets a home of its own (warehouse, lake, MLflow store,
        # reports, landing folder), so that it never mixes with the demo's (or another's)
        home, name = DATA_DIR, ""
        if raw_dir != DEFAULT_RAW_DIR.resolve():
            name = own_logs_name(raw_dir)
            home = DATA_DIR / "sites" / name
        duckdb_path = _env_path("NASA_DUCKDB_PATH", home / "warehouse.duckdb")
        return cls(
            raw_dir=raw_dir,
            replica_dir=_env_path("NASA_REPLICA_DIR", DATA_DIR / "replica"),
            duckdb_path=duckdb_path,
            log_url=os.environ.get("NASA_LOG_URL", DEFAULT_LOG_URL),
            download_timeout_s=timeout,
            start_date=start,
            end_date=end,
            mlflow_uri=os.environ.get("NASA_MLFLOW_URI", f"sqlite:///{home / 'mlflow.db'}"),
            mlflow_artifacts=_env_path("NASA_MLFLOW_ARTIFACTS", home / "mlruns"),
            landing_dir=_env_path("NASA_LANDING_DIR", DATA_DIR / "landing" / name),
            timezone=_env_timezone(),
            log_format=_env_log_format(),
            reject_threshold=_env_number("NASA_REJECT_THRESHOLD", 0.5, 0.0, 1.0),
            test_days=int(_env_number("NASA_TEST_DAYS", 9, 1, 366, integer=True)),
            validation_days=int(_env_number("NASA_VALIDATION_DAYS", 7, 1, 366, integer=True)),
            events_path=_env_events(),
            open_ended=own_start and not os.environ.get("NASA_END_DATE", "").strip(),
            reports_dir=_env_path("NASA_REPORTS_DIR", DEFAULT_REPORTS_DIR / name),
            forecast_granularities=_env_granularities(),
            stale_after_hours=_env_number("NASA_STALE_AFTER_HOURS", 26.0, 0.1, 24 * 7),
            stale_after_s=_env_number("NASA_STALE_AFTER_S", 900.0, 30, 7 * 24 * 3600),
            refit_days=int(_env_number("NASA_REFIT_DAYS", 7, 1, 366, integer=True)),
            history_days=_env_history_days(),
            fleets_path=_env_fleets(),
            lake=_env_lake(duckdb_path),
            site=_env_site(),
            sites_path=_env_sites(),
        )


def own_logs_name(raw_dir: Path) -> str:
    """The name of a log folder's own home (data/sites/<name>/, reports/<name>/): the folder's
    name and a short hash of its whole path (/var/log/nginx -> nginx-3f2a1b)."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", raw_dir.name.lower()).strip("-_")[:40] or "logs"
    return f"{slug}-{hashlib.sha1(str(raw_dir).encode()).hexdigest()[:6]}"


@functools.cache
def current() -> Settings:
    """The process's settings, read from the environment once: the Dagster definitions and the
    partitions start from this object, and assets get it through the `settings` resource. The
    other entry points (the API's create_app, each rerun of the dashboard, the benchmark
    commands) read the environment once at their start; nothing below them does."""
    return Settings.from_env()


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use; the message names it."""


def _env_date(name: str, default: str) -> str:
    """A date setting: YYYY-MM-DD within configfile's FIRST_DATE..LAST_DATE (1990..2100)."""
    from nasa_autoscale.configfile import checked_date

    value = os.environ.get(name, default).strip()
    try:
        return checked_date(value, name)
    except ValueError as error:
        raise SettingsError(str(error)) from None


def checked_log_format(value: str) -> str:
    """A log format setting as given (a name lower-cased), checked: a preset or family name, an
    nginx log_format, an Apache LogFormat or a file of either (ingest/formats). FormatError
    says what is wrong (NASA_LOG_FORMAT and the sites file's log_format)."""
    from nasa_autoscale.ingest.formats import resolve

    value = value.strip() or "auto"
    if "$" not in value and "%" not in value and not Path(value).expanduser().is_file():
        value = value.lower()
    resolve(value)
    return value


def checked_timezone(value: str) -> str:
    """A zone setting checked: auto, or the zone's canonical name. TimeZoneError says what is
    wrong (NASA_TIMEZONE and the sites file's timezone)."""
    from nasa_autoscale.ingest.sitezone import AUTO, SiteZone

    value = value.strip() or AUTO
    return AUTO if value.lower() == AUTO else SiteZone.parse(value).name


def _env_log_format() -> str:
    from nasa_autoscale.ingest.formats import FormatError

    try:
        return checked_log_format(os.environ.get("NASA_LOG_FORMAT", "auto"))
    except FormatError as error:
        raise SettingsError(f"NASA_LOG_FORMAT: {error}") from None


def _env_choice(name: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, choices[0]).strip().lower()
    if value not in choices:
        raise SettingsError(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def _env_number(name: str, default, low, high, integer: bool = False):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        kind = "a whole number" if integer else "a number"
        raise SettingsError(f"{name}={value!r} is not {kind}") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise SettingsError(f"{name}={value!r} is outside {low}..{high}")
    return number


def _env_granularities() -> tuple[str, ...]:
    """NASA_FORECAST_GRANULARITIES: comma-separated, default all three."""
    value = os.environ.get("NASA_FORECAST_GRANULARITIES", "").strip()
    if not value:
        return GRANULARITY_NAMES
    chosen = tuple(part.strip() for part in value.split(","))
    unknown = sorted(set(chosen) - set(GRANULARITY_NAMES))
    if unknown:
        raise SettingsError(
            f"NASA_FORECAST_GRANULARITIES={value!r}: unknown {unknown}; use {GRANULARITY_NAMES}"
        )
    return chosen


def _env_timezone() -> str:
    from nasa_autoscale.ingest.sitezone import AUTO, TimeZoneError

    try:
        return checked_timezone(os.environ.get("NASA_TIMEZONE", AUTO))
    except TimeZoneError as error:
        raise SettingsError(str(error)) from None


def _env_events() -> Path | None:
    """NASA_EVENTS_PATH: a CSV of special events (default NASA's); 'none' or empty: no events."""
    value = os.environ.get("NASA_EVENTS_PATH")
    if value is None:
        return DEFAULT_EVENTS_PATH
    if value.strip().lower() in ("", "none"):
        return None
    path = Path(value).expanduser().resolve()
    if not path.is_file():
        raise SettingsError(f"NASA_EVENTS_PATH={value!r} is not a file (or say 'none')")
    from nasa_autoscale.features.events import EventsError, load_events

    try:  # checked whole before any work, as the fleets are
        load_events(path)
    except EventsError as error:
        raise SettingsError(str(error)) from None
    return path


def default_lake(duckdb_path: Path) -> Path:
    """The lake of a warehouse file when NASA_LAKE is unset: its own, beside it (`lake` for
    warehouse.duckdb, `<name>.lake` for any other name), so two warehouses in one folder never
    share one."""
    if duckdb_path.name == "warehouse.duckdb":
        return duckdb_path.parent / "lake"
    return duckdb_path.parent / f"{duckdb_path.stem}.lake"


def _env_lake(duckdb_path: Path) -> str:
    """NASA_LAKE: a folder or s3://bucket/prefix for the lake (default: default_lake, beside
    the warehouse file); `none`: no lake, requests stay in the DuckDB file. Checked here."""
    from nasa_autoscale.lake import Lake, LakeError

    value = os.environ.get("NASA_LAKE", "").strip() or str(default_lake(duckdb_path))
    if value.lower() == "none":
        return ""
    try:
        lake = Lake.from_setting(value)
    except LakeError as error:
        raise SettingsError(str(error)) from None
    return lake.url if lake else ""


def _env_site() -> str:
    from nasa_autoscale.lake import LakeError, check_site

    try:
        return check_site(os.environ.get("NASA_SITE", "main").strip())
    except LakeError as error:
        raise SettingsError(f"NASA_SITE: {error}") from None


def _env_history_days() -> int:
    """NASA_HISTORY_DAYS: how many of the last days the analysis reads (default 91); it must
    hold the test and validation windows and two weeks to train on."""
    days = int(_env_number("NASA_HISTORY_DAYS", 91, 1, 3660, integer=True))
    test = int(_env_number("NASA_TEST_DAYS", 9, 1, 366, integer=True))
    validation = int(_env_number("NASA_VALIDATION_DAYS", 7, 1, 366, integer=True))
    if days < test + validation + 14:
        raise SettingsError(
            f"NASA_HISTORY_DAYS={days} is too short: the test ({test}) and validation "
            f"({validation}) days and 14 days to train on need {test + validation + 14}"
        )
    return days


def _env_sites() -> Path | None:
    """NASA_SITES_PATH: a sites file (sites.py), checked whole before anything runs; unset: the
    environment describes the one site. A site's MLflow store is its own, so NASA_MLFLOW_URI
    cannot be set beside it."""
    value = os.environ.get("NASA_SITES_PATH", "").strip()
    if not value:
        return None
    if os.environ.get("NASA_MLFLOW_URI", "").strip():
        raise SettingsError(
            "NASA_MLFLOW_URI cannot be set with NASA_SITES_PATH: each site has its own MLflow "
            "store beside its warehouse (<NASA_DUCKDB_PATH's folder>/sites/<name>/mlflow.db)"
        )
    return Path(value).expanduser().resolve()


def _env_fleets() -> Path:
    """NASA_FLEETS_PATH: the fleet profiles, checked whole before anything runs."""
    from nasa_autoscale.scaling.fleets import FleetError, load_fleets

    path = _env_path("NASA_FLEETS_PATH", DEFAULT_FLEETS_PATH)
    try:
        load_fleets(path)
    except FleetError as error:
        raise SettingsError(str(error)) from None
    return path
