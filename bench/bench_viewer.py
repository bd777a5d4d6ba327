"""Benchmark: the web viewer on a 24 h x 128 channel store, in real headless Chromium.

Run ``uv run python bench/bench_viewer.py [--hours 24] [--channels 128] [--rate 256]``. The
store is generated once with ``Recording.to_zarr`` into ``bench/.data/viewer`` (gitignored):
int16 ADC counts with a calibration (5.5 GB in memory for 24 h, instead of 11 GB float32),
MISC channels at 256 Hz (no rate cap, so no resampling), a hypnogram-like event every 30 s.

Measured in the page (``window.viewer``): first paint = navigation start to the first
complete draw (all tiles of the first view drawn); each pan/zoom step = the action to its
complete draw; ``painted`` = to the end of the next frame after it (the canvas is rasterised
then, on the page's thread: the time a user waits for the pixels); bytes = tile bytes the draw used vs the bytes of exactly the drawn columns
(``neededBytes``) and vs one column per pixel (``pixelBytes``). Targets: first paint
<= 300 ms, pan/zoom step <= 100 ms, bytes <= 2x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
DATA = HERE / ".data" / "viewer"
CHROME_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update",
               "--disable-sync"]


def make_store(hours: float, n_ch: int, rate: float) -> Path:
    """Generate (once) the store: 60 s of pattern repeated, a different phase per channel."""
    import datetime as dt

    from biosigio_lib import Calibration, Recording

    path = DATA / f"rec_{hours:g}h_{n_ch}ch_{rate:g}hz.zarr"
    if path.exists():
        return path
    DATA.mkdir(parents=True, exist_ok=True)
    t_gen = time.perf_counter()
    n = int(hours * 3600 * rate)
    base_n = int(60 * rate)
    rng = np.random.default_rng(0)
    t = np.arange(base_n) / rate
    data = np.empty((n_ch, n), dtype=np.int16)
    for c in range(n_ch):
        base = (3000 * np.sin(2 * np.pi * (1.0 + 0.25 * (c % 40)) * t)
                + np.cumsum(rng.standard_normal(base_n)) * 40).astype(np.int16)
        reps = -(-n // base_n)
        data[c] = np.tile(base, reps)[:n]
        data[c, ::7919] += np.int16(5000 * (c % 3 == 0))  # some spikes
    rec = Recording({"subject": "bench", "start_time": dt.datetime(2024, 3, 1, 22, 30, 0)})
    cal = [Calibration(0.01)] * n_ch
    rec.add_channels([f"CH{c + 1:03d}" for c in range(n_ch)], data, rate, "uV", "MISC",
                     calibration=cal)
    n_ev = int(hours * 120)
    stages = np.array(["W", "N1", "N2", "N3", "REM"], dtype=object)
    rec.add_events(np.arange(n_ev) * 30.0, np.full(n_ev, 30.0),
                   stages[(np.arange(n_ev) // 7) % 5].tolist())
    del data
    rec.to_zarr(str(path))
    print(f"generated {path.name} in {time.perf_counter() - t_gen:.0f} s", flush=True)
    return path


def measure(store: Path, steps: int = 10) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    from biosigio_lib.viewer import serve

    srv = serve(str(store.parent), port=0)
    th = threading.Thread(target=srv.serve_forever, daemon=True)
    th.start()
    sid = store.name
    out: dict[str, object] = {}
    # the next complete draw, then the frame that shows it
    idle = ("window.viewer.idle().then((last) => new Promise((res) => requestAnimationFrame("
            "() => setTimeout(() => res({...last, painted: performance.now()}), 0))))")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROME_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 900})
        # warm the server's open groups and the OS page cache once (not the browser's cache)
        page.goto(srv.url + f"#store={sid}&t=0&w=86400")
        page.evaluate("window.viewer.idle()")
        for name, frag in (("overview 24 h", "t=0&w=86400"), ("30 s page", "t=3600&w=30")):
            ctx = browser.new_context(viewport={"width": 1600, "height": 900})
            p = ctx.new_page()
            p.goto(srv.url + f"#store={sid}&{frag}")
            last = p.evaluate(idle)
            out[f"first paint, {name}"] = {"ms": last["at"], "painted": last["painted"],
                                           "level": last["level"],
                                           "used/needed": last["usedBytes"] / last["neededBytes"],
                                           "used/pixels": last["usedBytes"] / last["pixelBytes"],
                                           "KiB": last["usedBytes"] / 1024}
            ctx.close()
        actions = {
            "pan 25% (30 s view)": ("window.viewer.setView(7200, 30)", "window.viewer.pan(0.25)"),
            "pan 25% (1 h view)": ("window.viewer.setView(7200, 3600)", "window.viewer.pan(0.25)"),
            "zoom in x2 (from 2 h)": ("window.viewer.setView(20000, 7200)", "window.viewer.zoom(0.5)"),
            "zoom out x2 (from 20 s)": ("window.viewer.setView(30000, 20)", "window.viewer.zoom(2)"),
            "next channel page": ("window.viewer.setView(40000, 30)", "window.viewer.setPage(1)"),
        }
        for name, (setup, act) in actions.items():
            times, painted, ratios, px = [], [], [], []
            page.evaluate(setup)
            page.evaluate(idle)
            for i in range(steps):
                if "page" in name:  # a fresh time each step: page 2's tiles are not cached
                    page.evaluate(f"window.viewer.setPage(0); "
                                  f"window.viewer.setView({40000 + 100 * i}, 30)")
                    page.evaluate(idle)
                t0 = page.evaluate(f"(() => {{ const t = performance.now(); {act}; return t; }})()")
                last = page.evaluate(idle)
                times.append(last["at"] - t0)
                painted.append(last["painted"] - t0)
                ratios.append(last["usedBytes"] / last["neededBytes"])
                px.append(last["usedBytes"] / last["pixelBytes"])
                if "zoom" in name:  # start each zoom step from the same kind of view
                    page.evaluate(setup.replace("20000", str(20000 + 3000 * (i + 1)))
                                  .replace("30000", str(30000 + 60 * (i + 1))))
                    page.evaluate(idle)
            out[name] = {"ms": statistics.median(times), "max ms": max(times),
                         "painted": statistics.median(painted), "max painted": max(painted),
                         "used/needed": max(ratios), "used/pixels": max(px)}
        out["requests"] = page.evaluate("window.viewer.stats.requests")
        browser.close()
    srv.shutdown()
    srv.server_close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=24.0)
    ap.add_argument("--channels", type=int, default=128)
    ap.add_argument("--rate", type=float, default=256.0)
    args = ap.parse_args()
    import os

    store = make_store(args.hours, args.channels, args.rate)
    load = os.getloadavg()[0]
    res = measure(store)
    print(f"store {store.name}: viewport 1600x900, 32 channels per page")
    print(f"load average before: {load:.2f}")
    print("| view / step | drawn ms (median) | max | painted ms (median) | max | level | "
          "used/needed bytes | used/pixel-column bytes |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r in res.items():
        if not isinstance(r, dict):
            continue
        print(f"| {name} | {r['ms']:.0f} | {r.get('max ms', r['ms']):.0f} | "
              f"{r['painted']:.0f} | {r.get('max painted', r['painted']):.0f} | "
              f"{r.get('level', '')} | {r['used/needed']:.2f} | {r['used/pixels']:.2f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
