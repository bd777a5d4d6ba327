"""What a recording holds and how two recordings differ: the logic behind ``info`` and ``verify``.

- :func:`describe`: a JSON-ready summary of any readable input (source file, Parquet/Feather
  archive, Zarr serving store): channels (type, unit, rate, dtype, calibration), grids,
  duration, start time, events (count and the first few), metadata; for a store also its
  groups and levels, read from its attributes without loading the samples;
- :func:`compare`: every :class:`Difference` between two recordings (channels missing or
  extra, rate/t0/length, samples with the largest difference and first differing index,
  dtype, calibration, channel info, events, metadata), exact or within a tolerance;
- :func:`load`: read any input; a store with several groups reads as all of them.
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from .recording import Recording

if TYPE_CHECKING:
    import zarr

_N = TypeVar("_N", bound="zarr.Group | zarr.Array[Any]")

__all__ = ["LOCATION_KEYS", "Difference", "compare", "compare_files", "describe",
           "describe_recording", "jsonable", "load", "location_channel_keys"]

#: Metadata keys that name where a recording was read from, or that the pipeline adds when it
#: converts one: they differ between copies of the same recording, so ``verify`` leaves them
#: out unless asked.
LOCATION_KEYS: tuple[str, ...] = (
    "source_file", "source_format", "zarr_group", "zarr_groups", "original_source_file",
    "original_source_format", "serving_version", "source_checksum", "source_key",
)


def location_channel_keys() -> tuple[str, ...]:
    """Channel keys a serving store's reader adds (scale, offset, max_abs_error...)."""
    try:
        from .serving import PROVENANCE_KEYS
    except ImportError:  # a checkout without the serving package
        return ()
    return tuple(PROVENANCE_KEYS)


# ----------------------------------------------------------------------------- loading
def _importer_name(path: str | os.PathLike[str],
                   storage_options: Mapping[str, Any] | None) -> str:
    from .importers import guess_importer

    kw = {"storage_options": dict(storage_options)} if storage_options else {}
    return guess_importer(path, **kw).name


def load(path: str | os.PathLike[str], *, group: str | None = None,
         storage_options: Mapping[str, Any] | None = None) -> Recording:
    """Read any readable input. A Zarr store with several groups and no ``group`` reads as
    one Recording with one grid per group (named after the group)."""
    kw: dict[str, Any] = {"storage_options": dict(storage_options)} if storage_options else {}
    if group is None and _importer_name(path, storage_options) == "zarr":
        from .serving import list_groups, read_zarr

        groups = list_groups(path, **kw)
        if len(groups) > 1:
            parts = [read_zarr(path, group=g, **kw) for g in groups]
            return _merge(parts, groups)
    return Recording.from_file(path, group=group, **kw)


def _merge(parts: Sequence[Recording], names: Sequence[str]) -> Recording:
    out = Recording({k: v for k, v in parts[0].metadata.items() if k != "zarr_group"})
    out.metadata["zarr_groups"] = list(names)
    for rec, name in zip(parts, names):
        for g in rec.grids.values():
            for labs, arr, cals in g.stored_blocks():
                ch = [rec.channels[lab] for lab in labs]
                out.add_channels(
                    labs, arr, g.rate, [c["physical_dimension"] for c in ch],
                    [c["channel_type"] for c in ch], prefilters=[c["prefilter"] for c in ch],
                    infos=[{k: v for k, v in c.items() if k not in _CORE} for c in ch],
                    t0=g.t0, grid=name if len(rec.grids) == 1 else f"{name}/{g.key}",
                    calibration=cals)
            for lab in g.labels:
                out.channels[lab]["modality"] = rec.channels[lab]["modality"]
    out.events = parts[0].events
    return out


_CORE = ("sample_frequency", "physical_dimension", "channel_type", "modality", "prefilter")


# ---------------------------------------------------------------------------- describe
def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: dates as ISO text, numpy scalars as numbers, NaN/inf as
    text, anything else as its ``str``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    return str(value)


def _calibration(cal: Any) -> dict[str, Any] | None:
    return None if cal is None else jsonable(asdict(cal))


