"""Site-specific yardsticks: the targets and the original project's published figures that the
reports print beside the measured ones. Only the NASA trace has any (data/yardsticks/nasa.toml);
another site's reports show its own figures and baselines, with no target that means nothing
there."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

from nasa_autoscale.settings import DATA_DIR

NASA_PROFILE = DATA_DIR / "yardsticks" / "nasa.toml"


@dataclass(frozen=True)
class Yardsticks:
    site: str
    forecast_targets_5m: dict[str, float]  # protocol -> test RMSE of the selected model
    one_step_targets: dict[str, float]  # granularity -> one-step test RMSE
    original_figures: dict[str, float]  # the original project's one-shot RMSE, by model
    cost_targets_pct: dict[str, float]  # setting -> % above the hindsight optimum


def load(path=NASA_PROFILE) -> tuple[Yardsticks, set[str]]:
    """(the profile's yardsticks, the log files it is for)."""
    profile = tomllib.loads(path.read_text())
    files = set(profile.pop("log_files"))
    return Yardsticks(**profile), files


def yardsticks_for(con) -> Yardsticks | None:
    """The NASA trace's yardsticks when every file behind the warehouse is one of its logs
    (real or replica), else None."""
    from nasa_autoscale.warehouse import SCHEMA

    names = {
        row[0]
        for row in con.execute(f"SELECT DISTINCT source_file FROM {SCHEMA}.source_files").fetchall()
    }
    yardsticks, files = load()
    return yardsticks if names and names <= files else None
