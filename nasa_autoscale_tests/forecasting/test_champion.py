"""MLflow as a registry: the selected day-ahead recipe is registered as its granularity's
`champion`, and a fresh process that loads it forecasts what the daily path would."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import mlflow
import pandas as pd
import pytest

from nasa_autoscale.features.events import load_events
from nasa_autoscale.forecasting import champion
from nasa_autoscale.forecasting.models import SeasonalNaive
from nasa_autoscale.forecasting.next import forecast_next
from nasa_autoscale.resources import MLflowResource


def naive_row() -> pd.Series:
    """A model_metrics row of the seasonal naive model, as the benchmark writes one."""
    return pd.Series(
        {
            "model": "seasonal_naive_day",
            "granularity": "5m",
            "params": "{}",
            "calibration": None,
            "validation_rmse": 80.0,
            "rmse": 90.0,
            "mlflow_run_id": None,
        }
    )


@pytest.mark.slow  # a fresh Python process
def test_a_fresh_process_loads_the_champion_and_forecasts_as_the_daily_path(
    tmp_path, real_traffic_5m
):
    store = MLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=str(tmp_path / "mlruns")
    )
    history = real_traffic_5m[real_traffic_5m["bucket_start"] < "1995-08-20"]
    history = history[["bucket_start", "requests"]].tail(14 * 288)
    row = naive_row()
    spec = champion.recipe(row, load_events())
    tags = {"dagster_run_id": "test"}
    store.activate()
    assert champion.register(spec, history.tail(12), tags) == "1"
    moved = champion.recipe(row.replace("seasonal_naive_day", "seasonal_naive_week"), load_events())
    assert champion.register(moved, history.tail(12), tags) == "2"  # the alias moves on
    version = mlflow.MlflowClient().get_model_version_by_alias("nasa_autoscale_5m", "champion")
    example = mlflow.artifacts.load_text(f"runs:/{version.run_id}/champion_input_example.csv")
    assert example.splitlines()[0] == "bucket_start,requests" and len(example.splitlines()) == 13
    history.assign(requests=history["requests"].astype(float)).to_csv(tmp_path / "in.csv")
    script = textwrap.dedent(
        f"""
        import mlflow, pandas as pd
        mlflow.set_tracking_uri("{store.tracking_uri}")
        model = mlflow.pyfunc.load_model("models:/nasa_autoscale_5m@champion")
        frame = pd.read_csv("{tmp_path / "in.csv"}", index_col=0, parse_dates=["bucket_start"])
        model.predict(frame).to_csv("{tmp_path / "out.csv"}", index=False)
        refit = model.predict(frame, params={{"fit_before": "1995-08-16"}})
        refit.to_csv("{tmp_path / "refit.csv"}", index=False)
        # counts as nullable integers and a column the model does not take, as whole_days has
        typed = frame.assign(requests=frame["requests"].astype("Int64"), is_missing=False)
        model.predict(typed).to_csv("{tmp_path / "typed.csv"}", index=False)
        print(model.unwrap_python_model().spec["model"])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "seasonal_naive_week"
    loaded = pd.read_csv(tmp_path / "out.csv", parse_dates=["bucket_start", "origin"])
    traffic = history.set_index("bucket_start").assign(
        requests=lambda f: f["requests"].astype(float), is_missing=lambda f: f["requests"].isna()
    )
    expected = forecast_next(traffic, 5, SeasonalNaive(7), events=load_events())
    assert len(loaded) == 288 and loaded["bucket_start"].iloc[0] == pd.Timestamp("1995-08-20")
    pd.testing.assert_series_equal(loaded["yhat"], expected["yhat"], check_names=False)
    typed = pd.read_csv(tmp_path / "typed.csv")
    pd.testing.assert_series_equal(typed["yhat"], expected["yhat"], check_names=False)
    # the refit day reaches the model (MLflow drops parameters its signature does not declare):
    # fitted on less history, its own interval is another
    refit = pd.read_csv(tmp_path / "refit.csv")
    before = forecast_next(
        traffic, 5, SeasonalNaive(7), events=load_events(), fit_before=pd.Timestamp("1995-08-16")
    )
    pd.testing.assert_series_equal(refit["yhat_upper"], before["yhat_upper"], check_names=False)
    assert not before["yhat_upper"].equals(expected["yhat_upper"])


