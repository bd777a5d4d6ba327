"""Reading serving stores: level 0 as a Recording, view levels for drawing, group listing.

Reads touch only the chunks (inner chunks of shards) that cover the selected time range.
Stores written by biosigio 1.2 read too (no ``info``/``t0``/NaN code: defaults apply).
An events-only store (no signal groups) reads as a Recording with no channels.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _jsonsafe
from .._fs import Location, resolve
from ..errors import ArchiveFormatError, MixedSamplingRateError
from ..recording import Recording, make_unique_labels
from . import layout
from .quantize import dequantize

if TYPE_CHECKING:
    from .layout import StoreLike

__all__ = ["StoreGroup", "ViewData", "list_groups", "open_group", "pick_view_level",
           "read_events", "read_view", "read_zarr", "view_level_for"]

#: Per-channel provenance keys the reader adds to ``rec.channels[label]``.
PROVENANCE_KEYS: tuple[str, ...] = (
    "original_rate", "scale", "offset", "anti_aliased", "usable_for_inference",
    "nonfinite_samples", "nan_samples", "max_abs_error", "exact",
)


def _open_root(where: StoreLike, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    import zarr

    store, url = layout.open_store(where, storage_options, read_only=True)
    try:
        root = zarr.open_group(store=store, mode="r", zarr_format=3)  # no v2 probes
    except (FileNotFoundError, KeyError, ValueError) as exc:
        raise ArchiveFormatError(f"not a Zarr v3 store ({exc})", path=url) from exc
    except Exception as exc:
        if type(exc).__name__ in ("GroupNotFoundError", "NodeTypeValidationError"):
            raise ArchiveFormatError(f"not a Zarr v3 group ({exc})", path=url) from exc
        raise
    _check_root(root.attrs.asdict(), url)
    return root, url


def _check_root(attrs: dict[str, Any], url: str) -> None:
    """Raise unless the root attrs are those of a complete store this reader knows."""
    if attrs.get("format") != layout.FORMAT:
        raise ArchiveFormatError(
            f"not a complete biosigio Zarr store: root attr 'format' is "
            f"{attrs.get('format')!r} (expected {layout.FORMAT!r}; an interrupted write "
            "never sets it)", path=url)
    version = attrs.get("format_version", 1)
    if not isinstance(version, int | float) or int(version) != version or \
            int(version) > layout.FORMAT_VERSION:
        raise ArchiveFormatError(
            f"unsupported biosigio Zarr format_version {version!r} (this reader knows up to "
            f"{layout.FORMAT_VERSION})", path=url)


def _group_names(root: Any) -> list[str]:
    names = root.attrs.asdict().get("channel_groups")
    if isinstance(names, list) and names:
        return [str(n) for n in names]
    return sorted(k for k in root.group_keys() if k != "events")


def list_groups(where: StoreLike, storage_options: dict[str, Any] | None = None) -> list[str]:
    """The channel groups of a store (``eeg_250hz``, ...), in the order they were written."""
    root, _ = _open_root(where, storage_options)
    return _group_names(root)


def _select(root: Any, group: str | None, url: str) -> str:
    names = _group_names(root)
    if not names:
        what = "no signal groups (an events-only store: read_zarr gives its events)"
        if group is not None:
            raise KeyError(f"{url}: no group {group!r}; the store has {what}")
        raise ValueError(f"{url}: the store has {what}")
    if group is None:
        if len(names) > 1:
            raise MixedSamplingRateError(
                f"the store has {len(names)} channel groups {names}; pass group=<name> "
                "to read one", path=url)
        return names[0]
    if group not in names:
        raise KeyError(f"{url}: no group {group!r}; groups: {names}")
    return group


@dataclass
class StoreGroup:
    """An opened group: its attrs, level-0 array and per-channel dequantisation."""

    url: str
    root: Any
    name: str
    attrs: dict[str, Any]
    a0: Any
    labels: list[str]
    entries: list[dict[str, Any]]
    scale: np.ndarray
    offset: np.ndarray
    nan_code: int | None
    rate: float
    t0: float
    loc: Location | None = None

    @property
    def n_samples(self) -> int:
        return int(self.a0.shape[1])

    def rows(self, channels: Any) -> tuple[list[int], list[str]]:
        """Row indices and labels for ``channels`` (None: all), in the order asked."""
        if channels is None:
            return list(range(len(self.labels))), list(self.labels)
        if isinstance(channels, str):
            channels = [channels]
        pos = {lab: i for i, lab in enumerate(self.labels)}
        missing = [c for c in channels if c not in pos]
        if missing:
            raise KeyError(f"{self.url}: no channel(s) {missing} in group {self.name!r}; "
                           f"channels: {self.labels[:20]}")
        return [pos[c] for c in channels], list(channels)

    def window(self, tmin: float | None, tmax: float | None, n: int | None = None,
               per: float = 1.0) -> tuple[int, int]:
        """Index range whose times ``t0 + i * per / rate`` fall in ``[tmin, tmax)``."""
        n = self.n_samples if n is None else n
        step = per / self.rate

        def idx(t: float) -> int:
            return int(np.clip(math.ceil((t - self.t0) / step - 1e-9), 0, n))

        i0 = 0 if tmin is None else idx(tmin)
        i1 = n if tmax is None else idx(tmax)
        return i0, max(i0, i1)


def open_group(where: StoreLike, group: str | None = None,
               storage_options: dict[str, Any] | None = None) -> StoreGroup:
    """Open one group of a store (the only one when ``group`` is None)."""
    return _open_group_in(*_open_root(where, storage_options), where, group, storage_options)


def _open_group_in(root: Any, url: str, where: StoreLike, group: str | None,
                   storage_options: dict[str, Any] | None) -> StoreGroup:
    from zarr.abc.store import Store

    name = _select(root, group, url)
    grp = root[name]
    attrs = grp.attrs.asdict()
    a0 = grp["0"]
    a0_attrs = a0.attrs.asdict()
    entries = sorted(attrs.get("channels", []), key=lambda e: int(e.get("row_index", 0)))
    labels, _ = make_unique_labels([str(e["label"]) for e in entries])
    scale, offset, nan_code = _dequant_params(a0_attrs, entries, int(a0.shape[0]),
                                              np.dtype(a0.dtype))
    loc = None
    if not isinstance(where, Store):
        loc = resolve(where, storage_options).child(name).child("0")
    return StoreGroup(url, root, name, attrs, a0, labels, entries, scale, offset,
                      nan_code, float(attrs["rate"]),
                      float(attrs.get("t0", 0.0)), loc)


def _dequant_params(a0_attrs: dict[str, Any], entries: list[dict[str, Any]], n_ch: int,
                    dtype: np.dtype[Any]) -> tuple[np.ndarray, np.ndarray, int | None]:
    """Per-row float64 scale and offset and the NaN code (integer levels only) of level 0
    from its attrs (stores of biosigio 1.2: the channel entries)."""
    scale = np.asarray(a0_attrs.get("scale", [e.get("scale", 1.0) for e in entries]),
                       dtype=np.float64).reshape(n_ch)
    offset = np.asarray(a0_attrs.get("offset", [e.get("offset", 0.0) for e in entries]),
                        dtype=np.float64).reshape(n_ch)
    nan_code = a0_attrs.get("nan_code") if dtype.kind == "i" else None
    return scale, offset, None if nan_code is None else int(nan_code)


def _read_rows(arr: Any, rows: list[int], n_ch: int, sl: slice, lead: tuple[Any, ...] = ()
               ) -> np.ndarray:
    if rows == list(range(n_ch)):
        return np.asarray(arr[(*lead, slice(None), sl)])
    return np.asarray(arr.get_orthogonal_selection((*lead, rows, sl)))


def _physical(sg: StoreGroup, digital: np.ndarray, rows: list[int],
              out: np.ndarray | None = None) -> np.ndarray:
    scale, offset = sg.scale[rows], sg.offset[rows]
    if digital.dtype.kind == "f" and np.all(scale == 1.0) and np.all(offset == 0.0):
        if out is not None:
            out[...] = digital
            return out
        return digital
    return dequantize(digital, scale, offset, sg.nan_code, out=out)


def _pieces(sg: StoreGroup, i0: int, i1: int) -> list[tuple[int, int]]:
    """Split ``[i0, i1)`` at shard (and, for one shard, a chunk) boundaries for 2 workers."""
    shard = int((sg.a0.shards or sg.a0.chunks)[1])
    chunk = int(sg.a0.chunks[1])
    cuts = [i0, *range((i0 // shard + 1) * shard, i1, shard), i1]
    if len(cuts) == 2 and i1 - i0 > 4 * chunk:
        mid = ((i0 + i1) // 2 // chunk) * chunk
        if i0 < mid < i1:
            cuts = [i0, mid, i1]
    return list(itertools.pairwise(cuts))


def _level0(sg: StoreGroup, rows: list[int], i0: int, i1: int) -> np.ndarray:
    """Level-0 samples ``[i0, i1)`` of ``rows`` in physical units.

    The direct path decodes each inner chunk straight into place; otherwise two workers
    read shard-aligned pieces through zarr and dequantise them.
    """
    from concurrent.futures import ThreadPoolExecutor

    kind = np.dtype(sg.a0.dtype).kind
    trivial = kind == "f" and np.all(sg.scale[rows] == 1.0) and np.all(sg.offset[rows] == 0.0)
    out = np.empty((len(rows), i1 - i0), dtype=sg.a0.dtype if trivial else np.float64)
    n_ch = len(sg.labels)
    if sg.loc is not None:
        from ._fastread import read_level0

        scale, offset = sg.scale[rows][:, None], sg.offset[rows][:, None]

        def convert(digital: np.ndarray | None, dest: np.ndarray) -> None:
            if digital is None:  # a chunk never written: the fill value everywhere
                if sg.nan_code is not None:
                    dest[...] = np.nan
                    return
                digital = np.full(dest.shape, sg.a0.metadata.fill_value, dtype=sg.a0.dtype)
            if trivial:
                dest[...] = digital
                return
            with np.errstate(over="ignore"):  # the NaN code of a +-float64-max channel
                np.multiply(digital, scale, out=dest)
                dest += offset
            if sg.nan_code is not None:  # one chunk at a time: cheap, in cache
                hit = digital == sg.nan_code
                if hit.any():
                    dest[hit] = np.nan

        if read_level0(sg.loc, sg.a0, rows, i0, i1, convert, out):
            return out
    pieces = _pieces(sg, i0, i1)

    def work(p: tuple[int, int]) -> None:
        digital = _read_rows(sg.a0, rows, n_ch, slice(*p))
        _physical(sg, digital, rows, out=out[:, p[0] - i0: p[1] - i0])

    if len(pieces) == 1:
        work(pieces[0])
    else:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(work, pieces))
    return out


def _channel_info(entry: dict[str, Any]) -> tuple[dict[str, Any], str, str, str, str | None]:
    info = dict(_jsonsafe.decode(entry["info"])) if isinstance(entry.get("info"), dict) else {}
    unit = str(info.pop("physical_dimension", entry.get("unit", "")))
    ctype = str(info.pop("channel_type", entry.get("channel_type", "MISC")))
    prefilter = str(info.pop("prefilter", entry.get("prefilter", "")))
    modality = info.pop("modality", entry.get("modality"))
    info.pop("sample_frequency", None)
    for key in PROVENANCE_KEYS:
        if key in entry:
            info[key] = entry[key]
    info.setdefault("nonfinite_samples", 0)
    return info, unit, ctype, prefilter, modality


def _metadata(root: Any, url: str, name: str | None) -> dict[str, Any]:
    attrs = root.attrs.asdict()
    blob = attrs.get("recording_metadata")
    md = _jsonsafe.loads(blob) if isinstance(blob, str) else _jsonsafe.decode(blob or {})
    md = dict(md) if isinstance(md, dict) else {}
    for key in ("source_file", "source_format"):
        if key in md and md[key] is not None:
            md[f"original_{key}"] = md[key]
    md["source_file"] = url
    md["source_format"] = "zarr"
    md["zarr_group"] = name
    if attrs.get("serving_version"):
        md["serving_version"] = attrs["serving_version"]
    return md


def _events(root: Any, tmin: float | None, tmax: float | None) -> Any:
    if "events" not in root.group_keys():
        return None
    eg = root["events"]
    attrs = eg.attrs.asdict()
    if not attrs.get("n_events"):
        return None
    return _events_frame(attrs, eg["onset"][...], eg["duration"][...], eg["code"][...],
                         tmin, tmax)


def _events_frame(attrs: dict[str, Any], onset: Any, duration: Any, codes: Any,
                  tmin: float | None, tmax: float | None) -> Any:
    """The events DataFrame from the events group's attrs and its three arrays."""
    import pandas as pd

    onset = np.asarray(onset, dtype=np.float64)
    duration = np.asarray(duration, dtype=np.float64)
    codes = np.asarray(codes).astype(np.int64)
    label_map = attrs.get("label_map", {})
    lut = np.array([_jsonsafe.decode(label_map.get(str(c), str(c)))
                    for c in range(int(codes.max()) + 1)] if codes.size else [], dtype=object)
    frame = pd.DataFrame({"onset": onset, "duration": duration})
    extra = attrs.get("extra_columns") or {}
    columns: dict[str, Any] = {"description": lut[codes] if codes.size else []}
    columns |= {c: _jsonsafe.decode(extra[c]) for c in attrs.get("extra_column_order", extra)}
    for col, values in columns.items():
        try:
            frame[col] = values
        except UnicodeEncodeError:  # strings with surrogates: kept as Python objects
            frame[col] = pd.Series(values, dtype=object)
    keep = np.ones(len(frame), dtype=bool)
    if tmin is not None:
        keep &= onset + np.nan_to_num(duration) >= tmin
    if tmax is not None:
        keep &= onset < tmax
    return frame[keep].reset_index(drop=True)


