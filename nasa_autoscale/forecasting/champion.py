"""The deployed model in MLflow's model registry.

Per granularity, the model the benchmark selected on the validation window for day-ahead
forecasts is registered as `nasa_autoscale_<granularity>` (nasa_autoscale_5m, ...) with the alias
`champion`. What is registered is the deployable recipe, not one frozen fit: the model's name,
its tuned parameters, the interval calibration fitted on the validation window, the special
events, and the benchmark run it came from. Loaded (`mlflow.pyfunc.load_model(
"models:/nasa_autoscale_5m@champion")`), it forecasts the day after the history it is given,
fitting on that history first (before `fit_before`, the refit day, when given) as the daily path
does; the model's metrics are in its benchmark run.

The recipe is data, never a pickle: it is logged with MLflow's models-from-code as the
pyfunc's `model_config` (plain YAML in the MLmodel file, under `config`), beside
`champion_code.py`, which builds the model from it. The deployed path (`deployed_choice`)
reads only that YAML, checks it against the recipe's shape (`checked_recipe`) and rebuilds the
model with the installed package's code: nothing loaded from the artifact store is executed,
so whoever can write the store can at most make the daily path refuse the champion and fall
back to model_metrics.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import mlflow
import pandas as pd
import yaml

from nasa_autoscale.forecasting import registry
from nasa_autoscale.forecasting.calibrate import Calibration
from nasa_autoscale.forecasting.next import Choice, forecast_next
from nasa_autoscale.ingest.traffic import GRANULARITIES, MODEL_INPUTS

ALIAS = "champion"
DEPLOYED_PROTOCOL = "day_ahead"  # the daily path forecasts the next day from each midnight
CODE_PATH = Path(__file__).with_name("champion_code.py")  # models-from-code: builds the recipe
RECIPE_KEYS = {
    "model": str,
    "granularity": str,
    "params": dict,
    "calibration": (str, type(None)),
    "validation_rmse": (int, float),
    "test_rmse": (int, float),
    "benchmark_run_id": (str, type(None)),
    "events": list,
}


class RecipeError(ValueError):
    """A stored recipe that is not one this package writes: refused, never run."""


def registered_name(granularity: str) -> str:
    return f"nasa_autoscale_{granularity}"


def recipe(row: pd.Series, events: pd.DataFrame) -> dict:
    """The champion's recipe from its model_metrics row (model, granularity, params,
    calibration, validation_rmse, rmse, mlflow_run_id) and the special events."""
    calibration = row.get("calibration")
    return {
        "model": row["model"],
        "granularity": row["granularity"],
        "params": registry.tuned_params(
            row["model"], json.loads(row["params"]) if isinstance(row.get("params"), str) else {}
        ),
        "calibration": calibration if isinstance(calibration, str) else None,
        "validation_rmse": float(row["validation_rmse"]),
        "test_rmse": float(row["rmse"]),
        "benchmark_run_id": row.get("mlflow_run_id"),
        "events": json.loads(events.to_json(orient="records", date_format="iso")),
    }


def _plain(value, depth: int = 0) -> bool:
    """JSON-like data only: text, finite numbers, booleans, None, lists and string-keyed dicts."""
    if depth > 8:
        return False
    if value is None or isinstance(value, bool | str | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items())
    return False


def checked_recipe(spec) -> dict:
    """`spec` if it is a recipe as `recipe` writes it (its keys and types, a model and a
    granularity this package knows, a calibration it can read, plain data throughout); a
    RecipeError saying what is wrong otherwise."""
    if not isinstance(spec, dict):
        raise RecipeError(f"a recipe is a mapping, not {type(spec).__name__}")
    missing = sorted(set(RECIPE_KEYS) - set(spec))
    unknown = sorted(set(spec) - set(RECIPE_KEYS))
    if missing or unknown:
        raise RecipeError(f"recipe keys: missing {missing}, unknown {unknown}")
    for key, kind in RECIPE_KEYS.items():
        if isinstance(spec[key], bool) or not isinstance(spec[key], kind):
            raise RecipeError(f"recipe {key}: {type(spec[key]).__name__} is not allowed")
    if not _plain(spec):
        raise RecipeError("a recipe holds plain data only (text, finite numbers, lists, maps)")
    if spec["model"] not in registry.NAMES:
        raise RecipeError(f"recipe model {spec['model']!r} is not one of {list(registry.NAMES)}")
    if spec["granularity"] not in GRANULARITIES:
        raise RecipeError(f"recipe granularity {spec['granularity']!r} is unknown")
    if spec["calibration"] is not None:
        try:
            Calibration.from_json(spec["calibration"])
        except (ValueError, TypeError, KeyError) as error:
            raise RecipeError(f"recipe calibration cannot be read: {error}") from None
    return spec


class ChampionModel(mlflow.pyfunc.PythonModel):
    """A recipe as an MLflow pyfunc: input bucket_start, requests (NaN: no log) and, best, the
    other traffic columns (ingest.traffic.MODEL_INPUTS; a model that reads one left out sees it
    as unknown, NULL); output the next day's buckets with yhat and its 80% interval.

    Built from a recipe (`ChampionModel(spec)`), or empty by champion_code.py and given its
    recipe by MLflow's `model_config` when loaded (load_context)."""

    def __init__(self, spec: dict | None = None):
        self.spec = checked_recipe(spec) if spec is not None else None

    def load_context(self, context):
        self.spec = checked_recipe(dict(context.model_config or {}))

    def choice(self) -> Choice:
        spec = self.spec
        return Choice(
            spec["model"],
            spec["params"],
            Calibration.from_json(spec["calibration"]) if spec["calibration"] else None,
            spec["validation_rmse"],
            spec["test_rmse"],
            f"the registry's {ALIAS} ({registered_name(spec['granularity'])})",
        )

    def events(self) -> pd.DataFrame:
        events = pd.DataFrame(self.spec["events"])
        for column in ("start_ts", "end_ts", "known_from"):
            if column in events:
                events[column] = pd.to_datetime(events[column]).dt.tz_localize(None)
        return events

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None):
        minutes = GRANULARITIES[self.spec["granularity"]]
        traffic = model_input.assign(bucket_start=pd.to_datetime(model_input["bucket_start"]))
        traffic = traffic.set_index("bucket_start").sort_index()
        for column in ("requests", *MODEL_INPUTS):  # floats, NaN where unknown
            if column in traffic:
                try:
                    values = pd.array(traffic[column], dtype="Float64")
                except (TypeError, ValueError) as error:
                    raise ValueError(f"column {column!r} must hold numbers: {error}") from None
                traffic[column] = values.to_numpy(dtype=float, na_value=float("nan"))
            else:
                traffic[column] = float("nan")
        if "is_missing" not in traffic:
            traffic["is_missing"] = traffic["requests"].isna()
        fit_before = (params or {}).get("fit_before")
        fit_before = pd.Timestamp(fit_before) if fit_before else None
        choice = self.choice()
        end = fit_before if fit_before is not None else traffic.index[-1]
        model = choice.build(minutes, end - pd.Timedelta(minutes=minutes))
        return forecast_next(
            traffic,
            minutes,
            model,
            calibration=choice.calibration,
            events=self.events(),
            fit_before=fit_before,
        )


