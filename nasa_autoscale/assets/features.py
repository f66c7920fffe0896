"""Features group: special_events, features_1m / features_5m / features_15m."""

import dagster as dg

from nasa_autoscale.assets.common import preview
from nasa_autoscale.features.build import build_features, feature_names
from nasa_autoscale.features.checks import lag_check
from nasa_autoscale.features.events import load_events, read_events
from nasa_autoscale.ingest.traffic import GRANULARITIES, local_buckets
from nasa_autoscale.partitions import SITE_PREFIX, key, keys
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.warehouse import data_source, replace_table

GROUP = "features"


@dg.asset(
    key_prefix=SITE_PREFIX,
    group_name=GROUP,
    description=(
        "Dated special events (holidays, launches, landings, missions, anniversaries, outages, "
        "no-data periods) with expected impact and source, from NASA_EVENTS_PATH (default "
        "data/special_events.csv, NASA's)."
    ),
)
def special_events(warehouse: WarehouseResource, settings: SettingsResource):
    path = settings.get().events_path
    events = load_events(path)
    with warehouse.connect() as con:
        rows = replace_table(con, "special_events", events)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "file": str(path) if path else "none (NASA_EVENTS_PATH=none)",
            "kinds": ", ".join(sorted(events["kind"].unique())),
            "events": preview(
                events[["name", "kind", "start_ts", "end_ts", "expected_impact"]], 50
            ),
        }
    )


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            key(f"features_{name}"),
            deps=keys([f"traffic_{name}", special_events]),
            group_name=GROUP,
            description=(
                f"About 85 leakage-free features per {minutes}-minute bucket (time, lag, rolling, "
                "advanced, aggregation families; see the README). Row t reads only buckets before "
                "t; missing buckets stay NULL."
            ),
        )
        for name, minutes in GRANULARITIES.items()
    ],
)
def feature_tables(warehouse: WarehouseResource, settings: SettingsResource):
    days = settings.get().history_days  # the window the models read, not the whole history
    with warehouse.connect() as con:
        source = data_source(con)
        events = read_events(con)
        for name, minutes in GRANULARITIES.items():
            table = f"features_{name}"
            buckets = local_buckets(con, minutes, days)  # one row per local time, as models read
            frame = build_features(con, buckets, events, minutes)
            rows = replace_table(con, table, frame)
            yield dg.MaterializeResult(
                asset_key=key(table),
                metadata={
                    "data_source": source,
                    "dagster/row_count": rows,
                    "features": len(feature_names(minutes)),
                    "span": f"{frame.bucket_start.min()} .. {frame.bucket_start.max()}",
                    "preview": preview(frame.iloc[len(frame) // 2 :, :12]),
                },
            )


@dg.multi_asset_check(
    specs=[
        dg.AssetCheckSpec(
            "missing_stays_missing",
            asset=key(f"features_{name}"),
            description="lag_1 is NULL exactly where the bucket before is missing; no target "
            "where the bucket is missing.",
        )
        for name in GRANULARITIES
    ],
)
def missing_stays_missing(warehouse: WarehouseResource, settings: SettingsResource):
    days = settings.get().history_days
    with warehouse.connect() as con:
        for name, minutes in GRANULARITIES.items():
            buckets = local_buckets(con, minutes, days)
            passed, metadata = lag_check(con, f"features_{name}", buckets)
            yield dg.AssetCheckResult(
                asset_key=key(f"features_{name}"),
                check_name="missing_stays_missing",
                passed=passed,
                metadata=metadata,
            )
