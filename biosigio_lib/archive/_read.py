"""Read biosigio-tabular Parquet / Arrow IPC files and archive folders back into a Recording.

Only the chunks (Parquet row groups, Arrow record batches) that overlap the requested time
range and only the requested channel columns are read. Chunks are decoded by two workers
straight into the preallocated ``(n_channels, n_samples)`` grid arrays, so peak memory is the
data plus a few chunks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .._fs import Location, resolve
from ..calibration import Calibration
from ..errors import (
    ArchiveFormatError,
    CorruptFileError,
    FileReadError,
    InvalidChannelError,
    TruncatedFileError,
)
from ..lazy import LazySamples
from ..recording import CORE_CHANNEL_KEYS, Grid, Recording, _window, grid_key
from ._schema import (
    COLUMN_LABELS_KEY,
    COMPACT_VERSION,
    MANIFEST_FORMAT,
    MANIFEST_NAME,
    decode_events,
    index_column,
    parse_blob,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["archive_duration", "read_archive", "read_location"]

_MAGIC = {b"PAR1": "parquet", b"ARROW1": "arrow"}
_WORKERS = max(1, min(2, os.cpu_count() or 1))
#: Bytes one worker decodes per call: the reader's working memory beyond the output arrays.
_CALL_BYTES = 4 << 20


def _arrow_error(exc: Exception, where: str) -> FileReadError:
    text = str(exc)
    low = text.lower()
    if any(s in low for s in ("magic", "footer", "too small", "truncat", "unexpected end",
                              "expected to read", "out of bounds")):
        return TruncatedFileError(f"the file is truncated or incomplete ({text})", path=where)
    return CorruptFileError(f"could not read the table: {text}", path=where)


class _Source:
    """One table file: its schema, chunk boundaries, and per-worker chunk readers."""

    def __init__(self, loc: Location):
        self.loc = loc
        try:
            with loc.fs.open(loc.path, "rb") as fh:
                head = bytes(fh.read(6))
                size = fh.seek(0, 2)
                fh.seek(max(0, size - 6))
                tail = bytes(fh.read(6))
        except FileNotFoundError:
            raise FileReadError("no such file", path=loc.url) from None
        kind = _MAGIC.get(head[:4]) or _MAGIC.get(head[:6])
        if kind is None:
            raise ArchiveFormatError(
                "neither Parquet (PAR1) nor Arrow IPC (ARROW1) magic bytes at the start",
                path=loc.url)
        magic = b"PAR1" if kind == "parquet" else b"ARROW1"
        if size < 2 * len(magic) or not tail.endswith(magic):
            raise TruncatedFileError(
                f"the {kind} file is truncated: it does not end with its {magic!r} footer "
                "(an interrupted copy or write?)", path=loc.url)
        self.kind = kind
        self._meta: Any = None
        self.schema: Any = None
        self.mappable = False
        #: rows per chunk; None for Arrow batches until needed (see chunk_sizes)
        self.sizes: list[int] | None
        try:
            handle = self.open()
            if kind == "parquet":
                self._meta = handle.metadata
                self.schema = handle.schema_arrow
                self.sizes = [self._meta.row_group(i).num_rows
                              for i in range(self._meta.num_row_groups)]
            else:
                self.schema = handle.schema
                self.sizes = [] if handle.num_record_batches == 0 else None
                self._n_batches = handle.num_record_batches
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise _arrow_error(exc, loc.url) from exc
        self.blob = parse_blob(self.schema.metadata, loc.url)
        self.mappable = self.blob["extension"].get("arrow_compression", "?") is None

    def open(self, columns: list[str] | None = None) -> Any:
        """A fresh reader (one per worker: pyarrow readers are not shared across threads).

        Arrow files are memory-mapped when we wrote them uncompressed (zero-copy batches);
        compressed ones are read with plain IO and decode only ``columns``.
        """
        import pyarrow as pa

        if self.kind == "parquet":
            import pyarrow.parquet as pq

            src = self.loc.path if self.loc.is_local else self.loc.fs.open(self.loc.path, "rb")
            return pq.ParquetFile(src, metadata=self._meta, page_checksum_verification=True)
        options = None
        if columns is not None and self.schema is not None:
            options = pa.ipc.IpcReadOptions(
                included_fields=[self.schema.get_field_index(c) for c in columns])
        if not self.loc.is_local:
            source: Any = pa.BufferReader(self.loc.fs.cat_file(self.loc.path))
        elif self.mappable:
            source = pa.memory_map(self.loc.path, "r")
        else:
            source = pa.OSFile(self.loc.path, "rb")
        return pa.ipc.open_file(source, options=options)

    def chunk_sizes(self, chunk_rows: int | None, n_rows: int | None) -> list[int]:
        """Rows per chunk: Parquet knows; Arrow batches follow our ``chunk_rows`` or are read."""
        if self.sizes is not None:
            return self.sizes
        if chunk_rows and n_rows is not None:
            full, rest = divmod(n_rows, chunk_rows)
            sizes = [chunk_rows] * full + ([rest] if rest else [])
            if len(sizes) == self._n_batches:
                self.sizes = sizes
                return sizes
        handle = self.open(self.schema.names[-1:] or None)  # decode one column to count
        self.sizes = [handle.get_batch(i).num_rows for i in range(self._n_batches)]
        return self.sizes

    def read_chunk(self, handle: Any, i: int, columns: list[str]) -> pa.Table | pa.RecordBatch:
        try:
            # handle is the untyped reader of open(): a ParquetFile or an Arrow file reader
            if self.kind == "parquet":
                table: pa.Table = handle.read_row_group(i, columns=columns,
                                                        use_threads=_WORKERS == 1)
                return table
            batch: pa.RecordBatch = handle.get_batch(i).select(columns)
            return batch
        except (OSError, ValueError) as exc:
            raise _arrow_error(exc, self.loc.url) from exc


@dataclass
class _GridPlan:
    """What to read from one file: its grid, the kept labels, and the row window."""

    source: _Source
    key: str
    rate: float
    t0: float
    n_samples: int
    labels: list[str]
    channels: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: label -> its column name (they differ only for labels that are not valid UTF-8)
    columns: dict[str, str] = field(default_factory=dict)


def _foreign_grid(src: _Source, time_name: str | None) -> tuple[float, float]:
    """Rate and t0 of a file biosigio 1.2 wrote (from channel info and the time column)."""
    rates = {float(info["sample_frequency"]) for info in src.blob["channels"].values()
             if isinstance(info, dict) and info.get("sample_frequency") is not None}
    n = sum(src.chunk_sizes(None, None))
    times = None
    if time_name is not None and time_name in src.schema.names and n:
        first = src.read_chunk(src.open([time_name]), 0, [time_name]).column(0)
        times = first.to_numpy(zero_copy_only=False)[:2]
    t0 = float(times[0]) if times is not None else 0.0
    if len(rates) == 1:
        return rates.pop(), t0
    if times is not None and len(times) == 2 and times[1] > times[0]:
        return float(1.0 / (times[1] - times[0])), t0
    raise ArchiveFormatError(
        f"cannot tell the sampling rate: channels declare {sorted(rates)} Hz and the time "
        "column does not settle it", path=src.loc.url)


def _plan(src: _Source) -> _GridPlan | None:
    """The grid stored in one file (None for a file without channels)."""
    ext = src.blob["extension"]
    names = src.schema.names
    if len(set(names)) != len(names):
        raise ArchiveFormatError("the table repeats a column name", path=src.loc.url)
    time_name = ext.get("time_column") or index_column(src.schema)
    channels = src.blob["channels"]
    placeholder = ext.get("placeholder_column")
    cols = [n for n in names if n not in (time_name, placeholder)]
    missing = [n for n in cols if n not in channels]
    if missing:
        raise ArchiveFormatError(f"column(s) {missing[:5]} have no channel entry in the "
                                 "'biosigio' metadata", path=src.loc.url)
    grid = ext.get("grid")
    if grid is None and not cols:
        return None
    if grid is not None:
        key, rate, t0, n = str(grid["key"]), float(grid["rate"]), float(grid["t0"]), \
            int(grid["n_samples"])
        rows = sum(src.chunk_sizes(ext.get("chunk_rows"), n))
    else:
        rate, t0 = _foreign_grid(src, time_name)
        key, n = grid_key(rate), sum(src.chunk_sizes(None, None))
        rows = n
    if rows != n:
        raise ArchiveFormatError(f"the table has {rows} rows, its metadata says {n}",
                                 path=src.loc.url)
    escaped = ext.get(COLUMN_LABELS_KEY) or {}
    labels = [str(escaped.get(c, c)) for c in cols]
    if len(set(labels)) != len(labels):
        raise ArchiveFormatError(f"the '{COLUMN_LABELS_KEY}' metadata maps two columns to "
                                 "one channel label", path=src.loc.url)
    return _GridPlan(src, key, rate, t0, n, labels,
                     {lab: dict(channels[c]) for lab, c in zip(labels, cols)},
                     dict(zip(labels, cols)))


def _runs(labels: list[str], dtypes: dict[str, np.dtype[Any]],
          cals: dict[str, Calibration]) -> list[list[str]]:
    """Consecutive labels of one dtype and calibration state (each run becomes one block)."""
    runs: list[list[str]] = []
    for lab in labels:
        prev = runs[-1][-1] if runs else None
        if prev is not None and dtypes[prev] == dtypes[lab] and (prev in cals) == (lab in cals):
            runs[-1].append(lab)
        else:
            runs.append([lab])
    return runs


def _numpy_dtype(src: _Source, label: str) -> np.dtype[Any]:
    typ = src.schema.field(label).type
    try:
        dtype: np.dtype[Any] = np.dtype(typ.to_pandas_dtype())
    except (NotImplementedError, TypeError) as exc:
        raise ArchiveFormatError(f"column {label!r} has the non-numeric type {typ}",
                                 path=src.loc.url) from exc
    return dtype


def _read_rows(plan: _GridPlan, labels: list[str], i0: int, i1: int,
               outs: dict[str, tuple[np.ndarray, int]]) -> None:
    """Fill ``outs[label] = (array, row)`` with rows ``[i0, i1)``: two workers decode a chunk
    and a group of columns at a time (~8 MiB) straight into the outputs."""
    src = plan.source
    sizes = src.chunk_sizes(None, None)
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
    todo = [(i, starts[i], max(starts[i], i0), min(starts[i + 1], i1))
            for i in range(len(sizes)) if starts[i + 1] > i0 and starts[i] < i1]
    if not todo or not labels:
        return
    widest = max(sizes[i] for i, *_ in todo) * max(outs[lab][0].itemsize for lab in labels)
    per_call = max(1, _CALL_BYTES // max(widest, 1))
    groups = [labels[k : k + per_call] for k in range(0, len(labels), per_call)]
    tasks = [(chunk, g) for chunk in todo for g in range(len(groups))]

    def work(part: list[tuple[tuple[int, int, int, int], int]]) -> None:
        handles: dict[int | None, Any] = {}
        per_group = src.kind == "arrow" and not src.mappable  # decode only these columns
        for (i, start, lo, hi), g in part:
            cols = groups[g]
            key = g if per_group else None
            if key not in handles:
                handles[key] = src.open([plan.columns[lab] for lab in cols] if per_group
                                        else None)
            table = src.read_chunk(handles[key], i, [plan.columns[lab] for lab in cols])
            for j, lab in enumerate(cols):
                out, row = outs[lab]
                col = table.column(j)
                if col.null_count and out.dtype.kind != "f":
                    raise ArchiveFormatError(f"column {lab!r} has missing values",
                                             path=src.loc.url)
                out[row, lo - i0 : hi - i0] = col.to_numpy(zero_copy_only=False)[
                    lo - start : hi - start]

    n_workers = min(_WORKERS, len(tasks))
    if n_workers == 1:
        work(tasks)
        return
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(pool.map(work, [tasks[k::n_workers] for k in range(n_workers)]))


def _calibrations(plan: _GridPlan, labels: list[str],
                  dtypes: dict[str, np.dtype[Any]]) -> dict[str, Calibration]:
    """The calibrations a version-2 table declares for its integer columns, checked."""
    src = plan.source
    raw = src.blob["extension"].get("calibration") or {}
    if raw and src.blob.get("version") != COMPACT_VERSION:
        raise ArchiveFormatError("the table declares calibrations but is not a version-"
                                 f"{COMPACT_VERSION} table", path=src.loc.url)
    if not isinstance(raw, dict):
        raise ArchiveFormatError("the calibration entry is not a mapping", path=src.loc.url)
    out: dict[str, Calibration] = {}
    for lab in labels:
        col = plan.columns.get(lab, lab)
        if col not in raw:
            continue
        if dtypes[lab].kind not in "iu":
            raise ArchiveFormatError(f"column {lab!r} is calibrated but holds {dtypes[lab]}, "
                                     "not integers", path=src.loc.url)
        try:
            out[lab] = Calibration.from_json(raw[col])
        except (InvalidChannelError, AttributeError) as exc:
            raise ArchiveFormatError(f"column {lab!r}: {exc}", path=src.loc.url) from None
    return out


class ArchiveSamples(LazySamples):
    """Channels ``labels`` (one dtype) of an archive table, rows ``[i0, i0 + n)``: a window
    decodes only the row groups / record batches that hold it."""

    def __init__(self, plan: _GridPlan, labels: list[str], dtype: np.dtype[Any], i0: int,
                 n: int):
        super().__init__(len(labels), n, dtype)
        self.plan, self.labels, self.i0 = plan, list(labels), i0

    def read(self, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
        labels = self.labels if rows is None else [self.labels[int(r)] for r in rows]
        out = np.empty((len(labels), max(0, stop - start)), dtype=self.dtype)
        if stop > start and labels:
            _read_rows(self.plan, labels, self.i0 + start, self.i0 + stop,
                       {lab: (out, r) for r, lab in enumerate(labels)})
        return out


def _add_grid(rec: Recording, plan: _GridPlan, wanted: set[str] | None,
              tmin: float | None, tmax: float | None, lazy: bool = False) -> None:
    labels = [lab for lab in plan.labels if wanted is None or lab in wanted]
    if not labels:
        return
    i0, i1 = _window(Grid(plan.key, plan.rate, plan.n_samples, plan.t0), tmin, tmax)
    t0 = plan.t0 + i0 / plan.rate if i0 else plan.t0  # exactly as Recording.select
    dtypes = {lab: _numpy_dtype(plan.source, plan.columns[lab]) for lab in labels}
    cals = _calibrations(plan, labels, dtypes)
    runs = _runs(labels, dtypes, cals)
    blocks: list[Any]
    if lazy:
        blocks = [ArchiveSamples(plan, run, dtypes[run[0]], i0, i1 - i0) for run in runs]
    else:
        blocks = [np.empty((len(run), i1 - i0), dtype=dtypes[run[0]]) for run in runs]
        outs = {lab: (block, r) for run, block in zip(runs, blocks)
                for r, lab in enumerate(run)}
        _read_rows(plan, labels, i0, i1, outs)
    for run, block in zip(runs, blocks):
        infos = [plan.channels[lab] for lab in run]
        rec.add_channels(run, block, plan.rate,
                         [str(i.get("physical_dimension") or "") for i in infos],
                         [str(i.get("channel_type") or "MISC") for i in infos],
                         prefilters=[str(i.get("prefilter") or "") for i in infos],
                         t0=t0, grid=plan.key,
                         calibration=[cals[lab] for lab in run] if run[0] in cals else None)
        for lab, info in zip(run, infos):  # the stored info wins; core keys always present
            made = rec.channels[lab]
            out = dict(info)
            declared = info.get("sample_frequency")
            if declared is not None and float(declared) != plan.rate:
                out["declared_sample_frequency"] = declared
            out["sample_frequency"] = plan.rate
            for k in CORE_CHANNEL_KEYS:
                out.setdefault(k, made[k])
            rec.channels[lab] = out


def _sources(loc: Location) -> tuple[list[_Source], list[str] | None, list[dict[str, Any]]]:
    """The table files of an archive (one, or one per grid of a folder), the channel order
    and the manifest's grid entries (empty for a single file)."""
    if not loc.fs.isdir(loc.path):
        return [_Source(loc)], None, []
    man_loc = loc.child(MANIFEST_NAME)
    try:
        with loc.fs.open(man_loc.path, "rb") as fh:
            manifest = json.loads(fh.read())
    except FileNotFoundError:
        raise ArchiveFormatError(f"a folder without {MANIFEST_NAME} is not a biosigio archive",
                                 path=loc.url) from None
    except ValueError as exc:
        raise ArchiveFormatError(f"{MANIFEST_NAME} is not valid JSON: {exc}",
                                 path=loc.url) from exc
    except OSError as exc:
        raise ArchiveFormatError(f"{MANIFEST_NAME} could not be read: {exc}",
                                 path=loc.url) from exc
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise ArchiveFormatError(f"{MANIFEST_NAME} is not a {MANIFEST_FORMAT} manifest",
                                 path=loc.url)
    if manifest.get("version") != 1:
        raise ArchiveFormatError(f"unsupported archive manifest version "
                                 f"{manifest.get('version')!r} (this build reads 1)", path=loc.url)
    entries = _manifest_grids(manifest, loc)
    order = manifest.get("channel_order")
    return ([_Source(loc.child(g["file"])) for g in entries],
            [str(c) for c in order] if isinstance(order, list) else None, entries)


