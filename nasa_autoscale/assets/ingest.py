"""Ingest group: raw log files -> requests + rejected_lines -> traffic_1m / _5m / _15m."""

import dagster as dg

from nasa_autoscale.assets.common import PREVIEW_ROWS, preview
from nasa_autoscale.ingest import checks
from nasa_autoscale.ingest.download import locate_logs
from nasa_autoscale.ingest.partition import ingest_partition
from nasa_autoscale.ingest.traffic import GRANULARITIES, write_traffic
from nasa_autoscale.partitions import (
    SITE_PREFIX,
    WAREHOUSE_POOL,
    daily_partitions,
    key,
    keys,
    partition_days,
)
from nasa_autoscale.resources import SettingsResource, WarehouseResource
from nasa_autoscale.settings import current as current_settings
from nasa_autoscale.warehouse import SCHEMA, data_source

GROUP = "ingest"


@dg.asset(
    key_prefix=SITE_PREFIX,
    group_name=GROUP,
    retry_policy=dg.RetryPolicy(max_retries=2, delay=5),  # downloads fail transiently
    description=(
        "The raw access-log files: those in NASA_RAW_DIR (default data/raw); if there are none, "
        "the two NASA files downloaded from NASA_LOG_URL; if that fails, a replica built from the "
        "committed reference data (real per-second counts, real sampled lines), flagged as such."
    ),
)
def raw_log_files(context: dg.AssetExecutionContext, settings: SettingsResource):
    source = locate_logs(settings.get(), fetch=True, progress=context.log.info)
    if source.data_source == "replica":
        context.log.warning(source.note)
    sizes = {p.name: p.stat().st_size for p in source.files}
    return dg.MaterializeResult(
        metadata={
            "data_source": source.data_source,
            "note": source.note,
            "files": dg.MetadataValue.json({p.name: str(p) for p in source.files}),
            "total_bytes": sum(sizes.values()),
        }
    )


# With a lake the parse holds no warehouse (it attaches it only to read and write the small
# tables): its steps run side by side, outside the one-writer pool.
@dg.multi_asset(
    pool=None if current_settings().lake else WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            key("requests"),
            deps=keys([raw_log_files]),
            group_name=GROUP,
            description=(
                "One row per parsed log line: ts in the site's local time (NASA_TIMEZONE), ts_utc "
                "the instant, referer and user_agent for combined logs; see the README."
            ),
        ),
        dg.AssetSpec(
            key("rejected_lines"),
            deps=keys([raw_log_files]),
            group_name=GROUP,
            description="Lines that are not requests, with file, line number, raw text and reason.",
        ),
    ],
    check_specs=[
        dg.AssetCheckSpec(
            "lines_accounted",
            asset=key("requests"),
            description=(
                "Rows stored in requests + rejected_lines = lines read, per file and day and per "
                "whole file; no line twice; the run's lines read = headers + stored + lines of "
                "the site's other days, none stored nowhere."
            ),
        )
    ],
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def parsed_log_lines(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, settings: SettingsResource
):
    first_day, last_day = partition_days(context)
    with warehouse.for_ingest() as (con, hold):
        outcome = ingest_partition(
            con, settings.get(), first_day, last_day, context.log.info, hold=hold
        )
        source, summary = outcome.source, outcome.summary
        if source.data_source == "replica":
            context.log.warning(source.note)
        if outcome.failed:  # what was read is stored, with its traffic tables
            raise dg.Failure(
                description=summary.failure_message(),
                metadata={
                    "failed_files": dg.MetadataValue.json(
                        {k: v[0] for k, v in summary.failed.items()}
                    ),
                    "mostly_rejected": dg.MetadataValue.json(summary.mostly_rejected),
                    "not_access_logs": dg.MetadataValue.json(summary.not_access_logs),
                },
            )
        accounting = summary.accounting()
        reconciled = _reconcile_follower(settings.get(), con, hold, first_day, last_day, context)
        with hold():
            passed, check_metadata = checks.lines_accounted(con, first_day, last_day)
            passed = passed and accounting["balanced"]
            check_metadata = {**check_metadata, "run": dg.MetadataValue.json(accounting)}
            params = [first_day, last_day]
            requests_preview = con.execute(
                f"SELECT * FROM {SCHEMA}.requests WHERE day BETWEEN ? AND ? LIMIT {PREVIEW_ROWS}",
                params,
            ).df()
            rejected = con.execute(
                f"SELECT reason, count(*) AS lines, any_value(raw_line) AS example "
                f"FROM {SCHEMA}.rejected_lines WHERE day BETWEEN ? AND ? "
                "GROUP BY reason ORDER BY 2 DESC",
                params,
            ).df()
    common = {
        "data_source": source.data_source,
        "days": f"{first_day} .. {last_day}",
        "files_read": ", ".join(summary.files_read) or "none",
        "files_skipped": ", ".join(summary.files_skipped) or "none",
        "same_lines_as": dg.MetadataValue.json(summary.same_lines_as),
        "log_formats": dg.MetadataValue.json(summary.formats),
        "time_zone": summary.zone or "unchanged",
        "not_access_logs": dg.MetadataValue.json(summary.not_access_logs),
        "follower_reconciliation": dg.MetadataValue.json(reconciled),
    }
    yield dg.MaterializeResult(
        asset_key=key("requests"),
        metadata={
            **common,
            "dagster/row_count": summary.requests,
            **accounting,
            "rejected": summary.rejected,
            "first_ts": str(summary.first_ts),
            "last_ts": str(summary.last_ts),
            "preview": preview(requests_preview),
        },
    )
    yield dg.MaterializeResult(
        asset_key=key("rejected_lines"),
        metadata={
            **common,
            "dagster/row_count": summary.rejected,
            "by_reason": preview(rejected) if len(rejected) else "no rejected lines",
        },
    )
    yield dg.AssetCheckResult(
        asset_key=key("requests"),
        check_name="lines_accounted",
        passed=passed,
        metadata=check_metadata,
    )