def _events_summary(ev: pd.DataFrame, n_first: int) -> dict[str, Any]:
    desc = ev["description"].astype(str) if len(ev) else pd.Series([], dtype=object)
    return {
        "count": len(ev),
        "columns": [str(c) for c in ev.columns],
        "descriptions": {str(k): int(v) for k, v in desc.value_counts().head(10).items()},
        "first": [{str(k): jsonable(v) for k, v in row.items()}
                  for row in ev.head(n_first).to_dict("records")],
    }


def _start_time(md: Mapping[str, Any]) -> Any:
    for key in ("start_time", "meas_date", "recording_start"):
        if md.get(key) is not None:
            return jsonable(md[key])
    return None


def describe_recording(rec: Recording, *, n_events: int = 5) -> dict[str, Any]:
    """The summary of a Recording in memory (see :func:`describe`)."""
    channels = []
    for lab, info in rec.channels.items():
        g = rec.grid_of(lab)
        channels.append({
            "label": lab, "type": info.get("channel_type"), "modality": info.get("modality"),
            "unit": info.get("physical_dimension"), "rate": g.rate, "grid": g.key,
            "dtype": str(g.stored_dtypes[lab]), "calibration": _calibration(g.calibration(lab)),
            "prefilter": info.get("prefilter") or None,
        })
    grids = [{"name": g.key, "rate": g.rate, "t0": g.t0, "n_samples": g.n_samples,
              "duration": g.duration, "n_channels": g.n_channels}
             for g in rec.grids.values()]
    return {
        "format": rec.metadata.get("source_format"),
        "n_channels": rec.n_channels,
        "rates": rec.rates,
        "duration": rec.duration,
        "start_time": _start_time(rec.metadata),
        "grids": grids,
        "channels": channels,
        "events": _events_summary(rec.events, n_events),
        "metadata": jsonable(rec.metadata),
    }


def describe(path: str | os.PathLike[str], *, group: str | None = None,
             importer: str | None = None, storage_options: Mapping[str, Any] | None = None,
             n_events: int = 5) -> dict[str, Any]:
    """A JSON-ready summary of any readable input (file, folder, archive, Zarr store);
    ``importer`` forces a format by name.

    A Zarr store (without ``group``) is summarised from its attributes: its groups with their
    levels, channels with the store's int16 scale/offset as calibration, and no samples read.
    """
    name = importer or _importer_name(path, storage_options)
    if name == "zarr" and group is None:
        out = _describe_store(os.fspath(path), storage_options, n_events)
    else:
        kw = {"storage_options": dict(storage_options)} if storage_options else {}
        out = describe_recording(Recording.from_file(path, importer=importer, group=group,
                                                     **kw), n_events=n_events)
    return {"path": os.fspath(path), "importer": name, **out}


