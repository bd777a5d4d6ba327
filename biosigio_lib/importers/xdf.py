"""XDF (Lab Streaming Layer recordings) via pyxdf: every stream, absolute alignment kept.

* A regular numeric stream (``nominal_srate > 0``) gets a grid of its own, named after the
  stream, at its nominal rate, starting at ``t0 = first timestamp - time zero``; nothing is
  interpolated onto another stream's grid. Its LSL timestamps (clock-synchronised,
  de-jittered as pyxdf does by default) are kept as one more channel ``<stream>_timestamps``
  (type SYSCLOCK, seconds from time zero), so drift and gaps are never lost.
* Irregular streams (``nominal_srate == 0``) and string streams become events: onset = the
  sample's timestamp - time zero; description = the marker text (numeric values as text,
  comma-joined for several channels); columns ``stream`` and ``stream_id``.
* Time zero is the earliest first timestamp of all streams; ``metadata['stream_offsets']``
  holds each stream's first timestamp (LSL clock, s) and ``metadata['streams']`` its info.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
from collections.abc import Iterator
from typing import IO, Any

import numpy as np
import pandas as pd

from .._fs import Location
from ..calibration import IDENTITY
from ..errors import BiosigIOError, CorruptFileError, FileReadError, source_not_found
from ..recording import Recording, make_unique_labels
from ._registry import Importer, register
from ._xdf_chunks import MAGIC, ChunkSummary, scan_chunks

__all__ = ["XdfImporter", "read_xdf"]

_PYXDF_OPTIONS = ("synchronize_clocks", "handle_clock_resets", "dejitter_timestamps",
                  "jitter_break_threshold_seconds", "jitter_break_threshold_samples",
                  "clock_reset_threshold_seconds", "clock_reset_threshold_stds",
                  "clock_reset_threshold_offset_seconds", "clock_reset_threshold_offset_stds",
                  "winsor_threshold")


def _is_gzip(path: str) -> bool:
    low = path.lower()
    return low.endswith((".xdfz", ".xdf.gz"))


def _first(info: dict[str, Any], key: str, default: Any = None) -> Any:
    """pyxdf wraps every XML text in a one-element list; unwrap it."""
    value = info.get(key, default)
    if isinstance(value, list):
        value = value[0] if value else default
    return default if value is None else value


class _Errors(logging.Handler):
    """Collect what pyxdf logs at ERROR level (it recovers from corruption silently)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _open(loc: Location) -> Iterator[tuple[IO[bytes], int | None]]:
    """The file as a binary stream plus its size (None when it must be read to skip)."""
    if _is_gzip(loc.path):
        with loc.fs.open(loc.path, "rb") as raw, gzip.open(raw, "rb") as fh:
            yield fh, None
    else:
        with loc.fs.open(loc.path, "rb") as fh:
            yield fh, int(loc.fs.size(loc.path))


def _load(loc: Location, strict: bool, options: dict[str, Any]
          ) -> tuple[list[dict[str, Any]], dict[str, Any], ChunkSummary, list[str]]:
    import pyxdf

    with _open(loc) as (fh, size):
        try:
            summary = scan_chunks(fh, size, loc.url, strict=strict)
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            if isinstance(exc, BiosigIOError):
                raise
            raise CorruptFileError(f"cannot read the XDF chunks: {exc}", path=loc.url) from exc
    source: Any = loc.path
    if not loc.is_local:
        with loc.fs.open(loc.path, "rb") as fh:
            data = fh.read()
        source = io.BytesIO(gzip.decompress(data) if _is_gzip(loc.path) else data)
    handler = _Errors()
    logger = logging.getLogger("pyxdf.pyxdf")
    logger.addHandler(handler)
    try:
        streams, header = pyxdf.load_xdf(source, **options)
    except BiosigIOError:
        raise
    except Exception as exc:
        raise CorruptFileError(f"pyxdf cannot read the file: {type(exc).__name__}: {exc}",
                               path=loc.url) from exc
    finally:
        logger.removeHandler(handler)
    problems = list(handler.messages)
    if summary.problem:
        problems.insert(0, summary.problem)
    if problems and strict:
        raise CorruptFileError("pyxdf reported corruption: " + "; ".join(problems[:3])
                               + " (pass strict=False to keep what is readable)", path=loc.url)
    return streams, header, summary, problems


