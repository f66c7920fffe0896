"""The live path in the Dagster UI: the follower's and the planner's tables as external assets
(`make live` writes them, not a Dagster run), a sensor that reports what they did as asset
observations, and a freshness check on the watermark.

The sensor's tick costs one read-only look at the follower's store (live/planner.live_status:
two small queries); it reports only when the watermark moved, so an idle site adds no events.
The check fails when the watermark is older than NASA_STALE_AFTER_S, the age past which the
API withholds the signal (it says so in the UI before KEDA's fallback is noticed elsewhere).
"""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from nasa_autoscale.partitions import key
from nasa_autoscale.resources import SettingsResource

GROUP = "live"
FRESH = "watermark_is_fresh"

live_requests = dg.AssetSpec(
    key("live_requests"),
    group_name=GROUP,
    description=(
        "The lines the live follower took from the site's growing logs (`make live`), in its "
        "store beside the warehouse (<warehouse>.live.duckdb: live_requests, live_rejected), up "
        "to the watermark; the nightly partition run reconciles them with `requests`."
    ),
)
live_plan = dg.AssetSpec(
    key("live_plan"),
    deps=[live_requests, key("scaling_forecasts"), key("cost_report")],
    group_name=GROUP,
    description=(
        "Every fleet's decision at each decision interval: the test window's LightGBM "
        "(scaling_models) fed the follower's complete buckets, the selected policy stepped "
        "under the simulator's rules; what GET /scaling and the Prometheus gauges serve."
    ),
)


def _evaluation(status: dict | None) -> dg.AssetCheckEvaluation:
    if status is None:
        return dg.AssetCheckEvaluation(
            asset_key=live_plan.key,
            check_name=FRESH,
            passed=False,
            metadata={"why": "no follower store: start `make live`"},
        )
    return dg.AssetCheckEvaluation(
        asset_key=live_plan.key,
        check_name=FRESH,
        passed=bool(status["fresh"]),
        metadata={
            "watermark_utc": str(status["watermark_utc"]),
            "age_s": float(status["age_s"] or -1),
            "stale_after_s": float(status["stale_after_s"]),
        },
    )


def _status(settings: SettingsResource):
    from nasa_autoscale.live.planner import live_status

    config = settings.get()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return live_status(config.live_store, now, config.stale_after_s)


@dg.asset_check(asset=live_plan.key, name=FRESH, blocking=False)
def watermark_is_fresh(settings: SettingsResource) -> dg.AssetCheckResult:
    """The follower's watermark is at most NASA_STALE_AFTER_S old."""
    evaluation = _evaluation(_status(settings))
    return dg.AssetCheckResult(passed=evaluation.passed, metadata=evaluation.metadata)


@dg.sensor(
    name="live_follower",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Reports what the live follower and planner did (asset observations) and the "
    "watermark's freshness, once a minute, when the watermark moved or went stale.",
)
def live_follower(context: dg.SensorEvaluationContext, settings: SettingsResource):
    status = _status(settings)
    cursor = json.loads(context.cursor) if context.cursor else {}
    mark = None if status is None else status["watermark_utc"]
    fresh = None if status is None else status["fresh"]
    if cursor and mark == cursor.get("watermark") and fresh == cursor.get("fresh"):
        return dg.SkipReason("the watermark has not moved")
    events: list = [_evaluation(status)]
    if status is not None:
        events.append(
            dg.AssetObservation(
                asset_key=live_requests.key,
                metadata={
                    "watermark_utc": str(mark),
                    "requests_taken": status["requests_taken"],
                    "rejected_taken": status["rejected_taken"],
                    "files_followed": status["files_followed"],
                },
            )
        )
        if status["decisions"]:
            events.append(
                dg.AssetObservation(
                    asset_key=live_plan.key,
                    metadata={"decisions": dg.MetadataValue.json(status["decisions"])},
                )
            )
    context.update_cursor(json.dumps({"watermark": mark, "fresh": fresh}))
    return dg.SensorResult(asset_events=events)
