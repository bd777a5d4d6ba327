"""The viewer: store discovery, tiles, the CLI, and the page in real headless Chromium."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.testing import synthetic_recording
from biosigio_lib.viewer import TILE, find_stores, serve

CHROMIUM = "/usr/bin/chromium"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("viewer")
    rec = synthetic_recording(40, 300.0, 256.0, n_events=6)
    rec.to_zarr(d / "sub-01" / "a.zarr")
    small = synthetic_recording(2, 20.0, 100.0, n_events=0)
    small.to_zarr(d / "b.zarr", dtype="float32")
    (d / "not_a_store").mkdir()
    (d / "not_a_store" / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group"}')
    return d


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[Any]:
    srv = serve(str(root), port=0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_server_warms_the_store_metadata_in_the_background(root: Path) -> None:
    import time

    srv = serve(str(root), port=0)
    try:
        deadline = time.monotonic() + 60
        while len(srv._meta) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(srv._meta) == ["b.zarr", "sub-01/a.zarr"]
    finally:
        srv.server_close()
    cold = serve(str(root), port=0, warm=False)
    cold.server_close()
    assert not cold._meta


def test_find_stores(root: Path) -> None:
    assert list(find_stores(str(root))) == ["b.zarr", "sub-01/a.zarr"]
    assert list(find_stores(str(root / "b.zarr"))) == [""]
    with pytest.raises(FileNotFoundError):
        find_stores(str(root / "absent"))


def test_meta_and_tiles_match_the_store(server: Any, root: Path) -> None:
    from biosigio_lib import serving

    meta = json.loads(_get(server.url + "api/meta?store=sub-01/a.zarr"))
    g = meta["groups"][0]
    assert g["name"] == "eeg_250hz" and len(g["channels"]) == 40 and g["dtype"] == "int16"
    assert meta["start_time"].startswith("2024-01-02T03:04:05")
    assert len(meta["events"]["onset"]) == 6
    store = str(root / "sub-01" / "a.zarr")
    scale, offset = np.array(g["scale"]), np.array(g["offset"])
    # level 2, tile 1, rows 3-5: min block then max block, int16 digital
    raw = _get(server.url + "api/tile?store=sub-01/a.zarr&group=eeg_250hz&level=2&tile=1&rows=3-5")
    n = len(raw) // 2 // 3 // 2
    vals = np.frombuffer(raw, "<i2").reshape(2, 3, n) * scale[3:6, None] + offset[3:6, None]
    view = serving.read_view(store, "eeg_250hz", 2, channels=["EEG004", "EEG005", "EEG006"])
    np.testing.assert_allclose(vals[0], view.min[:, TILE: TILE + n], rtol=1e-6)
    np.testing.assert_allclose(vals[1], view.max[:, TILE: TILE + n], rtol=1e-6)
    raw0 = _get(server.url + "api/tile?store=sub-01/a.zarr&group=eeg_250hz&level=0&tile=2&rows=0,7")
    lvl0 = Recording.from_file(store, channels=["EEG001", "EEG008"]).grid(250.0).data
    got = np.frombuffer(raw0, "<i2").reshape(2, TILE) * scale[[0, 7], None] + offset[[0, 7], None]
    np.testing.assert_allclose(got, lvl0[:, 2 * TILE: 3 * TILE], rtol=1e-6)
    for bad in ("level=9&tile=0&rows=0", "level=0&tile=999&rows=0", "level=0&tile=0&rows=99"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server.url + "api/tile?store=sub-01/a.zarr&group=eeg_250hz&" + bad)
        assert info.value.code == 400
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(server.url + "api/meta?store=../etc")
    assert info.value.code == 404


def test_batched_tiles_are_the_single_tiles_back_to_back(server: Any) -> None:
    meta = json.loads(_get(server.url + "api/meta?store=sub-01/a.zarr"))
    lengths = meta["groups"][0]["lengths"]
    base = server.url + "api/tile{}?store=sub-01/a.zarr&group=eeg_250hz&level={}&rows={}&tile{}"
    for level in (0, 1, len(lengths) - 1):
        last = (lengths[level] - 1) // TILE  # the last tile is usually partial
        first = max(0, last - 2)
        for rows in ("0-31", "3,5,9", "39"):
            one = b"".join(_get(base.format("", level, rows, f"={k}"))
                           for k in range(first, last + 1))
            assert _get(base.format("s", level, rows, f"s={first}-{last}")) == one
            assert _get(base.format("s", level, rows, f"s={first}-{last}")) == one  # cached
    server.cache_bytes = 0  # evicting everything but the last chunk changes nothing
    again = _get(base.format("s", 1, "0-31", "s=0-1"))
    assert again == _get(base.format("", 1, "0-31", "=0")) + _get(base.format("", 1, "0-31", "=1"))
    for bad in ("level=0&tiles=0-9999&rows=0", "level=0&tiles=5-2&rows=0"):
        with pytest.raises(urllib.error.HTTPError) as info:
            _get(server.url + "api/tiles?store=sub-01/a.zarr&group=eeg_250hz&" + bad)
        assert info.value.code == 400


def test_cli_view_prints_the_url(root: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "biosigio_pipeline.cli", "view", str(root),
                             "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert "2 store(s)" in line and "http://127.0.0.1:" in line
        url = line.split(" at ")[-1].strip()
        page = _get(url)  # the script inlined, the store list embedded
        assert b"window.viewer" in page and b"BIOSIGIO_STORES" in page
        assert b"window.viewer" in _get(url + "viewer.js")
    finally:
        proc.terminate()
        proc.wait(10)


def _browser() -> Any:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (uv sync with the dev group)")
    return sync_playwright


def _plot_pixels(png: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Non-white (trace) and red (event marker) pixel masks of the screenshot's plot area."""
    import io

    from PIL import Image

    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    area = img[80:-40, 140:-10]
    ink = (area.sum(axis=2) < 600)
    red = (area[..., 0] > 150) & (area[..., 1] < 90) & (area[..., 2] < 90)
    return ink, red


