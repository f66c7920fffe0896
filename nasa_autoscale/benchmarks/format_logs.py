"""The NASA trace (or any Common Log Format files) rendered in every other format the ingest
reads, to check that each gives the same 5-minute counts as the Common Log Format run and to
time each parser side by side (`make bench-ingest` reports lines per second per format).

    python -m nasa_autoscale.benchmarks.format_logs OUT_DIR [--source DIR] [--lines N]

Each request becomes one line of the target format with its instant, client, request, status
and bytes (other fields are fixed or derived: a port, a processing time, an agent); a bytes of
'-' becomes 0 where the format has no '-'. Lines the Common Log Format rejects are left out
(they are no request in any format). Times are written as each format writes them: UTC for
W3C, ALB, S3, Squid and Caddy; the site's offset for the CLF-like ones; site-local without an
offset for HAProxy (read back with the same zone).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.logfiles import Lines, index_lines, read_lines
from nasa_autoscale.ingest.parse import drop_parsed, parse_batch, parse_lines
from nasa_autoscale.ingest.sitezone import SiteZone

NGINX_TIMED = (
    'log_format timed \'$remote_addr - $remote_user [$time_local] "$request" $status '
    '$body_bytes_sent "$http_referer" "$http_user_agent" $request_time\';'
)
APACHE_TIMED = r'LogFormat "%h %l %u %t \"%r\" %>s %b %D" timed'
NGINX_JSON = (
    'log_format json escape=json \'{"time":"$time_iso8601","addr":"$remote_addr",'
    '"request":"$request","status":$status,"bytes":$body_bytes_sent}\';'
)
_REQ = "coalesce(request, method || ' ' || url || coalesce(' ' || protocol, ''))"
_BYTES = "coalesce(CAST(bytes AS VARCHAR), '0')"
_CLF_TIME = "strftime(ts, '%d/%b/%Y:%H:%M:%S ') || '{offset}'"
_URL = "replace(coalesce(url, '/'), ' ', '%20')"
_METHOD = "coalesce(method, 'GET')"
# format -> (NASA_LOG_FORMAT value, SQL of one line from a parsed requests row, header lines)
RENDERERS = {
    "nginx_timed": (
        NGINX_TIMED,
        f"host || ' - - [' || {_CLF_TIME} || '] \"' || {_REQ} || '\" ' || status || ' ' || "
        f'{_BYTES} || \' "-" "Mozilla/5.0" 0.0\' || (line_number % 10)',
        [],
    ),
    "apache_timed": (
        APACHE_TIMED,
        f"host || ' - - [' || {_CLF_TIME} || '] \"' || {_REQ} || '\" ' || status || ' ' || "
        f"coalesce(CAST(bytes AS VARCHAR), '-') || ' ' || (line_number % 997)",
        [],
    ),
    "nginx_json": (
        NGINX_JSON,
        "to_json({'time': strftime(ts_utc, '%Y-%m-%dT%H:%M:%SZ'), 'addr': host, "
        f"'request': {_REQ}, 'status': status, 'bytes': coalesce(bytes, 0)}})",
        [],
    ),
    "caddy": (
        "caddy",
        "to_json({'level': 'info', 'ts': epoch(ts_utc), 'logger': 'http.log.access', "
        "'request': {'client_ip': host, 'proto': coalesce(protocol, 'HTTP/1.0'), "
        f"'method': {_METHOD}, 'host': 'www.example', 'uri': coalesce(url, '/')}}, "
        "'duration': 0.001, 'size': coalesce(bytes, 0), 'status': status})",
        [],
    ),
    "w3c": (
        "w3c",
        f"strftime(ts_utc, '%Y-%m-%d %H:%M:%S') || ' ' || host || ' ' || {_METHOD} || ' ' || "
        f"{_URL} || ' ' || status || ' ' || {_BYTES} || ' ' || (line_number % 50)",
        [
            "#Software: nasa_autoscale format_logs",
            "#Fields: date time c-ip cs-method cs-uri-stem sc-status sc-bytes time-taken",
        ],
    ),
    "haproxy": (
        "haproxy",
        "host || ':' || (1024 + line_number % 60000) || ' [' || "
        "strftime(ts, '%d/%b/%Y:%H:%M:%S') || '.000] www~ app/srv1 0/0/1/2/3 ' || status || "
        f"' ' || {_BYTES} || ' - - ---- 1/1/0/0/0 0/0 \"' || {_REQ} || '\"'",
        [],
    ),
    "aws_alb": (
        "aws_alb",
        "'http ' || strftime(ts_utc, '%Y-%m-%dT%H:%M:%S.000000Z') || ' app/web/1 ' || host || "
        "':2817 10.0.0.1:80 0.000 0.001 0.000 ' || status || ' ' || status || ' 0 ' || "
        f'{_BYTES} || \' "\' || {_REQ} || \'" "-" - - arn:aws:tg "Root=1" "-" "-"\'',
        [],
    ),
    "squid": (
        "squid",
        "CAST(epoch(ts_utc) AS BIGINT) || '.000 5 ' || host || ' TCP_MISS/' || status || ' ' || "
        f"{_BYTES} || ' ' || {_METHOD} || ' ' || {_URL} || ' - HIER_NONE/- -'",
        [],
    ),
    "traefik": (
        "traefik",
        f"host || ' - - [' || {_CLF_TIME} || '] \"' || {_REQ} || '\" ' || status || ' ' || "
        f"coalesce(CAST(bytes AS VARCHAR), '-') || ' \"-\" \"-\" ' || line_number || "
        "' \"web@file\" \"http://10.0.0.1\" ' || (line_number % 9) || 'ms'",
        [],
    ),
}


def render(con, requests_table: str, name: str, zone: SiteZone) -> bytes:
    """The rows of a parsed requests table as one file of format `name`."""
    spec, sql, header = RENDERERS[name]
    sql = sql.replace("{offset}", zone.name)
    rows = con.execute(f"SELECT {sql} FROM {requests_table} ORDER BY file, line_number").fetchall()
    text = "\n".join([*header, *(line for (line,) in rows)]) + "\n"
    return text.encode("utf-8")


def counts_5m(con, table: str) -> dict:
    """Requests per 5-minute UTC bucket of a parsed requests table."""
    return dict(
        con.execute(
            f"SELECT time_bucket(INTERVAL 5 MINUTE, ts_utc) AS bucket, count(*) FROM {table} "
            "GROUP BY 1"
        ).fetchall()
    )


def compare_formats(lines: Lines, zone: SiteZone, repeat: int = 1) -> list[dict]:
    """Per format: lines, requests, whether the 5-minute counts equal the Common Log Format
    run's, and the parse rate (best of `repeat`, lines per second), CLF first."""
    con = duckdb.connect()
    source = parse_lines(con, lines, "clf", zone, "common")
    reference = counts_5m(con, source.requests_table)

    def timed(data_lines: Lines, spec: str, label: str) -> tuple[float, object]:
        best, parsed = float("inf"), None
        for _ in range(repeat):
            if parsed is not None:
                drop_parsed(con, parsed)
            started = time.perf_counter()
            parsed = parse_batch(con, [data_lines], label, zone, spec)
            con.execute(f"SELECT count(*) FROM {parsed.requests_table}").fetchall()
            best = min(best, time.perf_counter() - started)
        return best, parsed

    seconds, _ = timed(lines, "common", "clf_again")
    rows = [
        {
            "format": "common",
            "lines": len(lines),
            "requests": source.n_requests,
            "same_5m_counts": True,
            "lines_per_second": len(lines) / seconds,
            "mb_per_second": len(lines.data) / seconds / 1e6,
        }
    ]
    for name, (spec, _, _) in RENDERERS.items():
        data = index_lines(render(con, source.requests_table, name, zone))
        seconds, parsed = timed(data, spec, f"f_{name}")
        rows.append(
            {
                "format": name,
                "lines": len(data),
                "requests": parsed.n_requests,
                "same_5m_counts": counts_5m(con, parsed.requests_table) == reference,
                "lines_per_second": len(data) / seconds,
                "mb_per_second": len(data.data) / seconds / 1e6,
            }
        )
        drop_parsed(con, parsed)
    base = rows[0]["lines_per_second"]
    for row in rows:
        row["rate_vs_common"] = row["lines_per_second"] / base
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="where each rendered file is written")
    parser.add_argument("--source", type=Path, help="a CLF file (default: the NASA July log)")
    parser.add_argument("--zone", default="-0400")
    args = parser.parse_args(argv)
    source = args.source
    if source is None:
        from nasa_autoscale.ingest.download import locate_logs
        from nasa_autoscale.settings import Settings

        source = locate_logs(Settings.from_env(), fetch=True).files[0]
    zone = SiteZone.parse(args.zone)
    con = duckdb.connect()
    parsed = parse_lines(con, read_lines(source), "clf", zone, "common")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for name in RENDERERS:
        path = args.out_dir / f"{source.name}.{name}.log"
        path.write_bytes(render(con, parsed.requests_table, name, zone))
        print(f"wrote {path} (NASA_LOG_FORMAT={RENDERERS[name][0]!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
