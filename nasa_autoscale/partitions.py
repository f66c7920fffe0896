"""Daily partitions in the site's local time; the range defaults to the NASA trace.

NASA_START_DATE and NASA_END_DATE (inclusive, YYYY-MM-DD) set it for other logs; without an end
date, a user's partitions run to today (today's included, as its log is being written).
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


daily_partitions = daily_partitions_for(current())
