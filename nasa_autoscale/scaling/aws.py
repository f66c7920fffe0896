"""A fleet's provisioning plan as AWS EC2 Auto Scaling scheduled actions: the input of
`BatchPutScheduledUpdateGroupAction`, written to a file for the user to send (nothing here calls
AWS).

    python -m nasa_autoscale.scaling.aws --fleet realistic --group web-asg [--shift-to 2026-12-03]
    make aws-export FLEET=realistic GROUP=web-asg [SHIFT_TO=2026-12-03]

- Change points only: an action where the planned count changes (and one at the plan's start).
  A group holds at most 125 scheduled actions; a plan with more change points is coarsened:
  each block of 2, 3, 4, 6, 12 ... buckets takes the largest count planned inside it (never fewer
  servers than the plan), until the change points fit.
- Each action sets MinSize = DesiredCapacity = the planned count (AWS's own scaling policies may
  add servers above the plan, never go below it) and MaxSize = the fleet's max_servers.
- Times are UTC (AWS's rule), converted from the site's time with the zone the warehouse was
  ingested in. AWS takes only future times: a plan on past days (the NASA replica) is refused
  unless --shift-to moves its first day to a given day (a rehearsal on the real group).
- At most 50 actions a call: the file holds one request per call. Every request is checked
  with botocore's own parameter validation before the file is written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

MAX_ACTIONS_PER_GROUP = 125
MAX_ACTIONS_PER_CALL = 50
OPERATION = "BatchPutScheduledUpdateGroupAction"
BLOCKS = (1, 2, 3, 4, 6, 12, 24, 36, 48, 72, 144, 288)  # buckets merged, finest first


class ExportError(ValueError):
    """The plan cannot become valid scheduled actions; the message says why and what to do."""


def coarsen(servers: np.ndarray, block: int) -> np.ndarray:
    """Each block of `block` buckets at the largest count planned inside it."""
    padded = np.pad(servers, (0, -len(servers) % block), mode="edge").reshape(-1, block)
    return np.repeat(padded.max(axis=1), block)[: len(servers)]


def change_points(servers: np.ndarray, limit: int = MAX_ACTIONS_PER_GROUP) -> tuple[list, int]:
    """(indices where the count changes, the first one included; the block they were merged
    to), the finest block with at most `limit` of them."""
    for block in BLOCKS:
        merged = coarsen(servers, block)
        changes = [0, *np.flatnonzero(merged[1:] != merged[:-1]) + 1]
        if len(changes) <= limit:
            return [(int(i), int(merged[i])) for i in changes], block
    raise ExportError(f"no coarsening of the plan fits {limit} actions")  # 288 blocks: 1 action


def scheduled_actions(
    plan: pd.DataFrame,
    fleet: str,
    max_servers: int,
    zone,
    shift_to: dt.date | None = None,
    now_utc: dt.datetime | None = None,
    limit: int = MAX_ACTIONS_PER_GROUP,
) -> tuple[list[dict], dict]:
    """(the actions, a summary) for one fleet's plan rows (bucket_start in site time, servers);
    zone: the site's SiteZone."""
    if plan.empty:
        raise ExportError(f"no provisioning_plan rows for {fleet!r}: materialize provisioning_plan")
    plan = plan.sort_values("bucket_start")
    local = pd.DatetimeIndex(plan["bucket_start"])
    if shift_to is not None:
        local = local + (pd.Timestamp(shift_to) - local[0].normalize())
    tz = zone.tzinfo()
    utc = [
        t.to_pydatetime().replace(tzinfo=tz).astimezone(dt.UTC).replace(tzinfo=None) for t in local
    ]
    now_utc = now_utc or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if utc[0] <= now_utc:
        raise ExportError(
            f"the plan starts {local[0]:%Y-%m-%d %H:%M} site time ({utc[0]:%Y-%m-%d %H:%M} UTC), "
            f"not in the future: AWS takes only future times. Pass --shift-to YYYY-MM-DD to "
            "rehearse it on a later day"
        )
    servers = plan["servers"].to_numpy(np.int64)
    points, block = change_points(servers, limit)
    actions = [
        {
            "ScheduledActionName": f"nasa-autoscale-{fleet}-{utc[i]:%Y%m%dT%H%M}Z",
            "StartTime": utc[i].replace(tzinfo=dt.UTC),
            "MinSize": count,
            "MaxSize": int(max_servers),
            "DesiredCapacity": count,
        }
        for i, count in points
    ]
    step = local[1] - local[0] if len(local) > 1 else pd.Timedelta(minutes=5)
    summary = {
        "fleet": fleet,
        "buckets": len(plan),
        "plan_changes": int((servers[1:] != servers[:-1]).sum()) + 1,
        "actions": len(actions),
        "merged_to_minutes": block * step / pd.Timedelta(minutes=1),
        "first_utc": f"{utc[0]:%Y-%m-%dT%H:%MZ}",
        "shifted_to": None if shift_to is None else str(shift_to),
        "peak_servers": int(servers.max()),
    }
    return actions, summary


