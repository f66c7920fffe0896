"""Follow each site's log folder as it grows (make live).

    python -m nasa_autoscale.live [--interval 5] [--polls N]

Every `--interval` seconds each site's follower (NASA_RAW_DIR, or every site of
NASA_SITES_PATH) reads the new complete lines of its logs into its store beside the warehouse
(`<warehouse>.live.duckdb`) and moves its watermark; one line is printed per poll that read
something. `--polls N` stops after N polls (tests); otherwise it runs until stopped.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time

from nasa_autoscale.live.follower import Follower, FollowerError
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nasa_autoscale.live", description=__doc__)
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between polls")
    parser.add_argument("--polls", type=int, default=0, help="stop after this many (0: never)")
    args = parser.parse_args(argv)
    if not 0.05 <= args.interval <= 3600:
        print("error: --interval must be within 0.05..3600 seconds", file=sys.stderr)
        return 2
    try:
        sites = followers(Settings.from_env())
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
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
            done += 1
            if args.polls and done >= args.polls:
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