def _describe_store(url: str, storage_options: Mapping[str, Any] | None,
                    n_events: int) -> dict[str, Any]:
    import zarr

    from . import _jsonsafe
    from .serving import list_groups, read_events

    kw: dict[str, Any] = {"storage_options": dict(storage_options)} if storage_options else {}
    names = list_groups(url, **kw)  # validates the store (format, version)
    root = zarr.open_group(url, mode="r", **kw)
    attrs: dict[str, Any] = root.attrs.asdict()
    blob = attrs.get("recording_metadata")
    md = _jsonsafe.loads(blob) if isinstance(blob, str) else _jsonsafe.decode(blob or {})
    groups: list[dict[str, Any]] = []
    channels: list[dict[str, Any]] = []
    for gname in names:
        grp = _node(root, gname, zarr.Group)
        ga: dict[str, Any] = grp.attrs.asdict()
        a0 = _node(grp, "0", zarr.Array)
        rate, t0 = float(ga["rate"]), float(ga.get("t0", 0.0))
        n = int(a0.shape[-1])
        levels: list[dict[str, Any]] = [{"level": 0, "path": f"{gname}/0", "shape": list(a0.shape),
                   "dtype": str(a0.dtype), "rate": rate}]
        factor = int(ga.get("view_downsample", 4))
        view = _node(grp, "view", zarr.Group) if "view" in set(grp.group_keys()) else None
        for lev in range(1, int(ga.get("n_view_levels", 0)) + 1):
            arr = view.get(str(lev)) if view is not None else None
            if not isinstance(arr, zarr.Array):
                arr = None
            levels.append({"level": lev, "path": f"{gname}/view/{lev}",
                           "shape": None if arr is None else list(arr.shape),
                           "dtype": None if arr is None else str(arr.dtype),
                           "rate": rate / factor ** lev})
        entries = sorted(ga.get("channels") or [], key=lambda e: int(e.get("row_index", 0)))
        for e in entries:
            scale, offset = e.get("scale"), e.get("offset")
            channels.append({
                "label": str(e.get("label")), "type": e.get("channel_type"),
                "modality": e.get("modality"), "unit": e.get("unit"), "rate": rate,
                "grid": gname, "dtype": str(a0.dtype),
                "calibration": None if scale is None else {"scale": scale, "offset": offset},
                "original_rate": e.get("original_rate"),
                "max_abs_error": jsonable(e.get("max_abs_error")),
            })
        groups.append({"name": gname, "modality": ga.get("modality"), "rate": rate,
                       "original_rate": ga.get("original_rate"), "t0": t0, "n_samples": n,
                       "duration": n / rate, "n_channels": len(entries),
                       "dtype": str(a0.dtype), "view_downsample": factor, "levels": levels})
    events = read_events(url, **kw)
    rates = sorted({g["rate"] for g in groups})
    return {
        "format": "zarr",
        "n_channels": len(channels),
        "rates": rates,
        "duration": max((g["t0"] + g["duration"] for g in groups), default=0.0),
        "start_time": _start_time(md if isinstance(md, Mapping) else {}),
        "grids": [{k: g[k] for k in ("name", "rate", "t0", "n_samples", "duration",
                                      "n_channels")} for g in groups],
        "groups": groups,
        "channels": channels,
        "events": _events_summary(events, n_events),
        "metadata": jsonable(md),
        "store": {k: jsonable(attrs.get(k)) for k in
                  ("format", "format_version", "writer", "dtype", "serving_version",
                   "source_file", "source_checksum", "created_utc")},
    }


def _node(parent: zarr.Group, name: str, kind: type[_N]) -> _N:
    """``parent[name]``, which must be a ``kind`` (a group or an array)."""
    node = parent[name]
    if not isinstance(node, kind):
        raise ValueError(f"{parent.path}/{name}: not a zarr {kind.__name__.lower()}")
    return node


# ----------------------------------------------------------------------------- compare
@dataclass(frozen=True)
class Difference:
    """One way recording B differs from reference A: a ``kind``, the channel it concerns
    (if any), a readable one-line ``message`` and the numbers behind it in ``details``."""

    kind: str
    message: str
    channel: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """As plain JSON types."""
        return {"kind": self.kind, "channel": self.channel, "message": self.message,
                "details": jsonable(self.details)}

    def __str__(self) -> str:
        return self.message


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return repr(float(v))
    return repr(v.item() if isinstance(v, np.generic) else v)


def _sample_diff(a: np.ndarray, b: np.ndarray, tolerance: float) -> dict[str, Any] | None:
    """How the samples of one channel differ (the common length), exact (bits) or within
    tolerance: the numbers behind a ``samples`` Difference, or None when they do not."""
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    if tolerance == 0 and a.dtype == b.dtype and a.tobytes() == b.tobytes():
        return None
    af, bf = a.astype(np.float64, copy=False), b.astype(np.float64, copy=False)
    nan_a, nan_b = np.isnan(af), np.isnan(bf)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(af - bf)
    if tolerance == 0:
        if a.dtype == b.dtype:
            av = a.view(np.uint8).reshape(n, -1)
            bad = (av != b.view(np.uint8).reshape(n, -1)).any(axis=1)
        else:  # other dtypes: compare the values (the dtype is reported on its own)
            bad = ~((af == bf) | (nan_a & nan_b))
    else:
        bad = (nan_a != nan_b) | (~nan_a & ~nan_b & ~(diff <= tolerance))
    idx = np.flatnonzero(bad)
    if idx.size == 0:
        return None
    finite = diff[bad & np.isfinite(diff)]
    worst = float(finite.max()) if finite.size else math.nan
    i = int(idx[0])
    return {"n_different": int(idx.size), "n_compared": n, "max_abs_diff": worst,
            "first_index": i, "a": a[i], "b": b[i]}


