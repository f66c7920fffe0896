"""Finding access-log files and reading them into indexed lines, fast and without losing a byte.

A file is decompressed (gzip, several members allowed; ISA-L's zlib-compatible inflate, about 3x
zlib's speed) or read as is. Bytes are latin-1: every byte is a character, so nothing can fail to
decode; the few bytes >= 0x80 are re-encoded as UTF-8 so that DuckDB and Arrow can hold them. Lines
are found with numpy and handed on as (start, end) offsets into that one buffer, never copied.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
from isal import isal_zlib

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 16 << 20
_IGNORED_SUFFIXES = (".part", ".tmp", ".md", ".md5", ".sha1", ".sha256", ".sha512", ".asc", ".sig")
_IGNORED_PREFIXES = ("README", "LICENSE", "MANIFEST", "PROVENANCE")
HOW_TO_GET_LOGS = (
    "Put Common Log Format files (*.gz or plain) in that folder: for the NASA trace, "
    "NASA_access_log_Jul95.gz and NASA_access_log_Aug95.gz from the Internet Traffic Archive "
    "(https://ita.ee.lbl.gov/html/contrib/NASA-HTTP.html). Or materialize `raw_log_files` "
    "(make run), which downloads them or builds a replica."
)


class LogFileError(RuntimeError):
    """A log file that cannot be read: the message names the file and what went wrong."""


@dataclass(frozen=True)
class Lines:
    """The lines of one file: line i is data[starts[i]:ends[i]] (terminator excluded)."""

    data: bytes  # the file's bytes (latin-1)
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    # The line holds a control byte (< 0x20, other than its terminator) or a byte >= 0x80.
    has_special: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def buf(self) -> np.ndarray:
        return np.frombuffer(self.data, dtype=np.uint8)

    def fingerprint(self) -> str:
        """What the file holds, whatever its name or compression: its line count and a hash of
        its first and last lines. A rotated file (access.log -> access.log-20261127.gz, or .1
        -> .2.gz) keeps it; a file that grew or was cut does not."""
        digest = hashlib.sha256(str(len(self)).encode())
        for i in (0, -1)[: min(len(self), 2)]:
            digest.update(b"\n" + self.data[self.starts[i] : self.ends[i]])
        return digest.hexdigest()[:20]

    def starts_with(self, prefix: bytes) -> np.ndarray:
        """Which lines start with `prefix` (vectorised: one comparison per byte of it)."""
        buf, starts = self.buf, self.starts
        found = (self.ends - starts) >= len(prefix)
        for k, byte in enumerate(prefix):
            found[found] = buf[starts[found] + k] == byte
        return found

    def text(self, rows: np.ndarray) -> pa.Array:
        """The given lines as strings, decoded from latin-1 (so any byte is kept)."""
        data, bounds = self.data, zip(self.starts[rows], self.ends[rows], strict=True)
        return pa.array([data[a:b].decode("latin-1") for a, b in bounds], type=pa.string())


def is_log_file(path: Path) -> bool:
    """The rule for what in the raw folder is a log: a regular file that is not hidden (nor in
    a hidden folder), not partial (.part, .tmp), not a note (.md; README*, LICENSE*, MANIFEST*,
    PROVENANCE*) and not a checksum or signature (.md5, .sha1, .sha256, .sha512, .asc, .sig)."""
    name = path.name
    return (
        path.is_file()
        and not name.startswith(".")
        and not name.lower().endswith(_IGNORED_SUFFIXES)
        and not name.upper().startswith(_IGNORED_PREFIXES)
    )


# Servers write their error logs beside their access logs (nginx error.log, Apache error_log,
# rotated and compressed alike): never read as access logs.
_ERROR_LOG = re.compile(r"(.*[._-])?error[._]log([._-].*)?", re.IGNORECASE)


def error_log_name(name: str) -> bool:
    """A server's error log by its name: error.log, error_log, ssl_error_log, error.log.1,
    error.log-20261126.gz, site.error.log, ..."""
    return _ERROR_LOG.fullmatch(name) is not None


def find_log_files(folder: Path) -> list[Path]:
    """Every log file (is_log_file) in `folder` and its subfolders, as load balancers and CDNs
    write date-nested prefixes, sorted by path (gz or plain text alike). A file is known by its
    name (nasa.source_files): two logs of one name in different subfolders are an error that
    names both, never one read in place of the other."""
    if not folder.is_dir():
        return []
    found = sorted(
        p
        for p in folder.rglob("*")
        if is_log_file(p)
        and not any(part.startswith(".") for part in p.relative_to(folder).parts[:-1])
    )
    seen: dict[str, Path] = {}
    for path in found:
        if path.name in seen:
            raise LogFileError(
                f"two log files named {path.name}: {seen[path.name]} and {path}. A log is known "
                "by its file name; rename one (or keep the folders apart with NASA_RAW_DIR)."
            )
        seen[path.name] = path
    return found


def read_bytes(path: Path) -> bytes:
    """The file's content, gunzipped when it starts with the gzip magic bytes."""
    try:
        with path.open("rb") as f:
            head = f.read(2)
            f.seek(0)
            return _gunzip(f, path) if head == GZIP_MAGIC else f.read()
    except FileNotFoundError:
        raise LogFileError(f"{path}: no such file. {HOW_TO_GET_LOGS}") from None
    except PermissionError:
        raise LogFileError(f"{path}: permission denied; make the file readable.") from None
    except IsADirectoryError:
        raise LogFileError(f"{path}: is a directory, not a log file.") from None


