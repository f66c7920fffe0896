"""Named formats beyond the Common Log Format family (NASA_LOG_FORMAT=<name>), each a few lines:
a pattern and its fields (definition.py). The Common, Combined and vhost Combined formats keep
their own fast path in parse.py."""

from __future__ import annotations

from nasa_autoscale.ingest.formats.definition import LogFormat
from nasa_autoscale.ingest.formats.jsonlines import CADDY, JsonFormat
from nasa_autoscale.ingest.formats.template import parse_template
from nasa_autoscale.ingest.formats.w3c import W3CFormat

_HAPROXY_TIME = r"(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d\.\d{3})"

_ISO_SHAPE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z"
_ISO = f"({_ISO_SHAPE})"
_CLF_TIME = r"\[(\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4})\]"

PRESETS: dict[str, LogFormat | W3CFormat | JsonFormat] = {
    # Caddy's JSON access log (jsonlines.py)
    "caddy": CADDY,
    # W3C extended / IIS: the fields of each #Fields header (w3c.py)
    "w3c": W3CFormat(),
    "iis": W3CFormat("iis"),
    # HAProxy `option httplog`, bare or after a syslog prefix ("Feb 25 16:19:49 host haproxy[7]:
    # "): client:port [accept date] frontend backend/server Tq/Tw/Tc/Tr/Tt status bytes cookies
    # termination conns queues {captured headers} "request". The accept date has no offset: the
    # site's zone. Tt (the total time, ms) is the duration.
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
        template=parse_template(
            "$host:$client_port [$time_local_ms] $frontend $backend "
            "$tq_ms/$tw_ms/$tc_ms/$tr_ms/$duration_ms $status $bytes $_ $_ $termination_state "
            '$connections $queues "$request"'
        ),
        fast_prefix=r"^[^\[]*\[\d+\]: ",  # syslog: "Feb 25 16:19:49 host haproxy[7]: "
        plain_shapes=(("bytes", r"\d+"),),
    ),
    # AWS Application Load Balancer: type time elb client:port target:port three processing
    # times (s) elb_status target_status received sent "request" "agent" cipher protocol
    # target_group "trace" "domain" ... (the rest, which grows with new releases, in extra)
    "aws_alb": LogFormat(
        "aws_alb",
        r"^(\S+) " + _ISO + r" (\S+) (\S+?):(\d+) (\S+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) "
        r"(\d{3}) (\S+) (\d+) (\d+) \"(.*?)\" \"(.*?)\" (\S+) (\S+) (\S+) \"(.*?)\" "
        r"\"(.*?)\"(?: (.*))?$",
        (
            "type",
            "time_iso",
            "elb",
            "host",
            "client_port",
            "target",
            "request_processing_s",
            "duration_s",  # target_processing_time: the backend's work
            "response_processing_s",
            "status",
            "target_status",
            "received_bytes",
            "bytes",
            "request",
            "user_agent",
            "ssl_cipher",
            "ssl_protocol",
            "target_group",
            "trace_id",
            "vhost",
            "rest",
        ),
        description="AWS Application Load Balancer access log",
        template=parse_template(
            "$type $time_iso $elb $host:$client_port $target $request_processing_s $duration_s "
            "$response_processing_s $status $target_status $received_bytes $bytes "
            '"$request" "$user_agent" $ssl_cipher $ssl_protocol $target_group "$trace_id" '
            '"$vhost" $rest'
        ),
        plain_shapes=(("bytes", r"\d+"), ("time_iso", _ISO_SHAPE)),
        origin_in_url=True,
    ),
    # AWS Classic Load Balancer (ELB): time elb client:port backend:port three times (s)
    # elb_status backend_status received sent "request" "agent" cipher protocol
    "aws_elb": LogFormat(
        "aws_elb",
        r"^" + _ISO + r" (\S+) (\S+?):(\d+) (\S+) (-?[\d.]+) (-?[\d.]+) (-?[\d.]+) (\d{3}) "
        r"(\S+) (\d+) (\d+) \"(.*?)\" \"(.*?)\" (\S+) (\S+)\s*$",
        (
            "time_iso",
            "elb",
            "host",
            "client_port",
            "backend",
            "request_processing_s",
            "duration_s",  # backend_processing_time
            "response_processing_s",
            "status",
            "backend_status",
            "received_bytes",
            "bytes",
            "request",
            "user_agent",
            "ssl_cipher",
            "ssl_protocol",
        ),
        description="AWS Classic Load Balancer access log",
        template=parse_template(
            "$time_iso $elb $host:$client_port $backend $request_processing_s $duration_s "
            "$response_processing_s $status $backend_status $received_bytes $bytes "
            '"$request" "$user_agent" $ssl_cipher $ssl_protocol'
        ),
        plain_shapes=(("bytes", r"\d+"), ("time_iso", _ISO_SHAPE)),
        origin_in_url=True,
    ),
    # AWS S3 server access log: owner bucket [time] remote requester request_id operation key
    # "request" status error bytes object_size total_ms turnaround_ms "referer" "agent" ...
    "aws_s3": LogFormat(
        "aws_s3",
        r"^(\S+) (\S+) " + _CLF_TIME + r" (\S+) (\S+) (\S+) (\S+) (\S+) \"(.*?)\" "
        r"(\d{3}) (\S+) (\d+|-) (\S+) (\S+) (\S+) \"(.*?)\" \"(.*?)\"(?: (.*))?$",
        (
            "bucket_owner",
            "vhost",
            "time_clf",
            "host",
            "requester",
            "request_id",
            "operation",
            "key",
            "request",
            "status",
            "error_code",
            "bytes",
            "object_size",
            "duration_ms",
            "turn_around_ms",
            "referer",
            "user_agent",
            "rest",
        ),
        description="AWS S3 server access log",
        template=parse_template(
            "$bucket_owner $vhost [$time_clf] $host $requester $request_id $operation $key "
            '"$request" $status $error_code $bytes $object_size $duration_ms $turn_around_ms '
            '"$referer" "$user_agent" $rest'
        ),
        plain_shapes=(("duration_ms", r"[^ \"\\]+"), ("turn_around_ms", r"[^ \"\\]+")),
    ),
    # Squid native: epoch.ms elapsed_ms client result/status bytes method url user
    # hierarchy/peer type
    "squid": LogFormat(
        "squid",
        r"^(\d+\.\d+)\s+(\d+) (\S+) (\S+)/(\d{3}) (\d+) (\S+) (\S+) (\S+) (\S+) (\S+)\s*$",
        (
            "msec",
            "duration_ms",
            "host",
            "result_code",
            "status",
            "bytes",
            "method",
            "url",
            "user",
            "hierarchy",
            "content_type",
        ),
        description="Squid native access log",
    ),
    # Traefik's CLF: combined, then requests since start, "router", "server URL", duration ms
    "traefik": LogFormat(
        "traefik",
        r"^(\S+) \S+ (\S+) " + _CLF_TIME + r" \"(.*?)\" (\d{3}) (\d+|-) \"(.*?)\" "
        r"\"(.*?)\" (\d+) \"(.*?)\" \"(.*?)\" (\d+)ms\s*$",
        (
            "host",
            "user",
            "time_clf",
            "request",
            "status",
            "bytes",
            "referer",
            "user_agent",
            "request_count",
            "router",
            "server_url",
            "duration_ms",
        ),
        description="Traefik access log (common format)",
        template=parse_template(
            '$host $_ $user [$time_clf] "$request" $status $bytes "$referer" "$user_agent" '
            '$request_count "$router" "$server_url" ${duration_ms}ms'
        ),
        plain_shapes=(("request_count", r"\d+"),),
    ),
    # Google Cloud Storage usage logs: CSV, every value quoted, a header line first
    "gcs": LogFormat(
        "gcs",
        r'^"(\d+)","([^"]*)","[^"]*","[^"]*","([^"]*)","([^"]*)","(\d{3})","(\d*)","(\d*)",'
        r'"(\d*)","([^"]*)","((?:[^"]|"")*)","((?:[^"]|"")*)","([^"]*)","([^"]*)",'
        r'"([^"]*)","([^"]*)"\s*$',
        (
            "usec",
            "host",
            "method",
            "url",
            "status",
            "bytes_received",
            "bytes",
            "duration_us",
            "vhost",
            "referer",
            "user_agent",
            "request_id",
            "operation",
            "bucket",
            "object",
        ),
        description="Google Cloud Storage usage log (CSV)",
        unescape="csv",
        header_prefix=b'"time_micros"',
    ),
    # CloudFront standard logs: W3C with tab-separated values and its own #Fields
    "cloudfront": W3CFormat(
        "cloudfront",
        "CloudFront standard log (W3C, tab-separated)",
        percent_encoded=True,
        time_taken_ms=1000.0,
    ),
}
