"""``write_zarr``: a Recording to a biosigio 1.2 Zarr v3 serving store, complete or absent.

Per (modality, grid) group (see :mod:`.level0`): each channel's range comes from its
calibration (calibrated <= 16-bit sources) or a first filtering pass that measures it; then
level 0 is filtered, quantised and written shard by shard (the
next shard is computed while the previous one is compressed), feeding the min/max pyramid on
the way, so memory stays at a few shards. The root attrs, which make the store valid, are
written last; a local store is built under a temporary name and renamed into place.

A recording without channels (annotation-only EDF+) gives a valid store with no signal
groups: the root attrs and the ``events`` group (empty when there are no events either).
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import _jsonsafe
from .._fs import atomic_target, resolve
from ..errors import StoreExistsError, WriteError
from . import layout
from .level0 import GroupPlan, Level0Stats, gather, plan_groups, scales, shard_block
from .params import ServingParams
from .pyramid import ViewPyramid, level_lengths
from .quantize import NAN_CODE, Int16Scale

if TYPE_CHECKING:
    from ..recording import Recording

__all__ = ["resolve_params", "write_zarr"]


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim`` (None elsewhere)."""
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def _release_memory() -> None:
    """Hand freed blocks back to the OS between shards: zarr encodes in its own threads,
    whose malloc arenas otherwise keep every freed shard buffer and raise the peak RSS."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _compressors(params: ServingParams) -> list[Any]:
    from zarr.codecs import BloscCname, BloscCodec, BloscShuffle

    return [BloscCodec(cname=BloscCname(params.compressor), clevel=params.clevel,
                       shuffle=BloscShuffle(params.shuffle))]


def _write_group(root: Any, rec: Recording, gp: GroupPlan, params: ServingParams,
                 pool: ThreadPoolExecutor, io: ThreadPoolExecutor) -> None:
    n_ch, n_out, rate = len(gp.labels), gp.n_out, gp.rate
    out_dtype = np.dtype(params.dtype)
    fill: Any = NAN_CODE if params.dtype == "int16" else np.nan
    chunk_t, shard_t = layout.chunk_shard(n_out, rate, params.chunk_seconds,
                                          params.shard_seconds)
    st = gather(gp, params, pool, keep=shard_t)
    sc, err = scales(st, params)
    lengths = level_lengths(n_out, params.view_factor, params.view_max_samples,
                            params.max_view_levels)
    scale = sc.scale if sc is not None else np.ones(n_ch)
    offset = sc.offset if sc is not None else np.zeros(n_ch)
    entries = _channel_entries(rec, gp, st, scale, offset, err, sc)
    nan_attr = {"nan_code": NAN_CODE} if sc is not None else {}
    grp = root.create_group(gp.name, attributes={
        "modality": gp.modality, "rate": rate, "original_rate": gp.native,
        "n_channels": n_ch, "n_samples": n_out, "channels": entries,
        "n_view_levels": len(lengths), "view_levels": list(range(1, len(lengths) + 1)),
        "view_downsample": params.view_factor, "view_chunk_columns": params.view_chunk_columns,
        "chunk_seconds": params.chunk_seconds, "shard_seconds": params.shard_seconds,
        "t0": gp.grid.t0, "grid": gp.grid.key, "dtype": params.dtype,
        "resampling": (gp.plan.attrs() if gp.plan is not None else {"method": "none"}),
        "discrete_resampling": "nearest source sample, never filtered",
        "max_abs_error": [float(x) for x in err], **nan_attr,
    })
    a0 = grp.create_array(
        "0", shape=(n_ch, n_out), chunks=(n_ch, chunk_t), shards=(n_ch, shard_t),
        dtype=out_dtype, compressors=_compressors(params), fill_value=fill,
        config={"write_empty_chunks": True}, attributes={
            "level": 0, "rate": rate, "source_rate_hz": gp.native, "downsample_factor": 1,
            "kind": "signal", "chunk_samples": chunk_t, "shard_samples": shard_t,
            "anti_aliased": any(e["anti_aliased"] for e in entries),
            "usable_for_inference": any(e["usable_for_inference"] for e in entries),
            "scale": scale.tolist(), "offset": offset.tolist(),
            "physical_formula": layout.PHYSICAL_FORMULA, **nan_attr})
    views = _create_views(grp, lengths, n_ch, out_dtype, params, rate)
    pyramid = ViewPyramid(lengths, params.view_factor, [int(v.chunks[2]) for v in views])
    def finish(block: np.ndarray, s: int, e: int) -> None:
        """Write a level-0 shard and feed the pyramid (in the I/O thread, in shard order,
        while the next shard is filtered): every view level goes out in whole chunks as
        level 0 completes them."""
        a0[:, s:e] = block
        if lengths:
            for li, c0, cols in pyramid.feed(block, last=e == n_out):
                views[li][:, :, c0: c0 + cols.shape[2]] = cols

    pending: Future[Any] | None = None
    for s in range(0, n_out, shard_t):
        e = min(n_out, s + shard_t)
        block = shard_block(gp, st, sc, s, e, pool, params)
        st.heads.clear()  # only the first shard was kept
        if pending is not None:  # at most one shard's writes in flight
            pending.result()
        _release_memory()
        pending = io.submit(finish, block, s, e)
        del block
    if pending is not None:
        pending.result()
    _release_memory()


def _create_views(grp: Any, lengths: list[int], n_ch: int, dtype: np.dtype[Any],
                  params: ServingParams, rate: float) -> list[Any]:
    """The ``view`` group and one empty ``(2, n_ch, n_L)`` array per level."""
    view = grp.create_group("view")
    arrays = []
    for li, n in enumerate(lengths, start=1):
        ct = max(1, min(n, params.view_chunk_columns))
        eff = params.view_factor ** li
        arrays.append(view.create_array(
            str(li), shape=(2, n_ch, n), chunks=(2, n_ch, ct), dtype=dtype,
            compressors=_compressors(params),
            fill_value=NAN_CODE if dtype == np.int16 else np.nan,
            config={"write_empty_chunks": True}, attributes={
                "level": li, "downsample_factor": eff, "rate_effective": rate / eff,
                "kind": "minmax_envelope", "axis0": ["min", "max"], "chunk_columns": ct,
                "usable_for_inference": False}))
    return arrays


def _channel_entries(rec: Recording, gp: GroupPlan, st: Level0Stats, scale: np.ndarray,
                     offset: np.ndarray, err: np.ndarray,
                     sc: Int16Scale | None) -> list[dict[str, Any]]:
    filtered = np.zeros(len(gp.labels), bool)
    for rs in gp.rowsets:
        filtered[rs.pos] = rs.filtered and gp.plan is not None
    out = []
    for i, label in enumerate(gp.labels):
        info = rec.channels[label]
        out.append({
            "label": label,
            "channel_type": layout.biosigio_channel_type(info["channel_type"]),
            "modality": layout.biosigio_modality(info["modality"]),
            "unit": info["physical_dimension"], "prefilter": info["prefilter"],
            "original_rate": gp.native, "target_rate": gp.rate,
            "anti_aliased": bool(filtered[i]),
            "usable_for_inference": bool(not gp.discrete[i] and st.nan_out[i] == 0),
            "scale": float(scale[i]), "offset": float(offset[i]), "row_index": i,
            "max_abs_error": float(err[i]),
            "exact": bool(sc.exact[i]) if sc is not None else False,
            "nonfinite_samples": int(st.nonfinite[i]), "nan_samples": int(st.nan_out[i]),
            "info": _jsonsafe.encode(info),
        })
    return out


def _write_events(root: Any, rec: Recording) -> None:
    """onset/duration/code arrays and a code -> description map (codes by first use)."""
    ev = rec.events
    if len(ev) == 0:
        root.create_group("events", attributes={"label_map": {}, "n_events": 0})
        return
    descs = np.array([str(d) for d in ev["description"]], dtype=object)  # may hold surrogates
    uniques, codes = np.unique(descs, return_inverse=True)
    order = np.argsort(np.unique(codes, return_index=True)[1])
    remap = np.empty_like(order)
    remap[order] = np.arange(len(order))
    labels = [str(uniques[j]) for j in order]
    extra = {c: _jsonsafe.encode(ev[c].tolist()) for c in ev.columns
             if c not in ("onset", "duration", "description")}
    eg = root.create_group("events", attributes={
        "label_map": {str(i): _jsonsafe.encode(d) for i, d in enumerate(labels)},
        "n_events": len(ev),
        "extra_columns": extra, "extra_column_order": list(extra)})
    for name, arr in (("onset", ev["onset"].to_numpy(dtype=np.float64)),
                      ("duration", ev["duration"].to_numpy(dtype=np.float64)),
                      ("code", remap[codes].astype(np.int32))):
        eg.create_array(name, data=arr, chunks=arr.shape)


def _root_attrs(rec: Recording, plans: list[GroupPlan], params: ServingParams) -> dict[str, Any]:
    from .. import __version__

    md = rec.metadata
    return {
        "format": layout.FORMAT, "format_version": layout.FORMAT_VERSION,
        "writer": f"biosigio_lib {__version__}",
        "source_format": md.get("source_format", "n/a"),
        "modality_rates": {k: v for k, v in params.rate_caps.items() if v is not None},
        "dtype": params.dtype, "view_downsample": params.view_factor,
        "view_chunk_columns": params.view_chunk_columns,
        "anti_alias_filter": (f"polyphase FIR (scipy.signal.firwin {params.filter_window}, "
                              f"beta={params.filter_beta}, half width "
                              f"{params.filter_half_width}*max(up,down)), edge-padded"),
        "channel_groups": [gp.name for gp in plans],
        "recording_metadata": _jsonsafe.encode(md),
        "source_file": None if md.get("source_file") is None else str(md["source_file"]),
        "source_checksum": md.get("source_checksum"),
        "serving_params": params.to_dict(), "serving_version": params.version(),
        "created_utc": dt.datetime.now(dt.UTC).isoformat(),
        "note": ("Derived serving copy. level 0 of each group is the anti-aliased inference "
                 "signal; view/* are min/max render envelopes (not for inference)."),
    }


def _write_store(rec: Recording, plans: list[GroupPlan], params: ServingParams,
                 store: Any) -> None:
    import zarr

    root = zarr.create_group(store=store, overwrite=False)
    workers = max(2, os.cpu_count() or 2)
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as io:
        for gp in plans:
            _write_group(root, rec, gp, params, pool, io)
    _write_events(root, rec)
    root.update_attributes(_root_attrs(rec, plans, params))  # last: this makes the store valid


def resolve_params(params: ServingParams | None, dtype: Any,
                   overrides: dict[str, Any]) -> ServingParams:
    """Params from an object, keyword overrides and ``dtype`` (which wins when given)."""
    p = params if params is not None else ServingParams()
    if overrides:
        try:
            p = p.replace(**overrides)
        except TypeError as exc:
            raise TypeError(f"unknown serving parameter(s) {sorted(overrides)}: {exc}") from None
    if dtype is not None:
        p = p.replace(dtype=dtype)
    return p


def write_zarr(rec: Recording, where: str | os.PathLike[str], *, dtype: Any = None,
               params: ServingParams | None = None, overwrite: bool = False,
               storage_options: dict[str, Any] | None = None, **param_overrides: Any) -> str:
    """Write the serving store (level 0 + min/max pyramid); returns its path or URL.

    A recording without channels gives an events-only store (no signal groups).
    """
    params = resolve_params(params, dtype, param_overrides)
    loc = resolve(where, storage_options)
    plans = plan_groups(rec, params)
    try:
        with atomic_target(loc, overwrite=overwrite, marker="zarr.json") as tmp:
            store, _ = layout.open_store(tmp, read_only=False)
            _write_store(rec, plans, params, store)
    except OSError as exc:
        if isinstance(exc, StoreExistsError | WriteError):
            raise
        raise WriteError(f"writing the Zarr store failed: {exc}", path=loc.url) from exc
    return loc.url
