"""Logs as a modern site writes them, made from Common Log Format files (the NASA trace):
nginx combined format, times in UTC, one gzip file per day named access.log-YYYYMMDD.gz and the
last day plain access.log. The requests, their instants and statuses are the source's; referer
and user agent are drawn from a short fixed list per client (deterministic). Lines that are not
requests are copied as they are.

    python -m nasa_autoscale.benchmarks.combined_logs OUT_DIR [--source DIR] [--zone +0000]

Used by `make bench-ingest` (the combined-format run) and to try the graph on logs that are not
NASA's. OUT_DIR must not hold other logs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import duckdb
from isal import igzip

from nasa_autoscale.ingest.logfiles import find_log_files, read_lines
from nasa_autoscale.ingest.parse import parse_lines
from nasa_autoscale.ingest.sitezone import SiteZone

AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.2 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
    "curl/8.5.0",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
]
REFERERS = ["-", "-", "https://www.google.com/", "https://example.org/links.html"]


def write_combined_logs(
    source_files: list[Path],
    out_dir: Path,
    zone: str = "+0000",
    shift_days: int = 0,
    days: tuple[str, str] | None = None,
) -> list[Path]:
    """Rewrite the source files' lines as daily combined-format files in `zone`, moved
    `shift_days` later, keeping only the (first, last) days of `days` (after the shift) if
    given; returns the files."""
    site = SiteZone.parse(zone)
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    agents = "[" + ", ".join("'" + a.replace("'", "''") + "'" for a in AGENTS) + "]"
    referers = "[" + ", ".join(f"'{r}'" for r in REFERERS) + "]"
    parts = []
    for i, path in enumerate(source_files):
        parsed = parse_lines(con, read_lines(path), f"src{i}", site, "common")
        parts.append(f"""
            SELECT day + {shift_days} AS day, line_number, {i} AS file,
                host || ' - - [' || strftime(ts + INTERVAL ({shift_days}) DAY,
                                             '%d/%b/%Y:%H:%M:%S ') || '{site.name}] "'
                || coalesce(request, method || ' ' || url || coalesce(' ' || protocol, ''))
                || '" ' || status || ' ' || coalesce(CAST(bytes AS VARCHAR), '-') || ' "'
                || {referers}[1 + CAST(hash(host || coalesce(url, '')) % {len(REFERERS)} AS BIGINT)]
                || '" "'
                || {agents}[1 + CAST(hash(host) % {len(AGENTS)} AS BIGINT)] || '"' AS line
            FROM {parsed.requests_table}
            UNION ALL
            SELECT day + {shift_days}, line_number, {i}, raw_line FROM {parsed.rejected_table}
        """)
    con.execute(f"CREATE TEMP TABLE combined AS {' UNION ALL '.join(parts)}")
    if days:
        con.execute("DELETE FROM combined WHERE day < ? OR day > ?", list(days))
    days = [d for (d,) in con.execute("SELECT DISTINCT day FROM combined ORDER BY 1").fetchall()]
    written = []
    for n, day in enumerate(days):
        lines = con.execute(
            "SELECT line FROM combined WHERE day = ? ORDER BY file, line_number", [day]
        ).fetchall()
        text = ("\n".join(line for (line,) in lines) + "\n").encode("utf-8")
        if n == len(days) - 1:
            target = out_dir / "access.log"  # today's file, not rotated yet
            target.write_bytes(text)
        else:
            target = out_dir / f"access.log-{day:%Y%m%d}.gz"
            target.write_bytes(igzip.compress(text, compresslevel=1))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--source", type=Path, help="folder of CLF files (default: the NASA logs)")
    parser.add_argument("--zone", default="+0000", help="offset or IANA zone of the output")
    parser.add_argument("--shift-days", type=int, default=0, help="move every line this late")
    parser.add_argument("--days", nargs=2, metavar=("FIRST", "LAST"), help="keep only these")
    args = parser.parse_args(argv)
    if args.source:
        files = find_log_files(args.source)
    else:
        from nasa_autoscale.ingest.download import locate_logs
        from nasa_autoscale.settings import Settings

        files = locate_logs(Settings.from_env(), fetch=True).files
    if not files:
        parser.error(f"no log files in {args.source}")
    written = write_combined_logs(files, args.out_dir, args.zone, args.shift_days, args.days)
    print(f"wrote {len(written)} files to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
