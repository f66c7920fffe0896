"""What names this process's site in the graph: its daily partitions in the site's local time
(the range defaults to the NASA trace) and its asset keys.

NASA_START_DATE and NASA_END_DATE (inclusive, YYYY-MM-DD), or a site's dates in the sites file,
set the range for other logs; without an end date, a user's partitions run to today (today's
included, as its log is being written). With a sites file (sites.py) every asset key starts with
the site's name (`shop/requests`), so that the sites' code locations share one Dagster instance
without mixing their materializations; with none, the keys are the bare names, as before.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from nasa_autoscale.settings import Settings, current


def daily_partitions_for(settings: Settings) -> dg.DailyPartitionsDefinition:
    if settings.open_ended:  # a live site: every day up to today's, which is still being logged
        return dg.DailyPartitionsDefinition(start_date=settings.start_date, end_offset=1)
    end = dt.date.fromisoformat(settings.end_date) + dt.timedelta(days=1)  # Dagster's is exclusive
    return dg.DailyPartitionsDefinition(start_date=settings.start_date, end_date=end.isoformat())


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The first and last day (inclusive) of the run's partition or partition range."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


def writer_pool(settings: Settings) -> str:
    """The pool of the steps that write the warehouse file: one per file, so one per site."""
    return "duckdb_writer" + (f"_{settings.site}" if settings.sites_path is not None else "")


daily_partitions = daily_partitions_for(current())
SITE_PREFIX = current().asset_prefix()
WAREHOUSE_POOL = writer_pool(current())


def key(name: str) -> dg.AssetKey:
    """The asset key of a table of this process's site."""
    return dg.AssetKey([*SITE_PREFIX, name])


def keys(items) -> list:
    """deps with table names turned into this site's keys (asset definitions kept)."""
    return [key(item) if isinstance(item, str) else item for item in items]
