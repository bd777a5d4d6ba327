"""Seeded byte mutations of real EDF/BDF files: each reads, or raises a BiosigIOError subclass.

A small, fast slice of a few-thousand-case run (header fields set to hostile numbers, random
bytes, truncation, insertion); any other exception type is a bug.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path

import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import BiosigIOError

FILES = ["edf/test_edfann.edf", "bdf/test_bdf_stim_channel.bdf", "edf/subsecond_starttime.edf"]
HOSTILE = [b"0", b"-1", b"1", b"-32768", b"32767", b"8388607", b"-8388608", b"1e300",
           b"-1e-300", b"0.0001", b"99999999", b"", b"nan", b"inf", b"x", b"3.5", b"+0\x14\x14\x00"]
# header fields: version..reserved start/width, then per-signal field widths
_FIXED = [(168, 8), (176, 8), (184, 8), (192, 44), (236, 8), (244, 8), (252, 4)]
_WIDTHS = (16, 80, 8, 8, 8, 8, 8, 80, 8)


def _mutate(data: bytes, rnd: random.Random) -> bytes:
    b = bytearray(data)
    ns = int(b[252:256])
    header = 256 * (1 + ns)
    for _ in range(rnd.choice([1, 1, 2, 3])):
        op = rnd.random()
        if op < 0.4:  # a hostile number in a header field
            fields = list(_FIXED)
            off = 256
            for w in _WIDTHS:
                fields.append((off + w * rnd.randrange(ns), w))
                off += w * ns
            at, width = rnd.choice(fields)
            b[at:at + width] = rnd.choice(HOSTILE).ljust(width)[:width]
        elif op < 0.8:
            b[rnd.randrange(header if rnd.random() < 0.8 else len(b))] = rnd.randrange(256)
        elif op < 0.9:
            del b[rnd.randrange(1, len(b)):]
        else:
            at = rnd.randrange(len(b))
            b[at:at] = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 9)))
    return bytes(b)


@pytest.mark.real_data
@pytest.mark.parametrize("name", FILES)
def test_mutated_real_files_read_or_raise_typed(real_data: Path, tmp_path: Path,
                                                name: str) -> None:
    data = (real_data / name).read_bytes()
    rnd = random.Random(name)
    path = tmp_path / Path(name).name
    for case in range(60):
        path.write_bytes(_mutate(data, rnd))
        for lazy in (False, True):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    rec = Recording.from_file(path, lazy=lazy)
                    for label in rec.labels[:3]:
                        rec.channel_data(label)
                    _ = rec.events
            except BiosigIOError as exc:
                assert str(path) in str(exc), (case, exc)
