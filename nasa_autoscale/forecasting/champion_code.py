"""The champion as MLflow models-from-code: the model is built by this package's own code, and
its recipe comes from the logged model's `model_config` (plain YAML), so no pickle is written
or read (forecasting/champion.py)."""

import mlflow

from nasa_autoscale.forecasting.champion import ChampionModel

mlflow.models.set_model(ChampionModel())