def _manifest_grids(manifest: dict[str, Any], loc: Location) -> list[dict[str, Any]]:
    """The manifest's grid entries, checked: a list of plain, distinct file names."""
    def damaged(why: str) -> ArchiveFormatError:
        return ArchiveFormatError(f"{MANIFEST_NAME} is damaged: {why}", path=loc.url)

    grids = manifest.get("grids")
    if not isinstance(grids, list) or not grids:
        raise damaged("'grids' must be a non-empty list of grid files")
    files = []
    for g in grids:
        name = g.get("file") if isinstance(g, dict) else None
        if (not isinstance(name, str) or name in ("", ".", "..") or "/" in name
                or "\\" in name):
            raise damaged(f"grid entry {g!r} does not name a file in the folder")
        files.append(name)
    if len(set(files)) != len(files):
        raise damaged(f"a grid file is listed more than once ({files})")
    return grids


def _check_against_manifest(loc: Location, plans: list[_GridPlan],
                            entries: list[dict[str, Any]], order: list[str] | None) -> None:
    """Each grid file holds the grid its manifest entry describes, and no channel is lost."""
    if not entries:
        return
    by_url = {p.source.loc.url: p for p in plans}
    for entry in entries:
        plan = by_url.get(loc.child(entry["file"]).url)
        labels = entry.get("labels")
        got = plan.labels if plan is not None else []
        if isinstance(labels, list) and [str(x) for x in labels] != got:
            raise ArchiveFormatError(
                f"{entry['file']} holds channels {got[:5]}, but {MANIFEST_NAME} lists "
                f"{labels[:5]} for it (a file replaced or mixed up?)", path=loc.url)
    found = [lab for p in plans for lab in p.labels]
    if order is not None and sorted(order) != sorted(found):
        lost = sorted(set(order) - set(found))
        raise ArchiveFormatError(
            f"{MANIFEST_NAME} lists channel(s) {lost[:5]} that no grid file holds "
            f"(a grid file missing from the manifest?)" if lost else
            f"the grid files hold channels {sorted(set(found) - set(order))[:5]} that "
            f"{MANIFEST_NAME} does not list", path=loc.url)


