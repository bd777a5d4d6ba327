"""The biosigio-tabular schema: the ``biosigio`` JSON blob, the pandas index metadata, events.

One table per time grid: a column per channel (named by its label) and the time column, with
schema-metadata key ``biosigio`` holding ``{"format": "biosigio-tabular", "version": 1,
"metadata", "channels", "events"}`` exactly as biosigio 1.2 writes it, plus one extra key,
``"biosigio_lib"``, that biosigio ignores and we use for what its format cannot say (the grid's
name, t0 and dtypes of the event columns). A multi-grid archive is a folder of such files with
a small manifest (:data:`MANIFEST_NAME`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import _jsonsafe
from ..errors import ArchiveFormatError

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "COLUMN_LABELS_KEY",
    "COMPACT_VERSION",
    "EXTENSION_KEY",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FORMAT",
    "MANIFEST_NAME",
    "METADATA_KEY",
    "build_blob",
    "column_names",
    "decode_events",
    "encode_events",
    "index_column",
    "pandas_metadata",
    "parse_blob",
    "time_column_name",
]

METADATA_KEY = b"biosigio"
FORMAT = "biosigio-tabular"
FORMAT_VERSION = 1
#: The compact layout: integer columns (digital values, with their calibration in the blob),
#: no time column (time is ``t0 + row / rate``) and the blob zstd-compressed. It says version
#: 2, so a reader that does not know calibrations (biosigio 1.2 reads version 1 only) refuses
#: it rather than return ADC counts as if they were physical values.
COMPACT_VERSION = 2
READ_VERSIONS = (FORMAT_VERSION, COMPACT_VERSION)
_SMALL_BLOB = 1 << 18
#: A frozen preset dictionary for raw deflate: the keys every blob repeats. Tiny blobs (a few
#: KB) come out ~20 % smaller with it than with zstd; larger ones use zstd. Never change
#: these bytes: archives name the dictionary they were written with ("deflate-d1").
_DEFLATE_D1 = (
    b'{"format":"biosigio-tabular","version":2,"metadata":{"source_file":"","source_format":'
    b'"edf","start_time":{"__biosigio_type__":"datetime","value":""},"subject":null},'
    b'"channels":{"":{"sample_frequency":1.0,"physical_dimension":"uV","channel_type":"EEG",'
    b'"modality":"EEG","prefilter":"","transducer":"","physical_min":-1.0,"physical_max":1.0,'
    b'"digital_min":-32768,"digital_max":32767}},"events":[{"onset":0.0,"duration":0.0,'
    b'"description":""}],"biosigio_lib":{"version":1,"chunk_rows":65536,"grid":{"key":"",'
    b'"rate":1.0,"t0":0.0,"n_samples":0},"calibration":{"":{"gain":1.0,"baseline":0.0,'
    b'"divide":true,"missing":-32768}},"event_dtypes":[["onset","float64"],["duration",'
    b'"float64"],["description","str"]]}}')
_ENCODINGS = ("zstd+base85", "deflate-d1+base85")
#: Our key inside the blob (biosigio 1.2 reads only the keys it knows and ignores this one).
EXTENSION_KEY = "biosigio_lib"
EXTENSION_VERSION = 1
#: The manifest of a multi-grid archive folder.
MANIFEST_NAME = "biosigio-archive.json"
MANIFEST_FORMAT = "biosigio-archive"
#: Extension key mapping an escaped column name to its exact (non-UTF-8) channel label.
COLUMN_LABELS_KEY = "column_labels"
#: Time column candidates: pandas' own name for an unnamed index comes second.
_TIME_NAMES = ("time", "__index_level_0__", "__time__")


def time_column_name(labels: Sequence[str]) -> str:
    """The time column's name: ``time`` unless a channel already has that label."""
    taken = set(labels)
    for name in _TIME_NAMES:
        if name not in taken:
            return name
    i = 0
    while f"__time_{i}__" in taken:
        i += 1
    return f"__time_{i}__"


def column_names(labels: Sequence[str]) -> list[str]:
    """Parquet/Arrow column names for channel labels: the label itself when it is valid UTF-8,
    else its backslash-escaped form (``'Fz\\udce9'``), made unique with ``~1``, ``~2``...

    Arrow names must be UTF-8; a label decoded with surrogateescape (Latin-1 bytes) or holding
    a lone surrogate is kept exactly in the blob (:data:`COLUMN_LABELS_KEY`) instead.
    """
    taken = {lab for lab in labels if _jsonsafe.utf8_safe(lab)}
    names = []
    for lab in labels:
        if _jsonsafe.utf8_safe(lab):
            names.append(lab)
            continue
        base = lab.encode("utf-8", "backslashreplace").decode("utf-8")
        name, i = base, 0
        while name in taken:
            i += 1
            name = f"{base}~{i}"
        taken.add(name)
        names.append(name)
    return names


