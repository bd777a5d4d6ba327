"""A web viewer for serving stores: a static canvas page plus a small HTTP server.

The server (stdlib ``ThreadingHTTPServer``) finds the stores under a target (one store, or a
storage root: every folder whose root ``zarr.json`` says ``format="biosigio-zarr"``; local
path or fsspec URL) and answers the requests the page makes:

- ``/api/stores``: the store ids (paths relative to the target);
- ``/api/meta?store=ID``: groups (rate, t0, samples, view levels, channels with label, unit,
  scale, offset), the start time and the events, as JSON;
- ``/api/tile?store=ID&group=G&level=L&tile=K&rows=R``: columns ``[K*T, (K+1)*T)`` of view
  level ``L`` (``T = TILE`` columns; level 0 = the samples) for the rows ``R``, as raw
  little-endian values in the level's stored type (int16 digital or float32): level 0 is
  ``rows x n``; a view level is the min block then the max block, each ``rows x n``;
- ``/api/tiles`` (a run of tiles in one go) and ``/api/first`` (the first view's tiles,
  planned as the page plans them; the page's head asks for them with the metadata).

Reads touch only the chunks holding a tile. See ``docs/viewer.md``.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np

from .._fs import resolve
from ..errors import ArchiveFormatError, source_not_found

__all__ = ["TILE", "ViewerServer", "find_stores", "serve"]

#: Columns per tile (every level): small enough that a screen costs little over its need.
TILE = 256
#: Tiles one ``/api/tiles`` request may ask for.
MAX_TILES = 64
_STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
           "/index.html": ("index.html", "text/html; charset=utf-8"),
           "/viewer.js": ("viewer.js", "text/javascript; charset=utf-8"),
           "/boot.js": ("boot.js", "text/javascript; charset=utf-8")}


def _is_store(fs: Any, path: str) -> bool:
    try:
        meta = json.loads(fs.cat_file(f"{path.rstrip('/')}/zarr.json"))
    except (FileNotFoundError, ValueError, OSError):
        return False
    attrs = meta.get("attributes", {}) if isinstance(meta, dict) else {}
    return isinstance(attrs, dict) and attrs.get("format") == "biosigio-zarr"


def find_stores(target: str, storage_options: dict[str, Any] | None = None,
                max_depth: int = 6) -> dict[str, str]:
    """``{id: url}`` of the stores at or under ``target`` (id ``""`` for a store target)."""
    loc = resolve(target, storage_options)
    if not loc.fs.exists(loc.path):
        raise source_not_found(loc.url)
    if _is_store(loc.fs, loc.path):
        return {"": loc.url}
    found: dict[str, str] = {}
    base = loc.path.rstrip("/")
    level = [base]
    for _ in range(max_depth):
        nxt = []
        for d in level:
            try:
                entries = loc.fs.ls(d, detail=True)
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            for e in entries:
                if e.get("type") != "directory":
                    continue
                name = str(e["name"]).rstrip("/")
                if name.rsplit("/", 1)[-1].startswith("."):
                    continue  # temporary siblings of a write in progress
                if _is_store(loc.fs, name):
                    rel = name[len(base):].lstrip("/")
                    found[rel] = loc.child(rel).url
                else:
                    nxt.append(name)
        level = nxt
    return dict(sorted(found.items()))


@dataclass
class _Group:
    sg: Any  # reader.StoreGroup
    levels: list[Any]  # view arrays 1..n (index 0 unused)
    lengths: list[int]  # columns per level (0 = samples)
    direct: Any = None  # serving._fastread.Level0Reader (layout + shard indexes kept)
    #: per view level: (its Location, ChunkLayout) to read chunks without zarr, or None
    plain: list[Any] | None = None


class ViewerServer(ThreadingHTTPServer):
    """The HTTP server: static page + JSON metadata + binary tiles; stores opened once."""

    daemon_threads = True

    def __init__(self, target: str, address: tuple[str, int],
                 storage_options: dict[str, Any] | None = None, warm: bool = True):
        self.target = target
        self.storage_options = storage_options
        self.stores = find_stores(target, storage_options)
        self._groups: dict[tuple[str, str], _Group] = {}
        self._meta: dict[str, bytes] = {}
        self._names: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        #: decoded view-level chunks kept (bytes); 0 keeps only the last one
        self.cache_bytes = 256 << 20
        self._chunks: OrderedDict[tuple[str, str, int, int], np.ndarray] = OrderedDict()
        self._chunk_bytes = 0
        super().__init__(address, _Handler)
        if warm:
            threading.Thread(target=self.warm, daemon=True, name="biosigio-viewer-warm").start()

    def warm(self, max_stores: int = 8) -> None:
        """Import the readers and build the metadata of the first ``max_stores`` stores
        (run in the background at start-up: a browser opened after ``view`` then finds
        them ready instead of paying ~0.4 s of imports and opening on its first page)."""
        for sid in list(self.stores)[:max_stores]:
            try:
                self.meta(sid)
            except Exception:  # a store that fails here fails again, visibly, when asked
                continue

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):  # typeshed allows bytes; an AF_INET server's host is str
            host = host.decode()
        return f"http://{host}:{port}/"

    def page(self) -> bytes:
        """``index.html`` with the scripts inlined and the store list embedded: the page's
        head asks for the store's metadata before the browser parses the main script."""
        html, script, boot = _static_texts()
        self.stores = find_stores(self.target, self.storage_options)
        listing = json.dumps({"target": self.target, "stores": list(self.stores)})
        head = (f"<script>window.BIOSIGIO_STORES = {_no_close(listing)};\n"
                f"{_no_close(boot)}</script>")
        html = html.replace('<script src="boot.js"></script>', head)
        return html.replace('<script src="viewer.js"></script>',
                            f"<script>\n{_no_close(script)}</script>").encode()

    def _view(self, sid: str, g: _Group, level: int, rows: list[int], j0: int,
              j1: int) -> np.ndarray:
        """Columns ``[j0, j1)`` of a view level for ``rows``, as ``(2, rows, n)``, from whole
        decoded chunks kept in memory (LRU, ``cache_bytes``): neighbouring tiles, pans and
        other channel pages of the same chunk decode nothing."""
        arr = g.levels[level]
        ct, n = int(arr.chunks[2]), g.lengths[level]
        span = range(j0 // ct, (j1 - 1) // ct + 1)
        blocks: dict[int, np.ndarray] = {}
        with self._lock:
            for c in span:
                block = self._chunks.get((sid, g.sg.name, level, c))
                if block is not None:
                    self._chunks.move_to_end((sid, g.sg.name, level, c))
                    blocks[c] = block
        miss = [c for c in span if c not in blocks]
        plain = g.plain[level] if g.plain else None
        if miss and plain is not None:  # each chunk read and decoded directly
            loc, lay = plain
            got = np.concatenate([lay.read(loc, (0, 0, c))
                                  for c in range(miss[0], miss[-1] + 1)], axis=2)
        elif miss:  # one zarr read for the missing chunks (decoded concurrently by zarr)
            got = np.asarray(arr[:, :, miss[0] * ct: min(n, (miss[-1] + 1) * ct)])
        if miss:
            with self._lock:
                for c in range(miss[0], miss[-1] + 1):
                    block = got[:, :, (c - miss[0]) * ct: (c - miss[0] + 1) * ct]
                    blocks[c] = block = np.ascontiguousarray(block)
                    self._chunks[(sid, g.sg.name, level, c)] = block
                    self._chunk_bytes += block.nbytes
                while self._chunk_bytes > self.cache_bytes and len(self._chunks) > 1:
                    self._chunk_bytes -= self._chunks.popitem(last=False)[1].nbytes
        parts = []
        for c in span:
            a, b = max(j0, c * ct) - c * ct, min(j1, (c + 1) * ct) - c * ct
            parts.append(blocks[c][:, rows, a:b])
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)

    def store_url(self, sid: str) -> str:
        if sid not in self.stores:  # also refreshes: a store written since start-up
            self.stores = find_stores(self.target, self.storage_options)
        if sid not in self.stores:
            raise KeyError(f"no store {sid!r} under {self.target}; /api/stores lists them")
        return self.stores[sid]

    def group(self, sid: str, name: str) -> _Group:
        key = (sid, name)
        with self._lock:
            hit = self._groups.get(key)
        if hit is not None:
            return hit
        from ..serving.reader import open_group

        sg = open_group(self.store_url(sid), name, self.storage_options)
        n_levels = int(sg.attrs.get("n_view_levels", 0))
        levels = [None] + [sg.root[f"{name}/view/{k}"] for k in range(1, n_levels + 1)]
        lengths = [sg.n_samples] + [int(a.shape[2]) for a in levels[1:]]
        direct = None
        if sg.loc is not None:
            from ..serving._fastread import Level0Reader

            direct = Level0Reader(sg.loc, sg.a0)
        plain: list[Any] | None = None
        if sg.loc is not None:  # view levels whose chunks read without zarr
            from ..serving._fastread import ChunkLayout, read_json

            plain = [None]
            for k in range(1, n_levels + 1):
                vloc = resolve(sg.url, self.storage_options).child(name).child("view") \
                    .child(str(k))
                doc = read_json(vloc)
                lay = None if doc is None else ChunkLayout.from_doc(doc)
                ok = lay is not None and len(lay.shape) == 3 and \
                    lay.chunks[:2] == lay.shape[:2] and lay.shape == levels[k].shape
                plain.append((vloc, lay) if ok else None)
        g = _Group(sg, levels, lengths, direct, plain)
        with self._lock:
            self._groups[key] = g
        return g

    def meta(self, sid: str) -> bytes:
        with self._lock:
            hit = self._meta.get(sid)
        if hit is not None:
            return hit
        from ..serving.reader import _group_names, _metadata, _open_root, read_events

        url = self.store_url(sid)
        root, _ = _open_root(url, self.storage_options)
        md = _metadata(root, url, None)
        start: Any = md.get("start_time") or md.get("meas_date")
        groups = []
        for name in _group_names(root):
            g = self.group(sid, name)
            sg = g.sg
            chans = [{"label": lab, "unit": str(e.get("unit", "")),
                      "type": str(e.get("channel_type", ""))}
                     for lab, e in zip(sg.labels, sg.entries)]
            groups.append({
                "name": name, "rate": sg.rate, "t0": sg.t0, "n_samples": sg.n_samples,
                "dtype": str(np.dtype(sg.a0.dtype)), "nan_code": sg.nan_code,
                "downsample": int(sg.attrs.get("view_downsample", 4)),
                "lengths": g.lengths, "scale": sg.scale.tolist(),
                "offset": sg.offset.tolist(), "channels": chans})
        ev = read_events(url, storage_options=self.storage_options)
        events = {"onset": ev["onset"].astype(float).tolist(),
                  "duration": np.nan_to_num(ev["duration"].astype(float)).tolist(),
                  "description": [str(d) for d in ev["description"]]}
        body = json.dumps({
            "store": sid, "url": url, "tile": TILE, "groups": groups, "events": events,
            "start_time": start.isoformat() if hasattr(start, "isoformat") else start,
            "subject": md.get("subject") if isinstance(md.get("subject"), str) else None,
        }, allow_nan=False).encode()
        with self._lock:
            self._meta[sid] = body
        return body

    def first(self, sid: str, group: str | None, t: str | None, w: str | None, px: float,
              per_page: int) -> tuple[dict[str, str], bytes] | None:
        """The first view's tiles as the page will plan them (same view clamp, level choice
        and tile range as ``viewer.js``) for a plot ``px`` CSS pixels wide and the first
        ``per_page`` channels: ``(headers, body)``, or None when there is nothing to draw."""
        names = self._names.get(sid)
        if names is None:
            from ..serving.reader import _group_names, _open_root

            names = self._names[sid] = _group_names(
                _open_root(self.store_url(sid), self.storage_options)[0])
        if not names:
            return None
        name = group if group in names else names[0]
        g = self.group(sid, name)
        sg = g.sg
        rate, t0, dur = sg.rate, sg.t0, sg.n_samples / sg.rate
        span = float(w) if w else min(30.0, dur)
        start = float(t) if t else t0
        if not (math.isfinite(span) and math.isfinite(start)):
            raise ValueError("t and w must be finite seconds")
        span = min(max(span, 8 / rate), max(dur * 1.02, 8 / rate))  # clampView()
        start = min(max(start, t0 - span * 0.5), t0 + dur - span * 0.5)
        ds = int(sg.attrs.get("view_downsample", 4))
        level = 0  # pickLevel(): the coarsest level with at least half a column per pixel
        while level + 1 < len(g.lengths) and span * rate / ds ** (level + 1) >= px / 2:
            level += 1
        f, n = ds ** level, g.lengths[level]
        j0 = max(0, math.floor((start - t0) * rate / f))
        j1 = min(n, math.ceil((start + span - t0) * rate / f))
        n_rows = min(per_page, len(sg.labels))
        if j1 <= j0 or n_rows < 1:
            return None
        k0, k1 = j0 // TILE, (j1 - 1) // TILE
        k1 = min(k1, k0 + MAX_TILES - 1)
        body = self.tiles(sid, name, level, k0, k1, list(range(n_rows)))
        return {"X-Group": name, "X-Level": str(level), "X-Tiles": f"{k0}-{k1}",
                "X-Rows": f"0-{n_rows - 1}"}, body

    def tile(self, sid: str, name: str, level: int, k: int, rows: list[int]) -> bytes:
        """One tile as raw little-endian bytes (see the module docstring)."""
        return self.tiles(sid, name, level, k, k, rows)

    def tiles(self, sid: str, name: str, level: int, k0: int, k1: int,
              rows: list[int]) -> bytes:
        """Tiles ``k0..k1`` (inclusive) back to back, each as :meth:`tile` gives it; the
        columns are read in one go."""
        g = self.group(sid, name)
        if not 0 <= level < len(g.lengths):
            raise ValueError(f"group {name!r} has levels 0..{len(g.lengths) - 1}")
        n = g.lengths[level]
        if not 0 <= k0 * TILE < n or not 0 <= k1 * TILE < n or not 0 <= k1 - k0 < MAX_TILES:
            raise ValueError(f"tiles {k0}-{k1}: level {level} has {n} columns ({TILE} per "
                             f"tile), at most {MAX_TILES} tiles per request")
        if any(not 0 <= r < len(g.sg.labels) for r in rows):
            raise ValueError(f"rows must be in 0..{len(g.sg.labels) - 1}")
        j0, j1 = k0 * TILE, min(n, (k1 + 1) * TILE)
        if level == 0:
            data = _level0_digital(g.direct, g.sg, rows, j0, j1)
        else:
            data = self._view(sid, g, level, rows, j0, j1)
        data = data.astype(data.dtype.newbyteorder("<"), copy=False)
        return b"".join(np.ascontiguousarray(data[..., a: a + TILE]).tobytes()
                        for a in range(0, j1 - j0, TILE))