def _events_direct(loc: Location) -> tuple[bool, Any]:
    """``(True, events or None)`` read without zarr (the ``zarr.json`` documents and the
    three single-chunk arrays); ``(False, None)`` when the layout is one to leave to zarr."""
    from ._fastread import read_json, read_small_array

    eloc = loc.child("events")
    doc = read_json(eloc)
    if doc is None:
        return True, None  # no events group (every zarr v3 node has its zarr.json)
    attrs = doc.get("attributes")
    if doc.get("zarr_format") != 3 or doc.get("node_type") != "group" or \
            not isinstance(attrs, dict):
        return False, None
    if not attrs.get("n_events"):
        return True, None
    arrays = []
    for name in ("onset", "duration", "code"):
        adoc = read_json(eloc.child(name))
        arr = None if adoc is None else read_small_array(eloc.child(name), adoc)
        if arr is None:
            return False, None
        arrays.append(arr)
    return True, _events_frame(attrs, arrays[0], arrays[1], arrays[2], None, None)


def read_events(where: StoreLike, *, tmin: float | None = None, tmax: float | None = None,
                storage_options: dict[str, Any] | None = None) -> Any:
    """The store's events as a DataFrame (``onset``, ``duration``, ``description``, extras)."""
    import pandas as pd

    root, _ = _open_root(where, storage_options)
    ev = _events(root, tmin, tmax)
    if ev is None:
        return pd.DataFrame({"onset": np.zeros(0), "duration": np.zeros(0),
                             "description": np.zeros(0, dtype=object)})
    return ev