def _channel_desc(info: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``desc/channels/channel`` entries of a stream header, as flat dicts of strings."""
    desc = _first(info, "desc")
    if not isinstance(desc, dict):
        return []
    chans = _first(desc, "channels")
    if not isinstance(chans, dict):
        return []
    out: list[dict[str, Any]] = []
    for ch in chans.get("channel") or []:
        if not isinstance(ch, dict):
            out.append({})
            continue
        out.append({k: _first(ch, k) for k in ch if isinstance(_first(ch, k), str)})
    return out


def _stream_key(name: str, sid: int, names: list[str]) -> str:
    return name if names.count(name) == 1 else f"{name}#{sid}"


def _values_as_text(values: np.ndarray) -> np.ndarray:
    """Numeric samples ``(n, ch)`` as exact text, channels joined by commas (vectorised)."""
    text = values.astype(str)
    out = text[:, 0].astype(object)
    for j in range(1, text.shape[1]):
        out = out + "," + text[:, j].astype(object)
    return out


def _channels_first(samples: np.ndarray, block: int = 1024) -> np.ndarray:
    """``(n, ch)`` -> C-contiguous ``(ch, n)``, transposed in cache-sized column blocks."""
    out = np.empty((samples.shape[1], samples.shape[0]), dtype=samples.dtype)
    for j in range(0, samples.shape[0], block):
        out[:, j:j + block] = samples[j:j + block].T
    return out


def _events_of(stream: dict[str, Any], key: str, sid: int, zero: float) -> pd.DataFrame:
    series = stream["time_series"]
    onset = np.asarray(stream["time_stamps"], dtype=np.float64) - zero
    if isinstance(series, list):
        desc = np.array([row[0] if len(row) == 1 else json.dumps(row, ensure_ascii=False)
                         for row in series], dtype=object)
    else:
        desc = _values_as_text(np.asarray(series))
    n = onset.size
    return pd.DataFrame({"onset": onset, "duration": np.zeros(n), "description": desc,
                         "stream": np.array([key] * n, dtype=object),
                         "stream_id": np.full(n, sid, dtype=np.int64)})


def _stream_info(stream: dict[str, Any], summary: ChunkSummary) -> dict[str, Any]:
    info = stream["info"]
    ts = stream["time_stamps"]
    sid = int(info["stream_id"])
    out = {
        "name": str(_first(info, "name", "")),
        "type": str(_first(info, "type", "")),
        "stream_id": sid,
        "source_id": str(_first(info, "source_id", "")),
        "hostname": str(_first(info, "hostname", "")),
        "uid": str(_first(info, "uid", "")),
        "created_at": str(_first(info, "created_at", "")),
        "channel_count": int(_first(info, "channel_count", 0)),
        "channel_format": str(_first(info, "channel_format", "")),
        "nominal_srate": float(_first(info, "nominal_srate", 0.0)),
        "effective_srate": float(info.get("effective_srate") or 0.0),
        "n_samples": len(ts),
        "n_clock_offsets": summary.clock_offsets.get(sid, 0),
        "segments": [[int(a), int(b)] for a, b in info.get("segments") or []],
        "clock_segments": [[int(a), int(b)] for a, b in info.get("clock_segments") or []],
    }
    if len(ts):
        out["first_timestamp"] = float(ts[0])
        out["last_timestamp"] = float(ts[-1])
    footer = (stream.get("footer") or {}).get("info") or {}
    if "sample_count" in footer:
        out["footer_sample_count"] = int(_first(footer, "sample_count"))
    return out


def _header_info(header: dict[str, Any]) -> dict[str, Any]:
    info = (header or {}).get("info") or {}
    return {k: str(_first(info, k)) for k in info if isinstance(_first(info, k), str)}


def read_xdf(loc: Location, *, strict: bool = True, timestamps: bool = True,
             **options: Any) -> Recording:
    """Read every stream of an XDF file; ``options`` go to ``pyxdf.load_xdf``."""
    unknown = sorted(set(options) - set(_PYXDF_OPTIONS))
    if unknown:
        raise TypeError(f"unknown XDF read option(s) {unknown}; known: {_PYXDF_OPTIONS}")
    if not loc.exists():
        raise source_not_found(loc.url)
    streams, header, summary, problems = _load(loc, strict, options)
    infos = [_stream_info(s, summary) for s in streams]
    names = [i["name"] for i in infos]
    firsts = [i["first_timestamp"] for i in infos if "first_timestamp" in i]
    zero = min(firsts) if firsts else 0.0

    planned: list[tuple[dict[str, Any], dict[str, Any], str, list[str], list[dict[str, Any]]]] = []
    events: list[pd.DataFrame] = []
    for stream, info in zip(streams, infos):
        key = _stream_key(info["name"], info["stream_id"], names)
        info["key"] = key
        if "footer_sample_count" in info and info["footer_sample_count"] != info["n_samples"]:
            msg = (f"stream {key!r}: footer says {info['footer_sample_count']} samples, "
                   f"{info['n_samples']} were read")
            if strict:
                raise CorruptFileError(msg + " (pass strict=False to keep them)",
                                       path=loc.url)
            problems.append(msg)
        if info["stream_id"] not in summary.stream_footers and info["n_samples"]:
            problems.append(f"stream {key!r} has no footer: the recording may have been cut "
                            "short (its samples up to there are kept)")
        if info["n_samples"] == 0:
            info["kind"] = "empty"
            continue
        if info["channel_format"] == "string" or info["nominal_srate"] <= 0:
            info["kind"] = "events"
            events.append(_events_of(stream, key, info["stream_id"], zero))
            continue
        info["kind"] = "grid"
        info["grid"] = key
        desc = _channel_desc(stream["info"])
        n_ch = np.asarray(stream["time_series"]).shape[1]
        labels = [str(desc[i].get("label") or "") if i < len(desc) else "" for i in range(n_ch)]
        labels = [lab.strip() or f"{key}_{i}" for i, lab in enumerate(labels)]
        planned.append((stream, info, key, labels,
                        [desc[i] if i < len(desc) else {} for i in range(n_ch)]))

    flat: list[str] = []
    for _s, _i, key, labels, _d in planned:
        flat.extend([*labels, f"{key}_timestamps"] if timestamps else labels)
    unique, renamed = make_unique_labels(flat)
    pos = 0
    rec = Recording({
        "source_file": loc.url,
        "source_format": "xdf",
        "time_zero": float(zero),
        "stream_offsets": {i["key"]: i["first_timestamp"] for i in infos
                           if "first_timestamp" in i},
        "streams": infos,
        "xdf_header": _header_info(header),
        "xdf_options": {"strict": strict, "timestamps": timestamps, **options},
    })
    if problems:
        rec.metadata["warnings"] = problems
    for stream, info, key, labels, desc in planned:
        k = len(labels) + (1 if timestamps else 0)
        labs = unique[pos:pos + k]
        pos += k
        data = _channels_first(np.asarray(stream["time_series"]))
        stream["time_series"] = None  # drop pyxdf's sample-major copy early
        ts = np.asarray(stream["time_stamps"], dtype=np.float64)
        rate = info["nominal_srate"]
        t0 = float(ts[0] - zero)
        stype = info["type"] or "MISC"
        common = {"stream": key, "stream_id": info["stream_id"],
                  "nominal_srate": rate, "effective_srate": info["effective_srate"],
                  "channel_format": info["channel_format"]}
        extras = []
        for lab, d in zip(labs, desc):
            extra = {**common, **{f"xdf_{k2}": v for k2, v in d.items()
                                  if k2 not in ("label", "unit", "type")}}
            if lab in renamed:
                extra["original_label"] = renamed[lab]
            extras.append(extra)
        # An integer stream is kept as its integers with the identity calibration: physical
        # values are the same numbers, and the archive stores it compactly (version 2).
        rec.add_channels(labs[:len(labels)], data, rate,
                         [str(d.get("unit") or d.get("units") or "") for d in desc],
                         [str(d.get("type") or stype) for d in desc],
                         infos=extras, t0=t0, grid=key,
                         calibration=IDENTITY if data.dtype.kind in "iu" else None)
        if timestamps:
            extra = {**common, "timestamps_of": key}
            if labs[-1] in renamed:
                extra["original_label"] = renamed[labs[-1]]
            rec.add_channel(labs[-1], ts - zero, rate, "s", "SYSCLOCK", t0=t0, grid=key,
                            **extra)
    if events:
        table = pd.concat(events, ignore_index=True)
        order = np.argsort(table["onset"].to_numpy(), kind="stable")
        rec.events = table.iloc[order].reset_index(drop=True)
    return rec


@register
class XdfImporter(Importer):
    """Lab Streaming Layer XDF recordings (``.xdf``, gzip-compressed ``.xdfz``/``.xdf.gz``)."""

    name = "xdf"
    extensions = (".xdf", ".xdfz", ".xdf.gz")
    magic = ((0, MAGIC),)
    extra = "xdf"
    requires = ("pyxdf",)
    description = "Lab Streaming Layer XDF recordings (every stream)"

    def read(self, loc: Location, **kwargs: Any) -> Recording:
        """Read all streams; ``strict=False`` keeps what a damaged file still holds."""
        try:
            return read_xdf(loc, **kwargs)
        except (BiosigIOError, FileNotFoundError, TypeError):
            raise
        except OSError as exc:
            raise FileReadError(f"cannot read the XDF file: {exc}", path=loc.url) from exc

    # iter_blocks: the base-class default (read the whole file, then slice) is used, since
    # pyxdf has no partial reader and de-jittering needs each stream's full time line.
