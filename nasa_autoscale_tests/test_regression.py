"""Reading the calendar from the data changed no figure: model_metrics, the cost report and the
anomaly evaluation on the real 5-minute series equal those of the code before (commit 1ce4e48,
fixed 1995 windows), as nasa_autoscale_tests/golden.py wrote them."""

import json
from pathlib import Path

import pandas as pd
import pytest

from nasa_autoscale_tests.golden import figures

GOLDEN = json.loads((Path(__file__).parent / "data" / "golden_figures.json").read_text())


@pytest.fixture(scope="module")
def today():
    return json.loads(json.dumps(figures(), default=str))


# The Fourier terms' phase is now an exact remainder of the time since a Monday (it was a float
# division from a 1995 Monday): the Fourier-ARIMA's figures move in the 7th digit, no more.
TOLERANCE = {"sarima_fourier": 1e-6}


def aligned(today_rows: list[dict], before: pd.DataFrame) -> pd.DataFrame:
    """Today's rows in the golden rows' order and columns. The cost report's rows are matched by
    (setting, policy): a policy added since (keda_hpa) has no golden row and is left out, every
    golden row must still be there."""
    now = pd.DataFrame(today_rows)[before.columns]
    if "policy" not in before:
        return now
    keyed = now.set_index(["setting", "policy"])
    order = pd.MultiIndex.from_frame(before[["setting", "policy"]])
    return keyed.loc[order].reset_index()[before.columns]


@pytest.mark.parametrize("table", ["model_metrics", "cost_report", "anomaly_evaluation"])
def test_figures_are_those_of_the_fixed_1995_windows(today, table):
    before = pd.DataFrame(GOLDEN[table])
    now = aligned(today[table], before)
    assert len(before) > 3
    groups = before["model"] if "model" in before else pd.Series("", index=before.index)
    for model, rows in before.groupby(groups):
        tolerance = TOLERANCE.get(model, 1e-9)
        pd.testing.assert_frame_equal(
            now.loc[rows.index], rows, check_exact=False, rtol=tolerance, check_dtype=False
        )


def test_the_comparison_can_fail(today):
    pd.testing.assert_frame_equal(  # unchanged, the aligned rows pass
        aligned(today["cost_report"], pd.DataFrame(GOLDEN["cost_report"])),
        pd.DataFrame(GOLDEN["cost_report"]),
        check_exact=False,
        rtol=1e-9,
        check_dtype=False,
    )
    changed = pd.DataFrame(GOLDEN["cost_report"])
    changed.loc[0, "cost"] *= 1.001
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(
            aligned(today["cost_report"], changed),
            changed,
            check_exact=False,
            rtol=1e-9,
        )
