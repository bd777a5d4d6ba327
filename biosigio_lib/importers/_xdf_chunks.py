"""A fast structural pass over an XDF file: chunk boundaries, truncation, clock-offset counts.

pyxdf is deliberately fault tolerant (it logs corruption and scans forward), so before handing
a file to it we check that every chunk lies inside the file. This reads only chunk headers
(seeking over the contents), so it costs a few milliseconds even for large files.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import IO

from ..errors import CorruptFileError, TruncatedFileError

__all__ = ["MAGIC", "ChunkSummary", "scan_chunks"]

MAGIC = b"XDF:"
_TAGS = {1: "FileHeader", 2: "StreamHeader", 3: "Samples", 4: "ClockOffset",
         5: "Boundary", 6: "StreamFooter"}


@dataclass
class ChunkSummary:
    """What the structural pass found: counts per tag and per stream, and any problem."""

    n_chunks: int = 0
    has_file_header: bool = False
    stream_headers: list[int] = field(default_factory=list)
    stream_footers: list[int] = field(default_factory=list)
    clock_offsets: dict[int, int] = field(default_factory=dict)
    sample_chunks: dict[int, int] = field(default_factory=dict)
    problem: str | None = None


def _fail(summary: ChunkSummary, strict: bool, exc: Exception) -> ChunkSummary:
    if strict:
        raise exc
    summary.problem = str(exc)
    return summary


def scan_chunks(fh: IO[bytes], size: int | None, path: str, *,
                strict: bool = True) -> ChunkSummary:
    """Walk the chunks of an open XDF file; ``size`` None means "read to skip" (gzip)."""
    summary = ChunkSummary()
    head = fh.read(4)
    if len(head) == 0:
        raise TruncatedFileError("the file is empty (no XDF magic 'XDF:')", path=path)
    if head != MAGIC:
        raise CorruptFileError(f"not an XDF file: starts with {head!r}, expected {MAGIC!r}",
                               path=path)
    pos = 4
    while True:
        nb = fh.read(1)
        if not nb:
            break
        if nb[0] not in (1, 4, 8):
            return _fail(summary, strict, CorruptFileError(
                f"chunk {summary.n_chunks} at byte {pos}: invalid length-field size "
                f"{nb[0]} (expected 1, 4 or 8)", path=path))
        raw = fh.read(nb[0])
        if len(raw) < nb[0]:
            return _fail(summary, strict, TruncatedFileError(
                f"the file ends inside the header of chunk {summary.n_chunks} at byte {pos}",
                path=path))
        length = int.from_bytes(raw, "little")
        start = pos + 1 + nb[0]
        if length < 2:
            return _fail(summary, strict, CorruptFileError(
                f"chunk {summary.n_chunks} at byte {pos}: length {length} is too short",
                path=path))
        if size is not None and start + length > size:
            return _fail(summary, strict, TruncatedFileError(
                f"chunk {summary.n_chunks} at byte {pos} needs {length} bytes, the file ends "
                f"{size - start} bytes later (truncated file)", path=path))
        prefix = fh.read(min(length, 6))
        if len(prefix) < min(length, 6):
            return _fail(summary, strict, TruncatedFileError(
                f"the file ends inside chunk {summary.n_chunks} at byte {pos}", path=path))
        tag = struct.unpack("<H", prefix[:2])[0]
        if tag not in _TAGS:
            return _fail(summary, strict, CorruptFileError(
                f"chunk {summary.n_chunks} at byte {pos}: unknown tag {tag}", path=path))
        sid = struct.unpack("<I", prefix[2:6])[0] if tag in (2, 3, 4, 6) and length >= 6 \
            else None
        if tag == 1:
            summary.has_file_header = True
        elif tag == 2 and sid is not None:
            summary.stream_headers.append(sid)
        elif tag == 6 and sid is not None:
            summary.stream_footers.append(sid)
        elif tag == 4 and sid is not None:
            summary.clock_offsets[sid] = summary.clock_offsets.get(sid, 0) + 1
        elif tag == 3 and sid is not None:
            summary.sample_chunks[sid] = summary.sample_chunks.get(sid, 0) + 1
        rest = length - len(prefix)
        if size is not None:
            fh.seek(rest, 1)
        elif len(fh.read(rest)) < rest:
            return _fail(summary, strict, TruncatedFileError(
                f"the file ends inside chunk {summary.n_chunks} at byte {pos}", path=path))
        pos = start + length
        summary.n_chunks += 1
    if not summary.has_file_header:
        return _fail(summary, strict, CorruptFileError("no FileHeader chunk", path=path))
    return summary
