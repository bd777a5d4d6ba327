"""Windowed reading for training: fixed-length ``(channels x samples)`` windows over many
serving stores and archives, with the events of each window and per-window targets.

>>> ds = WindowDataset(["a.zarr", "b.zarr"], window=10.0, hop=5.0, modality="eeg",
...                    shuffle=True, seed=0)
>>> for w in ds:                       # Window: .data (n_ch, n) float32, .start, .events ...
...     ...
>>> y = ds.targets(rule="overlap", mapping={"Sleep stage W": 0, "Sleep stage 1": 1})

Windows are cut on each group's own sample grid at ``t0 + k * hop`` (so groups and stores
with the same start and rate are time-aligned) and only whole windows are yielded. Store
reads decode only the inner chunks covering a window (sequential iteration reads runs of
consecutive windows as one block); each store is opened once per dataset and process, from
its ``zarr.json`` documents and event arrays read directly when it has our writer's layout
(no zarr event-loop round trips; zarr otherwise), its group attrs and shard indexes kept.
``raw=True`` yields the stored int16 codes with per-channel ``scale``/``offset`` instead of
float samples. Sharding:
``worker_id``/``num_workers``, or, inside a ``torch.utils.data.DataLoader`` worker, torch's
worker info; torch itself is imported only by :meth:`WindowDataset.as_torch`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._fs import resolve
from .errors import EmptyRecordingError, InvalidChannelError, source_not_found

__all__ = ["Window", "WindowDataset", "window_targets"]


@dataclass(frozen=True)
class _Unit:
    """One (source, group) the windows are cut from."""

    source: str
    kind: str  # "zarr" | "archive"
    group: str
    rate: float
    t0: float
    n_samples: int
    channels: tuple[str, ...]  # selected labels, in output order
    rows: tuple[int, ...]  # their row indices in the group (zarr)
    units: tuple[str, ...]


@dataclass
class Window:
    """One window: ``data`` is ``(n_channels, n_samples)`` in physical units.

    With ``WindowDataset(raw=True)``, ``data`` holds the stored values instead (int16 ADC
    codes for quantised groups) and ``scale``/``offset``/``nan_code`` convert them.
    """

    data: np.ndarray
    start: float
    stop: float
    rate: float
    channels: list[str]
    units: list[str]
    source: str
    group: str
    index: int
    #: with ``raw=True``: per-channel ``(n_channels, 1)`` scale and offset (physical =
    #: ``data * scale + offset``) and the stored NaN code (None: none); else None.
    scale: np.ndarray | None = None
    offset: np.ndarray | None = None
    nan_code: int | None = None
    _events: Any = field(default=None, repr=False)
    _event_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64), repr=False)

    @property
    def events(self) -> Any:
        """The events overlapping ``[start, stop)`` (onset times on the recording clock)."""
        import pandas as pd

        if self._events is None:
            return pd.DataFrame({"onset": np.zeros(0), "duration": np.zeros(0),
                                 "description": np.zeros(0, dtype=object)})
        return self._events.iloc[self._event_rows].reset_index(drop=True)

    def label(self, **kwargs: Any) -> Any:
        """This window's target (see :func:`window_targets` for the keywords)."""
        if self._events is None:
            return kwargs.get("default")
        return window_targets(self._events, np.array([self.start]), np.array([self.stop]),
                              **kwargs)[0]


# ---------------------------------------------------------------- targets (labels)

