"""The figures the regression test holds the code to, from the real 5-minute reference series:
model_metrics of the baselines and the Fourier-ARIMA, the policy sweep's cost report and the
anomaly evaluation.

    python -m nasa_autoscale_tests.golden OUT.json

The committed nasa_autoscale_tests/data/golden_figures.json was written by this script run
against the code of commit 1ce4e48 (before the calendar was read from the data), with this file
copied there; test_regression.py recomputes the same figures with today's code. The anomaly
evaluation reads the event list of that commit (data/special_events_1ce4e48.csv): the test holds
the code to its figures, while the events file itself has moved on (known_from, the countdown's
planned end).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

EVENTS_1CE4E48 = Path(__file__).parent / "data" / "special_events_1ce4e48.csv"


def reference_traffic() -> pd.DataFrame:
    from nasa_autoscale.ingest.reference import reference_traffic_5m

    ref = reference_traffic_5m().reset_index()
    frame = pd.DataFrame(
        {
            "bucket_start": ref["bucket_start"],
            "requests": ref["request_count"].astype("Int64"),
            "bytes": ref["total_bytes"].astype("Int64"),
            "unique_hosts": pd.array([pd.NA] * len(ref), dtype="Int64"),
            **{
                c: ref[c].astype("Int64")
                for c in ("status_2xx", "status_3xx", "status_4xx", "status_5xx")
            },
            "is_missing": ref["request_count"].isna(),
        }
    )
    frame["error_rate"] = (frame.status_4xx + frame.status_5xx) / frame.requests.replace(0, pd.NA)
    return frame


NASA_DAYS = (9, 7)  # the NASA trace's test and validation days (the settings' defaults)


def nasa_calendar(traffic):
    """The windows under the default day counts: test Aug 23-31, validation Aug 16-22."""
    from nasa_autoscale.forecasting.protocols import Calendar

    return Calendar.of(traffic, *NASA_DAYS)


def scaling_windows(traffic):
    return nasa_calendar(traffic).windows()


def naive_scaling_forecasts(traffic: pd.DataFrame) -> pd.DataFrame:
    """scaling_forecasts from the same slot last week (seasonal naive), both windows, 2 steps."""
    from nasa_autoscale.forecasting.models import SeasonalNaive
    from nasa_autoscale.scaling.forecasts import plan

    frames = []
    for window, (start, end) in scaling_windows(traffic).items():
        model = SeasonalNaive(7).fit(traffic[traffic.index < start], 5)
        forecast = model.predict(traffic[traffic.index < end], plan(start, end, 5, 2))
        forecast.insert(0, "window", window)
        frames.append(forecast)
    return pd.concat(frames, ignore_index=True)


def figures() -> dict:
    from nasa_autoscale.anomalies.detect import detect_anomalies
    from nasa_autoscale.anomalies.evaluate import evaluate
    from nasa_autoscale.features.events import load_events
    from nasa_autoscale.forecasting import backtest
    from nasa_autoscale.forecasting.models import HarmonicARIMA, SeasonalNaive, SlotMedian
    from nasa_autoscale.forecasting.protocols import PROTOCOLS
    from nasa_autoscale.scaling import sweep
    from nasa_autoscale.scaling.sweep import run_sweep

    frame = reference_traffic()
    traffic = frame.set_index("bucket_start")
    metrics = []
    for model in (SeasonalNaive(7), SlotMedian(3), HarmonicARIMA()):
        calendar = nasa_calendar(traffic)
        forecasts, _ = backtest.run(model, traffic, 5, "5m", PROTOCOLS, calendar)
        metrics.append(backtest.score_all(forecasts, traffic, 5, calendar))
    metrics = pd.concat(metrics, ignore_index=True)
    anomalies = detect_anomalies(frame, 5)
    scores = evaluate(anomalies, load_events(EVENTS_1CE4E48))
    # The adaptive predictive policy (gamma > 0) came after 1ce4e48: with it off, the sweep is
    # that commit's and so must its figures be.
    saved = getattr(sweep, "ADAPTATION", None)
    if saved is not None:
        sweep.ADAPTATION = (0.0,)
    try:
        _, report, _, _ = run_sweep(
            traffic["requests"].astype(float),
            naive_scaling_forecasts(traffic),
            anomalies,
            nasa_calendar(traffic),
            sweep.SCENARIOS,
            progress=lambda _: None,
        )
    finally:
        if saved is not None:
            sweep.ADAPTATION = saved
    return {
        "model_metrics": metrics.round(9).to_dict(orient="records"),
        "cost_report": report.drop(columns=["params"]).round(9).to_dict(orient="records"),
        "anomaly_evaluation": json.loads(scores.round(9).to_json(orient="records")),
    }


if __name__ == "__main__":
    with open(sys.argv[1], "w") as out:
        json.dump(figures(), out, indent=1, default=str)
