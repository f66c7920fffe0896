"""The live path in Dagster: the sensor reports the follower's work as observations and the
watermark's freshness as a check evaluation, and stays silent while nothing moved."""

from __future__ import annotations

import dataclasses
import datetime as dt

import dagster as dg

from nasa_autoscale.assets.live import FRESH, live_follower, watermark_is_fresh
from nasa_autoscale.live.follower import Follower
from nasa_autoscale.resources import SettingsResource
from nasa_autoscale.settings import Settings


def _resource(tmp_path) -> SettingsResource:
    settings = dataclasses.replace(
        Settings.from_env(), duckdb_path=tmp_path / "shop.duckdb", stale_after_s=900.0
    )
    return SettingsResource.from_settings(settings)


def _tick(resource, cursor=None):
    context = dg.build_sensor_context(cursor=cursor, resources={"settings": resource})
    return live_follower(context), context


def _write(folder, minutes_ago: list[int]) -> dt.datetime:
    """Lines of a UTC site (not NASA's format: ISO-like combined lines) at those minutes ago."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    lines = [
        f"192.0.2.{i} - - [{now - dt.timedelta(minutes=m):%d/%b/%Y:%H:%M:%S} +0000] "
        f'"GET /a/{i} HTTP/2.0" 200 {i + 1} "-" "k6/0.5"\n'
        for i, m in enumerate(minutes_ago)
    ]
    folder.mkdir(exist_ok=True)
    with open(folder / "access.log", "a") as stream:
        stream.writelines(lines)
    return now


def test_no_follower_is_a_failed_freshness_check(tmp_path):
    result, _ = _tick(_resource(tmp_path))
    (evaluation,) = result.asset_events
    assert evaluation.check_name == FRESH and not evaluation.passed
    assert "make live" in evaluation.metadata["why"].value


def test_the_sensor_reports_the_followers_work_once_and_then_its_staleness(tmp_path):
    resource = _resource(tmp_path)
    store = tmp_path / "shop.live.duckdb"
    now = _write(tmp_path / "logs", [3, 2, 1, 0])
    Follower(tmp_path / "logs", store, timezone="UTC").poll(now=now)
    result, context = _tick(resource)
    check, requests = result.asset_events[:2]
    assert check.passed
    assert requests.metadata["requests_taken"].value == 4
    again, _ = _tick(resource, context.cursor)
    assert isinstance(again, dg.SkipReason)  # nothing moved: no events
    assert watermark_is_fresh(settings=resource).passed


def test_a_follower_whose_data_stopped_two_hours_ago_fails_the_check(tmp_path):
    resource = _resource(tmp_path)
    now = _write(tmp_path / "logs", [125, 121, 120])
    Follower(tmp_path / "logs", tmp_path / "shop.live.duckdb", timezone="UTC").poll(
        now=now - dt.timedelta(minutes=119)
    )
    result, _ = _tick(resource)
    assert not result.asset_events[0].passed
    assert result.asset_events[0].metadata["age_s"].value > 900
    assert not watermark_is_fresh(settings=resource).passed