def _level0_digital(direct: Any, sg: Any, rows: list[int], i0: int, i1: int) -> np.ndarray:
    """Stored (digital) level-0 values ``[i0, i1)`` of ``rows``, only the covering chunks
    (``direct``: the group's kept :class:`Level0Reader`, or None)."""
    out = np.empty((len(rows), i1 - i0), dtype=sg.a0.dtype)
    if direct is not None:
        fill = sg.nan_code if sg.nan_code is not None else sg.a0.metadata.fill_value

        def put(digital: np.ndarray | None, dest: np.ndarray) -> None:
            dest[...] = fill if digital is None else digital

        if direct.read(rows, i0, i1, put, out):
            return out
    return np.asarray(sg.a0.get_orthogonal_selection((rows, slice(i0, i1))))


@functools.cache
def _static_texts() -> tuple[str, str, str]:
    """``index.html``, ``viewer.js`` and ``boot.js`` (read once per process)."""
    static = resources.files(__package__).joinpath("static")
    return tuple(static.joinpath(f).read_text("utf-8")  # type: ignore[return-value]
                 for f in ("index.html", "viewer.js", "boot.js"))


def _no_close(text: str) -> str:
    """Text safe inside an inline ``<script>`` (no ``</`` closing it early)."""
    return text.replace("</", "<\\/")