def _coverage(onset: np.ndarray, dur: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``sum_i clip(t - onset_i, 0, dur_i)`` at every ``t`` (piecewise linear, vectorised)."""
    if onset.size == 0:
        return np.zeros(t.shape)
    pts = np.concatenate([onset, onset + dur])
    slope = np.concatenate([np.ones(onset.size), -np.ones(onset.size)])
    order = np.argsort(pts, kind="stable")
    pts, slope = pts[order], np.cumsum(slope[order])
    vals = np.concatenate([[0.0], np.cumsum(slope[:-1] * np.diff(pts))])
    out = np.interp(t, pts, vals)
    result: np.ndarray = np.where(t >= pts[-1], vals[-1], out)
    return result


def window_targets(events: Any, starts: np.ndarray, stops: np.ndarray, *,
                   column: str = "description", rule: str = "overlap",
                   mapping: Mapping[Any, Any] | None = None, default: Any = None,
                   min_coverage: float = 0.0) -> np.ndarray:
    """One target per window ``[starts[i], stops[i])`` from an events table.

    ``rule="overlap"``: the label whose events cover most of the window (sleep stages from a
    hypnogram), or ``default`` when they cover less than ``min_coverage`` of it.
    ``rule="onset"``: the label of the first event with its onset inside the window (trial
    labels, e.g. ``column="trial_type"`` of a BIDS events.tsv), else ``default``.
    Only labels in ``mapping`` count when it is given, and they come back mapped.
    """
    starts = np.asarray(starts, dtype=np.float64)
    stops = np.asarray(stops, dtype=np.float64)
    out = np.full(starts.shape, default, dtype=object)
    if events is None or len(events) == 0:
        return _typed(out, mapping, default)
    if column not in events.columns:
        raise KeyError(f"the events have no column {column!r}; columns: {list(events.columns)}")
    onset = events["onset"].to_numpy(dtype=np.float64)
    dur = np.nan_to_num(events["duration"].to_numpy(dtype=np.float64))
    labels = events[column].to_numpy(dtype=object)
    keep = np.array([lab is not None and lab == lab and (mapping is None or lab in mapping)
                     for lab in labels], dtype=bool)  # drop missing (NaN) and unmapped
    onset, dur, labels = onset[keep], dur[keep], labels[keep]
    if rule == "onset":
        order = np.argsort(onset, kind="stable")
        onset, labels = onset[order], labels[order]
        i = np.searchsorted(onset, starts, side="left")
        ok = i < onset.size
        ok[ok] &= onset[i[ok]] < stops[ok]
        out[ok] = labels[i[ok]]
    elif rule == "overlap":
        names = list(dict.fromkeys(labels.tolist()))
        if names:
            cover = np.stack([_coverage(onset[labels == n], dur[labels == n], stops)
                              - _coverage(onset[labels == n], dur[labels == n], starts)
                              for n in names])
            best = np.argmax(cover, axis=0)
            got = cover[best, np.arange(starts.size)]
            ok = (got > 0) & (got >= min_coverage * (stops - starts))
            out[ok] = np.array(names, dtype=object)[best[ok]]
    else:
        raise ValueError(f"rule must be 'overlap' or 'onset', not {rule!r}")
    if mapping is not None:
        hit = out != np.array(default, dtype=object) if default is not None else \
            np.array([v is not None for v in out], dtype=bool)
        out[hit] = [mapping[v] for v in out[hit]]
    return _typed(out, mapping, default)


def _typed(out: np.ndarray, mapping: Mapping[Any, Any] | None, default: Any) -> np.ndarray:
    if mapping is not None and all(isinstance(v, int | np.integer) for v in
                                   [*mapping.values(), default]):
        return out.astype(np.int64)
    return out


# ---------------------------------------------------------------- sources

def _is_store(loc: Any) -> bool:
    return bool(loc.fs.isdir(loc.path) and loc.fs.exists(loc.child("zarr.json").path))


def _modality_of_group(name: str, attrs: Mapping[str, Any]) -> set[str]:
    base = name.split("_")[0].lower()
    return {base, str(attrs.get("modality", "")).lower()}


def _direct_groups(loc: Any) -> dict[str, dict[str, Any]] | None:
    """``{group: attrs}`` of a store read from its ``zarr.json`` documents alone (no zarr
    round trips); None when the store needs zarr (no group list, odd documents)."""
    from .serving._fastread import read_json
    from .serving.reader import _check_root

    doc = read_json(loc)
    attrs = None if doc is None else doc.get("attributes")
    if doc is None or doc.get("zarr_format") != 3 or doc.get("node_type") != "group" or \
            not isinstance(attrs, dict):
        return None
    names = attrs.get("channel_groups")
    if not isinstance(names, list) or not names:
        return None
    _check_root(attrs, loc.url)
    out = {}
    for name in map(str, names):
        gdoc = read_json(loc.child(name))
        gattrs = None if gdoc is None else gdoc.get("attributes")
        if not isinstance(gattrs, dict) or "rate" not in gattrs or "n_samples" not in gattrs:
            return None
        out[name] = gattrs
    return out


def _store_units(url: str, group: str | None, modality: str | None,
                 channels: Sequence[str] | None, storage_options: Any,
                 cache: dict[Any, Any] | None = None) -> list[_Unit]:
    loc = resolve(url, storage_options)
    groups = _direct_groups(loc)
    root = None
    if groups is None:
        from .serving.reader import _group_names, _open_root

        root, url = _open_root(url, storage_options)
        groups = {name: root[name].attrs.asdict() for name in _group_names(root)}
        if cache is not None:  # the open root, reused for the group and events reads
            cache[("root", url)] = root
    else:
        url = loc.url
        if cache is not None:  # the group attrs: the reader opens level 0 directly
            cache[("loc", url)] = loc
            cache.update({("attrs", url, n): a for n, a in groups.items()})
    out = []
    for name, attrs in groups.items():
        if group is not None and name != group:
            continue
        if modality is not None and modality.lower() not in _modality_of_group(name, attrs):
            continue
        entries = sorted(attrs.get("channels", []), key=lambda e: int(e.get("row_index", 0)))
        from .recording import make_unique_labels

        labels, _ = make_unique_labels([str(e["label"]) for e in entries])
        rows = _pick(labels, channels, url, name)
        if rows is None:
            continue
        out.append(_Unit(url, "zarr", name, float(attrs["rate"]), float(attrs.get("t0", 0.0)),
                         int(attrs["n_samples"]) if "n_samples" in attrs or root is None
                         else int(root[name]["0"].shape[1]),
                         tuple(labels[r] for r in rows), tuple(rows),
                         tuple(str(entries[r].get("unit", "")) for r in rows)))
    return out


def _archive_units(url: str, group: str | None, modality: str | None,
                   channels: Sequence[str] | None, storage_options: Any) -> list[_Unit]:
    from .archive._read import _plan, _sources

    loc = resolve(url, storage_options)
    out = []
    for src in _sources(loc)[0]:
        plan = _plan(src)
        if plan is None or (group is not None and plan.key != group):
            continue
        labels = [lab for lab in plan.labels if modality is None or
                  str(plan.channels[lab].get("modality", "")).lower() == modality.lower()]
        if not labels:
            continue
        rows = _pick(labels, channels, loc.url, plan.key)
        if rows is None:
            continue
        sel = [labels[r] for r in rows]
        out.append(_Unit(loc.url, "archive", plan.key, plan.rate, plan.t0, plan.n_samples,
                         tuple(sel), tuple(rows),
                         tuple(str(plan.channels[s].get("physical_dimension") or "")
                               for s in sel)))
    return out


def _pick(labels: list[str], channels: Sequence[str] | None, url: str,
          group: str) -> list[int] | None:
    """Rows of ``channels`` in ``labels``; None when the group holds none of them."""
    if channels is None:
        return list(range(len(labels)))
    pos = {lab: i for i, lab in enumerate(labels)}
    hit = [c for c in channels if c in pos]
    if not hit:
        return None
    if len(hit) < len(channels):
        missing = [c for c in channels if c not in pos]
        raise InvalidChannelError(
            f"group {group!r} has {len(hit)} of the {len(channels)} channels asked; missing "
            f"{missing[:10]} (pick channels every source has, or select the group/modality)",
            path=url)
    return [pos[c] for c in channels]


# ---------------------------------------------------------------- the dataset

class WindowDataset:
    """Fixed-length windows over serving stores and archives (map-style and iterable).

    ``sources``: store and archive paths/URLs. ``window``/``hop``: seconds (hop defaults to
    the window). ``group``: a store group / archive grid key; ``modality``: e.g. ``"eeg"``;
    ``channels``: labels in output order (a group holding none of them is skipped, one
    holding only some raises). ``shuffle``/``seed``: order (:meth:`set_epoch` reshuffles).
    ``worker_id``/``num_workers``: this process's share (default: torch's worker info when
    in a DataLoader worker, else everything). ``dtype``: the output sample type.
    ``raw=True``: yield the stored values (int16 codes of quantised store groups, no
    dequantising pass) with per-channel ``scale``/``offset`` on each window; physical
    ``= data * scale + offset`` (``nan_code`` marks NaN). Archives give their float samples
    (as ``dtype``) with scale 1 and offset 0.
    """

    def __init__(self, sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
                 window: float, hop: float | None = None, *, group: str | None = None,
                 modality: str | None = None, channels: Sequence[str] | None = None,
                 shuffle: bool = False, seed: int = 0, worker_id: int | None = None,
                 num_workers: int | None = None, dtype: Any = np.float32,
                 block_seconds: float = 120.0, raw: bool = False,
                 storage_options: dict[str, Any] | None = None):
        if isinstance(sources, str | os.PathLike):
            sources = [sources]
        if not window > 0 or (hop is not None and not hop > 0):
            raise ValueError(f"window and hop must be positive seconds (got {window}, {hop})")
        self.window, self.hop = float(window), float(hop if hop is not None else window)
        self.shuffle, self.seed, self.epoch = bool(shuffle), int(seed), 0
        self.worker_id, self.num_workers = worker_id, num_workers
        self.dtype = np.dtype(dtype)
        self.raw = bool(raw)
        self.block_seconds = float(block_seconds)
        self.storage_options = storage_options
        if isinstance(channels, str):
            channels = [channels]
        self._cache: dict[Any, Any] = {}
        self.units: list[_Unit] = []
        for s in sources:
            url = os.fspath(s)
            loc = resolve(url, storage_options)
            if not loc.fs.exists(loc.path):
                raise source_not_found(loc.url)
            if _is_store(loc):
                self.units.extend(_store_units(url, group, modality, channels,
                                               storage_options, self._cache))
            else:
                self.units.extend(_archive_units(url, group, modality, channels,
                                                 storage_options))
        if not self.units:
            raise EmptyRecordingError(
                f"no group matches group={group!r}, modality={modality!r}, channels="
                f"{list(channels)[:5] if channels else None} in {len(sources)} source(s) "
                "(check the selection against serving.list_groups)",
                path=os.fspath(sources[0]) if sources else None)
        starts, unit_of = [], []
        self._n_win = []
        for u, unit in enumerate(self.units):
            n_win, n_hop = round(self.window * unit.rate), round(self.hop * unit.rate)
            if n_win < 1 or n_hop < 1:
                raise ValueError(f"{unit.source}: window/hop shorter than one sample at "
                                 f"{unit.rate} Hz")
            self._n_win.append(n_win)
            count = (unit.n_samples - n_win) // n_hop + 1 if unit.n_samples >= n_win else 0
            starts.append(np.arange(count, dtype=np.int64) * n_hop)
            unit_of.append(np.full(count, u, dtype=np.int32))
        self._start = np.concatenate(starts) if starts else np.zeros(0, np.int64)
        self._unit = np.concatenate(unit_of) if unit_of else np.zeros(0, np.int32)

    # --- pickling (DataLoader workers): drop open stores
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def __len__(self) -> int:
        return int(self._start.size)

    def set_epoch(self, epoch: int) -> None:
        """Reshuffle for another epoch (the order is a function of ``seed`` and ``epoch``)."""
        self.epoch = int(epoch)

    def _shard(self) -> tuple[int, int]:
        if self.worker_id is not None or self.num_workers is not None:
            return int(self.worker_id or 0), int(self.num_workers or 1)
        torch = sys.modules.get("torch")  # never imported here: only if the caller did
        if torch is not None:
            info = torch.utils.data.get_worker_info()
            if info is not None:
                return int(info.id), int(info.num_workers)
        return 0, 1

    def indices(self) -> np.ndarray:
        """The window indices this worker yields, in order (shuffled, then sharded)."""
        idx = np.arange(len(self), dtype=np.int64)
        if self.shuffle:
            np.random.default_rng([self.seed, self.epoch]).shuffle(idx)
        wid, n = self._shard()
        return idx[wid::n]

    def window_times(self) -> tuple[np.ndarray, np.ndarray]:
        """Start and stop times (s) of every window, in index order."""
        rate = np.array([u.rate for u in self.units])[self._unit]
        t0 = np.array([u.t0 for u in self.units])[self._unit]
        n_win = np.array(self._n_win)[self._unit]
        start = t0 + self._start / rate
        return start, start + n_win / rate

    # --- reading
    def _events(self, unit: _Unit) -> Any:
        key = ("events", unit.source)
        if key not in self._cache:
            if unit.kind == "zarr":
                from .serving.reader import _events, _events_direct

                loc = self._direct(unit.source)
                ev: Any
                ok, ev = _events_direct(loc) if loc is not None else (False, None)
                if not ok:
                    ev = _events(self._root(unit.source), None, None)
                if ev is None:
                    ev = []
            else:
                from .archive import read_archive

                ev = read_archive(unit.source, channels=[],
                                  storage_options=self.storage_options).events
            ev = ev.sort_values("onset", kind="stable").reset_index(drop=True) \
                if len(ev) else None
            onset = None if ev is None else ev["onset"].to_numpy(dtype=np.float64)
            end = None if ev is None else onset + np.nan_to_num(
                ev["duration"].to_numpy(dtype=np.float64))
            self._cache[key] = (ev, onset, end)
        return self._cache[key]

    def _direct(self, url: str) -> Any:
        """The store's Location when it opens from its documents (its group attrs cached),
        else None; again after unpickling (DataLoader workers start with no cache)."""
        key = ("loc", url)
        if key not in self._cache:
            loc = resolve(url, self.storage_options)
            groups = _direct_groups(loc)
            self._cache[key] = None if groups is None else loc
            self._cache.update({("attrs", url, n): a for n, a in (groups or {}).items()})
        return self._cache[key]

    def _root(self, url: str) -> Any:
        """The store's open root group (opened once per process)."""
        hit = self._cache.get(("root", url))
        if hit is None:
            from .serving.reader import _open_root

            hit = self._cache[("root", url)] = _open_root(url, self.storage_options)[0]
        return hit

    def _reader(self, unit: _Unit) -> _StoreReader:
        """The unit's store reader, opened on first use and kept (per process)."""
        key = ("reader", unit.source, unit.group, unit.rows)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._cache[key] = self._open_reader(unit)
        return hit

    def _open_reader(self, unit: _Unit) -> _StoreReader:
        """Level 0 of the unit's group: from its ``zarr.json`` directly when it has our
        plain sharded layout (no zarr objects made), else through zarr."""
        from .serving._fastread import Level0Reader, ShardLayout, read_json
        from .serving.reader import _dequant_params, _open_group_in

        dtype = None if self.raw else self.dtype
        loc = self._direct(unit.source)
        gattrs = self._cache.get(("attrs", unit.source, unit.group))
        if loc is not None and gattrs is not None:
            l0 = loc.child(unit.group).child("0")
            doc = read_json(l0)
            layout = None if doc is None else ShardLayout.from_doc(doc)
            if layout is not None and doc is not None:
                entries = sorted(gattrs.get("channels", []),
                                 key=lambda e: int(e.get("row_index", 0)))
                a0_attrs = doc.get("attributes") or {}
                scale, offset, nan_code = _dequant_params(a0_attrs, entries, layout.shape[0],
                                                          layout.dtype)
                return _StoreReader(list(unit.rows), dtype, layout.dtype, scale, offset,
                                    nan_code, layout.fill, Level0Reader(l0, layout=layout))
        sg = _open_group_in(self._root(unit.source), unit.source, unit.source, unit.group,
                            self.storage_options)
        direct = Level0Reader(sg.loc, sg.a0) if sg.loc is not None else None
        return _StoreReader(list(unit.rows), dtype, np.dtype(sg.a0.dtype), sg.scale,
                            sg.offset, sg.nan_code, sg.a0.metadata.fill_value, direct, sg)

    def _read(self, unit: _Unit, i0: int, i1: int) -> np.ndarray:
        """Samples ``[i0, i1)`` of the unit's selected channels as ``self.dtype``."""
        if unit.kind == "archive":
            from .archive import read_archive

            rec = read_archive(unit.source, list(unit.channels), unit.t0 + i0 / unit.rate,
                               unit.t0 + i1 / unit.rate, storage_options=self.storage_options)
            g = rec.grid(unit.rate)
            data = np.stack([g.channel(c) for c in unit.channels])
            if data.shape[1] != i1 - i0:  # float rounding of the time bounds
                data = data[:, : i1 - i0]
            return data.astype(self.dtype, copy=False)
        return self._reader(unit).read(i0, i1)

    def _make(self, i: int, data: np.ndarray) -> Window:
        unit = self.units[int(self._unit[i])]
        n_win = self._n_win[int(self._unit[i])]
        start = unit.t0 + int(self._start[i]) / unit.rate
        stop = start + n_win / unit.rate
        ev, onset, end = self._events(unit)
        rows = np.zeros(0, np.int64)
        if ev is not None:
            k = int(np.searchsorted(onset, stop, side="left"))
            cand = np.arange(k)
            rows = cand[(end[:k] > start) | (onset[:k] >= start)]
        scale = offset = nan_code = None
        if self.raw:
            if unit.kind == "zarr":
                r = self._reader(unit)
                scale, offset, nan_code = r.phys_scale, r.phys_offset, r.nan_code
            else:
                scale = np.ones((len(unit.rows), 1))
                offset = np.zeros((len(unit.rows), 1))
        return Window(data, start, stop, unit.rate, list(unit.channels), list(unit.units),
                      unit.source, unit.group, int(i), scale, offset, nan_code, ev, rows)

    def __getitem__(self, i: int) -> Window:
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} of {len(self)}")
        i %= len(self)
        u = int(self._unit[i])
        i0 = int(self._start[i])
        return self._make(i, self._read(self.units[u], i0, i0 + self._n_win[u]))

    def __iter__(self) -> Iterator[Window]:
        idx = self.indices()
        if self.shuffle:
            for i in idx:
                yield self[int(i)]
            return
        # sequential: read runs of consecutive windows of one unit as one block
        k = 0
        while k < idx.size:
            u = int(self._unit[idx[k]])
            unit, n_win = self.units[u], self._n_win[u]
            limit = max(n_win, round(self.block_seconds * unit.rate))
            first = int(self._start[idx[k]])
            j = k + 1
            while j < idx.size and int(self._unit[idx[j]]) == u and \
                    self._start[idx[j]] > self._start[idx[j - 1]] and \
                    int(self._start[idx[j]]) + n_win - first <= limit:
                j += 1
            last = int(self._start[idx[j - 1]]) + n_win
            block = self._read(unit, first, last)
            for m in range(k, j):
                a = int(self._start[idx[m]]) - first
                yield self._make(int(idx[m]), block[:, a: a + n_win])
            k = j

    def targets(self, **kwargs: Any) -> np.ndarray:
        """Every window's target, in index order, from its events alone (no samples read).

        Keywords as :func:`window_targets` (``column``, ``rule``, ``mapping``, ``default``,
        ``min_coverage``).
        """
        start, stop = self.window_times()
        out = np.full(len(self), kwargs.get("default"), dtype=object)
        for u, unit in enumerate(self.units):
            sel = self._unit == u
            out[sel] = window_targets(self._events(unit)[0], start[sel], stop[sel], **kwargs)
        mapping, default = kwargs.get("mapping"), kwargs.get("default")
        return _typed(out, mapping, default)

    def as_torch(self, iterable: bool = True, transform: Callable[[Window], Any] | None = None
                 ) -> Any:
        """A ``torch.utils.data`` IterableDataset (or map-style Dataset) over these windows.

        Items are ``torch.from_numpy(window.data)``, or ``transform(window)`` when given.
        DataLoader workers each take their share (torch's worker info) automatically.
        """
        from ._torch import torch_dataset

        return torch_dataset(self, iterable, transform)