def test_a_feature_model_champion_forecasts_from_requests_alone(real_traffic_5m):
    # LightGBM reads bytes and the status mix too; given only bucket_start and requests (as
    # the README's example does, and MLflow's serving check with string times), it still
    # forecasts the next day
    history = real_traffic_5m[real_traffic_5m["bucket_start"] < "1995-08-20"].tail(21 * 288)
    row = pd.Series(
        {
            "model": "ensemble_weighted",
            "granularity": "5m",
            "params": '{"weights": {"lightgbm_day": 0.5, "slot_median_3w": 0.5}}',
            "calibration": None,
            "validation_rmse": 50.0,
            "rmse": 60.0,
            "mlflow_run_id": None,
        }
    )
    model = champion.ChampionModel(champion.recipe(row, load_events()))
    bare = history[["bucket_start", "requests"]].astype({"bucket_start": str})
    forecast = model.predict(None, bare)
    assert len(forecast) == 288 and forecast["yhat"].notna().all()
    assert forecast["model"].eq("ensemble_weighted").all()
    # a column that is not numbers is named in a clear error
    with pytest.raises(ValueError, match="column 'requests' must hold numbers"):
        model.predict(None, bare.assign(requests="many"))


def _registered(tmp_path, real_traffic_5m):
    """A champion registered into a store of its own; returns the folder of its artifacts."""
    store = MLflowResource(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_dir=str(tmp_path / "mlruns")
    )
    store.activate()
    row = naive_row()
    history = real_traffic_5m[["bucket_start", "requests"]].head(12)
    champion.register(champion.recipe(row, load_events()), history, {"dagster_run_id": "t"})
    (mlmodel,) = (tmp_path / "mlruns").rglob("MLmodel")
    return mlmodel.parent


def test_the_champion_is_stored_without_a_pickle(tmp_path, real_traffic_5m):
    folder = _registered(tmp_path, real_traffic_5m)
    files = [p for p in (tmp_path / "mlruns").rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix in (".pkl", ".pickle", ".cloudpickle")]
    for path in files:  # no pickle stream (protocol 2 and up start with 0x80) in any artifact
        assert not path.read_bytes().startswith(b"\x80"), path
    assert "model_code_path" in (folder / "MLmodel").read_text()
    assert champion.load("5m").spec["model"] == "seasonal_naive_day"


def test_a_tampered_champion_is_never_run_and_a_bad_recipe_is_refused(tmp_path, real_traffic_5m):
    folder = _registered(tmp_path, real_traffic_5m)
    marker = tmp_path / "owned"
    evil = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    # the code beside the recipe and a pickle dropped next to it: the deployed path reads
    # neither, so neither runs
    (code,) = folder.glob("*.py")
    code.write_text(evil)

    class Evil:
        def __reduce__(self):
            return (exec, (evil,))

    import pickle

    (folder / "python_model.pkl").write_bytes(pickle.dumps(Evil()))
    assert champion.load("5m").spec["model"] == "seasonal_naive_day"
    assert not marker.exists()
    # the recipe itself tampered with: refused with the reason, never built
    mlmodel = folder / "MLmodel"
    mlmodel.write_text(mlmodel.read_text().replace("seasonal_naive_day", "os.system"))
    with pytest.raises(champion.RecipeError, match="recipe model 'os.system'"):
        champion.load("5m")
    assert not marker.exists()


@pytest.mark.parametrize(
    "change, message",
    [
        ({"model": "nope"}, "recipe model"),
        ({"granularity": "7m"}, "granularity"),
        ({"params": "x"}, "recipe params"),
        ({"calibration": "{bad"}, "calibration cannot be read"),
        ({"extra": 1}, "unknown \\['extra'\\]"),
        ({"validation_rmse": float("nan")}, "plain data"),
        ({"events": [{"a": object()}]}, "plain data"),
    ],
)
def test_checked_recipe_refuses_what_recipe_never_writes(change, message):
    good = {
        "model": "seasonal_naive_day",
        "granularity": "5m",
        "params": {},
        "calibration": None,
        "validation_rmse": 1.0,
        "test_rmse": 1.0,
        "benchmark_run_id": None,
        "events": [],
    }
    assert champion.checked_recipe(dict(good)) == good
    with pytest.raises(champion.RecipeError, match=message):
        champion.checked_recipe({**good, **change})