def _tiles_of(url: str) -> list[str]:
    """The tiles one request asks for (``/api/tiles``: a run ``k0-k1``; ``/api/tile``: one)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(url)
    q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    if parts.path.endswith("/api/tiles"):
        k0, _, k1 = q["tiles"].partition("-")
        return [f"{q['level']}/{k}" for k in range(int(k0), int(k1 or k0) + 1)]
    return [f"{q['level']}/{q['tile']}"] if parts.path.endswith("/api/tile") else []


def _first_tiles(response: Any) -> list[str]:
    """The tiles an ``/api/first`` answer holds (its ``X-Level`` and ``X-Tiles``)."""
    if "/api/first" not in response.url or response.status != 200:
        return []
    h = response.headers
    k0, _, k1 = h["x-tiles"].partition("-")
    return [f"{h['x-level']}/{k}" for k in range(int(k0), int(k1) + 1)]


def test_first_view_tiles_come_with_the_metadata(server: Any) -> None:
    """The head of the page asks for the metadata and the first view's tiles at once; the
    server plans the tiles as the page does, so the first draw makes no other request."""
    sync_playwright = _browser()
    frags = ["store=sub-01/a.zarr&t=0&w=300", "store=sub-01/a.zarr&t=3600&w=30",
             "store=sub-01/a.zarr&t=-50&w=100000", "store=sub-01/a.zarr&t=77.3&w=1.7",
             "store=sub-01/a.zarr&group=nope&t=10&w=60", "store=b.zarr", ""]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            for width in (1200, 777):
                for frag in frags:
                    page = browser.new_page(viewport={"width": width, "height": 600})
                    urls: list[str] = []
                    page.on("request", lambda r, urls=urls: urls.append(r.url))
                    page.goto(server.url + "#" + frag)
                    last = page.evaluate("window.viewer.idle()")
                    api = sorted(u.split("/api/")[1].split("?")[0] for u in urls if "/api/" in u)
                    assert api == ["first", "meta"], (width, frag, api)
                    assert page.evaluate("window.viewer.stats.requests") == 1
                    assert last["usedBytes"] == page.evaluate("window.viewer.stats.bytes")
                    page.close()
        finally:
            browser.close()
    with pytest.raises(urllib.error.HTTPError) as info:
        _get(server.url + "api/first?store=b.zarr&px=900&n=32&w=nan")
    assert info.value.code == 400


def test_page_draws_pans_zooms_in_chromium(server: Any) -> None:
    sync_playwright = _browser()
    tiles: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 700})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: tiles.extend(_tiles_of(r.url)))
            page.on("response", lambda r: tiles.extend(_first_tiles(r)))
            page.goto(server.url + "#store=sub-01/a.zarr&t=0&w=300")
            first = page.evaluate("window.viewer.idle()")
            assert first["level"] >= 1 and first["rows"] == 32  # an envelope, one page
            assert first["usedBytes"] <= 2 * first["neededBytes"]
            assert len(tiles) == first["tiles"]
            ink, red = _plot_pixels(page.screenshot())
            assert ink.mean() > 0.05, "no traces drawn"
            assert red.sum() > 200, "no event markers drawn"
            n0 = len(tiles)
            # pan by keyboard and by mouse drag, zoom by wheel: each redraws complete
            page.focus("#plot")
            page.evaluate("window.viewer.setView(100, 20)")
            zoomed = page.evaluate("window.viewer.idle()")
            assert zoomed["level"] < first["level"] and zoomed["usedBytes"] <= \
                2 * zoomed["neededBytes"]
            t_before = page.evaluate("window.viewer.state.t0")
            page.keyboard.press("ArrowRight")
            page.evaluate("window.viewer.idle()")
            assert page.evaluate("window.viewer.state.t0") == pytest.approx(t_before + 5.0)
            n1 = len(tiles)
            page.mouse.move(700, 400)
            page.mouse.down()
            page.mouse.move(400, 400, steps=5)
            page.mouse.up()
            page.evaluate("window.viewer.idle()")
            assert page.evaluate("window.viewer.state.t0") > t_before + 5.0
            span = page.evaluate("window.viewer.state.span")
            page.mouse.wheel(0, -400)
            page.evaluate("window.viewer.idle()")
            page.mouse.wheel(0, -400)
            last = page.evaluate("window.viewer.idle()")
            assert page.evaluate("window.viewer.state.span") < span and last["level"] == 0
            # panning reuses cached tiles: only the newly exposed ones are requested
            assert n1 - n0 <= zoomed["tiles"] + 2
            ink, _ = _plot_pixels(page.screenshot())
            assert ink.mean() > 0.02
            # paging and jump to event
            page.keyboard.press("PageDown")
            assert page.evaluate("window.viewer.idle()")["rows"] == 8  # channels 33-40
            page.select_option("#events", "3")
            page.evaluate("window.viewer.idle()")
            t0, span = page.evaluate("[window.viewer.state.t0, window.viewer.state.span]")
            assert t0 < 150.0 < t0 + span  # event 3 at 150 s is on screen
            # the store picker switches stores
            page.select_option("#store", "b.zarr")
            page.wait_for_function("window.viewer.state.store === 'b.zarr'")
            assert page.evaluate("window.viewer.idle()")["rows"] == 2
            assert not errors, errors
        finally:
            browser.close()


def test_dagster_store_link_points_at_the_store(root: Path, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    from biosigio_pipeline import settings, steps

    monkeypatch.delenv("BIOSIGIO_VIEWER_URL", raising=False)
    assert settings.viewer_url() is None
    monkeypatch.setenv("BIOSIGIO_VIEWER_URL", "http://viewer.local:8765/")
    out = steps.Outputs(str(root), "sub-01")
    link = steps.viewer_link(settings.viewer_url() or "", str(root), out.store)
    assert link == "http://viewer.local:8765/#store=serving/sub-01.zarr"
    synthetic_recording(1, 2.0, 100.0).to_zarr(out.store)
    assert "serving/sub-01.zarr" in find_stores(str(root))  # the id the page resolves