def requests_for(group: str, actions: list[dict]) -> list[dict]:
    """The calls' inputs: at most 50 actions each."""
    return [
        {"AutoScalingGroupName": group, "ScheduledUpdateGroupActions": actions[i : i + 50]}
        for i in range(0, len(actions), MAX_ACTIONS_PER_CALL)
    ]


def validate(requests: list[dict]) -> None:
    """botocore's own checks of each call's input (types, required members, lengths, ranges);
    ExportError listing what fails."""
    import botocore.session
    from botocore.validate import ParamValidator

    model = botocore.session.get_session().get_service_model("autoscaling")
    shape = model.operation_model(OPERATION).input_shape
    for number, request in enumerate(requests, 1):
        if len(request["ScheduledUpdateGroupActions"]) > MAX_ACTIONS_PER_CALL:
            raise ExportError(f"call {number} holds more than {MAX_ACTIONS_PER_CALL} actions")
        report = ParamValidator().validate(request, shape)
        if report.has_errors():
            raise ExportError(
                f"call {number} is not a valid {OPERATION}: {report.generate_report()}"
            )


def as_json(requests: list[dict]) -> list[dict]:
    """The requests with times as ISO 8601 UTC strings (what the AWS CLI's --cli-input-json and
    boto3 both take)."""
    return [
        {
            **request,
            "ScheduledUpdateGroupActions": [
                {**action, "StartTime": action["StartTime"].strftime("%Y-%m-%dT%H:%M:%SZ")}
                for action in request["ScheduledUpdateGroupActions"]
            ],
        }
        for request in requests
    ]


def export(
    duckdb_path: Path,
    fleets: dict,
    fleet: str,
    group: str,
    out: Path,
    shift_to: dt.date | None = None,
    now_utc: dt.datetime | None = None,
) -> dict:
    """Read the fleet's plan from the warehouse, build, validate and write the calls' inputs;
    the summary."""
    from nasa_autoscale import warehouse
    from nasa_autoscale.ingest.sitezone import recorded_zone

    if fleet not in fleets:
        raise ExportError(f"unknown fleet {fleet!r}; known: {', '.join(fleets)}")
    with warehouse.reading(duckdb_path) as con:
        plan = warehouse.read(
            con,
            f"SELECT bucket_start, servers FROM {warehouse.SCHEMA}.provisioning_plan "
            "WHERE setting = ? ORDER BY bucket_start",
            [fleet],
        )
        zone = recorded_zone(con)
    max_servers = fleets[fleet].rules.max_servers
    actions, summary = scheduled_actions(plan, fleet, max_servers, zone, shift_to, now_utc)
    requests = requests_for(group, actions)
    validate(requests)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(as_json(requests), indent=2) + "\n")
    return {**summary, "calls": len(requests), "group": group, "file": str(out)}


def main(argv: list[str] | None = None) -> int:
    from nasa_autoscale.settings import Settings, SettingsError

    parser = argparse.ArgumentParser(
        prog="python -m nasa_autoscale.scaling.aws", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--fleet", help="a fleet of the profiles (default: the API's default)")
    parser.add_argument("--group", required=True, help="the Auto Scaling group's name")
    parser.add_argument("--shift-to", type=dt.date.fromisoformat, help="move the plan to this day")
    parser.add_argument(
        "--out", type=Path, help="default reports/aws_scheduled_actions_<fleet>.json"
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        fleets = settings.fleets()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from nasa_autoscale.scaling.plan import plan_fleet
    from nasa_autoscale.warehouse import WarehouseError

    fleet = args.fleet or plan_fleet(fleets)
    out = args.out or settings.reports_dir / f"aws_scheduled_actions_{fleet}.json"
    try:
        summary = export(settings.duckdb_path, fleets, fleet, args.group, out, args.shift_to)
    except (ExportError, WarehouseError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{summary['actions']} scheduled actions in {summary['calls']} call(s) for "
        f"{args.group} ({fleet}: {summary['plan_changes']} changes in {summary['buckets']} "
        f"buckets, merged to {summary['merged_to_minutes']:g}-minute blocks), from "
        f"{summary['first_utc']}, validated with botocore -> {out}"
    )
    print(
        "send call 1 (and so on): jq '.[0]' FILE > call.json && aws autoscaling "
        "batch-put-scheduled-update-group-action --cli-input-json file://call.json; or boto3: "
        "for call in json.load(open(FILE)): client.batch_put_scheduled_update_group_action(**call)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
