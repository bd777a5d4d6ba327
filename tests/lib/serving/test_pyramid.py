"""The view pyramid: level lengths, NaN-aware min/max, and the block-wise level-1 builder."""

from __future__ import annotations

import numpy as np
import pytest

from biosigio_lib.serving.pyramid import Level1Builder, level_lengths, next_level, reduce_minmax
from biosigio_lib.serving.quantize import NAN_CODE


def test_level_lengths_stop_at_the_floor_and_the_cap() -> None:
    assert level_lengths(150000, 4, 512, 12) == [37500, 9375, 2344, 586, 147]
    assert level_lengths(512, 4, 512, 12) == []
    assert level_lengths(513, 4, 512, 12) == [129]
    assert len(level_lengths(10**12, 4, 512, 12)) == 12


@pytest.mark.parametrize("dtype", [np.float32, np.int16])
def test_reduce_matches_a_naive_loop_and_keeps_the_tail(dtype: type) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(-1000, 1000, (3, 23)).astype(dtype)
    mn, mx = reduce_minmax(a, a, 4)
    assert mn.shape == (3, 6)
    for j in range(6):
        np.testing.assert_array_equal(mn[:, j], a[:, 4 * j: 4 * j + 4].min(axis=1))
        np.testing.assert_array_equal(mx[:, j], a[:, 4 * j: 4 * j + 4].max(axis=1))


def test_nan_is_ignored_unless_the_whole_block_is_nan() -> None:
    f = np.array([[1.0, np.nan, -2.0, 3.0, np.nan, np.nan, np.nan, np.nan]])
    mn, mx = reduce_minmax(f, f, 4)
    assert (mn[0, 0], mx[0, 0]) == (-2.0, 3.0) and np.isnan(mn[0, 1]) and np.isnan(mx[0, 1])
    d = np.array([[1, NAN_CODE, -2, 3, NAN_CODE, NAN_CODE, NAN_CODE, NAN_CODE]], np.int16)
    mn, mx = reduce_minmax(d, d, 4)
    assert (mn[0, 0], mx[0, 0]) == (-2, 3) and mn[0, 1] == mx[0, 1] == NAN_CODE


def test_builder_fed_in_pieces_equals_one_shot() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((2, 1001)).astype(np.float32)
    b = Level1Builder(2, 1001, 4, a.dtype)
    for s, e in ((0, 333), (333, 334), (334, 1000), (1000, 1001)):
        b.feed(a[:, s:e], last=e == 1001)
    mn, mx = reduce_minmax(a, a, 4)
    np.testing.assert_array_equal(b.out, np.stack([mn, mx]))
    lvl2 = next_level(b.out, 4)
    np.testing.assert_array_equal(lvl2[0], reduce_minmax(mn, mn, 4)[0])


@pytest.mark.parametrize("block", [1, 3, 64, 1000, 5000])
def test_streamed_pyramid_equals_whole_levels(block: int) -> None:
    """Levels built while level 0 streams by (any block size) equal whole-level reductions,
    including int16 NaN codes; chunks come out whole, in order, and cover each level."""
    from biosigio_lib.serving.pyramid import ViewPyramid
    from biosigio_lib.serving.quantize import NAN_CODE

    rng = np.random.default_rng(block)
    a = rng.integers(-1000, 1000, (3, 4999)).astype(np.int16)
    a[1, 100:180] = NAN_CODE
    lengths = level_lengths(a.shape[1], 4, 16, 12)
    chunks = [7, 5, 3, 2, 1, 1][: len(lengths)]
    pyr = ViewPyramid(lengths, 4, chunks)
    got = [np.full((2, 3, n), 99, np.int16) for n in lengths]
    seen = [0] * len(lengths)
    for s in range(0, a.shape[1], block):
        e = min(a.shape[1], s + block)
        for li, c0, cols in pyr.feed(a[:, s:e], last=e == a.shape[1]):
            assert c0 == seen[li] and (c0 % chunks[li] == 0)
            got[li][:, :, c0: c0 + cols.shape[2]] = cols
            seen[li] += cols.shape[2]
    assert seen == lengths
    want = np.stack([a, a])
    for li in range(len(lengths)):
        want = next_level(want, 4)
        np.testing.assert_array_equal(got[li], want)