def pandas_metadata(labels: Sequence[str], dtypes: Sequence[np.dtype[Any]],
                    time_name: str) -> bytes:
    """The ``pandas`` schema metadata pyarrow would write, so pandas restores the time index."""
    import pyarrow as pa

    frame = pd.DataFrame({lab: np.empty(0, dtype=dt) for lab, dt in zip(labels, dtypes)},
                         index=pd.Index(np.empty(0, np.float64),
                                        name=None if time_name == "__index_level_0__"
                                        else time_name))
    meta = pa.Table.from_pandas(frame, preserve_index=True).schema.metadata
    return meta[b"pandas"]


# ----------------------------------------------------------------------------- events
def _column_values(series: pd.Series) -> list[Any]:
    """One event column as JSON values: NaN/NA -> null, other non-JSON values enveloped."""
    arr = series.to_numpy()
    if arr.dtype.kind == "f":
        values = arr.tolist()
        if not np.isfinite(arr).all():
            values = [None if v != v else (_jsonsafe.encode(v) if math.isinf(v) else v)
                      for v in values]
        return values
    if arr.dtype.kind in "biu":
        return arr.tolist()
    na = pd.isna(series).to_numpy()
    return [None if missing else _jsonsafe.encode(v) for v, missing in zip(arr.tolist(), na)]


def encode_events(events: pd.DataFrame) -> tuple[list[dict[str, Any]], list[list[str]]]:
    """Events as biosigio's list of records, plus ``[[column, dtype], ...]`` to restore types."""
    names = [str(c) for c in events.columns]
    dtypes = [[name, str(dt)] for name, dt in zip(names, events.dtypes)]
    if events.empty:
        return [], dtypes
    columns = [_column_values(events[c]) for c in events.columns]
    return [dict(zip(names, row)) for row in zip(*columns)], dtypes


def _typed_column(values: list[Any], dtype: str | None) -> Any:
    if dtype is None:
        return values
    try:
        return pd.Series(values, dtype=pd.api.types.pandas_dtype(dtype))
    except (TypeError, ValueError):
        return pd.Series(values, dtype=object)


def decode_events(rows: Sequence[Mapping[str, Any]],
                  dtypes: Sequence[Sequence[str]] | None) -> pd.DataFrame:
    """Rebuild the events table from decoded records, restoring each column's dtype."""
    if dtypes:
        names = [str(n) for n, _ in dtypes]
        kinds: dict[str, str | None] = {str(n): str(d) for n, d in dtypes}
    else:  # a biosigio 1.2 file: its three columns, then any others it kept
        names = ["onset", "duration", "description"]
        for row in rows:
            names += [k for k in row if k not in names]
        kinds = {"onset": "float64", "duration": "float64", "description": "str"}
    data = {name: _typed_column([row.get(name) for row in rows], kinds.get(name))
            for name in names}
    frame = pd.DataFrame(data, columns=names)
    if "onset" not in frame:
        frame["onset"] = np.empty(len(frame), np.float64)
    return frame


# ------------------------------------------------------------------------------- blob
def build_blob(metadata: Mapping[str, Any], channels: Mapping[str, Mapping[str, Any]],
               events: pd.DataFrame, extension: Mapping[str, Any],
               version: int = FORMAT_VERSION) -> bytes:
    """The ``biosigio`` schema-metadata value: strict JSON, typed envelopes for the rest."""
    records, event_dtypes = encode_events(events)
    blob = {
        "format": FORMAT,
        "version": version,
        "metadata": _jsonsafe.encode(dict(metadata)),
        "channels": _jsonsafe.encode({k: dict(v) for k, v in channels.items()}),
        "events": records,
        EXTENSION_KEY: {"version": EXTENSION_VERSION, **_jsonsafe.encode(dict(extension)),
                        "event_dtypes": event_dtypes},
    }
    text = json.dumps(blob, ensure_ascii=False, allow_nan=False,
                      separators=None if version == FORMAT_VERSION else (",", ":")).encode("utf-8")
    if version == FORMAT_VERSION:
        return text
    import pyarrow as pa

    level = 19 if len(text) < _SMALL_BLOB else 6  # small blobs (most) get the strongest level
    packed, encoding = pa.Codec("zstd", compression_level=level).compress(
        text, asbytes=True), _ENCODINGS[0]
    if len(text) < _SMALL_BLOB:
        deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zdict=_DEFLATE_D1)
        small = deflate.compress(text) + deflate.flush()
        if len(small) < len(packed):
            packed, encoding = small, _ENCODINGS[1]
    return json.dumps({"format": FORMAT, "version": version, "encoding": encoding,
                       "size": len(text), "data": base64.b85encode(packed).decode("ascii")},
                      separators=(",", ":")).encode("utf-8")