def _info_diff(label: str, ia: Mapping[str, Any], ib: Mapping[str, Any],
               ignore: Iterable[str]) -> Difference | None:
    skip = {"sample_frequency", *ignore}
    keys = [k for k in dict.fromkeys([*ia, *ib]) if k not in skip]
    changed = [k for k in keys if k in ia and k in ib and not _same(ia[k], ib[k])]
    only_a = [k for k in keys if k not in ib]
    only_b = [k for k in keys if k not in ia]
    if not (changed or only_a or only_b):
        return None
    parts = [f"{k} {_fmt(ia[k])} != {_fmt(ib[k])}" for k in changed[:5]]
    parts += [f"only in A: {only_a}"] if only_a else []
    parts += [f"only in B: {only_b}"] if only_b else []
    return Difference("channel_info", f"{label}: channel info differs: " + "; ".join(parts),
                      label, {"changed": changed, "only_in_a": only_a, "only_in_b": only_b})


def _same(x: Any, y: Any) -> bool:
    try:
        eq = x == y
        if isinstance(eq, np.ndarray):
            return bool(eq.all()) and np.shape(x) == np.shape(y)
        if bool(eq):
            return True
    except Exception:  # values that cannot be compared count as different
        return False
    return (isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y))


def _same_cell(p: Any, q: Any) -> bool:
    if _same(p, q):
        return True
    try:
        return bool(pd.isna(p)) and bool(pd.isna(q))
    except (TypeError, ValueError):
        return False


def _event_diffs(ea: pd.DataFrame, eb: pd.DataFrame, tolerance: float) -> list[Difference]:
    out: list[Difference] = []
    ea, eb = ea.reset_index(drop=True), eb.reset_index(drop=True)
    if len(ea) != len(eb):
        out.append(Difference("events", f"events: {len(ea)} in A, {len(eb)} in B",
                              None, {"a": len(ea), "b": len(eb)}))
    cols_a, cols_b = [str(c) for c in ea.columns], [str(c) for c in eb.columns]
    if set(cols_a) != set(cols_b):
        out.append(Difference(
            "events", f"event columns differ: only in A {sorted(set(cols_a) - set(cols_b))}, "
            f"only in B {sorted(set(cols_b) - set(cols_a))}", None,
            {"only_in_a": sorted(set(cols_a) - set(cols_b)),
             "only_in_b": sorted(set(cols_b) - set(cols_a))}))
    n = min(len(ea), len(eb))
    if n == 0:
        return out
    bad = np.zeros(n, dtype=bool)
    for col in ("onset", "duration"):
        x = ea[col].to_numpy(np.float64)[:n]
        y = eb[col].to_numpy(np.float64)[:n]
        with np.errstate(invalid="ignore"):
            close = np.abs(x - y) <= tolerance if tolerance else x == y
        bad |= ~(close | (np.isnan(x) & np.isnan(y)))
    common = [c for c in ea.columns if c in eb.columns and c not in ("onset", "duration")]
    for col in common:
        x = ea[col].astype(object).to_numpy()[:n]
        y = eb[col].astype(object).to_numpy()[:n]
        bad |= np.array([not _same_cell(p, q) for p, q in zip(x, y)], dtype=bool)
    idx = np.flatnonzero(bad)
    if idx.size:
        i = int(idx[0])
        ra = tuple(ea.loc[i, ["onset", "duration", "description"]])
        rb = tuple(eb.loc[i, ["onset", "duration", "description"]])
        out.append(Difference(
            "events", f"events: {idx.size} of {n} differ, first at row {i}: {ra} != {rb}",
            None, {"n_different": int(idx.size), "first_row": i, "a": list(ra), "b": list(rb)}))
    return out


#: Samples compared at a time: bounds memory for recordings of any length (file-backed ones
#: are read a window at a time, all channels of a grid in one read).
COMPARE_WINDOW = 1 << 16


