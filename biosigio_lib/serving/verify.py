"""``verify_level0``: check a store's level 0 against its source within the stated bound.

The source is resampled again with the store's own parameters (from its root attrs) and the
same code path as the writer; each channel's largest difference to the dequantised level 0
must not exceed the ``max_abs_error`` its group attrs state, and NaN must sit at the same
places; a group of the source that the store lacks fails too. A recording without channels
checks nothing and passes against its events-only store. The pipeline's asset check is a
thin call of this function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .level0 import filtered_block, plan_groups
from .params import ServingParams
from .reader import _open_root, open_group
from .resample import reference_values

if TYPE_CHECKING:
    from ..recording import Recording
    from .layout import StoreLike

__all__ = ["verify_level0"]


def verify_level0(rec: Recording, where: StoreLike, group: str | None = None, *,
                  storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Compare level 0 of ``group`` (all groups when None) with ``rec`` resampled again.

    Returns ``{"ok", "url", "serving_version", "groups": {name: {"ok", "channels":
    {label: {"max_abs_diff", "bound", "nan_mismatch", "ok"}}}}, "failures": [...]}``.
    """
    root, url = _open_root(where, storage_options)
    attrs = root.attrs.asdict()
    params = ServingParams.from_dict(attrs["serving_params"])
    plans = {gp.name: gp for gp in plan_groups(rec, params)}
    names = [group] if group is not None else list(attrs.get("channel_groups", plans))
    report: dict[str, Any] = {"ok": True, "url": url, "groups": {}, "failures": [],
                              "serving_version": attrs.get("serving_version")}
    from concurrent.futures import ThreadPoolExecutor

    if group is None:  # a source group the store lacks (an events-only store has none)
        for name in plans:
            if name not in names:
                report["failures"].append(f"{name}: missing from the store")
                report["ok"] = False
    with ThreadPoolExecutor(2) as pool:
        for name in names:
            if name not in plans:
                report["failures"].append(f"{name}: the source has no such group")
                report["ok"] = False
                continue
            report["groups"][name] = _verify_group(rec, plans[name], params, where, name,
                                                   storage_options, pool, report)
    return report


def _verify_group(rec: Recording, gp: Any, params: ServingParams, where: StoreLike, name: str,
                  storage_options: dict[str, Any] | None, pool: Any,
                  report: dict[str, Any]) -> dict[str, Any]:
    sg = open_group(where, name, storage_options)
    bounds = np.asarray(sg.attrs.get("max_abs_error", [np.inf] * len(sg.labels)), np.float64)
    # The filtered level 0 is recomputed a window at a time (the writer's reference values
    # and filter), never held whole: memory stays that of a window for any length.
    int16 = params.dtype == "int16"
    refs = {idx: reference_values(rs.src) for idx, rs in enumerate(gp.rowsets)
            if rs.filtered and gp.plan is not None}
    n_ch, n = len(gp.labels), gp.n_out
    worst = np.zeros(n_ch)
    nan_bad = np.zeros(n_ch, dtype=np.int64)
    if sg.n_samples != n or sg.labels != gp.labels:
        report["ok"] = False
        report["failures"].append(f"{name}: shape/labels differ from the source")
        return {"ok": False, "channels": {}}
    from .resample import pick_block

    step = max(1, int(sg.attrs.get("view_chunk_columns", 1024)) * 8)  # ~8k columns a window
    for s in range(0, n, step):
        e = min(n, s + step)
        stored = sg.a0[:, s:e]
        with np.errstate(over="ignore"):  # the NaN code may overflow; it becomes NaN below
            got = (stored.astype(np.float64) * sg.scale[:, None] + sg.offset[:, None]
                   if stored.dtype.kind == "i" else stored.astype(np.float64))
        if sg.nan_code is not None:
            got[stored == sg.nan_code] = np.nan
        want = np.empty((n_ch, e - s))
        for idx, rs in enumerate(gp.rowsets):
            if idx in refs:
                up = gp.ratio.up
                q = (s // up, -(-e // up))
                blk, _ = filtered_block(gp, rs, refs[idx], q, params)
                part = blk[:, s - q[0] * up: e - q[0] * up]
                want[rs.pos] = part + refs[idx][:, None] if int16 else part
            else:
                want[rs.pos] = pick_block(rs.src, gp.ratio, s, e)
        gnan, wnan = np.isnan(got), ~np.isfinite(want)
        if sg.nan_code is None:  # float32 keeps +-Inf as it is
            wnan = np.isnan(want)
        nan_bad += (gnan != wnan).sum(axis=1)
        with np.errstate(invalid="ignore"):
            diff = np.where(gnan | wnan | (got == want), 0.0, np.abs(got - want))
        worst = np.maximum(worst, diff.max(axis=1) if diff.size else 0.0)
    chans = {}
    for i, lab in enumerate(gp.labels):
        ok = bool(worst[i] <= bounds[i] and nan_bad[i] == 0)
        chans[lab] = {"max_abs_diff": float(worst[i]), "bound": float(bounds[i]),
                      "nan_mismatch": int(nan_bad[i]), "ok": ok}
        if not ok:
            report["ok"] = False
            report["failures"].append(
                f"{name}/{lab}: max |diff| {worst[i]:.3g} > bound {bounds[i]:.3g} or "
                f"{int(nan_bad[i])} NaN mismatches")
    return {"ok": all(c["ok"] for c in chans.values()), "channels": chans}