def signature():
    """What the pyfunc takes: bucket_start and requests, the other traffic columns if there are
    any, and the parameter fit_before (the refit day, as the daily path passes it; empty: fit on
    all the history). Without a params schema MLflow would drop fit_before."""
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import AnyType, ColSpec, ParamSchema, ParamSpec, Schema

    # any type: counts come as integers, nullable integers or floats, times as timestamps or
    # text (MLflow's serving JSON); predict converts them
    columns = [ColSpec(AnyType(), "bucket_start"), ColSpec(AnyType(), "requests")]
    columns += [ColSpec(AnyType(), name, required=False) for name in MODEL_INPUTS]
    outputs = [ColSpec("string", "model"), ColSpec("datetime", "origin")]
    outputs += [ColSpec("datetime", "bucket_start")]
    outputs += [ColSpec("double", name) for name in ("yhat", "yhat_lower", "yhat_upper")]
    return ModelSignature(
        inputs=Schema(columns),
        outputs=Schema(outputs),
        params=ParamSchema([ParamSpec("fit_before", "string", "")]),
    )


def register(spec: dict, input_example: pd.DataFrame, tags: dict) -> str:
    """Log the recipe as a pyfunc from code (champion_code.py, the recipe its model_config: no
    pickle) in its benchmark run (a run of its own when it has none), with `input_example` (the
    traffic columns it reads) as champion_input_example.csv beside it; register it and point
    the alias `champion` at the new version; returns the version. Needs mlflow's tracking URI
    set (MLflowResource does it)."""
    checked_recipe(spec)
    name = registered_name(spec["granularity"])
    run_id = spec.get("benchmark_run_id")
    with mlflow.start_run(run_id=run_id or None, tags=None if run_id else tags):
        # The example is a file beside the model, not MLflow's input_example: MLflow would run
        # predict on it to infer a signature, and a champion needs days of history to forecast.
        with warnings.catch_warnings():  # no input_example, on purpose (see above)
            warnings.filterwarnings("ignore", message=".*input example was not provided")
            info = mlflow.pyfunc.log_model(
                name="champion",
                python_model=str(CODE_PATH),
                model_config=spec,
                signature=signature(),
                pip_requirements=["nasa_autoscale"],
            )
        mlflow.log_text(input_example.to_csv(index=False), "champion_input_example.csv")
    version = mlflow.register_model(info.model_uri, name, tags=tags)
    client = mlflow.MlflowClient()
    client.set_registered_model_alias(name, ALIAS, version.version)
    return str(version.version)


