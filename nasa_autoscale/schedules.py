"""Running it for real: the daily ingest schedule, the landing-folder sensor and the refresh that
follows every successful ingest. They need the Dagster daemon (`make dev` runs it)."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg

from nasa_autoscale.ingest.landing import days_from_name, days_in_file, landing_files
from nasa_autoscale.ingest.logfiles import LogFileError
from nasa_autoscale.partitions import daily_partitions
from nasa_autoscale.resources import SettingsResource


def site_zone(settings) -> dt.tzinfo | None:
    """The site's zone: NASA_TIMEZONE when set, else the one its warehouse recorded at the
    first ingest (None before any: nothing to schedule yet)."""
    from nasa_autoscale import warehouse
    from nasa_autoscale.ingest.sitezone import AUTO, SiteZone, recorded_zone

    if settings.timezone != AUTO:
        return SiteZone.parse(settings.timezone).tzinfo()
    if not settings.duckdb_path.exists():
        return None
    try:
        with warehouse.reading(settings.duckdb_path) as con:
            return recorded_zone(con).tzinfo()
    except warehouse.WarehouseError:  # being written: the next hour's tick decides
        return None


def day_to_ingest(now: dt.datetime, zone: dt.tzinfo) -> tuple[dt.date | None, dt.datetime]:
    """(the site's day before, when `now` falls in its hour 0, else None; `now` in the site's
    zone). A naive `now` is UTC."""
    now = now.replace(tzinfo=dt.UTC) if now.tzinfo is None else now
    local = now.astimezone(zone)
    return ((local - dt.timedelta(days=1)).date() if local.hour == 0 else None), local


def daily_ingest_schedule(ingest_job: dg.UnresolvedAssetJobDefinition) -> dg.ScheduleDefinition:
    """In the first hour after midnight in the site's zone, ingest the day before: its log is
    complete by then. The schedule ticks every hour at :30 and acts on the tick that falls in
    the site's hour 0 (NASA_TIMEZONE, or the zone the warehouse recorded), so a site west or
    east of UTC, on a part-hour offset or under daylight saving, ingests its own day, whole."""

    @dg.schedule(
        job=ingest_job,
        cron_schedule="30 * * * *",
        name="daily_ingest",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_ingest(context: dg.ScheduleEvaluationContext, settings: SettingsResource):
        zone = site_zone(settings.get())
        if zone is None:
            return dg.SkipReason("the site's zone is not known yet: ingest a day first")
        day, local = day_to_ingest(context.scheduled_execution_time, zone)
        if day is None:
            return dg.SkipReason(f"{local:%H:%M} in the site's zone: the ingest runs at hour 0")
        day = day.isoformat()
        if day not in daily_partitions.get_partition_keys():
            return dg.SkipReason(
                f"{day} is outside the partitions (NASA_START_DATE .. "
                f"NASA_END_DATE); extend NASA_END_DATE to ingest it"
            )
        return dg.RunRequest(run_key=f"daily_{day}", partition_key=day)

    return daily_ingest


def weekly_benchmark_schedule(benchmark_job) -> dg.ScheduleDefinition:
    """Sundays at 03:00: the benchmark (every model and protocol, the policy sweep), which picks
    the model and the policy the daily refresh then deploys."""
    return dg.ScheduleDefinition(
        name="weekly_benchmark",
        job=benchmark_job,
        cron_schedule="0 3 * * 0",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )


def landing_sensor(ingest_job: dg.UnresolvedAssetJobDefinition) -> dg.SensorDefinition:
    """A new or changed file in the landing folder (NASA_LANDING_DIR, default data/landing)
    triggers the ingest of each day it holds; the refresh sensor then rebuilds what follows."""

    @dg.sensor(
        job=ingest_job,
        name="new_log_files",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def new_log_files(context: dg.SensorEvaluationContext, settings: SettingsResource):
        folder = settings.get().landing_dir
        seen = json.loads(context.cursor) if context.cursor else {}
        known_days = set(daily_partitions.get_partition_keys())
        requests, notes = [], []
        for path in landing_files(folder):
            stat = path.stat()
            signature = f"{stat.st_size}:{stat.st_mtime_ns}"
            if seen.get(path.name) == signature:
                continue
            try:
                days = days_in_file(path) or days_from_name(path.name)
            except LogFileError as error:  # still being written, or corrupt: the ingest says so
                days = days_from_name(path.name)
                notes.append(f"{path.name}: {error}")
            for day in (d.isoformat() for d in days):
                if day in known_days:
                    requests.append(
                        dg.RunRequest(
                            run_key=f"{path.name}:{signature}:{day}",
                            partition_key=day,
                            tags={"nasa/landing_file": path.name},
                        )
                    )
                else:
                    notes.append(f"{path.name}: {day} is outside the partitions")
            seen[path.name] = signature
        context.update_cursor(json.dumps(seen))
        for note in notes:
            context.log.warning(note)
        if not requests:
            return dg.SkipReason(
                f"no new log files in {folder}" + (f" ({'; '.join(notes)})" if notes else "")
            )
        return requests

    return new_log_files


def refresh_sensor(ingest_job, refresh_job, forecast_job) -> dg.SensorDefinition:
    """After every successful ingest run, refresh what depends on the traffic tables (the daily
    refresh: features, anomalies, the next day's forecast, the recommendation); the benchmark
    runs weekly (weekly_benchmark) or on demand. And, for the ingested day (the last of a
    range), the daily forecast job: the next day's forecast and the day's score."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        monitored_jobs=[ingest_job],
        request_jobs=[refresh_job, forecast_job],
        name="refresh_after_ingest",
        default_status=dg.DefaultSensorStatus.STOPPED,
    )
    def refresh_after_ingest(context: dg.RunStatusSensorContext):
        run = context.dagster_run
        tags = run.tags
        day = tags.get("dagster/partition") or tags.get("dagster/asset_partition_range_end")
        requests = [dg.RunRequest(run_key=f"refresh_after_{run.run_id}", job_name=refresh_job.name)]
        if day:
            requests.append(
                dg.RunRequest(
                    run_key=f"forecast_after_{run.run_id}",
                    job_name=forecast_job.name,
                    partition_key=day,
                )
            )
        return requests

    return refresh_after_ingest
