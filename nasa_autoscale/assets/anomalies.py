"""Anomalies group: anomalies_5m, its evaluation against the special events, and the report."""

import dagster as dg

from nasa_autoscale.anomalies.detect import detect_anomalies
from nasa_autoscale.anomalies.evaluate import evaluate
from nasa_autoscale.anomalies.report import write_report
from nasa_autoscale.assets.common import figure, preview
from nasa_autoscale.assets.features import special_events
from nasa_autoscale.features.events import load_events
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.warehouse import data_source, replace_table

GROUP = "anomalies"


@dg.asset(
    deps=["traffic_5m", special_events],
    group_name=GROUP,
    description=(
        "Per 5-minute bucket: 3-sigma flag on the residual from a robust seasonal baseline, "
        "IsolationForest flag, is_anomaly where both agree, kind spike / dip / outage. Writes "
        "reports/anomaly_report.md and reports/figures/anomalies_5m.png with event-level "
        "precision and recall."
    ),
)
def anomalies_5m(warehouse: WarehouseResource, settings: SettingsResource):
    config = settings.get()
    events = load_events(config.events_path)
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = whole_days(con, 5)
    anomalies = detect_anomalies(traffic, 5)
    with warehouse.connect() as con:
        rows = replace_table(con, "anomalies_5m", anomalies)
    scores = evaluate(anomalies, events)
    report = write_report(anomalies, scores, events, source, config.reports_dir)
    by_method = scores.set_index("method")
    metadata = {
        "data_source": source,
        "dagster/row_count": rows,
        "report": str(report),
        "scores": preview(scores.drop(columns=["found"]).round(3)),
        "figure": figure(report.parent / "figures" / "anomalies_5m.png"),
    }
    for method in ("z", "iforest", "both"):
        metadata[f"precision_{method}"] = float(by_method.at[method, "precision"])
        metadata[f"recall_{method}"] = float(by_method.at[method, "recall"])
    return dg.MaterializeResult(metadata=metadata)