def _events_only(root: Any, url: str, channels: Any, tmin: float | None,
                 tmax: float | None) -> Recording:
    """A store without signal groups: its metadata and events, no channels."""
    wanted = [channels] if isinstance(channels, str) else list(channels or [])
    if wanted:
        raise KeyError(f"{url}: no channel(s) {wanted}: the store has no signal groups "
                       "(events only)")
    rec = Recording(_metadata(root, url, None))
    ev = _events(root, tmin, tmax)
    if ev is not None:
        rec.events = ev
    return rec


def read_zarr(where: StoreLike, *, group: str | None = None, channels: Any = None,
              tmin: float | None = None, tmax: float | None = None,
              storage_options: dict[str, Any] | None = None) -> Recording:
    """Level 0 of one group as a Recording (channels and ``[tmin, tmax)`` s selectable).

    A store without signal groups (``group`` None) gives its events and metadata only.
    """
    root, url = _open_root(where, storage_options)
    if group is None and not _group_names(root):
        return _events_only(root, url, channels, tmin, tmax)
    sg = _open_group_in(root, url, where, group, storage_options)
    rows, labels = sg.rows(channels)
    i0, i1 = sg.window(tmin, tmax)
    data = _level0(sg, rows, i0, i1)
    rec = Recording(_metadata(sg.root, sg.url, sg.name))
    parts = [_channel_info(sg.entries[r]) for r in rows]
    grid = sg.attrs.get("grid") if sg.rate == float(sg.attrs.get("original_rate", -1)) else None
    rec.add_channels(labels, data, sg.rate, [p[1] for p in parts], [p[2] for p in parts],
                     prefilters=[p[3] for p in parts], infos=[p[0] for p in parts],
                     t0=sg.t0 + i0 / sg.rate if i0 else sg.t0, grid=grid)
    for lab, p in zip(labels, parts):
        if p[4]:
            rec.channels[lab]["modality"] = str(p[4])
    ev = _events(sg.root, tmin, tmax)
    if ev is not None:
        rec.events = ev
    return rec


