"""A replica of the two NASA log files, for machines that cannot download the real ones.

What is real in it: every second's request count (the reference per-second series, aligned by the
MANIFEST rules, plus each file's last second), and every line's host, request, status and byte
count, drawn from real sampled lines (data/samples). What is made up: which sampled line lands in
which second. Status classes follow the published 5-minute aggregate bin by bin, and byte counts
are rescaled within each bin so the bin's total equals the aggregate's. The real trace's 5xx lines
are not in any sample; the replica gives those bins real requests answered `500 -`.
"""

from __future__ import annotations

import gzip
import logging
import os
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from nasa_autoscale.ingest.logfiles import index_lines
from nasa_autoscale.ingest.parse import drop_parsed, parse_lines
from nasa_autoscale.ingest.reference import file_seconds, reference_traffic_5m
from nasa_autoscale.settings import SAMPLES_DIR

log = logging.getLogger(__name__)

STATUS_CLASSES = ("status_2xx", "status_3xx", "status_4xx", "status_5xx")
REPLICA_NOTE = """# REPLICA, not the real NASA logs

These files were built by nasa_autoscale.ingest.replica because the real logs were not found in
the raw folder and could not be downloaded. Per-second request counts are the real trace's; hosts,
requests, statuses and bytes are real sampled lines placed at those seconds. Put the real
NASA_access_log_Jul95.gz and NASA_access_log_Aug95.gz in data/raw/ to use the real trace.
"""


def sample_lines() -> list[bytes]:
    """The real raw lines the project ships (see data/README.md), as bytes."""
    lines = (SAMPLES_DIR / "nasa_2k.log").read_bytes().splitlines()
    csv = pd.read_csv(SAMPLES_DIR / "nasa_access_log_feature_sample.csv", usecols=["raw_line"])
    lines += [s.encode("latin-1") for s in csv["raw_line"]]
    # That repository prefixed each malformed line with "REQINVALID:" (11 bytes).
    malformed = (SAMPLES_DIR / "lineFormatErrorLog.txt").read_bytes().splitlines()
    lines += [line[11:] for line in malformed if line]
    return lines


def line_pool(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Sampled lines parsed into (host, request, status, bytes, status_class), 5xx added."""
    parsed = parse_lines(con, index_lines(b"\n".join(sample_lines())), "pool")
    pool = con.sql(
        f"""
        SELECT host,
               coalesce(request, method || ' ' || url || coalesce(' ' || protocol, '')) AS request,
               status, bytes
        FROM {parsed.requests_table} ORDER BY line_number
        """
    ).df()
    drop_parsed(con, parsed)
    pool["status_class"] = pool["status"] // 100 - 2
    server_errors = pool[pool["status"] == 200].head(20).assign(status=500, status_class=3)
    server_errors["bytes"] = pd.array([pd.NA] * len(server_errors), dtype=pool["bytes"].dtype)
    return pd.concat([pool, server_errors], ignore_index=True)


def _class_per_request(bins: np.ndarray, targets: np.ndarray, rng) -> np.ndarray:
    """A status class per request such that each bin's class counts follow its target mix.

    bins: the bin index of each request, sorted; targets: (n_bins, 4) class counts per bin.
    When a bin's request count equals its target total, its class counts equal the target exactly.
    """
    n = len(bins)
    # Rank of each request within its bin, in random order.
    order = np.lexsort((rng.random(n), bins))
    starts = np.searchsorted(bins, bins)  # first index of each request's bin
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts[order]
    size = np.bincount(bins, minlength=len(targets))[bins]
    cum = np.cumsum(targets, axis=1) / targets.sum(axis=1, keepdims=True)
    position = (rank + 0.5) / size
    return (position[:, None] >= cum[bins]).sum(axis=1).clip(0, 3)


def _rescale_bytes(bins: np.ndarray, sampled: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Scale byte counts so each bin sums to target (where known), rounding cumulatively."""
    has = ~np.isnan(sampled)
    values = np.where(has, sampled, 0.0)
    bin_sum = np.bincount(bins, weights=values, minlength=len(target))
    factor = np.where((bin_sum > 0) & ~np.isnan(target), target / np.maximum(bin_sum, 1), 1.0)
    scaled = values * factor[bins]
    cum = np.cumsum(scaled)
    first = np.searchsorted(bins, bins)
    before = np.where(first > 0, cum[first - 1], 0.0)
    within = np.round(cum - before)
    prev = np.where(np.arange(len(bins)) == first, 0.0, np.round(np.roll(cum, 1) - before))
    return np.where(has, within - prev, np.nan)


def build_replica(out_dir: Path, seed: int = 1995) -> list[Path]:
    """Write NASA_access_log_Jul95.gz and NASA_access_log_Aug95.gz replicas into out_dir."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    con = duckdb.connect()
    pool = line_pool(con)
    pools = [np.flatnonzero(pool["status_class"].to_numpy() == k) for k in range(4)]
    ref = reference_traffic_5m()
    global_mix = ref[list(STATUS_CLASSES)].sum().to_numpy()
    paths = []
    for part in file_seconds():
        ts = np.repeat(part.seconds, part.requests)
        bin_starts = ts.astype("datetime64[m]").astype(np.int64) // 5 * 5
        unique_bins, bins = np.unique(bin_starts, return_inverse=True)
        bin_ref = ref.reindex(pd.DatetimeIndex(unique_bins.astype("datetime64[m]")))
        targets = bin_ref[list(STATUS_CLASSES)].to_numpy()
        blank = np.isnan(targets).any(axis=1) | (targets.sum(axis=1) == 0)
        targets[blank] = global_mix
        classes = _class_per_request(bins, targets, rng)
        picks = np.empty(len(ts), dtype=np.int64)
        for k in range(4):
            where = classes == k
            picks[where] = rng.choice(pools[k], size=int(where.sum()))
        lines = pool.iloc[picks].reset_index(drop=True)
        sampled = lines["bytes"].astype("float64").to_numpy()
        lines["bytes"] = _rescale_bytes(bins, sampled, bin_ref["total_bytes"].to_numpy())
        lines["ts"] = ts
        path = out_dir / part.file_name
        _write_log(con, lines, path)
        paths.append(path)
        log.warning("REPLICA written: %s (%s lines)", path, f"{len(lines):,}")
    (out_dir / "README.md").write_text(REPLICA_NOTE)
    return paths


def _write_log(con: duckdb.DuckDBPyConnection, lines: pd.DataFrame, path: Path) -> None:
    formatted = con.sql(
        """
        SELECT host || ' - - [' || strftime(ts, '%d/%b/%Y:%H:%M:%S') || ' -0400] "' || request
               || '" ' || status || ' ' || coalesce(CAST(CAST(bytes AS BIGINT) AS VARCHAR), '-')
        FROM lines
        """
    ).fetchnumpy()
    text = "\n".join(next(iter(formatted.values())).tolist()) + "\n"
    tmp = path.with_suffix(path.suffix + ".part")
    # Level 1: the file is rebuilt rarely and read often; speed of writing matters more than size.
    tmp.write_bytes(gzip.compress(text.encode("latin-1"), compresslevel=1, mtime=0))
    os.replace(tmp, path)
