"""Named formats beyond the Common Log Format family (NASA_LOG_FORMAT=<name>), each a few lines:
a pattern and its fields (definition.py). The Common, Combined and vhost Combined formats keep
their own fast path in parse.py."""

from __future__ import annotations

from nasa_autoscale.ingest.formats.definition import LogFormat
from nasa_autoscale.ingest.formats.jsonlines import CADDY, JsonFormat
from nasa_autoscale.ingest.formats.w3c import W3CFormat

_HAPROXY_TIME = r"(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3})"

PRESETS: dict[str, LogFormat | W3CFormat | JsonFormat] = {
    # Caddy's JSON access log (jsonlines.py)
    "caddy": CADDY,
    # W3C extended / IIS: the fields of each #Fields header (w3c.py)
    "w3c": W3CFormat(),
    "iis": W3CFormat("iis"),
    # HAProxy `option httplog`, bare or after a syslog prefix ("Feb 25 16:19:49 host haproxy[7]:
    # "): client:port [accept date] frontend backend/server Tq/Tw/Tc/Tr/Tt status bytes cookies
    # termination conns queues {captured headers} "request". The accept date has no offset: the
    # site's zone. Tt (the total time, ms) goes to extra.
    "haproxy": LogFormat(
        "haproxy",
        r"^(?:.*?: )?(\S+?):(\d+) \[" + _HAPROXY_TIME + r"\] (\S+) (\S+) "
        r"(-?\d+)/(-?\d+)/(-?\d+)/(-?\d+)/\+?(-?\d+) (\d{3}) \+?(\d+) \S+ \S+ (\S+) "
        r"(\S+) (\S+)(?: \{(.*?)\})?(?: \{(.*?)\})? \"(.*)\"\s*$",
        (
            "host",
            "client_port",
            "time_local_ms",
            "frontend",
            "backend",
            "tq_ms",
            "tw_ms",
            "tc_ms",
            "tr_ms",
            "duration_ms",
            "status",
            "bytes",
            "termination_state",
            "connections",
            "queues",
            "request_headers",
            "response_headers",
            "request",
        ),
        description="HAProxy option httplog (bare or in syslog)",
    ),
}
