"""Level 0 of each channel group: planning, a range-measuring pass, and shard blocks.

``plan_groups`` groups channels by (modality, grid) and picks each group's exact ratio and
filter; ``gather`` finds every channel's range and non-finite counts (from the calibration
alone for calibrated <= 16-bit sources, else by filtering once to measure them);
``shard_block`` filters, one shard at a time, and quantises (or casts) for storage.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..channels import DISCRETE_TYPES
from ..errors import UnrepresentableValueError
from . import layout
from .params import ServingParams
from .quantize import F32_MAX, Int16Scale, fits_float32, float32_error, int16_scale, quantize_into
from .resample import (
    FilterPlan,
    Ratio,
    Source,
    SourcePart,
    block_ranges,
    block_target,
    design_filter,
    pick_block,
    rational_ratio,
    reference_values,
    resample_block,
)

if TYPE_CHECKING:
    from ..recording import Grid, Recording

__all__ = ["GroupPlan", "Level0Stats", "RowSet", "gather", "plan_groups", "scales",
           "shard_block"]

_DIRECT_BLOCK = 1 << 18  # output samples per job when no filtering is needed
#: Largest finite |value| a filtered channel may hold: int16 stores filter in float32 relative
#: to a reference (|x - ref| <= 2 |x|, times the filter's overshoot), float32 stores keep the
#: output in float32; beyond this the filter would overflow to inf (stored as NaN).
FILTER_ABS_LIMIT = F32_MAX / 8


def _finite_absmax(src: Source, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """Per row: the largest finite |value| of the source (a chunked pass, little memory,
    chunks spread over ``pool``).

    Calibrated rows are bounded without reading: their physical values lie within the
    calibration of their integer type's range; only when that bound is above the limit are
    the samples read.
    """
    bound = src.calibrated_absmax_bound()
    if bound is not None and (bound <= FILTER_ABS_LIMIT).all():
        return bound
    if src.dtype.kind != "f":
        return np.full(src.n_ch, 0.0)  # integers are far below the limit
    step = max(1024, (1 << 20) // max(1, src.n_ch))

    def chunk(s: int) -> np.ndarray:
        v = np.asarray(src.get(s, min(src.n_in, s + step)))
        hi, lo = v.max(axis=1), v.min(axis=1)  # two passes, no temporaries
        m: np.ndarray = np.fmax(np.abs(hi), np.abs(lo))
        bad = ~np.isfinite(m)  # a NaN or an infinity in the row: the slow way, that row only
        if bad.any():
            a = np.abs(v[bad])
            a[~np.isfinite(a)] = 0.0
            m[bad] = a.max(axis=1, initial=0.0)
        return m

    starts = range(0, src.n_in, step)
    parts = list(pool.map(chunk, starts)) if pool is not None else [chunk(s) for s in starts]
    return np.asarray(np.maximum.reduce([np.zeros(src.n_ch), *parts]), dtype=np.float64)


def _calibrated_range(src: Source, plan: FilterPlan) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row: bounds of the filtered physical values, from the calibration alone, or None.

    Holds when every row is a calibrated integer of at most 16 bits without a missing-value
    code (EDF, most WFDB formats): the source lies within the calibration of its type's range
    ``[lo, hi]``, and a branch with positive tap sum ``P`` and negative sum ``N`` (``P + N =
    1``) maps it into ``[P lo + N hi, P hi + N lo]``. The int16 quantum is then at most the
    filter's L1 norm times the source's own quantum, and the measuring pass is skipped.
    """
    if src.affine is None or any(arr.dtype.itemsize > 2 for arr, *_ in src.parts):
        return None  # not all calibrated integers without a missing code, or wider than 16 bits
    ends = src.calibrated_range()
    if ends is None:
        return None
    lo, hi = ends
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    pos_sum = max(float(t[t > 0].sum()) for _, t in plan.branches)
    neg_sum = min(float(t[t < 0].sum()) for _, t in plan.branches)
    return pos_sum * lo + neg_sum * hi, pos_sum * hi + neg_sum * lo


def _refuse(group: str, labels: list[str], bad: np.ndarray, absmax: np.ndarray,
            why: str, fix: str) -> UnrepresentableValueError:
    """The typed error naming the group, the channels and their magnitude, and the way out."""
    which = [f"{labels[i]!r} (|x| up to {absmax[i]:.3g})" for i in np.flatnonzero(bad)[:5]]
    return UnrepresentableValueError(
        f"group {group!r}: channel(s) {', '.join(which)} {why}; {fix} or rescale the channel "
        "(e.g. a unit with a prefix)")


