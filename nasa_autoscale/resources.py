"""Dagster resources: the DuckDB warehouse and the settings, configured from the environment."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import dagster as dg
import duckdb

from nasa_autoscale import warehouse
from nasa_autoscale.lake import Lake
from nasa_autoscale.settings import Settings

_LOCK_WAIT_S = 600


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB warehouse file (NASA_DUCKDB_PATH, default data/warehouse.duckdb)."""

    duckdb_path: str
    lake: str = ""  # NASA_LAKE (lake.py): requests and rejected_lines as Parquet files there
    site: str = "main"

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection; waits (up to 10 minutes) while another process holds the file. Hold it
        only to read or write: a step that computes with it open makes every other step wait."""
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                con = warehouse.connect(
                    Path(self.duckdb_path),
                    read_only=read_only,
                    lake=Lake.from_setting(self.lake),
                    site=self.site,
                )
                break
            except warehouse.WarehouseError as e:
                if "lock" not in str(e).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        try:
            yield con
        finally:
            con.close()

    @contextmanager
    def for_ingest(self) -> Iterator[tuple[duckdb.DuckDBPyConnection, Callable]]:
        """(con, hold) for a step that parses: without a lake, the warehouse itself, held for
        the whole step (hold does nothing); with one, an in-memory connection that parses,
        and hold() attaches the warehouse to it for a short read or write only, so that ingest
        steps of other days run in parallel (ingest/load.py)."""
        if not self.lake:
            with self.connect() as con:
                yield con, nullcontext
            return
        con = duckdb.connect(config={"preserve_insertion_order": False})
        lake = Lake.from_setting(self.lake)

        def hold():
            return warehouse.attached(con, self.duckdb_path, lake, self.site, _LOCK_WAIT_S)

        try:
            yield con, hold
        finally:
            con.close()


class SettingsResource(dg.ConfigurableResource):
    """Every setting (settings.Settings), built once from the environment when the definitions
    load (settings.current()) and editable per run in the launchpad. Assets read it with get();
    nothing in a run reads the environment again."""

    raw_dir: str
    replica_dir: str
    duckdb_path: str
    log_url: str
    download_timeout_s: float
    start_date: str
    end_date: str
    mlflow_uri: str
    mlflow_artifacts: str
    landing_dir: str
    timezone: str
    log_format: str
    reject_threshold: float
    test_days: int
    validation_days: int
    events_path: str  # empty: no special events
    open_ended: bool
    reports_dir: str
    forecast_granularities: list[str]
    stale_after_hours: float
    stale_after_s: float
    refit_days: int
    history_days: int
    fleets_path: str
    lake: str
    site: str
    sites_path: str  # empty: no sites file

    @classmethod
    def from_settings(cls, settings: Settings) -> SettingsResource:
        values = {}
        for field in dataclasses.fields(Settings):
            value = getattr(settings, field.name)
            if isinstance(value, Path) or value is None:
                value = "" if value is None else str(value)
            elif isinstance(value, tuple):
                value = list(value)
            values[field.name] = value
        return cls(**values)

    @classmethod
    def from_env(cls, **overrides) -> SettingsResource:
        """The environment's settings with some replaced, e.g. raw_dir=Path(...) in a test."""
        return cls.from_settings(dataclasses.replace(Settings.from_env(), **overrides))

    def get(self) -> Settings:
        paths = {
            "raw_dir",
            "replica_dir",
            "duckdb_path",
            "mlflow_artifacts",
            "landing_dir",
            "fleets_path",
        }
        values = {field.name: getattr(self, field.name) for field in dataclasses.fields(Settings)}
        values.update({name: Path(values[name]) for name in paths | {"reports_dir"}})
        values["events_path"] = Path(self.events_path) if self.events_path else None
        values["sites_path"] = Path(self.sites_path) if self.sites_path else None
        values["forecast_granularities"] = tuple(self.forecast_granularities)
        return Settings(**values)


class MLflowResource(dg.ConfigurableResource):
    """MLflow tracking in a sqlite file (NASA_MLFLOW_URI, default sqlite:///data/mlflow.db), with
    artifacts next to it in data/mlruns. No server needed; `make mlflow-ui` browses it. It is the
    forecasting package's Tracker (forecasting/tracking.py): it logs runs, and knows no model."""

    tracking_uri: str
    artifact_dir: str
    experiment: str = "nasa_autoscale_forecasting"

    def _experiment_id(self) -> str:
        """Point mlflow at the store and return the experiment's id (created on first use)."""
        import mlflow

        mlflow.set_tracking_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment)
        if experiment is not None:
            return experiment.experiment_id
        Path(self.artifact_dir).mkdir(parents=True, exist_ok=True)
        return mlflow.create_experiment(
            self.experiment, artifact_location=Path(self.artifact_dir).resolve().as_uri()
        )

    def start_group(self, name: str, tags: dict) -> str:
        """A parent run that groups one Dagster run's model runs (nested under it in the UI)."""
        import mlflow

        with mlflow.start_run(experiment_id=self._experiment_id(), run_name=name, tags=tags) as run:
            return run.info.run_id

    def log_run(
        self,
        name: str,
        params: dict,
        metrics: dict,
        artifacts: dict[str, str | bytes],
        tags: dict,
        parent_id: str | None = None,
    ) -> str:
        """One run: parameters, metrics, artifacts (file name -> content); returns its id.
        parent_id: the group's run (start_group) to nest it under."""
        import tempfile

        import mlflow

        experiment_id = self._experiment_id()
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=name, tags=tags, parent_run_id=parent_id
        ) as run:
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items() if v == v})
            with tempfile.TemporaryDirectory() as tmp:
                for file_name, content in artifacts.items():
                    path = Path(tmp) / file_name
                    if isinstance(content, bytes):
                        path.write_bytes(content)
                    else:
                        path.write_text(content)
                if artifacts:
                    mlflow.log_artifacts(tmp)
            return run.info.run_id

    def activate(self) -> None:
        """Point mlflow's module-level client at this store and experiment (for code that logs
        through mlflow itself, such as the champion's registration)."""
        import mlflow

        mlflow.set_experiment(experiment_id=self._experiment_id())