def _unpack(blob: dict[str, Any], where: str) -> Any:
    """The inner blob of a compact table (its metadata is compressed JSON)."""
    encoding = blob.get("encoding")
    if encoding not in _ENCODINGS:
        raise ArchiveFormatError(f"unknown blob encoding {encoding!r}", path=where)
    import pyarrow as pa

    try:
        data = base64.b85decode(blob["data"])
        if encoding == _ENCODINGS[0]:
            raw = pa.decompress(data, decompressed_size=int(blob["size"]), codec="zstd",
                                asbytes=True)
        else:
            inflate = zlib.decompressobj(-15, zdict=_DEFLATE_D1)
            raw = inflate.decompress(data) + inflate.flush()
            if len(raw) != int(blob["size"]) or not inflate.eof:
                raise ValueError("the deflate stream is incomplete")
        inner = json.loads(raw)
    except (KeyError, TypeError, ValueError, OSError, binascii.Error, zlib.error) as exc:
        raise ArchiveFormatError(f"the compressed 'biosigio' metadata is damaged ({exc})",
                                 path=where) from exc
    if not isinstance(inner, dict) or inner.get("version") != blob.get("version"):
        raise ArchiveFormatError("the compressed 'biosigio' metadata does not match its "
                                 "envelope", path=where)
    return inner


def parse_blob(schema_metadata: Mapping[bytes, bytes] | None, where: str) -> dict[str, Any]:
    """Parse and check the ``biosigio`` blob of a table; typed errors name the file."""
    raw = (schema_metadata or {}).get(METADATA_KEY)
    if raw is None:
        raise ArchiveFormatError(
            "not a biosigio archive: the Parquet/Arrow schema has no 'biosigio' metadata key "
            "(read plain tables with pyarrow, pandas, DuckDB or Polars instead)", path=where)
    try:
        blob = json.loads(raw)
    except ValueError as exc:
        raise ArchiveFormatError(f"the 'biosigio' metadata is not valid JSON: {exc}",
                                 path=where) from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        tag = blob.get("format") if isinstance(blob, dict) else type(blob).__name__
        raise ArchiveFormatError(f"unexpected tabular format tag {tag!r} (want {FORMAT!r})",
                                 path=where)
    if blob.get("version") not in READ_VERSIONS:
        raise ArchiveFormatError(
            f"unsupported biosigio-tabular version {blob.get('version')!r}; this build reads "
            f"versions {list(READ_VERSIONS)}: upgrade biosigio-pipeline", path=where)
    if "encoding" in blob:
        blob = _unpack(blob, where)
    ext = blob.get(EXTENSION_KEY) or {}
    if ext and ext.get("version") != EXTENSION_VERSION:
        raise ArchiveFormatError(
            f"unsupported {EXTENSION_KEY} extension version {ext.get('version')!r}; this build "
            f"reads version {EXTENSION_VERSION}", path=where)
    try:
        return {
            "metadata": _jsonsafe.decode(blob.get("metadata") or {}),
            "channels": _jsonsafe.decode(blob.get("channels") or {}),
            "events": _jsonsafe.decode(blob.get("events") or []),
            "extension": _jsonsafe.decode(ext),
            "version": blob["version"],
        }
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise ArchiveFormatError(f"a typed value in the 'biosigio' metadata cannot be "
                                 f"decoded ({type(exc).__name__}: {exc})", path=where) from exc


def index_column(schema: pa.Schema) -> str | None:
    """The time column named by the pandas metadata (None for a RangeIndex or none at all)."""
    raw = (schema.metadata or {}).get(b"pandas")
    if raw is None:
        return None
    try:
        cols = json.loads(raw).get("index_columns") or []
    except ValueError:
        return None
    return cols[0] if cols and isinstance(cols[0], str) else None