def _window(g: Any, labels: list[str], start: int, stop: int) -> dict[str, np.ndarray]:
    """The stored samples ``[start, stop)`` of ``labels`` of grid ``g``, one read a block."""
    want = set(labels)
    out: dict[str, np.ndarray] = {}
    for blabs, arr, _ in g.stored_blocks():
        rows = [i for i, lab in enumerate(blabs) if lab in want]
        if rows:
            part = arr[np.asarray(rows), start:stop] if len(rows) < len(blabs) \
                else arr[:, start:stop]
            out.update((blabs[i], row) for i, row in zip(rows, part))
    return out


def _fold(acc: dict[str, Any] | None, det: dict[str, Any] | None, offset: int,
          n_total: int) -> dict[str, Any] | None:
    """Fold one window's sample differences into the running ones for the channel."""
    if det is None:
        return acc if acc is None else {**acc, "n_compared": n_total}
    if acc is None:
        return {**det, "first_index": det["first_index"] + offset, "n_compared": n_total}
    return {**acc, "n_different": acc["n_different"] + det["n_different"],
            "max_abs_diff": float(np.fmax(acc["max_abs_diff"], det["max_abs_diff"])),
            "n_compared": n_total}


def _windowed_sample_diffs(a: Recording, b: Recording, labels: list[str],
                           exact: dict[str, bool], tolerance: float) -> dict[str, Difference]:
    """Sample differences of ``labels``, read and compared a window at a time per grid pair."""
    pairs: dict[tuple[str, str], list[str]] = {}
    for label in labels:
        pairs.setdefault((a.grid_of(label).key, b.grid_of(label).key), []).append(label)
    found: dict[str, dict[str, Any] | None] = dict.fromkeys(labels)
    for (ka, kb), labs in pairs.items():
        ga, gb = a.grids[ka], b.grids[kb]
        n = min(ga.n_samples, gb.n_samples)
        for s in range(0, max(n, 1), COMPARE_WINDOW):
            e = min(n, s + COMPARE_WINDOW)
            wa, wb = _window(ga, labs, s, e), _window(gb, labs, s, e)
            for lab in labs:
                xa, xb = wa[lab], wb[lab]
                if not exact[lab]:
                    ca, cb = ga.calibration(lab), gb.calibration(lab)
                    xa = xa if ca is None else ca.apply(xa)
                    xb = xb if cb is None else cb.apply(xb)
                d = _sample_diff(xa, xb, 0.0 if exact[lab] else tolerance)
                found[lab] = _fold(found[lab], d, s, n)
    out: dict[str, Difference] = {}
    for lab, det in found.items():
        if det is None:
            continue
        what = "stored integers differ" if exact[lab] else "samples differ"
        unit = "" if exact[lab] else str(a.channels[lab].get("physical_dimension") or "")
        unit_txt = f" {unit}" if unit else ""
        out[lab] = Difference("samples", (
            f"{lab}: {det['n_different']} of {det['n_compared']} {what}; max abs difference "
            f"{det['max_abs_diff']:.6g}{unit_txt}, first at index {det['first_index']}: "
            f"{_fmt(det['a'])} != {_fmt(det['b'])}"), lab, det)
    return out


