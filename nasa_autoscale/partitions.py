"""Daily partitions in server local time; the range defaults to the NASA trace.

NASA_START_DATE and NASA_END_DATE (inclusive, YYYY-MM-DD) set it for other logs.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from nasa_autoscale.settings import Settings


def daily_partitions_for(settings: Settings) -> dg.DailyPartitionsDefinition:
    end = dt.date.fromisoformat(settings.end_date) + dt.timedelta(days=1)  # Dagster's is exclusive
    return dg.DailyPartitionsDefinition(start_date=settings.start_date, end_date=end.isoformat())


def partition_days(context: dg.AssetExecutionContext) -> tuple[dt.date, dt.date]:
    """The first and last day (inclusive) of the run's partition or partition range."""
    window = context.partition_time_window
    return window.start.date(), (window.end - dt.timedelta(days=1)).date()


daily_partitions = daily_partitions_for(Settings.from_env())
