"""The archive's public API: write a Recording as biosigio-tabular Parquet or Arrow IPC
(Feather v2), one table per grid, and read it back (reading lives in ``_read.py``).

A single-grid (or channel-less) recording is one plain file; several grids make a folder with
one self-describing file per grid and a manifest. Tables are built from the recording's own
arrays without copying (each channel row is contiguous), written under a temporary name and
renamed into place.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._fs import Location, atomic_target, resolve
from ..errors import InvalidChannelError, WriteError
from ._read import read_archive
from ._schema import (
    COLUMN_LABELS_KEY,
    COMPACT_VERSION,
    FORMAT_VERSION,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    METADATA_KEY,
    build_blob,
    column_names,
    pandas_metadata,
    time_column_name,
)

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ..recording import Grid, Recording

__all__ = ["DEFAULT_CHUNK_ROWS", "read_archive", "write_arrow", "write_parquet"]

#: Rows per Parquet row group / Arrow record batch: ~65 s at 1 kHz, so a time range touches
#: few of them, and the reader's working buffer stays a small fraction of the data.
DEFAULT_CHUNK_ROWS = 65_536
PARQUET_COMPRESSION = "lz4"
#: Arrow IPC is written uncompressed by default, so readers memory-map it (zero-copy); lz4
#: saved under 1 % on float64 signals and halves the write speed (see docs/archive.md).
ARROW_COMPRESSION: str | None = None
#: Integer (digital) samples compress well: zstd halves a typical EEG/ECG file.
ARROW_COMPACT_COMPRESSION = "zstd"
_SUFFIX = {"parquet": ".parquet", "arrow": ".arrow"}


def is_compact(rec: Recording) -> bool:
    """Whether ``rec`` is archived in the compact layout (version 2): any channel stored as
    digital values with a calibration, or no channels at all (events only). Any other
    recording keeps the biosigio 1.2 layout (version 1, float time column)."""
    return not rec.channels or rec.is_calibrated


@dataclass
class _GridTable:
    """One grid's table, streamed: its schema (with the metadata) and its record batches.

    Batches are ``chunk_rows`` rows (one Parquet row group / Arrow record batch each), read
    from the grid's blocks a window at a time, so a file-backed recording is written with
    the memory of one window; an in-memory one through the same path (views, no copies).
    """

    schema: pa.Schema
    grid: Grid | None
    chunk_rows: int
    time: bool  # the version-1 float64 time column

    def batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        g = self.grid
        n = g.n_samples if g is not None else 0
        for i0 in range(0, n, self.chunk_rows):
            i1 = min(n, i0 + self.chunk_rows)
            rows: dict[str, np.ndarray] = {}
            assert g is not None
            for labels, arr, _ in g.stored_blocks():
                window = arr[:, i0:i1]
                rows.update(zip(labels, window))
            cols = [pa.array(rows[lab]) for lab in g.labels]
            if self.time:  # the same operations as Grid.times, on this window
                t = np.arange(i0, i1, dtype=np.float64) / g.rate
                cols.append(pa.array(t + g.t0 if g.t0 else t))
            yield pa.RecordBatch.from_arrays(cols, schema=self.schema)


def _grid_table(rec: Recording, grid: Grid | None, events: pd.DataFrame, chunk_rows: int,
                extension_extra: Mapping[str, Any], compact: bool) -> _GridTable:
    """One grid's table: channel columns as stored, plus, in the version-1 layout, the
    float64 time column."""
    import pyarrow as pa

    labels = list(grid.labels) if grid is not None else []
    names = column_names(labels)  # = labels unless a label is not valid UTF-8
    dtypes = [grid.stored_dtypes[lab] for lab in labels] if grid is not None else []
    ext: dict[str, Any] = {"chunk_rows": chunk_rows, **extension_extra}
    if grid is not None:
        ext["grid"] = {"key": grid.key, "rate": grid.rate, "t0": grid.t0,
                       "n_samples": grid.n_samples}
    cals = grid.calibrations if grid is not None else {}
    if cals:
        ext["calibration"] = {name: cals[lab].to_json() for name, lab in zip(names, labels)
                              if lab in cals}
    escaped = {name: lab for name, lab in zip(names, labels) if name != lab}
    if escaped:
        ext[COLUMN_LABELS_KEY] = escaped
    fields = [pa.field(name, pa.from_numpy_dtype(dt), nullable=False)
              for name, dt in zip(names, dtypes)]
    channels = {name: rec.channels[lab] for name, lab in zip(names, labels)}
    if compact:
        if not fields:  # a table needs a column to say how many rows it has (none)
            fields = [pa.field("__empty__", pa.int8())]
            ext["placeholder_column"] = "__empty__"
        blob = build_blob(rec.metadata, channels, events, ext, version=COMPACT_VERSION)
        return _GridTable(pa.schema(fields, metadata={METADATA_KEY: blob}), grid, chunk_rows,
                          time=False)
    time_name = time_column_name(names)
    ext["time_column"] = time_name
    blob = build_blob(rec.metadata, channels, events, ext)
    fields.append(pa.field(time_name, pa.float64(), nullable=False))
    schema = pa.schema(fields, metadata={
        b"pandas": pandas_metadata(names, dtypes, time_name), METADATA_KEY: blob})
    return _GridTable(schema, grid, chunk_rows, time=True)


def _parquet_options(schema: pa.Schema, compact: bool) -> dict[str, Any]:
    """Encodings and codecs per column kind, chosen on the real corpus (``bench/README.md``).

    Integers: delta-encoded (DELTA_BINARY_PACKED) then lz4, about half of the source
    EDF/WFDB bytes (zstd level 1 saves under 2 % more on the real corpus and writes ~20 %
    slower). Floats: byte-stream-split then lz4, smaller and faster than plain
    lz4. The compact layout drops statistics and the Arrow schema copy; version 1 keeps
    statistics on the time column so time-range predicates prune row groups.
    """
    import pyarrow as pa

    encoding: dict[str, str] = {}
    codec: dict[str, str] = {}
    for f in schema:
        if pa.types.is_integer(f.type):
            encoding[f.name], codec[f.name] = "DELTA_BINARY_PACKED", "lz4"
        elif pa.types.is_floating(f.type):
            encoding[f.name], codec[f.name] = "BYTE_STREAM_SPLIT", PARQUET_COMPRESSION
        else:
            codec[f.name] = PARQUET_COMPRESSION
    kw: dict[str, Any] = {"compression": codec,
                          "use_dictionary": False, "column_encoding": encoding or None}
    if compact:
        return {**kw, "write_statistics": False, "store_schema": False}
    return {**kw, "write_statistics": [schema.names[-1]]}


def _write_parquet_table(table: _GridTable, loc: Location, chunk_rows: int,
                         options: Mapping[str, Any], compact: bool) -> None:
    import pyarrow.parquet as pq

    kw: dict[str, Any] = {
        **_parquet_options(table.schema, compact),
        "write_page_checksum": True,  # a flipped byte is an error on read, not wrong samples
        **options,
    }
    if "column_encoding" not in options and (kw.get("use_dictionary")
                                             or "use_byte_stream_split" in options):
        kw.pop("column_encoding")  # the caller chose the encodings; pyarrow refuses both

    kw.pop("row_group_size", None)  # a row group is one batch of chunk_rows rows

    def dump(sink: Any) -> None:
        # Without the Arrow schema copy pyarrow would drop the key-value metadata too: the
        # compact layout adds it to the footer itself (the blob is then stored once).
        own_meta = not kw.get("store_schema", True)
        schema = table.schema.remove_metadata() if own_meta else table.schema
        with pq.ParquetWriter(sink, schema, **kw) as writer:
            for batch in table.batches():
                writer.write_batch(batch.replace_schema_metadata(None) if own_meta else batch,
                                   row_group_size=chunk_rows)
            if own_meta:
                # pyarrow-stubs want str keys/values; pyarrow takes the schema's bytes as they are
                writer.add_key_value_metadata(
                    dict(table.schema.metadata or {}))  # type: ignore[arg-type]

    if loc.is_local:
        dump(loc.path)
    else:
        with loc.fs.open(loc.path, "wb") as fh:
            dump(fh)


def _write_arrow_table(table: _GridTable, loc: Location, chunk_rows: int,
                       options: Mapping[str, Any], compact: bool) -> None:
    import pyarrow as pa

    opts = dict(options)
    compression = opts.pop("compression", "auto")
    if compression == "auto":
        compression = ARROW_COMPACT_COMPRESSION if compact else ARROW_COMPRESSION
    ipc = pa.ipc.IpcWriteOptions(compression=compression, use_threads=True, **opts)

    def dump(sink: Any) -> None:
        with pa.ipc.new_file(sink, table.schema, options=ipc) as writer:
            for batch in table.batches():
                writer.write_batch(batch)

    if loc.is_local:
        with pa.OSFile(loc.path, "wb") as sink:
            dump(sink)
    else:
        with loc.fs.open(loc.path, "wb") as fh:
            dump(fh)


_WRITERS = {"parquet": _write_parquet_table, "arrow": _write_arrow_table}


def _file_name(i: int, key: str, container: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:64] or "grid"  # grid{i} is unique
    return f"grid{i:02d}_{safe}{_SUFFIX[container]}"


def _arrow_compression(options: Mapping[str, Any], compact: bool) -> str | None:
    c = options.get("compression", "auto")
    return (ARROW_COMPACT_COMPRESSION if compact else ARROW_COMPRESSION) if c == "auto" else c


def _write(rec: Recording, path: str | os.PathLike[str], container: str, *, overwrite: bool,
           storage_options: Mapping[str, Any] | None, chunk_rows: int,
           options: Mapping[str, Any]) -> str:
    if int(chunk_rows) < 1:
        raise ValueError(f"chunk_rows must be >= 1, got {chunk_rows!r}")
    chunk_rows = int(chunk_rows)
    loc = resolve(path, storage_options)
    grids = list(rec.grids.values())
    write_one = _WRITERS[container]
    compact = is_compact(rec)
    extra = ({"arrow_compression": _arrow_compression(options, compact)}
             if container == "arrow" else {})
    try:
        with atomic_target(loc, overwrite=overwrite, marker=MANIFEST_NAME) as tmp:
            if len(grids) <= 1:
                grid = grids[0] if grids else None
                write_one(_grid_table(rec, grid, rec.events, chunk_rows, extra, compact), tmp,
                          chunk_rows, options, compact)
                return loc.url
            _write_folder(rec, grids, tmp, container, chunk_rows, options, extra, compact)
    except (InvalidChannelError, ValueError, TypeError, FileExistsError, WriteError):
        raise
    except OSError as exc:
        raise WriteError(f"writing the {container} archive failed: {exc}", path=loc.url) from exc
    return loc.url


def _write_folder(rec: Recording, grids: list[Grid], tmp: Location, container: str,
                  chunk_rows: int, options: Mapping[str, Any],
                  extra: Mapping[str, Any], compact: bool) -> None:
    """One file per grid (two at a time: pyarrow releases the GIL) plus the manifest."""
    tmp.fs.makedirs(tmp.path, exist_ok=True)
    names = [_file_name(i, g.key, container) for i, g in enumerate(grids)]
    order = list(rec.channels)
    write_one = _WRITERS[container]
    events = rec.events  # once, here: the property flushes pending events (not thread-safe)

    def one(i: int) -> None:
        table = _grid_table(rec, grids[i], events, chunk_rows,
                            {**extra, "archive_file": names[i]}, compact)
        write_one(table, tmp.child(names[i]), chunk_rows, options, compact)

    with ThreadPoolExecutor(max_workers=min(2, os.cpu_count() or 1)) as pool:
        list(pool.map(one, range(len(grids))))
    manifest = {
        "format": MANIFEST_FORMAT, "version": FORMAT_VERSION, "container": container,
        "channel_order": order,
        "grids": [{"file": name, "key": g.key, "rate": g.rate, "t0": g.t0,
                   "n_samples": g.n_samples, "labels": list(g.labels)}
                  for name, g in zip(names, grids)],
    }
    try:
        text = json.dumps(manifest, ensure_ascii=False, allow_nan=False, indent=1).encode("utf-8")
    except UnicodeEncodeError:  # a label that is not valid UTF-8: \uXXXX escapes keep it
        text = json.dumps(manifest, ensure_ascii=True, allow_nan=False, indent=1).encode("ascii")
    with tmp.fs.open(tmp.child(MANIFEST_NAME).path, "wb") as fh:
        fh.write(text)


def write_parquet(rec: Recording, path: str | os.PathLike[str], *, overwrite: bool = False,
                  storage_options: Mapping[str, Any] | None = None,
                  chunk_rows: int = DEFAULT_CHUNK_ROWS, **parquet_options: Any) -> str:
    """Write the lossless Parquet archive (a file, or a folder for several grids); its URL.

    ``parquet_options`` go to :func:`pyarrow.parquet.write_table` (e.g. ``compression='zstd'``).
    """
    return _write(rec, path, "parquet", overwrite=overwrite, storage_options=storage_options,
                  chunk_rows=chunk_rows, options=parquet_options)


def write_arrow(rec: Recording, path: str | os.PathLike[str], *, overwrite: bool = False,
                storage_options: Mapping[str, Any] | None = None,
                chunk_rows: int = DEFAULT_CHUNK_ROWS, compression: str | None = "auto",
                **ipc_options: Any) -> str:
    """Write the lossless Arrow IPC (Feather v2) archive.

    ``compression='auto'`` is zstd for the compact layout (integer samples) and none for
    float recordings, which readers then memory-map; ``None`` forces uncompressed.
    """
    if compression in ("uncompressed", "none"):
        compression = None
    return _write(rec, path, "arrow", overwrite=overwrite, storage_options=storage_options,
                  chunk_rows=chunk_rows,
                  options={"compression": compression, **ipc_options})
