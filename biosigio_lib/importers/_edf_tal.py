"""EDF+ Time-stamped Annotation Lists (TALs): record onsets and annotations.

A TAL is ``+onset[\\x15duration]\\x14text\\x14[text\\x14...]\\x00``. The first TAL of the
first annotation signal in every data record is the *timekeeping* TAL (empty first text):
its onset is the record's start in seconds after the header start time. Other annotations
may share that TAL after the empty text. Text is UTF-8 (EDF+ spec 2.2.2).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..errors import CorruptFileError

__all__ = ["TalBatch", "parse_tal", "parse_tal_records"]


@dataclass
class TalBatch:
    """Record onsets (s after the header start) and annotations of a run of records."""

    record_onsets: np.ndarray
    onsets: list[float] = field(default_factory=list)
    durations: list[float] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    #: tolerated quirks met: ``{key: message}`` (the reader warns once per key and file)
    notes: dict[str, str] = field(default_factory=dict)


#: A whole TAL head (``+onset`` with an optional ``\x15duration``), as an annotation text
#: can never be: such a text inside a TAL means the writer left out the ``\x00`` before it.
_TAL_HEAD = re.compile(rb"[+-]\d+(?:\.\d*)?(?:\x15\d+(?:\.\d*)?)?")
NOTE_NO_NUL = ("TALs not separated by \\x00 (a known vendor-export quirk): each text "
               "that is a '+onset' starts a new TAL; check the annotations")
NOTE_LATIN1 = "annotation text is not UTF-8; read as Latin-1"


def _number(raw: bytes, what: str, where: str, path: str, signed: bool) -> float:
    text = raw.decode("ascii", "replace")
    if signed and text[:1] not in ("+", "-"):
        raise CorruptFileError(f"{where}: TAL {what} {text!r} does not start with '+' or '-'",
                               path=path)
    try:
        value = float(text)
    except ValueError:
        raise CorruptFileError(f"{where}: TAL {what} {text!r} is not a number",
                               path=path) from None
    if not math.isfinite(value) or (not signed and value < 0):
        raise CorruptFileError(f"{where}: TAL {what} {text!r} is invalid", path=path)
    return value


def _decode(raw: bytes, where: str, notes: dict[str, str]) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        notes.setdefault("latin1", f"{where}: {NOTE_LATIN1}")
        return raw.decode("latin-1")


def parse_tal(raw: bytes, where: str, path: str,
              notes: dict[str, str] | None = None) -> list[tuple[float, float, list[str]]]:
    """All TALs in one annotation signal of one record: ``(onset, duration|nan, texts)``.

    Quirks read anyway are added to ``notes`` (key -> message): TALs run together without
    their ``\\x00`` separator, and text that is not UTF-8 (read as Latin-1).
    """
    notes = {} if notes is None else notes
    out: list[tuple[float, float, list[str]]] = []
    for tal in raw.split(b"\x00"):
        if not tal:
            continue
        parts = tal.split(b"\x14")
        if len(parts) < 2 or parts[-1] != b"":
            raise CorruptFileError(f"{where}: unterminated TAL {tal[:40]!r} (no closing "
                                   "\\x14 before \\x00)", path=path)
        # a text (not the first) that is a TAL head, followed by a text of its own
        heads = [k for k in range(2, len(parts) - 2) if _TAL_HEAD.fullmatch(parts[k])]
        if heads:
            notes.setdefault("no_nul", f"{where}: {NOTE_NO_NUL}")
        for a, b in zip([0, *heads], [*heads, len(parts) - 1]):
            onset_b, sep, dur_b = parts[a].partition(b"\x15")
            onset = _number(onset_b, "onset", where, path, signed=True)
            duration = (_number(dur_b, "duration", where, path, signed=False) if sep
                        else math.nan)
            out.append((onset, duration, [_decode(p, where, notes) for p in parts[a + 1:b]]))
    return out


def parse_tal_records(blocks: list[np.ndarray], labels: list[str], first_record: int,
                      path: str) -> TalBatch:
    """Parse the annotation signals of ``n`` records (``blocks[j]``: ``(n, nbytes)`` uint8).

    The first signal's first TAL in each record must be the timekeeping TAL; every other
    non-empty text becomes an annotation with onsets still relative to the header start.
    """
    n = blocks[0].shape[0] if blocks else 0
    batch = TalBatch(record_onsets=np.empty(n, dtype=np.float64))
    for r in range(n):
        for j, block in enumerate(blocks):
            where = f"data record {first_record + r}, signal {labels[j]!r}"
            tals = parse_tal(block[r].tobytes(), where, path, batch.notes)
            if j == 0:
                if not tals or not tals[0][2] or tals[0][2][0] != "":
                    raise CorruptFileError(f"{where}: no timekeeping TAL ('+onset\\x14\\x14') "
                                           "at the start of the record", path=path)
                batch.record_onsets[r] = tals[0][0]
                tals[0] = (tals[0][0], tals[0][1], tals[0][2][1:])
            for onset, duration, texts in tals:
                for text in texts:
                    if text:
                        batch.onsets.append(onset)
                        batch.durations.append(duration)
                        batch.texts.append(text)
    return batch
