"""The benchmark's bookkeeping: every model's run (parameters, metrics per protocol, calibration,
input example, LightGBM's gain importance), the two ensembles' runs, and the registration of each
granularity's selected day-ahead model as its `champion`.

It talks to a Tracker (the MLflow resource implements it; a test may pass a fake), so the
forecasting package never reaches into Dagster and the resource never into forecasting code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd

from nasa_autoscale.forecasting.benchmark import run_granularity
from nasa_autoscale.forecasting.protocols import Calendar
from nasa_autoscale.forecasting.registry import ENSEMBLE_MEMBERS, WEIGHTED_MEMBERS
from nasa_autoscale.ingest.traffic import GRANULARITIES, MODEL_INPUTS

METRIC_NAMES = (
    "rmse",
    "mae",
    "mape",
    "mase",
    "coverage",
    "coverage_uncalibrated",
    "validation_rmse",
)


class Tracker(Protocol):
    """Where runs are logged (resources.MLflowResource)."""

    def start_group(self, name: str, tags: dict) -> str: ...

    def log_run(
        self,
        name: str,
        params: dict,
        metrics: dict,
        artifacts: dict[str, str | bytes],
        tags: dict,
        parent_id: str | None = None,
    ) -> str: ...

    def activate(self) -> None:
        """Point mlflow's module-level client at the store and the experiment."""


def input_example(traffic: pd.DataFrame) -> pd.DataFrame:
    """MLflow's input example: the last hour of traffic, with every column a model may read."""
    columns = ["requests", *(c for c in MODEL_INPUTS if c in traffic)]
    return traffic.tail(12)[columns].reset_index()


@dataclass
class BenchmarkResult:
    forecasts: pd.DataFrame
    metrics: pd.DataFrame  # model_metrics, with mlflow_run_id, params and champion_version
    timings: pd.DataFrame
    importance: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)


@dataclass
class _Log:
    """One benchmark's runs, by (model, granularity)."""

    tracker: Tracker
    tags: dict
    group: str
    run_ids: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)
    importance: dict = field(default_factory=dict)

    def model(self, model, scores: pd.DataFrame, timing: dict, granularity, traffic) -> None:
        key = (model.name, granularity)
        self.params[key] = json.dumps(model.params(), default=str)
        if hasattr(model, "importance"):
            self.importance[(granularity, model.name)] = model.importance()
        metrics = {
            f"{r.protocol}_{name}": getattr(r, name)
            for r in scores.itertuples()
            for name in METRIC_NAMES
        }
        self.run_ids[key] = self.tracker.log_run(
            f"{model.name}_{granularity}",
            {**model.params(), "granularity": granularity, "model": model.name},
            {**metrics, **timing},
            {
                **model.artifacts(),
                "calibration.json": scores["calibration"].iloc[0],
                "input_example.csv": input_example(traffic).to_csv(index=False),
            },
            {**self.tags, "granularity": granularity},
            parent_id=self.group,
        )

    def ensembles(self, metrics: pd.DataFrame, granularity: str, traffic) -> None:
        """The two ensembles' runs (weights, metrics, calibration, input example) and params:
        the equal-weight one's members', and ensemble_weighted's rows' weights of their protocol
        completed with their members' parameters (what forecast_next rebuilds it from). Edits
        `metrics` in place."""
        members = {m: json.loads(v) for (m, g), v in self.params.items() if g == granularity}
        if "params" in metrics:  # ensemble_weighted's rows: {"weights": ...} from the benchmark
            weighted = metrics["params"].notna()
            metrics.loc[weighted, "params"] = [
                json.dumps({**{m: members[m] for m in w["weights"]}, **w}, default=str)
                for w in map(json.loads, metrics.loc[weighted, "params"])
            ]
        for name, candidates in (
            ("ensemble", ENSEMBLE_MEMBERS),
            ("ensemble_weighted", WEIGHTED_MEMBERS),
        ):
            scores = metrics[metrics.model == name]
            if not len(scores):
                continue
            if name == "ensemble":
                self.params[(name, granularity)] = json.dumps(
                    {m: members[m] for m in ENSEMBLE_MEMBERS}, default=str
                )
            weights = {
                f"weights_{r.protocol}": json.dumps(json.loads(r.params)["weights"])
                for r in scores.itertuples()
                if isinstance(getattr(r, "params", None), str)
            }
            self.run_ids[(name, granularity)] = self.tracker.log_run(
                f"{name}_{granularity}",
                {"members": ",".join(candidates), "granularity": granularity, **weights},
                {
                    f"{r.protocol}_{n}": getattr(r, n)
                    for r in scores.itertuples()
                    for n in ("rmse", "coverage", "validation_rmse")
                },
                {
                    "calibration.json": scores["calibration"].iloc[0],
                    "input_example.csv": input_example(traffic).to_csv(index=False),
                },
                {**self.tags, "granularity": granularity},
                parent_id=self.group,
            )

    def finish(self, metrics: pd.DataFrame) -> None:
        """model_metrics' run ids and the params forecast_next refits with (ensemble_weighted's
        rows hold their own, per protocol)."""
        keys = list(zip(metrics.model, metrics.granularity, strict=True))
        metrics["mlflow_run_id"] = [self.run_ids.get(key) for key in keys]
        own = metrics["params"] if "params" in metrics else pd.Series(None, index=metrics.index)
        metrics["params"] = [
            stored if isinstance(stored, str) else self.params.get(key)
            for stored, key in zip(own, keys, strict=True)
        ]

    def register_champions(self, metrics: pd.DataFrame, traffic: dict, events) -> list:
        """Register each granularity's selected day-ahead model as its `champion`; the version
        on that row of model_metrics, None elsewhere."""
        from nasa_autoscale.forecasting import champion  # imports mlflow: only where needed

        versions = [None] * len(metrics)
        deployed = metrics["selected"] & (metrics["protocol"] == champion.DEPLOYED_PROTOCOL)
        rows = np.flatnonzero(deployed.to_numpy())
        if len(rows):
            self.tracker.activate()
        for i in rows:
            row = metrics.iloc[i]
            example = input_example(traffic[row["granularity"]])
            versions[i] = champion.register(champion.recipe(row, events), example, self.tags)
        return versions


def run_benchmark(
    traffic: dict[str, pd.DataFrame],
    events: pd.DataFrame,
    calendars: dict[str, Calendar],
    tracker: Tracker,
    tags: dict,
    progress=print,
) -> BenchmarkResult:
    """Every model under every protocol for each granularity of `calendars` (traffic indexed by
    bucket_start, per granularity), each model a tracked run nested under one group run, and the
    selected day-ahead models registered as champions."""
    log = _Log(
        tracker, tags, tracker.start_group(f"benchmark {tags.get('dagster_run_id', '')[:8]}", tags)
    )
    forecasts, metrics, timings = [], [], []
    for granularity, calendar in calendars.items():
        frame = traffic[granularity]

        def on_model(model, scores, timing, granularity=granularity, frame=frame):
            log.model(model, scores, timing, granularity, frame)

        got, scored, timed = run_granularity(
            frame, granularity, GRANULARITIES[granularity], events, calendar, progress, on_model
        )
        log.ensembles(scored, granularity, frame)
        forecasts.append(got)
        metrics.append(scored)
        timings.append(timed)
    metrics = pd.concat(metrics, ignore_index=True)
    log.finish(metrics)
    metrics["champion_version"] = log.register_champions(metrics, traffic, events)
    return BenchmarkResult(
        pd.concat(forecasts, ignore_index=True).drop(columns=["step"]),
        metrics,
        pd.concat(timings, ignore_index=True),
        log.importance,
    )