def _rows(text: str) -> list[int]:
    """``"0-31"`` or ``"3,5,9"`` (or a mix) -> row indices."""
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif part:
            out.append(int(part))
    if not out or len(out) > 4096:
        raise ValueError("rows: give 1..4096 channel rows, e.g. 0-31 or 2,5,7")
    return out


class _Handler(BaseHTTPRequestHandler):
    server: ViewerServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _send(self, code: int, body: bytes, ctype: str, cache: str = "no-cache",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            if parts.path in ("/", "/index.html"):
                self._send(200, self.server.page(), "text/html; charset=utf-8")
            elif parts.path in _STATIC:
                fname, ctype = _STATIC[parts.path]
                body = resources.files(__package__).joinpath("static", fname).read_bytes()
                self._send(200, body, ctype)
            elif parts.path == "/api/stores":
                srv = self.server
                srv.stores = find_stores(srv.target, srv.storage_options)
                self._send(200, json.dumps({"target": srv.target,
                                            "stores": list(srv.stores)}).encode(),
                           "application/json")
            elif parts.path == "/api/meta":
                self._send(200, self.server.meta(q.get("store", "")), "application/json")
            elif parts.path == "/api/tiles":
                k0, _, k1 = q["tiles"].partition("-")
                body = self.server.tiles(q.get("store", ""), q["group"], int(q["level"]),
                                         int(k0), int(k1 or k0), _rows(q["rows"]))
                self._send(200, body, "application/octet-stream", "private, max-age=60")
            elif parts.path == "/api/first":
                got = self.server.first(q.get("store", ""), q.get("group"), q.get("t"),
                                        q.get("w"), float(q.get("px", "1000")),
                                        int(q.get("n", "32")))
                if got is None:
                    self._send(204, b"", "application/octet-stream")
                else:
                    self._send(200, got[1], "application/octet-stream", "no-store", got[0])
            elif parts.path == "/api/tile":
                body = self.server.tile(q.get("store", ""), q["group"], int(q["level"]),
                                        int(q["tile"]), _rows(q["rows"]))
                self._send(200, body, "application/octet-stream", "private, max-age=60")
            elif parts.path == "/favicon.ico":
                self._send(204, b"", "image/x-icon")
            else:
                self._send(404, b"not found", "text/plain")
        except KeyError as exc:
            self._send(404, str(exc).encode(), "text/plain; charset=utf-8")
        except (ValueError, ArchiveFormatError) as exc:
            self._send(400, str(exc).encode(), "text/plain; charset=utf-8")
        except (BrokenPipeError, ConnectionResetError):
            pass


def serve(target: str, host: str = "127.0.0.1", port: int = 8765,
          storage_options: dict[str, Any] | None = None, warm: bool = True) -> ViewerServer:
    """A started-on-demand server for ``target``: call ``serve_forever()`` on it (or run it
    in a thread); ``.url`` is the page's address. Port 0 picks a free port. ``warm``: build
    the metadata of the first stores in a background thread at once (:meth:`ViewerServer.warm`)."""
    return ViewerServer(target, (host, port), storage_options, warm)


def viewer_link(base_url: str, store_id: str, tmin: float | None = None,
                span: float | None = None) -> str:
    """The page URL showing one store (``base_url`` = where ``view`` serves the root)."""
    from urllib.parse import quote

    frag = f"store={quote(store_id)}"
    if tmin is not None and math.isfinite(tmin):
        frag += f"&t={tmin:g}"
    if span is not None:
        frag += f"&w={span:g}"
    return f"{base_url.rstrip('/')}/#{frag}"