@dataclass(frozen=True)
class ViewData:
    """What a viewer draws: per channel the min and max of each column, at ``times`` (s)."""

    times: np.ndarray
    min: np.ndarray
    max: np.ndarray
    labels: list[str]
    level: int
    rate: float  # columns per second at this level

    @property
    def n_points(self) -> int:
        return int(self.times.shape[0])


def view_level_for(n_level0: int, n_points: int, factor: int, n_levels: int) -> int:
    """The coarsest level (0..n_levels) that still gives at least ``n_points`` columns."""
    level = 0
    while level < n_levels and -(-n_level0 // factor ** (level + 1)) >= n_points:
        level += 1
    return level


def pick_view_level(where: StoreLike, group: str | None, n_points: int, *,
                    tmin: float | None = None, tmax: float | None = None,
                    storage_options: dict[str, Any] | None = None) -> int:
    """The view level to read for ``n_points`` pixels over ``[tmin, tmax)`` of a group."""
    sg = open_group(where, group, storage_options)
    i0, i1 = sg.window(tmin, tmax)
    return view_level_for(i1 - i0, n_points, int(sg.attrs.get("view_downsample", 4)),
                          int(sg.attrs.get("n_view_levels", 0)))


def read_view(where: StoreLike, group: str | None, level: int, *, tmin: float | None = None,
              tmax: float | None = None, channels: Any = None,
              storage_options: dict[str, Any] | None = None) -> ViewData:
    """Min/max envelope columns of a view level over ``[tmin, tmax)`` (level 0: the samples).

    Column ``j`` of level ``L`` covers level-0 samples ``[j*F, (j+1)*F)`` with
    ``F = view_downsample**L``; ``times`` is each column's start time.
    """
    sg = open_group(where, group, storage_options)
    rows, labels = sg.rows(channels)
    n_levels = int(sg.attrs.get("n_view_levels", 0))
    if not 0 <= int(level) <= n_levels:
        raise ValueError(f"{sg.url}: group {sg.name!r} has view levels 0..{n_levels}, "
                         f"not {level}")
    if level == 0:
        i0, i1 = sg.window(tmin, tmax)
        vals = _level0(sg, rows, i0, i1)
        times = sg.t0 + np.arange(i0, i1) / sg.rate
        return ViewData(times, vals, vals, labels, 0, sg.rate)
    factor = int(sg.attrs.get("view_downsample", 4)) ** int(level)
    arr = sg.root[f"{sg.name}/view/{int(level)}"]
    n_cols = int(arr.shape[2])
    # a column overlaps [tmin, tmax) when its span [j*F, (j+1)*F) / rate does
    j0 = 0 if tmin is None else int(np.clip(
        math.floor((tmin - sg.t0) * sg.rate / factor + 1e-9), 0, n_cols))
    j1 = n_cols if tmax is None else int(np.clip(
        math.ceil((tmax - sg.t0) * sg.rate / factor - 1e-9), 0, n_cols))
    j1 = max(j0, j1)
    env = _read_rows(arr, rows, len(sg.labels), slice(j0, j1), lead=(slice(None),))
    mn, mx = _physical(sg, env[0], rows), _physical(sg, env[1], rows)
    times = sg.t0 + np.arange(j0, j1) * factor / sg.rate
    return ViewData(times, mn, mx, labels, int(level), sg.rate / factor)