@dataclass
class RowSet:
    """Rows of a group made the same way: filtered from the source, or taken directly."""

    pos: np.ndarray
    src: Source
    filtered: bool

    def covers(self, n_ch: int) -> bool:
        return len(self.pos) == n_ch


@dataclass
class GroupPlan:
    """One store group: its channels, source rows, rate ratio and filter."""

    name: str
    modality: str
    grid: Grid
    labels: list[str]
    ratio: Ratio
    rate: float
    n_out: int
    rowsets: list[RowSet]
    plan: FilterPlan | None
    discrete: np.ndarray

    @property
    def native(self) -> float:
        return self.grid.rate


def _source(grid: Grid, labels: list[str]) -> Source:
    want = {lab: i for i, lab in enumerate(labels)}
    parts: list[SourcePart] = []
    for blabs, arr, cals in grid.stored_blocks():
        rows = [j for j, lab in enumerate(blabs) if lab in want]
        if not rows:
            continue
        pos = np.array([want[blabs[j]] for j in rows], dtype=np.int64)
        whole = len(rows) == len(blabs) == len(labels) and bool(
            np.array_equal(pos, np.arange(len(labels))))
        parts.append((arr, None if whole else np.array(rows, dtype=np.int64), pos,
                      None if cals is None else [cals[j] for j in rows]))
    return Source(parts, len(labels), grid.n_samples)


def _is_discrete(info: dict[str, Any]) -> bool:
    return info.get("channel_type") in DISCRETE_TYPES or info.get("modality") == "DISCRETE"


def plan_groups(rec: Recording, params: ServingParams) -> list[GroupPlan]:
    """Group channels by (modality, grid), in channel order, and plan each group's level 0."""
    keys: dict[tuple[str, str], list[str]] = {}
    for label, info in rec.channels.items():
        keys.setdefault((str(info["modality"]), rec.grid_of(label).key), []).append(label)
    taken: set[str] = set()
    plans = []
    for (modality, gkey), labels in keys.items():
        grid = rec.grids[gkey]
        ratio = rational_ratio(grid.rate, params.cap_for(modality), params.max_ratio_denominator)
        rate = ratio.out_rate(grid.rate)
        name = layout.group_name(modality, rate, grid.rate, taken)
        taken.add(name)
        discrete = np.array([_is_discrete(rec.channels[lab]) for lab in labels])
        rowsets = []
        for filtered in (True, False):
            sel = [i for i, d in enumerate(discrete) if filtered != (d or ratio.identity)]
            if sel:
                rs_labels = [labels[i] for i in sel]
                rowsets.append(RowSet(np.array(sel, dtype=np.int64), _source(grid, rs_labels),
                                      filtered))
        plan = None
        if not ratio.identity:
            plan = design_filter(ratio, window=params.filter_window, beta=params.filter_beta,
                                 half_width=params.filter_half_width)
        plans.append(GroupPlan(name, modality, grid, labels, ratio, rate,
                               ratio.n_out(grid.n_samples), rowsets, plan, discrete))
    return plans


@dataclass
class Level0Stats:
    """Per-channel facts of the first pass (ranges, counts, references) and kept blocks."""

    vmin: np.ndarray
    vmax: np.ndarray
    integer: np.ndarray
    nonfinite: np.ndarray
    nan_out: np.ndarray
    ref: np.ndarray
    buffers: dict[int, np.ndarray]
    refs: dict[int, np.ndarray]
    filtered: np.ndarray
    #: per filtered row set, the first-pass blocks ``(k0, samples)`` below ``keep``
    heads: dict[int, list[tuple[int, np.ndarray]]] = field(default_factory=dict)
    #: the group's name and channel labels (for errors that name a channel)
    group: str = ""
    labels: list[str] = field(default_factory=list)


