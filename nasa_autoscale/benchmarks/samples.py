"""`make ingest` on every real sample of another format (data/samples/formats, or the folder
given), each as a site of its own: the sample's folder is the raw folder, its days the
partition range, NASA_LOG_FORMAT=auto, a scratch warehouse and Dagster home. Then every line of
every file is checked to be a stored request, a stored rejection or a header line.

    python -m nasa_autoscale.benchmarks.samples [FOLDER] [--keep DIR]      (make ingest-samples)

A sample whose format logs no offset (HAProxy's accept date) is read in the zone its
PROVENANCE.txt gives (`time zone: +0100`), else UTC. Exit status 1 when a line is unaccounted
for or a run fails.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

from nasa_autoscale.ingest.logfiles import find_log_files, read_lines
from nasa_autoscale.ingest.parse import drop_parsed, parse_lines
from nasa_autoscale.ingest.sitezone import SiteZone, first_offset
from nasa_autoscale.settings import PROJECT_ROOT, SAMPLES_DIR

_ZONE = re.compile(r"^time zone:\s*([+-]\d{4}|[A-Za-z_]+/[A-Za-z_]+|UTC)\b", re.M | re.I)


def sample_zone(folder: Path) -> str:
    """The zone a sample is read in: its PROVENANCE.txt's `time zone:`, else its first
    offset, else UTC."""
    provenance = folder / "PROVENANCE.txt"
    found = _ZONE.search(provenance.read_text()) if provenance.exists() else None
    if found:
        return found.group(1)
    for path in find_log_files(folder):
        offset = first_offset(path.read_bytes()[: 1 << 20])
        if offset:
            return offset
    return "UTC"


def sample_days(files: list[Path], zone: str) -> tuple[str, str]:
    """The first and last local day of the samples' lines (what the partition range spans)."""
    con = duckdb.connect()
    days = []
    for i, path in enumerate(files):
        parsed = parse_lines(con, read_lines(path), f"s{i}", SiteZone.parse(zone), "auto")
        days += [day for row in parsed.per_file for day in row[5:7] if day is not None]
        drop_parsed(con, parsed)
    return min(days).isoformat(), max(days).isoformat()


def check_sample(folder: Path, scratch: Path) -> dict:
    """make ingest on one sample folder; its lines as read, stored and accounted."""
    files = find_log_files(folder)
    zone = sample_zone(folder)
    start, end = sample_days(files, zone)
    warehouse = scratch / "warehouse.duckdb"
    env = {
        **os.environ,
        "NASA_RAW_DIR": str(folder),
        "NASA_START_DATE": start,
        "NASA_END_DATE": end,
        "NASA_TIMEZONE": zone,
        "NASA_LOG_FORMAT": "auto",
        "NASA_DUCKDB_PATH": str(warehouse),
        "NASA_LANDING_DIR": str(scratch / "landing"),
    }
    command = ["make", "-s", "ingest", f"DAGSTER_HOME={scratch / 'dagster_home'}"]
    print(f"{folder.name}: {len(files)} file(s), {start}..{end}, zone {zone}", flush=True)
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True)
    row = {"sample": folder.name, "days": f"{start}..{end}", "zone": zone, "ok": False}
    row["lines"] = sum(len(read_lines(path)) for path in files)
    if done.returncode != 0:
        row["error"] = (done.stdout + done.stderr)[-1500:]
        return row
    con = duckdb.connect(str(warehouse), read_only=True)
    requests, rejected, headers, formats = con.sql(
        """
        SELECT (SELECT count(*) FROM nasa.requests), (SELECT count(*) FROM nasa.rejected_lines),
               (SELECT coalesce(sum(header_lines), 0) FROM nasa.source_files),
               (SELECT string_agg(DISTINCT log_format, ', ') FROM nasa.source_files)
        """
    ).fetchall()[0]
    con.close()
    row.update(requests=requests, rejected=rejected, headers=headers, format=formats)
    row["ok"] = requests + rejected + headers == row["lines"]
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=SAMPLES_DIR / "formats")
    parser.add_argument("--keep", type=Path, help="keep each sample's warehouse under DIR")
    args = parser.parse_args(argv)
    samples = sorted(p for p in args.folder.iterdir() if p.is_dir())
    if not samples:
        print(f"no sample folders in {args.folder}", file=sys.stderr)
        return 2
    rows = []
    for folder in samples:
        scratch = Path(tempfile.mkdtemp(prefix=f"sample_{folder.name}_"))
        try:
            rows.append(check_sample(folder, scratch))
        finally:
            if args.keep:
                shutil.copytree(scratch, args.keep / folder.name, dirs_exist_ok=True)
            shutil.rmtree(scratch, ignore_errors=True)
    print(
        f"\n{'sample':18s} {'format':32s} {'lines':>6s} {'requests':>8s} {'rejected':>8s} "
        f"{'headers':>7s}  accounted"
    )
    for row in rows:
        if "error" in row:
            print(f"{row['sample']:18s} make ingest failed:\n{row['error']}")
            continue
        print(
            f"{row['sample']:18s} {row['format'][:32]:32s} {row['lines']:6d} {row['requests']:8d} "
            f"{row['rejected']:8d} {row['headers']:7d}  {'yes' if row['ok'] else 'NO'}"
        )
    return 0 if all(row["ok"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
