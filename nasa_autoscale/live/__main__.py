"""Follow each site's log folder as it grows (make live).

    python -m nasa_autoscale.live [--interval 5] [--polls N]

Every `--interval` seconds each site's follower (NASA_RAW_DIR, or every site of
NASA_SITES_PATH) reads the new complete lines of its logs into its store beside the warehouse
(`<warehouse>.live.duckdb`) and moves its watermark; then each site's live planner
(live/planner.py) decides every fleet's buckets the watermark closed, from the model and the
policy the last benchmark selected (it waits, saying why, until `make run` has made them, and
reloads them when the daily path rewrites the warehouse). One line is printed per poll that read
something and per decision. `--polls N` stops after N polls (tests); otherwise it runs until
stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

import duckdb

from nasa_autoscale.live.follower import Follower, FollowerError
from nasa_autoscale.live.planner import LivePlanner, PlannerError
from nasa_autoscale.settings import Settings, SettingsError


def followers(settings: Settings) -> dict[str, Follower]:
    """One follower per site."""
    return {
        name: Follower(
            site.raw_dir,
            site.live_store,
            timezone=site.timezone,
            log_format=site.log_format,
        )
        for name, site in settings.all_sites().items()
    }


class SitePlanner:
    """A site's planner, started when the warehouse has what it needs (retried every
    RETRY_S until then) and reloaded when the daily path rewrote the warehouse."""

    RETRY_S = 60.0

    def __init__(self, name: str, settings: Settings):
        self.name, self.settings = name, settings
        self.planner: LivePlanner | None = None
        self.tried_at = -self.RETRY_S

    def plan(self) -> list[dict]:
        if self.planner is None:
            if time.monotonic() - self.tried_at < self.RETRY_S:
                return []
            self.tried_at = time.monotonic()
            try:
                fleets = {name: fleet.rules for name, fleet in self.settings.fleets().items()}
                self.planner = LivePlanner(
                    self.settings.duckdb_path, self.settings.live_store, fleets
                )
            except PlannerError as error:
                print(f"[{self.name}] not planning yet: {error}", file=sys.stderr, flush=True)
                return []
        try:
            self.planner.reload_if_changed()
            return self.planner.plan()
        except (PlannerError, duckdb.Error) as error:  # busy or changing: the next poll
            print(f"[{self.name}] planner: {error}", file=sys.stderr, flush=True)
            return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nasa_autoscale.live", description=__doc__)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--polls", type=int, default=0, help="stop after this many (0: never)")
    args = parser.parse_args(argv)
    if not 0.05 <= args.interval <= 3600:
        print("error: --interval must be within 0.05..3600 seconds", file=sys.stderr)
        return 2
    try:
        settings = Settings.from_env()
        sites = followers(settings)
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    planners = {name: SitePlanner(name, site) for name, site in settings.all_sites().items()}
    for name, follower in sites.items():
        print(f"following {follower.raw_dir} into {follower.store} (site {name})", flush=True)
    done = 0
    try:
        while True:
            for name, follower in sites.items():
                try:
                    result = follower.poll()
                except FollowerError as error:  # the store is busy or gone: the next poll
                    print(f"[{name}] {error}", file=sys.stderr, flush=True)
                    continue
                if result.lines:
                    mark = result.watermark.isoformat() if result.watermark else "none"
                    print(
                        f"[{dt.datetime.now():%H:%M:%S}] {name}: {result.lines:,} lines "
                        f"({result.requests:,} requests) from {', '.join(result.files_read)}, "
                        f"{result.bytes_read:,} bytes in {result.seconds:.2f} s; "
                        f"complete through {mark} UTC",
                        flush=True,
                    )
                for decision in planners[name].plan():
                    print(
                        f"[{dt.datetime.now():%H:%M:%S}] {name}: {decision['fleet']} at "
                        f"{decision['origin']:%Y-%m-%d %H:%M}: {decision['provisioned']} servers "
                        f"(recommended {decision['recommended']})",
                        flush=True,
                    )
            done += 1
            if args.polls and done >= args.polls:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
