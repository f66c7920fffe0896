"""The AWS export: a plan's change points as BatchPutScheduledUpdateGroupAction inputs within
AWS's limits (50 a call, 125 a group, future UTC times), checked by botocore's own validation
and sent to moto's Auto Scaling mock."""

from __future__ import annotations

import datetime as dt
import json

import boto3
import moto
import numpy as np
import pandas as pd
import pytest

from nasa_autoscale.ingest.sitezone import SiteZone
from nasa_autoscale.scaling import aws
from nasa_autoscale.settings import Settings

NOW = dt.datetime(2026, 12, 2, 12, 0)
TOMORROW = dt.date(2026, 12, 3)


def plan_of(servers, start="2026-12-03 00:00", minutes=5):
    buckets = pd.date_range(start, periods=len(servers), freq=f"{minutes}min")
    return pd.DataFrame({"bucket_start": buckets, "servers": servers})


def test_only_change_points_become_actions_with_min_and_desired_the_plan():
    servers = [3] * 100 + [7] * 50 + [4] * 138
    actions, summary = aws.scheduled_actions(
        plan_of(servers), "web", 50, SiteZone.parse("UTC"), now_utc=NOW
    )
    assert [(a["MinSize"], a["DesiredCapacity"], a["MaxSize"]) for a in actions] == [
        (3, 3, 50),
        (7, 7, 50),
        (4, 4, 50),
    ]
    assert [a["StartTime"] for a in actions] == [
        dt.datetime(2026, 12, 3, h, m, tzinfo=dt.UTC) for h, m in ((0, 0), (8, 20), (12, 30))
    ]
    assert summary["actions"] == summary["plan_changes"] == 3


def test_a_busy_plan_is_merged_to_coarser_blocks_never_below_the_plan():
    rng = np.random.default_rng(0)
    servers = rng.integers(2, 30, 1440)  # a minute fleet changing every minute
    points, block = aws.change_points(servers)
    assert len(points) <= aws.MAX_ACTIONS_PER_GROUP and block > 1
    held = np.zeros(len(servers), int)
    for (start, count), (end, _) in zip(points, [*points[1:], (len(servers), 0)], strict=True):
        held[start:end] = count
    assert (held >= servers).all()  # the merged schedule covers every bucket's plan
    assert len(aws.change_points(servers, limit=10**6)[0]) > aws.MAX_ACTIONS_PER_GROUP


def test_times_are_utc_from_the_site_zone_and_past_plans_need_a_shift():
    plan = plan_of([2, 5], start="1995-08-31 23:55")
    with pytest.raises(aws.ExportError, match="--shift-to"):
        aws.scheduled_actions(plan, "web", 10, SiteZone.parse("-0400"), now_utc=NOW)
    actions, _ = aws.scheduled_actions(
        plan, "web", 10, SiteZone.parse("-0400"), shift_to=TOMORROW, now_utc=NOW
    )
    assert actions[0]["StartTime"] == dt.datetime(2026, 12, 4, 3, 55, tzinfo=dt.UTC)
    tehran, _ = aws.scheduled_actions(
        plan_of([2], start="2026-12-03 10:00"), "web", 10, SiteZone.parse("+0330"), now_utc=NOW
    )
    assert tehran[0]["StartTime"] == dt.datetime(2026, 12, 3, 6, 30, tzinfo=dt.UTC)
    york, _ = aws.scheduled_actions(
        plan_of([2], start="2027-07-01 09:00"),
        "w",
        10,
        SiteZone.parse("America/New_York"),
        now_utc=NOW,
    )
    assert york[0]["StartTime"].hour == 13  # EDT in July


def test_calls_hold_at_most_50_and_botocore_rejects_a_bad_one():
    servers = np.tile([2, 3], 60)  # 120 changes: three calls
    actions, _ = aws.scheduled_actions(
        plan_of(servers), "web", 10, SiteZone.parse("UTC"), now_utc=NOW
    )
    calls = aws.requests_for("web-asg", actions)
    assert [len(c["ScheduledUpdateGroupActions"]) for c in calls] == [50, 50, 20]
    aws.validate(calls)
    bad = json.loads(json.dumps(aws.as_json(calls[:1])))
    bad[0]["ScheduledUpdateGroupActions"][0]["MinSize"] = "two"
    with pytest.raises(aws.ExportError, match="MinSize"):
        aws.validate(bad)
    del bad[0]["AutoScalingGroupName"]
    with pytest.raises(aws.ExportError, match="AutoScalingGroupName"):
        aws.validate(bad)


def test_the_realistic_fleets_next_day_goes_to_moto_as_written(served_warehouse, tmp_path):
    fleets = Settings.from_env().fleets()
    out = tmp_path / "actions.json"
    summary = aws.export(served_warehouse, fleets, "realistic", "web-asg", out, TOMORROW, NOW)
    calls = json.loads(out.read_text())
    assert 0 < summary["actions"] <= aws.MAX_ACTIONS_PER_GROUP and len(calls) == summary["calls"]
    assert summary["first_utc"].startswith("2026-12-03")
    with moto.mock_aws():
        client = boto3.client("autoscaling", region_name="us-east-1")
        client.create_launch_configuration(
            LaunchConfigurationName="web", ImageId="ami-12c6146b", InstanceType="t3.small"
        )
        client.create_auto_scaling_group(
            AutoScalingGroupName="web-asg",
            LaunchConfigurationName="web",
            MinSize=2,
            MaxSize=50,
            AvailabilityZones=["us-east-1a"],
        )
        for call in calls:
            answer = client.batch_put_scheduled_update_group_action(**call)
            assert answer["FailedScheduledUpdateGroupActions"] == []
        stored = client.describe_scheduled_actions(AutoScalingGroupName="web-asg", MaxRecords=100)
        stored = stored["ScheduledUpdateGroupActions"]
    assert len(stored) == summary["actions"]
    first = min(stored, key=lambda action: action["StartTime"])
    sent = calls[0]["ScheduledUpdateGroupActions"][0]
    assert (first["MinSize"], first["DesiredCapacity"], first["MaxSize"]) == (
        sent["MinSize"],
        sent["DesiredCapacity"],
        50,
    )


def test_an_unknown_fleet_or_missing_warehouse_is_a_clear_error(served_warehouse, tmp_path):
    fleets = Settings.from_env().fleets()
    with pytest.raises(aws.ExportError, match="known: "):
        aws.export(served_warehouse, fleets, "nope", "g", tmp_path / "x.json", TOMORROW, NOW)
    assert aws.main(["--group", "g", "--fleet", "nope"]) == 2