def load(granularity: str = "5m") -> ChampionModel:
    """The champion from the registry, rebuilt from its recipe alone: the MLmodel file's YAML
    (safe_load) is the only artifact read, and nothing of the store is executed."""
    uri = f"models:/{registered_name(granularity)}@{ALIAS}"
    text = mlflow.artifacts.load_text(f"{uri}/MLmodel")
    try:
        flavor = yaml.safe_load(text)["flavors"]["python_function"]
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise RecipeError(
            f"{uri}: its MLmodel file is not one this package writes ({error})"
        ) from None
    from_code = isinstance(flavor, dict) and flavor.get("model_code_path") and "config" in flavor
    if not from_code:
        raise RecipeError(f"{uri}: not a recipe logged from code (an older pickled champion?)")
    return ChampionModel(flavor["config"])  # the model_config, as MLflow writes it


def deployed_choice(con, calendar, tracking_uri: str, log=print) -> Choice:
    """The deployed 5-minute model: the registry's champion when it is the one this warehouse's
    benchmark registered (its benchmark run is model_metrics' selected day-ahead row's), else
    model_metrics' row itself (next.choose: a benchmark without a registry, a hand-made row,
    or the seasonal-naive fallback of a short history)."""
    from nasa_autoscale.forecasting.next import choose, selected_row

    rows = selected_row(con, DEPLOYED_PROTOCOL)
    choice = choose(rows, calendar)
    if "champion_version" not in rows or rows["champion_version"].isna().all():
        return choice  # no benchmark, or one of an older version: no registry yet
    mlflow.set_tracking_uri(tracking_uri)
    try:
        loaded = load("5m")
    except (mlflow.exceptions.MlflowException, RecipeError, OSError) as error:
        log(f"the registry's champion could not be loaded ({error}); using model_metrics")
        return choice
    if loaded.spec.get("benchmark_run_id") != rows["mlflow_run_id"].iloc[0]:
        log("the registry's champion comes from another benchmark; using model_metrics")
        return choice
    return dataclasses.replace(
        loaded.choice(),
        chosen_by=f"{choice.chosen_by}; loaded from the registry as "
        f"{registered_name('5m')}@{ALIAS} (version {rows['champion_version'].iloc[0]})",
    )