class _StoreReader:
    """Reads one store group's selected rows: opened once per dataset, reused per window.

    Keeps the direct level-0 reader (layout and shard indexes) and the per-row scale/offset
    already in the output type, so a window costs one ranged read per shard, a blosc
    decode per inner chunk and one dequantising pass into the output. ``sg`` (the group
    opened through zarr) serves layouts the direct reader does not handle.
    """

    def __init__(self, rows: list[int], dtype: np.dtype[Any] | None, stored: np.dtype[Any],
                 scale: np.ndarray, offset: np.ndarray, nan_code: int | None, fill: Any,
                 direct: Any, sg: Any = None):
        self.sg, self.rows = sg, rows
        self.dtype = np.dtype(stored) if dtype is None else np.dtype(dtype)
        self.raw = dtype is None
        self.direct = direct
        self.scale = scale[rows][:, None].astype(self.dtype)
        self.offset = offset[rows][:, None].astype(self.dtype)
        self.trivial = self.raw or bool(np.all(self.scale == 1) and np.all(self.offset == 0))
        self.nan_code = nan_code
        self.phys_scale = scale[rows][:, None]  # float64, for raw windows
        self.phys_offset = offset[rows][:, None]
        self.fill = nan_code if nan_code is not None else fill

    def _dequantise(self, part: np.ndarray, nan_seen: bool) -> None:
        """``part * scale + offset`` in place (a multiply then an add in the output type),
        NaN code -> NaN."""
        hit = part == self.nan_code if nan_seen else None
        with np.errstate(over="ignore"):  # the NaN code of a +-float64-max channel
            np.multiply(part, self.scale, out=part)
            np.add(part, self.offset, out=part)
        if hit is not None:
            part[hit] = np.nan

    def read(self, i0: int, i1: int) -> np.ndarray:
        """Level-0 samples ``[i0, i1)`` of the rows (only the covering chunks)."""
        out = np.empty((len(self.rows), i1 - i0), dtype=self.dtype)
        nan_seen = [False]
        code = self.nan_code if not self.trivial else None
        empty = np.nan if self.nan_code is not None and not self.raw else self.fill

        def cast(digital: np.ndarray | None, dest: np.ndarray) -> None:
            """One decoded chunk into place, cast only (dequantised per piece after)."""
            if digital is None:  # never written: NaN, or the fill value (scaled after)
                dest[...] = empty
                return
            dest[...] = digital
            if code is not None and not nan_seen[0] and digital.min() <= code:
                nan_seen[0] = True  # set before this thread's ``finish`` of its piece

        def finish(a: int, b: int) -> None:
            """Dequantise the piece ``out[:, a:b]`` its thread has just cast."""
            self._dequantise(out[:, a:b], nan_seen[0])

        if self.direct is not None and self.direct.read(
                self.rows, i0, i1, cast, out, None if self.trivial else finish):
            return out
        if self.raw:
            out[...] = self.sg.a0.get_orthogonal_selection((self.rows, slice(i0, i1)))
            return out
        from .serving.reader import _level0

        out[...] = _level0(self.sg, self.rows, i0, i1)
        return out