def read_location(loc: Location, channels: Iterable[str] | None = None,
                  tmin: float | None = None, tmax: float | None = None,
                  lazy: bool = False) -> Recording:
    """Read an archive file or folder at a resolved location (see :func:`read_archive`);
    ``lazy`` leaves the samples in the file, read a window at a time when used."""
    sources, order, entries = _sources(loc)
    plans = [p for p in (_plan(s) for s in sources) if p is not None]
    _check_against_manifest(loc, plans, entries, order)
    first = sources[0].blob
    all_labels = [lab for p in plans for lab in p.labels]
    if len(set(all_labels)) != len(all_labels):
        raise ArchiveFormatError("a channel label is stored in more than one grid file",
                                 path=loc.url)
    if order is None or sorted(order) != sorted(all_labels):
        order = all_labels
    wanted = None if channels is None else list(channels)
    if wanted is not None:
        if isinstance(channels, str):
            raise TypeError("channels must be a list of labels, not one string")
        missing = [c for c in wanted if c not in set(all_labels)]
        if missing:
            raise KeyError(f"{loc.url}: no channel(s) {missing}; channels: {all_labels[:20]}")
    rec = Recording(first["metadata"])
    for plan in plans:
        _add_grid(rec, plan, None if wanted is None else set(wanted), tmin, tmax, lazy)
    keep = wanted if wanted is not None else order
    rec.channels = {lab: rec.channels[lab] for lab in keep}
    events = decode_events(first["events"], first["extension"].get("event_dtypes"))
    if tmin is not None or tmax is not None:  # the same rule as Recording.select
        mask = np.ones(len(events), dtype=bool)
        onset = events["onset"].to_numpy(dtype=np.float64)
        if tmin is not None:
            mask &= onset + events["duration"].fillna(0).to_numpy(dtype=np.float64) >= tmin
        if tmax is not None:
            mask &= onset < tmax
        events = events[mask].reset_index(drop=True)
    rec.events = events
    return rec


def archive_duration(loc: Location) -> float:
    """The end time (s) of the longest grid, from the metadata alone (no samples read)."""
    plans = [p for p in (_plan(s) for s in _sources(loc)[0]) if p is not None]
    return max((p.t0 + p.n_samples / p.rate for p in plans), default=0.0)


def read_archive(path: str | os.PathLike[str], channels: Iterable[str] | None = None,
                 tmin: float | None = None, tmax: float | None = None, *,
                 storage_options: dict[str, Any] | None = None) -> Recording:
    """Read a biosigio-tabular Parquet/Arrow file or archive folder, optionally a subset.

    ``channels`` picks columns and ``[tmin, tmax)`` (seconds) picks rows, with the same rule
    as :meth:`Recording.select`; only the overlapping row groups / batches are decoded.
    """
    return read_location(resolve(path, storage_options), channels, tmin, tmax)