def _reconcile_follower(settings, con, hold, first_day, last_day, context) -> dict:
    """The days the live follower took lines for, against what this run stored, then its rows
    of those days dropped (live/follower.reconcile); a busy follower store is reported."""
    from nasa_autoscale.live.follower import FollowerError, reconcile

    try:
        with hold():
            outcome = reconcile(settings.live_store, con, first_day, last_day)
    except FollowerError as error:
        context.log.warning(f"the follower's store was not reconciled: {error}")
        return {"error": str(error)}
    for day, counts in outcome.items():
        if not counts["equal"]:
            context.log.warning(
                f"{day}: the follower took {counts['follower']:,} requests, the day's files "
                f"hold {counts['warehouse']:,} (a follower started mid-day takes fewer)"
            )
    return outcome


_TRAFFIC_CHECKS = [
    dg.AssetCheckSpec(
        "buckets_complete",
        asset=key(f"traffic_{name}"),
        description="Every bucket once; missing buckets NULL, never 0.",
    )
    for name in GRANULARITIES
] + [
    dg.AssetCheckSpec(
        "matches_reference",
        asset=key("traffic_5m"),
        description=(
            "NASA trace only: 5-minute counts equal the reference per-second series summed into "
            "5-minute buckets (data/reference), bucket for bucket."
        ),
    )
]


@dg.multi_asset(
    pool=WAREHOUSE_POOL,
    specs=[
        dg.AssetSpec(
            key(f"traffic_{name}"),
            # A quiet run that crosses midnight is judged with the neighbouring days' requests.
            deps=[
                dg.AssetDep(
                    key("requests"),
                    partition_mapping=dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=1),
                )
            ],
            group_name=GROUP,
            description=(
                f"Requests, bytes, unique hosts and status classes per {minutes}-minute bucket; "
                "every bucket of the day, is_missing where no log was collected (requests NULL)."
            ),
        )
        for name, minutes in GRANULARITIES.items()
    ],
    check_specs=_TRAFFIC_CHECKS,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def traffic_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    first_day, last_day = partition_days(context)
    with warehouse.connect() as con:
        rows = write_traffic(con, first_day, last_day)
        source = data_source(con)
        for name, minutes in GRANULARITIES.items():
            table = f"traffic_{name}"
            summary = con.execute(
                f"SELECT count(*) FILTER (WHERE is_missing), sum(requests), max(requests) "
                f"FROM {SCHEMA}.{table} WHERE CAST(bucket_start AS DATE) BETWEEN ? AND ?",
                [first_day, last_day],
            ).fetchall()[0]
            busiest = con.execute(
                f"SELECT * FROM {SCHEMA}.{table} WHERE CAST(bucket_start AS DATE) BETWEEN ? AND ? "
                f"ORDER BY requests DESC NULLS LAST LIMIT {PREVIEW_ROWS}",
                [first_day, last_day],
            ).df()
            yield dg.MaterializeResult(
                asset_key=key(table),
                metadata={
                    "data_source": source,
                    "days": f"{first_day} .. {last_day}",
                    "dagster/row_count": rows[table],
                    "missing_buckets": int(summary[0] or 0),
                    "requests": int(summary[1] or 0),
                    "peak_requests": int(summary[2] or 0),
                    "busiest_buckets": preview(busiest),
                },
            )
            passed, metadata = checks.buckets_complete(con, table, minutes, first_day, last_day)
            yield dg.AssetCheckResult(
                asset_key=key(table),
                check_name="buckets_complete",
                passed=passed,
                metadata=metadata,
            )
        outcome = checks.matches_reference(con, first_day, last_day)
    passed, metadata = outcome or (True, {"skipped": "not the NASA trace: no reference to compare"})
    yield dg.AssetCheckResult(
        asset_key=key("traffic_5m"),
        check_name="matches_reference",
        passed=passed,
        metadata=metadata,
        severity=dg.AssetCheckSeverity.WARN,
    )