def _finite_minmax(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: finite min, max, non-finite count, integer-valued flag."""
    if v.dtype.kind != "f":
        return (v.min(axis=1).astype(np.float64), v.max(axis=1).astype(np.float64),
                np.zeros(v.shape[0], np.int64), np.ones(v.shape[0], bool))
    fin = np.isfinite(v)
    if fin.all():
        bad = np.zeros(v.shape[0], np.int64)
        w = v
    else:
        bad = (~fin).sum(axis=1)
        w = np.where(fin, v, np.nan)
    with np.errstate(invalid="ignore"):
        integer = np.all((w == np.rint(w)) | ~fin, axis=1)
    return np.fmin.reduce(w, axis=1), np.fmax.reduce(w, axis=1), bad, integer


def compute_dtype(params: ServingParams) -> Any:
    """float32 arithmetic for int16 stores (far below the quantum), float64 for float32."""
    return np.float32 if params.dtype == "int16" else np.float64


def filtered_block(gp: GroupPlan, rs: RowSet, ref: np.ndarray, q: tuple[int, int],
                   params: ServingParams) -> tuple[np.ndarray, np.ndarray]:
    """One resampled block: relative to ``ref`` for int16, absolute float64 for float32."""
    assert gp.plan is not None
    blk, bad = resample_block(rs.src, gp.plan, ref, q[0], q[1], dtype=compute_dtype(params))
    if params.dtype != "int16":
        blk += ref[:, None]
    return blk, bad


def gather(gp: GroupPlan, params: ServingParams, pool: ThreadPoolExecutor,
           buffer_dtype: Any = None, keep: int = 0) -> Level0Stats:
    """Every channel's finite range and non-finite counts of its level 0 (a first pass).

    With ``buffer_dtype`` the filtered rows are kept whole (for :func:`verify_level0`).
    ``keep`` keeps the blocks of the first ``keep`` samples as they are (the writer's first
    shard, so only later shards are filtered twice; small blocks, so memory stays small).
    """
    n_ch, n_out = len(gp.labels), gp.n_out
    st = Level0Stats(np.full(n_ch, np.nan), np.full(n_ch, np.nan), np.zeros(n_ch, bool),
                     np.zeros(n_ch, np.int64), np.zeros(n_ch, np.int64), np.zeros(n_ch), {},
                     {}, np.zeros(n_ch, bool))
    st.group, st.labels = gp.name, list(gp.labels)
    int16 = params.dtype == "int16"
    for idx, rs in enumerate(gp.rowsets):
        k = len(rs.pos)
        if rs.filtered and gp.plan is not None:
            plan = gp.plan
            absmax = _finite_absmax(rs.src, pool)
            big = absmax > FILTER_ABS_LIMIT
            if big.any():
                raise _refuse(gp.name, [gp.labels[p] for p in rs.pos], big, absmax,
                              f"are too large to resample from {gp.native:g} Hz without "
                              f"overflow (limit {FILTER_ABS_LIMIT:.3g})",
                              "set the modality's rate cap to None (keep the native rate)")
            ref = reference_values(rs.src)
            bounds = _calibrated_range(rs.src, plan) if buffer_dtype is None else None
            if bounds is not None:  # no measuring pass: the calibration bounds the output
                st.refs[idx] = ref
                st.ref[rs.pos] = ref if int16 else 0.0
                st.filtered[rs.pos] = True
                st.integer[rs.pos] = False
                rel = ref if int16 else np.zeros(k)
                st.vmin[rs.pos], st.vmax[rs.pos] = bounds[0] - rel, bounds[1] - rel
                continue
            buf = None if buffer_dtype is None else np.empty((k, n_out), dtype=buffer_dtype)
            head: list[tuple[int, np.ndarray]] = []

            def job(q: tuple[int, int], rs: RowSet = rs, ref: np.ndarray = ref,
                    buf: np.ndarray | None = buf,
                    head: list[tuple[int, np.ndarray]] = head) -> tuple[np.ndarray, ...]:
                blk, bad = filtered_block(gp, rs, ref, q, params)
                k0 = q[0] * gp.ratio.up
                if buf is not None:
                    buf[:, k0: k0 + blk.shape[1]] = blk
                if k0 < keep:
                    head.append((k0, blk))
                nan = np.isnan(blk).sum(axis=1) if bad.any() else np.zeros(len(bad), np.int64)
                return np.fmin.reduce(blk, axis=1), np.fmax.reduce(blk, axis=1), bad, nan

            target = block_target(k, plan.ratio.down, plan.ratio.up,
                                  itemsize=np.dtype(compute_dtype(params)).itemsize)
            results = list(pool.map(job, block_ranges(n_out, plan.ratio.up, target)))
            if buf is not None:
                st.buffers[idx] = buf
            if head:
                st.heads[idx] = head
            st.refs[idx] = ref
            st.ref[rs.pos] = ref if int16 else 0.0
            st.filtered[rs.pos] = True
            integer = np.zeros(k, bool)
        else:
            def djob(r: tuple[int, int], rs: RowSet = rs) -> tuple[np.ndarray, ...]:
                v = pick_block(rs.src, gp.ratio, r[0], r[1])
                mn, mx, bad, integer = _finite_minmax(v)
                return mn, mx, bad, bad, integer

            ranges = [(s, min(s + _DIRECT_BLOCK, n_out)) for s in range(0, n_out, _DIRECT_BLOCK)]
            results = list(pool.map(djob, ranges))
            integer = np.all([r[4] for r in results], axis=0) if results else np.ones(k, bool)
        if results:
            with np.errstate(invalid="ignore"):
                st.vmin[rs.pos] = np.fmin.reduce([r[0] for r in results], axis=0)
                st.vmax[rs.pos] = np.fmax.reduce([r[1] for r in results], axis=0)
            st.nonfinite[rs.pos] = np.sum([r[2] for r in results], axis=0)
            st.nan_out[rs.pos] = np.sum([r[3] for r in results], axis=0)
        st.integer[rs.pos] = integer
    return st


def scales(st: Level0Stats, params: ServingParams) -> tuple[Int16Scale | None, np.ndarray]:
    """int16 scales (None for float32) and each channel's worst-case error.

    Filtered channels add a few float32 ulps of their range: the second filtering pass
    may round a last bit differently from the first one that measured the range.
    """
    if params.dtype == "float32":
        absmax = np.fmax(np.abs(st.vmin), np.abs(st.vmax))
        over = ~fits_float32(absmax)
        if over.any():  # float32 would store inf under a finite bound: refuse, never lie
            labels = st.labels or [f"#{i}" for i in range(len(absmax))]
            raise _refuse(st.group, labels, over, absmax,
                          "exceed the float32 range (3.4e38) of this store",
                          "store with dtype='int16' (scaled, with a stated bound)")
        return None, float32_error(absmax)
    absrel = np.nan_to_num(np.fmax(np.abs(st.vmin), np.abs(st.vmax)))
    slack = np.where(st.filtered, 4 * 2.0**-23 * absrel, 0.0)
    sc = int16_scale(st.vmin, st.vmax, st.integer, st.ref, slack=slack)
    return sc, sc.max_abs_error


def _split(n: int, parts: int = 2, min_rows: int = 8) -> list[slice]:
    if n < 2 * min_rows:
        return [slice(0, n)]
    step = -(-n // parts)
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


def shard_block(gp: GroupPlan, st: Level0Stats, sc: Int16Scale | None, s: int, e: int,
                pool: ThreadPoolExecutor, params: ServingParams) -> np.ndarray:
    """Level-0 samples ``[s, e)`` of all channels, quantised/cast for storage."""
    n_ch = len(gp.labels)
    out_dtype = np.dtype(params.dtype)
    block = np.empty((n_ch, e - s), dtype=out_dtype)
    for idx, rs in enumerate(gp.rowsets):
        whole = rs.covers(n_ch)
        dest = block if whole else np.empty((len(rs.pos), e - s), dtype=out_dtype)
        sub = None if sc is None else Int16Scale(*(np.asarray(a)[rs.pos] for a in (
            sc.scale, sc.offset, sc.center, sc.exact, sc.max_abs_error)))

        def store(vals: np.ndarray, rows: slice, cols: slice, dest: np.ndarray = dest,
                  sub: Int16Scale | None = sub) -> None:
            if sub is None:
                dest[rows, cols] = vals
            else:
                quantize_into(vals, sub, rows, dest[rows, cols])

        head = st.heads.get(idx, [])
        if head and s == 0 and max(k0 + b.shape[1] for k0, b in head) >= e:
            def hjob(item: tuple[int, np.ndarray],
                     store: Callable[..., None] = store) -> None:  # kept by the first pass
                k0, blk = item
                hi = min(k0 + blk.shape[1], e)
                if hi > k0:
                    store(blk[:, : hi - k0], slice(None), slice(k0, hi))

            list(pool.map(hjob, head))
        elif idx in st.refs and gp.plan is not None:
            up, ref = gp.ratio.up, st.refs[idx]
            target = block_target(len(rs.pos), gp.ratio.down, up,
                                  itemsize=np.dtype(compute_dtype(params)).itemsize)
            q_lo, q_hi = s // up, -(-e // up)

            def job(q: tuple[int, int], rs: RowSet = rs, ref: np.ndarray = ref,
                    store: Callable[..., None] = store) -> None:
                blk, _ = filtered_block(gp, rs, ref, q, params)
                k0 = q[0] * gp.ratio.up
                lo, hi = max(k0, s), min(k0 + blk.shape[1], e)
                store(blk[:, lo - k0: hi - k0], slice(None), slice(lo - s, hi - s))

            ranges = [(q0 + q_lo, q1 + q_lo)
                      for q0, q1 in block_ranges((q_hi - q_lo) * up, up, target)]
            list(pool.map(job, ranges))
        else:
            def djob(rows: slice, rs: RowSet = rs, store: Callable[..., None] = store) -> None:
                for c in range(s, e, _DIRECT_BLOCK // 8):
                    c1 = min(e, c + _DIRECT_BLOCK // 8)
                    vals = pick_block(rs.src, gp.ratio, c, c1)[rows]
                    store(vals, rows, slice(c - s, c1 - s))

            list(pool.map(djob, _split(len(rs.pos))))
        if not whole:
            block[rs.pos] = dest
    return block
