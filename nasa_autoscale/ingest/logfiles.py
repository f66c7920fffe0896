"""Finding access-log files and reading them into numbered lines, fast and without losing a byte.

A file is decompressed with zlib (gzip, several members allowed) or read as is, decoded as latin-1
(every byte is a character, so nothing can fail to decode), and split on '\\n' with numpy. The result
is an Arrow table (line_number, raw_line) that DuckDB scans without a copy.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 8 << 20
_IGNORED_SUFFIXES = (".part", ".tmp", ".md", ".txt.sha256")
HOW_TO_GET_LOGS = (
    "Put Common Log Format files (*.gz or plain) in that folder, for the NASA trace "
    "NASA_access_log_Jul95.gz and NASA_access_log_Aug95.gz from the Internet Traffic Archive "
    "(https://ita.ee.lbl.gov/html/contrib/NASA-HTTP.html), or materialize `raw_log_files`, "
    "which downloads them or builds a replica."
)


class LogFileError(RuntimeError):
    """A log file that cannot be read: the message names the file and what went wrong."""


def find_log_files(folder: Path) -> list[Path]:
    """Every regular, non-hidden file in `folder`, sorted by name (gz or plain text alike)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(_IGNORED_SUFFIXES)
    )


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            if head != GZIP_MAGIC:
                return f.read()
            return _gunzip(f, path)
    except FileNotFoundError:
        raise LogFileError(f"{path}: no such file. {HOW_TO_GET_LOGS}") from None
    except PermissionError:
        raise LogFileError(f"{path}: permission denied; make the file readable.") from None
    except IsADirectoryError:
        raise LogFileError(f"{path}: is a directory, not a log file.") from None


def _gunzip(f, path: Path) -> bytes:
    out: list[bytes] = []
    consumed = 0  # compressed bytes fed to zlib so far
    d = zlib.decompressobj(wbits=31)
    in_member = False  # fed data to `d` that did not finish a gzip member yet
    while chunk := f.read(_CHUNK):
        while chunk:
            try:
                out.append(d.decompress(chunk))
            except zlib.error as e:
                raise LogFileError(
                    f"{path}: corrupt gzip data in the compressed bytes {consumed:,}.."
                    f"{consumed + len(chunk):,} (after line {_count_lines(out):,}): {e}. "
                    "Download the file again; the warehouse was not changed."
                ) from None
            in_member = not d.eof
            if d.eof:  # a member ended; what follows, if anything, is the next member
                consumed += len(chunk) - len(d.unused_data)
                chunk = d.unused_data
                d = zlib.decompressobj(wbits=31)
            else:
                consumed += len(chunk)
                chunk = b""
    if in_member:
        raise LogFileError(
            f"{path}: truncated gzip file: it ends at compressed byte {consumed:,} in the middle of "
            f"a member (after line {_count_lines(out):,}). Download it again; the warehouse was not "
            "changed."
        )
    return b"".join(out)


def _count_lines(parts: list[bytes]) -> int:
    return sum(p.count(b"\n") for p in parts)


def split_lines(data: bytes) -> pa.Table:
    """Numbered lines (1-based) of a latin-1 byte string.

    Each value keeps its '\\n' terminator (Arrow strings are contiguous, so dropping it would need
    a copy); the parser strips it. Lines cannot contain '\\n' otherwise.
    """
    text = data if data.isascii() else data.decode("latin-1").encode("utf-8")
    buf = np.frombuffer(text, dtype=np.uint8)
    ends = np.flatnonzero(buf == 10) + 1
    if len(buf) and buf[-1] != 10:  # a last line without a terminator still counts
        ends = np.append(ends, len(buf))
    offsets = np.zeros(len(ends) + 1, dtype=np.int64)
    offsets[1:] = ends
    lines = pa.Array.from_buffers(
        pa.large_string(), len(ends), [None, pa.py_buffer(offsets), pa.py_buffer(text)]
    )
    return pa.table(
        {"line_number": pa.array(np.arange(1, len(ends) + 1, dtype=np.int64)), "raw_line": lines}
    )


def read_lines(path: Path) -> pa.Table:
    """The numbered lines of one log file (gz or plain)."""
    return split_lines(read_bytes(path))
