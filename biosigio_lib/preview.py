"""A small PNG preview of a serving store, drawn from its min/max view pyramid.

No plotting library: the envelope of each channel is rasterised with numpy (one vertical
min-max bar per pixel column, the way waveform viewers draw) and written as an 8-bit
grayscale PNG with zlib. Only a coarse view level is read, so a preview of an hours-long
recording costs a few kilobytes of IO.
"""

from __future__ import annotations

import base64
import os
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["encode_png", "preview_markdown", "rasterise", "store_preview_png"]


def encode_png(image: np.ndarray) -> bytes:
    """Encode a ``(height, width)`` uint8 grayscale image as PNG bytes."""
    img = np.ascontiguousarray(image, dtype=np.uint8)
    if img.ndim != 2 or img.size == 0:
        raise ValueError(f"expected a non-empty 2-D uint8 image, got shape {img.shape}")
    h, w = img.shape
    raw = np.empty((h, w + 1), dtype=np.uint8)
    raw[:, 0] = 0  # filter type "None" for every row
    raw[:, 1:] = img

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))


def rasterise(lo: np.ndarray, hi: np.ndarray, *, width: int = 480, row_height: int = 36,
              gap: int = 4) -> np.ndarray:
    """Draw per-channel min/max envelopes ``(n_ch, n)`` as stacked bars; white background."""
    lo = np.asarray(lo, dtype=np.float64)
    hi = np.asarray(hi, dtype=np.float64)
    n_ch, n = lo.shape
    height = max(1, n_ch * (row_height + gap) - gap)
    img = np.full((height, width), 255, dtype=np.uint8)
    if n == 0 or n_ch == 0:
        return img
    # resample the envelope to the image width: min of mins / max of maxes per pixel column
    edges = np.linspace(0, n, width + 1).astype(np.int64)
    edges[1:] = np.maximum(edges[1:], edges[:-1] + 1)
    edges = np.minimum(edges, n)
    starts = np.minimum(edges[:-1], n - 1)
    cmin = np.fmin.reduceat(lo, starts, axis=1)
    cmax = np.fmax.reduceat(hi, starts, axis=1)
    finite = np.isfinite(cmin) & np.isfinite(cmax)
    ymin = np.where(finite, cmin, np.inf).min(axis=1, keepdims=True)  # NaN/Inf columns: gaps
    ymax = np.where(finite, cmax, -np.inf).max(axis=1, keepdims=True)
    span = np.where(np.isfinite(ymax - ymin) & (ymax > ymin), ymax - ymin, 1.0)
    base = np.where(np.isfinite(ymin), ymin, 0.0)
    scale = row_height - 1
    top = np.clip(np.where(finite, (cmax - base) / span * scale, -1), -1, scale)
    bot = np.clip(np.where(finite, (cmin - base) / span * scale, -1), -1, scale)
    rows = np.arange(row_height)[None, :, None]  # y measured up from the bottom of a row
    drawn = (rows >= np.floor(bot)[:, None, :]) & (rows <= np.ceil(top)[:, None, :])
    drawn &= (top >= 0)[:, None, :]
    for c in range(n_ch):  # one small assignment a channel (a few rows), not a sample loop
        y0 = c * (row_height + gap)
        img[y0: y0 + row_height][drawn[c][::-1]] = 40
        if c:
            img[y0 - gap // 2 - 1] = 200
    return img


def store_preview_png(url: str, *, group: str | None = None, max_channels: int = 8,
                      width: int = 480, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """PNG of a store group's first channels, from the coarsest view level that fills
    ``width`` pixels (only that level is read)."""
    from . import serving

    kw: dict[str, Any] = {"storage_options": dict(storage_options)} if storage_options else {}
    groups = list(serving.list_groups(url, **kw))
    if not groups:
        raise ValueError(f"{url}: the store has no signal groups to preview")
    group = group or groups[0]
    # the coarsest level that still fills the width (level 0 for short recordings)
    level = serving.pick_view_level(url, group, width, **kw)
    view = serving.read_view(url, group, level, **kw)
    lo = np.asarray(view.min)[:max_channels]
    hi = np.asarray(view.max)[:max_channels]
    return encode_png(rasterise(lo, hi, width=width))


def preview_markdown(png: bytes, alt: str = "preview", path: str | os.PathLike[str] | None = None
                     ) -> str:
    """Markdown embedding the PNG as a data URI (plus where the file is, when given)."""
    text = f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"
    return text + (f"\n\n`{os.fspath(path)}`" if path is not None else "")
