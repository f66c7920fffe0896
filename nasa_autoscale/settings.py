"""Paths and knobs read from the environment, with defaults that need no set-up.

Every setting has one environment variable; the README lists them all.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
REFERENCE_DIR = DATA_DIR / "reference"
SAMPLES_DIR = DATA_DIR / "samples"
DEFAULT_RAW_DIR = DATA_DIR / "raw"

# The Internet Traffic Archive's traces directory, where the NASA logs are published.
DEFAULT_LOG_URL = "https://ita.ee.lbl.gov/traces/"
NASA_LOG_FILES = ("NASA_access_log_Jul95.gz", "NASA_access_log_Aug95.gz")


def reports_dir() -> Path:
    """Where reports and figures are written (NASA_REPORTS_DIR, default reports/)."""
    return _env_path("NASA_REPORTS_DIR", PROJECT_ROOT / "reports")


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

    @classmethod
    def from_env(cls) -> Settings:
        start = _env_date("NASA_START_DATE", "1995-07-01")
        end = _env_date("NASA_END_DATE", "1995-08-31")
        if end < start:
            raise SettingsError(f"NASA_END_DATE {end} is before NASA_START_DATE {start}")
        try:
            timeout = float(os.environ.get("NASA_DOWNLOAD_TIMEOUT", "10"))
        except ValueError:
            raise SettingsError("NASA_DOWNLOAD_TIMEOUT must be a number of seconds") from None
        return cls(
            raw_dir=_env_path("NASA_RAW_DIR", DEFAULT_RAW_DIR),
            replica_dir=_env_path("NASA_REPLICA_DIR", DATA_DIR / "replica"),
            duckdb_path=_env_path("NASA_DUCKDB_PATH", DATA_DIR / "warehouse.duckdb"),
            log_url=os.environ.get("NASA_LOG_URL", DEFAULT_LOG_URL),
            download_timeout_s=timeout,
            start_date=start,
            end_date=end,
            mlflow_uri=os.environ.get("NASA_MLFLOW_URI", f"sqlite:///{DATA_DIR / 'mlflow.db'}"),
            mlflow_artifacts=_env_path("NASA_MLFLOW_ARTIFACTS", DATA_DIR / "mlruns"),
            landing_dir=_env_path("NASA_LANDING_DIR", DATA_DIR / "landing"),
        )


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use; the message names it."""


def _env_date(name: str, default: str) -> str:
    value = os.environ.get(name, default)
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise SettingsError(f"{name}={value!r} is not a date (YYYY-MM-DD)") from None
