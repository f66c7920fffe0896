"""Start the API: loopback unless told otherwise, and beyond loopback only with API keys.

    python -m nasa_autoscale.api [--host 127.0.0.1] [--port 8000]     (make api)

NASA_API_HOST and NASA_API_PORT give the defaults; NASA_API_KEYS the keys (api/auth.py).
"""

from __future__ import annotations

import argparse
import os
import sys

from nasa_autoscale.api.auth import KEYS_VARIABLE, MAX_HEADER_BYTES, api_keys_from_env, is_loopback
from nasa_autoscale.settings import SettingsError


def port_number(value: str, name: str = "--port") -> int:
    """A TCP port, 1..65535; SettingsError naming `name` otherwise."""
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}={value!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"{name}={value!r} is not a port number (1-65535)")
    return port


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nasa_autoscale.api", description=__doc__)
    parser.add_argument("--host", default=os.environ.get("NASA_API_HOST", "127.0.0.1"))
    parser.add_argument("--port", default=None, help="default NASA_API_PORT, else 8000")
    args = parser.parse_args(argv)
    try:
        if args.port is None:
            port = port_number(os.environ.get("NASA_API_PORT", "8000"), "NASA_API_PORT")
        else:
            port = port_number(args.port)
        keys = api_keys_from_env()
    except SettingsError as error:
        print(f"refusing to start: {error}", file=sys.stderr)
        return 2
    if not keys and not is_loopback(args.host):
        print(
            f"refusing to start on {args.host}: beyond loopback the API needs {KEYS_VARIABLE} "
            "(comma-separated keys of at least 16 characters)",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from nasa_autoscale.api.app import create_app

    print(
        f"nasa_autoscale API on http://{args.host}:{port} "
        f"({'API keys required' if keys else 'loopback only, no keys'})",
        file=sys.stderr,
    )
    uvicorn.run(
        create_app(),
        host=args.host,
        port=port,
        log_level="warning",
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,  # headers past it: refused by h11
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