def compare(a: Recording, b: Recording, tolerance: float = 0.0, *,
            ignore_metadata_keys: Iterable[str] = (), ignore_channel_keys: Iterable[str] = (),
            check_metadata: bool = True, check_events: bool = True,
            limit: int | None = None) -> list[Difference]:
    """Every way ``b`` differs from the reference ``a``; empty when they are equal.

    ``tolerance`` 0 (the default) is exact: samples bit for bit, and the stored dtype and
    calibration must match too. A positive ``tolerance`` compares physical values within that
    absolute difference (NaN only matches NaN) and event onsets/durations within it (s), and
    leaves representation (dtype, calibration) out. A rate or t0 difference is reported and
    the samples of that channel are not compared; differing lengths are reported and the
    common part is compared.
    """
    if not (tolerance >= 0 and math.isfinite(tolerance)):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    ignore_ch = tuple(ignore_channel_keys)
    out: list[Difference] = []
    labels_a, labels_b = list(a.channels), list(b.channels)
    missing = [c for c in labels_a if c not in b.channels]
    extra = [c for c in labels_b if c not in a.channels]
    if missing:
        out.append(Difference("channels_missing", f"missing channels: {missing}", None,
                              {"channels": missing}))
    if extra:
        out.append(Difference("channels_extra", f"extra channels: {extra}",
                              None, {"channels": extra}))
    common = [c for c in labels_a if c in b.channels]
    if [c for c in labels_b if c in a.channels] != common:
        out.append(Difference("channel_order", "channel order differs", None,
                              {"a": common, "b": [c for c in labels_b if c in a.channels]}))
    per_label: dict[str, list[Difference]] = {lab: [] for lab in common}
    exact: dict[str, bool] = {}  # compare the stored integers (same scaling) or physical
    for label in common:
        found = per_label[label]
        ga, gb = a.grid_of(label), b.grid_of(label)
        if ga.rate != gb.rate:
            found.append(Difference("rate", f"{label}: rate {ga.rate!r} Hz != {gb.rate!r} Hz",
                                    label, {"a": ga.rate, "b": gb.rate}))
            continue
        if ga.t0 != gb.t0:
            found.append(Difference("t0", f"{label}: t0 {ga.t0!r} s != {gb.t0!r} s", label,
                                    {"a": ga.t0, "b": gb.t0}))
        if ga.n_samples != gb.n_samples:
            found.append(Difference("length", f"{label}: {ga.n_samples} samples != "
                                    f"{gb.n_samples}", label,
                                    {"a": ga.n_samples, "b": gb.n_samples}))
        ca, cb = ga.calibration(label), gb.calibration(label)
        if tolerance == 0:
            da, db = ga.stored_dtypes[label], gb.stored_dtypes[label]
            if da != db:
                found.append(Difference("dtype", f"{label}: stored dtype {da} != {db}", label,
                                        {"a": str(da), "b": str(db)}))
            if ca != cb:
                found.append(Difference("calibration", f"{label}: calibration {ca} != {cb}",
                                        label, {"a": _calibration(ca), "b": _calibration(cb)}))
        exact[label] = tolerance == 0 and ca is not None and ca == cb
    for label, d in _windowed_sample_diffs(a, b, list(exact), exact, tolerance).items():
        per_label[label].append(d)
    for label in common:
        dinfo = _info_diff(label, a.channels[label], b.channels[label], ignore_ch)
        if dinfo is not None:
            per_label[label].append(dinfo)
        out += per_label[label]
        if limit is not None and len(out) >= limit:
            return out[:limit]
    if check_events:
        out += _event_diffs(a.events, b.events, tolerance)
    if check_metadata:
        ignore = set(ignore_metadata_keys)
        keys = [k for k in dict.fromkeys([*a.metadata, *b.metadata]) if k not in ignore]
        only_a = [k for k in keys if k not in b.metadata]
        only_b = [k for k in keys if k not in a.metadata]
        changed = [k for k in keys if k in a.metadata and k in b.metadata
                   and not _same(a.metadata[k], b.metadata[k])]
        if only_a or only_b or changed:
            parts = [f"differ in {changed}"] if changed else []
            parts += [f"only in A: {only_a}"] if only_a else []
            parts += [f"only in B: {only_b}"] if only_b else []
            out.append(Difference("metadata", "metadata " + "; ".join(parts), None,
                                  {"changed": changed, "only_in_a": only_a, "only_in_b": only_b}))
    return out if limit is None else out[:limit]


def compare_files(a: str | os.PathLike[str], b: str | os.PathLike[str], tolerance: float = 0.0,
                  *, group_a: str | None = None, group_b: str | None = None,
                  ignore_metadata_keys: Iterable[str] = LOCATION_KEYS,
                  ignore_channel_keys: Iterable[str] | None = None,
                  **kwargs: Any) -> list[Difference]:
    """:func:`compare` of two readable inputs (see :func:`load`); the keys naming where each
    was read from (:data:`LOCATION_KEYS`, :func:`location_channel_keys`) are left out."""
    ra = load(a, group=group_a)
    rb = load(b, group=group_b)
    chan = location_channel_keys() if ignore_channel_keys is None else ignore_channel_keys
    return compare(ra, rb, tolerance, ignore_metadata_keys=ignore_metadata_keys,
                   ignore_channel_keys=chan, **kwargs)