def _gunzip(f, path: Path) -> bytes:
    out: list[bytes] = []
    consumed = 0  # compressed bytes fed to the inflater so far
    d = isal_zlib.decompressobj(wbits=31)
    in_member = False  # fed data to `d` that did not finish a gzip member yet
    while chunk := f.read(_CHUNK):
        while chunk:
            try:
                out.append(d.decompress(chunk))
            except isal_zlib.error as e:
                raise LogFileError(
                    f"{path}: corrupt gzip data in compressed bytes {consumed:,}.."
                    f"{consumed + len(chunk):,} (after line {_count_lines(out):,}): {e}. "
                    "Download the file again; the warehouse was not changed."
                ) from None
            in_member = not d.eof
            if d.eof:  # a member ended; what follows, if anything, is the next member
                consumed += len(chunk) - len(d.unused_data)
                chunk = d.unused_data
                d = isal_zlib.decompressobj(wbits=31)
            else:
                consumed += len(chunk)
                chunk = b""
    if in_member:
        raise LogFileError(
            f"{path}: truncated gzip file: it ends at compressed byte {consumed:,}, inside the "
            f"data (after line {_count_lines(out):,}). Download it again; the warehouse was not "
            "changed."
        )
    return b"".join(out)


def _count_lines(parts: list[bytes]) -> int:
    return sum(p.count(b"\n") for p in parts)


def index_lines(data: bytes) -> Lines:
    """Split latin-1 text on '\\n' (a last line without a terminator still counts)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    # One pass finds newlines, other control bytes and bytes >= 0x80: with uint8 wrap-around,
    # b - 0x20 >= 0x60 holds exactly for b < 0x20 and b >= 0x80.
    special = np.flatnonzero((buf - np.uint8(0x20)) >= 0x60)
    newline = buf[special] == 10
    ends = special[newline]
    if len(buf) and buf[-1] != 10:
        ends = np.append(ends, len(buf))
    starts = np.empty_like(ends)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
    has_special = np.zeros(len(ends), dtype=bool)
    has_special[np.searchsorted(ends, special[~newline])] = True  # the line whose end follows
    return Lines(data, starts, ends, has_special)


def read_lines(path: Path) -> Lines:
    """The indexed lines of one log file (gz or plain)."""
    return index_lines(read_bytes(path))


def string_view(
    buf: np.ndarray, starts: np.ndarray, ends: np.ndarray, valid: np.ndarray | None = None
) -> pa.Array:
    """An Arrow string_view array of buf[starts[i]:ends[i]], sharing buf's memory (no copy).

    Values where `valid` is False are NULL. Each view is 16 bytes: the length, then either the
    value itself (<= 12 bytes, zero padded) or its first 4 bytes, buffer index 0 and the offset.
    The slices must be valid UTF-8 (plain ASCII lines are) and buf < 2 GiB.
    """
    n = len(starts)
    lengths = (ends - starts).astype(np.int32)
    if len(buf) >= 12 and (starts <= len(buf) - 12).all():
        # Rows of a sliding 12-byte window: one gather instead of an (n, 12) index matrix.
        head = np.lib.stride_tricks.sliding_window_view(buf, 12)[starts]
    else:  # a value starts within 12 bytes of the end of the buffer: copy value by value
        head = np.zeros((n, 12), dtype=np.uint8)
        for row in range(n):
            piece = buf[starts[row] : starts[row] + 12]
            head[row, : len(piece)] = piece
    head *= np.arange(12) < lengths[:, None]  # zero padding after a short value
    head32 = head.view(np.int32)  # (n, 3)
    inline = lengths <= 12
    views = np.empty((n, 4), dtype=np.int32)
    views[:, 0] = lengths
    views[:, 1] = head32[:, 0]  # the value's start or its 4-byte prefix
    views[:, 2] = np.where(inline, head32[:, 1], 0)  # more of the value, or buffer index 0
    views[:, 3] = np.where(inline, head32[:, 2], starts)  # the rest, or the offset
    validity = None if valid is None else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.string_view(), n, [validity, pa.py_buffer(views), pa.py_buffer(buf)]
    )
