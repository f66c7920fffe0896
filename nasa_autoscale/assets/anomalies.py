"""Anomalies group: anomalies_5m, its evaluation against the special events, and the report."""

import dagster as dg

from nasa_autoscale.anomalies import benchmark
from nasa_autoscale.anomalies.detect import detect_anomalies
from nasa_autoscale.anomalies.evaluate import evaluate
from nasa_autoscale.anomalies.report import write_injection_report, write_report
from nasa_autoscale.anomalies.residual import fit_detector
from nasa_autoscale.assets.common import figure, history_too_short, preview
from nasa_autoscale.assets.features import special_events
from nasa_autoscale.features.events import read_events
from nasa_autoscale.forecasting.next import selected_row
from nasa_autoscale.ingest.traffic import whole_days
from nasa_autoscale.partitions import SITE_PREFIX, key, keys
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.warehouse import data_source, replace_table

GROUP = "anomalies"
# the injection benchmark's step reads these (the selected one-step model's traffic, minute
# detail included) for both of its tables
INJECTION_INPUTS = ["traffic_5m", "traffic_1m", "model_metrics", "special_events"]


@dg.asset(
    key_prefix=SITE_PREFIX,
    deps=keys(["traffic_5m", special_events]),
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
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = whole_days(con, 5, detail=False, days=config.history_days)
        events = read_events(con)
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


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key("anomaly_injection"),
            deps=keys(INJECTION_INPUTS),
            group_name=GROUP,
            description=(
                "What the anomaly flags are worth: spikes, dips, level shifts and outages of "
                "known size injected into seeded copies of the validation and test windows; per "
                "method (3-sigma, IsolationForest, both, the selected one-step model's calibrated "
                "residual) the alarms a day on clean traffic and the recall by kind and size; "
                "the method to trust chosen on validation (selected). Writes "
                "reports/anomaly_injection.md."
            ),
        ),
        dg.AssetSpec(
            key("anomaly_flags"),
            deps=keys(INJECTION_INPUTS),
            group_name=GROUP,
            description=(
                "The spike flags of the detector anomaly_injection chose on validation, on the "
                "real validation and test windows: what the anomaly guard policy reacts to. "
                "Empty while the history is too short (then the guard reads anomalies_5m's "
                "3-sigma spikes)."
            ),
        ),
    ],
)
def anomaly_injection(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    config = settings.get()
    with warehouse.connect() as con:
        source = data_source(con)
        traffic = whole_days(con, 5, days=config.history_days)
        selected = selected_row(con, "one_step")
        events = read_events(con)
    indexed = traffic.set_index("bucket_start")
    calendar = config.calendar(indexed)
    if not calendar.enough:  # empty tables: no flags of an earlier history stay behind
        tables = {"anomaly_injection": benchmark.COLUMNS, "anomaly_flags": benchmark.FLAG_COLUMNS}
        yield from history_too_short(context, warehouse, tables, source, calendar.shortfall())
        return
    residual = fit_detector(selected, indexed, calendar, events)
    table, chosen = benchmark.run(traffic, calendar.windows(), residual, progress=context.log.info)
    flags = benchmark.spike_flags(traffic, calendar.windows(), chosen["method"], residual)
    with warehouse.connect() as con:
        replace_table(con, "anomaly_injection", table)
        replace_table(con, "anomaly_flags", flags)
    report = write_injection_report(table, chosen, source, config.reports_dir)
    yield dg.MaterializeResult(
        asset_key=key("anomaly_injection"),
        metadata={
            "data_source": source,
            "dagster/row_count": len(table),
            "report": str(report),
            **chosen,
        },
    )
    yield dg.MaterializeResult(
        asset_key=key("anomaly_flags"),
        metadata={
            "data_source": source,
            "dagster/row_count": len(flags),
            "method": chosen["method"],
            "spikes_flagged": int(flags["spike"].sum()),
        },
    )
