"""The preview PNG: a valid image, drawn from the envelope, no plotting library."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from biosigio_lib.preview import encode_png, preview_markdown, rasterise


def _decode(png: bytes) -> np.ndarray:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    w = h = 0
    while pos < len(png):
        (n,) = struct.unpack(">I", png[pos:pos + 4])
        tag, data = png[pos + 4:pos + 8], png[pos + 8:pos + 8 + n]
        crc = struct.unpack(">I", png[pos + 8 + n:pos + 12 + n])[0]
        assert crc == zlib.crc32(tag + data) & 0xFFFFFFFF
        if tag == b"IHDR":
            w, h = struct.unpack(">II", data[:8])
        elif tag == b"IDAT":
            idat += data
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, w + 1)
    return raw[:, 1:]


def test_png_round_trip() -> None:
    img = (np.arange(30 * 20) % 256).astype(np.uint8).reshape(30, 20)
    assert np.array_equal(_decode(encode_png(img)), img)
    with pytest.raises(ValueError):
        encode_png(np.zeros((0, 3)))


def test_rasterise_draws_each_channel_in_its_row() -> None:
    t = np.linspace(0, 1, 2000)
    sig = np.stack([np.sin(2 * np.pi * 3 * t), np.where(t > 0.5, 1.0, 0.0)])
    img = rasterise(sig, sig, width=100, row_height=20, gap=4)
    assert img.shape == (44, 100)
    row2 = img[24:44]
    # the step channel: low before the middle, high after
    assert (row2[-1, :45] < 128).all() and (row2[0, 55:] < 128).all()
    assert (row2[0, :45] == 255).all()
    # NaN-only channels leave a blank row instead of failing
    blank = rasterise(np.full((1, 10), np.nan), np.full((1, 10), np.nan), width=10)
    assert (blank == 255).all()


def test_markdown_embeds_data_uri() -> None:
    md = preview_markdown(encode_png(np.zeros((2, 2), np.uint8)), "x", "/a/b.png")
    assert md.startswith("![x](data:image/png;base64,") and "`/a/b.png`" in md
