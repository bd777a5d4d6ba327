"""A direct reader for level 0 (sharded, blosc, all channels per inner chunk).

zarr's generic path decodes into an int16 array that we then dequantise; here each inner
chunk is fetched (one ranged read per shard piece), blosc-decoded into a small per-thread
buffer and handed to the caller's ``convert`` (dequantise or copy into its output) while it
is in cache, two threads over the time range (the caller's and one process-wide pool).
:class:`Level0Reader` keeps the layout and the shard indexes between reads (open it once
per store group). It applies only to arrays with exactly the layout our writer (and
biosigio 1.2) produces; anything else reads False and the caller uses zarr.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from .._fs import Location

__all__ = ["ChunkLayout", "Level0Reader", "ShardLayout", "read_json", "read_level0",
           "read_small_array"]

_MAX = np.uint64(2**64 - 1)


class ShardLayout:
    """What the fast path needs from a level-0 array's metadata (None when unsupported)."""

    def __init__(self, shape: tuple[int, int], shard: int, chunk: int, dtype: np.dtype[Any],
                 fill: Any, key: Callable[[int], str]):
        self.shape, self.shard, self.chunk = shape, shard, chunk
        self.dtype, self.fill, self.key = dtype, fill, key

    @classmethod
    def of(cls, arr: Any) -> ShardLayout | None:
        """The layout of a zarr array, or None if it is not the plain sharded layout."""
        from zarr.codecs import BloscCodec, BytesCodec, Crc32cCodec, ShardingCodec
        from zarr.codecs.sharding import ShardingCodecIndexLocation

        meta = arr.metadata
        codecs: Sequence[Any] = getattr(meta, "codecs", ())
        if len(arr.shape) != 2 or len(codecs) != 1 or not isinstance(codecs[0], ShardingCodec):
            return None
        sc = codecs[0]
        inner = sc.codecs
        ok = (len(inner) == 2 and isinstance(inner[0], BytesCodec)
              and isinstance(inner[1], BloscCodec)
              and len(sc.index_codecs) == 2 and isinstance(sc.index_codecs[0], BytesCodec)
              and isinstance(sc.index_codecs[1], Crc32cCodec)
              and sc.index_location == ShardingCodecIndexLocation.end
              and sc.chunk_shape[0] == arr.shape[0]
              and arr.shards is not None and arr.shards[0] == arr.shape[0])
        dtype = np.dtype(arr.dtype)
        endian = getattr(inner[0], "endian", None)
        if not ok or dtype.kind not in "iuf" or (
                dtype.itemsize > 1 and getattr(endian, "value", endian) != "little"):
            return None
        enc = meta.chunk_key_encoding

        def key(j: int) -> str:
            return str(enc.encode_chunk_key((0, j)))

        return cls((int(arr.shape[0]), int(arr.shape[1])), int(arr.shards[1]),
                   int(sc.chunk_shape[1]), dtype.newbyteorder("<"), meta.fill_value, key)

    @classmethod
    def from_doc(cls, doc: Any) -> ShardLayout | None:
        """The same layout from a level-0 ``zarr.json`` document (no zarr objects made);
        None for anything but the plain sharded layout, its fill value a plain number."""
        try:
            shape, shard, enc, sep, dtype, fill = _doc_basics(doc)
            (codec,) = doc["codecs"]
            conf = codec["configuration"]
            chunk = [int(n) for n in conf["chunk_shape"]]
            inner, index = conf["codecs"], conf["index_codecs"]
        except (KeyError, TypeError, ValueError):
            return None
        little = {"name": "bytes", "configuration": {"endian": "little"}}
        ok = (doc.get("zarr_format") == 3 and doc.get("node_type") == "array"
              and len(shape) == 2 and doc["chunk_grid"].get("name") == "regular"
              and codec.get("name") == "sharding_indexed" and shard[0] == shape[0]
              and len(chunk) == 2 and chunk[0] == shape[0] and chunk[1] > 0
              and shard[1] % chunk[1] == 0 and len(inner) == 2
              and (inner[0] == little or (dtype.itemsize == 1 and inner[0].get("name") ==
                                          "bytes"))
              and inner[1].get("name") == "blosc" and len(index) == 2
              and index[0] == little and index[1].get("name") == "crc32c"
              and conf.get("index_location", "end") == "end"
              and enc.get("name") == "default" and sep in ("/", ".")
              and dtype.kind in "iuf" and fill is not None
              and not doc.get("storage_transformers"))
        if not ok:
            return None

        def key(j: int) -> str:
            return f"c{sep}0{sep}{j}"

        return cls((shape[0], shape[1]), shard[1], chunk[1], dtype.newbyteorder("<"),
                   fill, key)


def _doc_basics(doc: Any) -> tuple[tuple[int, ...], tuple[int, ...], Any, str,
                                   np.dtype[Any], Any]:
    """Shape, grid chunk shape, key encoding, its separator, dtype and fill value of an
    array's ``zarr.json`` document (KeyError/TypeError/ValueError when malformed)."""
    shape = tuple(int(n) for n in doc["shape"])
    grid = tuple(int(n) for n in doc["chunk_grid"]["configuration"]["chunk_shape"])
    enc = doc["chunk_key_encoding"]
    sep = (enc.get("configuration") or {}).get("separator", "/")
    dtype = np.dtype(str(doc["data_type"]))
    return shape, grid, enc, sep, dtype, _fill(doc["fill_value"], dtype)


def _fill(value: Any, dtype: np.dtype[Any]) -> Any:
    """A JSON fill value as a scalar of ``dtype`` (None: a form the fast path leaves to
    zarr, e.g. the hex-encoded floats)."""
    special = {"NaN": np.nan, "Infinity": np.inf, "-Infinity": -np.inf}
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return dtype.type(value)
    if isinstance(value, str) and value in special and dtype.kind == "f":
        return dtype.type(special[value])
    return None


class ChunkLayout:
    """A plain chunked array (``bytes`` little-endian then ``blosc``, regular grid, default
    keys: the view levels): whole chunks read and decoded without zarr."""

    def __init__(self, shape: tuple[int, ...], chunks: tuple[int, ...], dtype: np.dtype[Any],
                 fill: Any, sep: str):
        self.shape, self.chunks, self.dtype, self.fill, self.sep = shape, chunks, dtype, fill, sep

    @classmethod
    def from_doc(cls, doc: Any) -> ChunkLayout | None:
        """The layout of a ``zarr.json`` document, or None for any other layout."""
        try:
            shape, chunks, enc, sep, dtype, fill = _doc_basics(doc)
            codecs = doc["codecs"]
        except (KeyError, TypeError, ValueError):
            return None
        ok = (doc.get("zarr_format") == 3 and doc.get("node_type") == "array"
              and doc["chunk_grid"].get("name") == "regular" and len(chunks) == len(shape)
              and all(c > 0 for c in chunks) and len(codecs) == 2
              and codecs[0] == {"name": "bytes", "configuration": {"endian": "little"}}
              and codecs[1].get("name") == "blosc" and enc.get("name") == "default"
              and sep in ("/", ".") and dtype.kind in "iuf" and fill is not None
              and not doc.get("storage_transformers"))
        if not ok:
            return None
        return cls(shape, chunks, dtype.newbyteorder("<"), fill, sep)

    def read(self, loc: Location, index: tuple[int, ...]) -> np.ndarray:
        """Chunk ``index`` decoded, cut to the array's bounds (never written: the fill)."""
        from numcodecs import blosc

        from ..errors import CorruptFileError

        key = self.sep.join(["c", *map(str, index)])
        raw = _read(loc, f"{loc.path.rstrip('/')}/{key}")
        out = np.empty(self.chunks, dtype=self.dtype)
        if raw is None:
            out[...] = self.fill
        else:
            try:
                blosc.decompress(raw, out)
            except (RuntimeError, ValueError) as exc:
                raise CorruptFileError(f"chunk {key} does not decode ({exc})",
                                       path=loc.url) from exc
        cut = tuple(slice(0, min(c, n - i * c)) for i, c, n in zip(index, self.chunks,
                                                                  self.shape))
        return out[cut]


def read_json(loc: Location) -> dict[str, Any] | None:
    """The ``zarr.json`` of a node at ``loc`` read directly (None: absent or not JSON)."""
    import json

    raw = _read(loc, f"{loc.path.rstrip('/')}/zarr.json")
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def read_small_array(loc: Location, doc: dict[str, Any]) -> np.ndarray | None:
    """A 1-D single-chunk array (``bytes`` then optionally ``zstd``, as zarr writes the
    events) read and decoded directly; None when the array has any other layout."""
    try:
        (n,) = (int(x) for x in doc["shape"])
        (c,) = (int(x) for x in doc["chunk_grid"]["configuration"]["chunk_shape"])
        dtype = np.dtype(str(doc["data_type"]))
        codecs = list(doc["codecs"])
        enc = doc["chunk_key_encoding"]
        sep = (enc.get("configuration") or {}).get("separator", "/")
        fill = _fill(doc["fill_value"], dtype)
    except (KeyError, TypeError, ValueError):
        return None
    first = codecs[0] if codecs else {}
    endian = (first.get("configuration") or {}).get("endian")
    rest = codecs[1:]
    if not (doc.get("zarr_format") == 3 and doc.get("node_type") == "array"
            and doc["chunk_grid"].get("name") == "regular" and c == n
            and first.get("name") == "bytes"
            and (endian == "little" or (endian is None and dtype.itemsize == 1))
            and (not rest or (len(rest) == 1 and rest[0].get("name") == "zstd"))
            and enc.get("name") == "default" and sep in ("/", ".")
            and dtype.kind in "iuf" and fill is not None
            and not doc.get("storage_transformers")):
        return None
    dtype = dtype.newbyteorder("<")
    if n == 0:
        return np.zeros(0, dtype)
    raw = _read(loc, f"{loc.path.rstrip('/')}/c{sep}0")
    if raw is None:  # never written: the fill value
        return np.full(n, fill, dtype)
    if rest:
        from numcodecs.zstd import Zstd

        raw = bytes(Zstd().decode(raw))
    if len(raw) != n * dtype.itemsize:
        return None
    return np.frombuffer(raw, dtype=dtype).copy()


def _read(loc: Location, path: str, start: int | None = None,
          end: int | None = None) -> bytes | None:
    try:
        return bytes(loc.fs.cat_file(path, start=start, end=end))
    except FileNotFoundError:
        return None


def _pool() -> ThreadPoolExecutor:
    """One 2-thread pool per process (re-made after a fork: its threads do not survive)."""
    global _POOL, _POOL_PID
    pid = os.getpid()
    if _POOL is None or _POOL_PID != pid:
        with _POOL_LOCK:
            if _POOL is None or _POOL_PID != pid:
                _POOL, _POOL_PID = ThreadPoolExecutor(2, thread_name_prefix="biosigio-l0"), pid
    return _POOL


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = -1
_POOL_LOCK = threading.Lock()


class Level0Reader:
    """Direct level-0 reads of one array, its layout and shard indexes kept between reads.

    Open one per (store, group) and reuse it: a read then costs one ranged read per shard
    (no index tail read) and no thread start-up. The cached indexes assume the store is not
    rewritten while the reader lives (stores are written once, atomically).
    """

    def __init__(self, loc: Location, arr: Any = None, layout: ShardLayout | None = None):
        self.loc = loc
        self.layout = layout if arr is None else ShardLayout.of(arr)
        self._index: dict[int, np.ndarray | None] = {}

    @property
    def supported(self) -> bool:
        """Whether the direct path applies (else the caller reads through zarr)."""
        return self.layout is not None

    def _shard_index(self, j: int, path: str) -> np.ndarray | None:
        """The ``(n_inner, 2)`` offset/length index of shard ``j`` (None: never written)."""
        if j in self._index:
            return self._index[j]
        import google_crc32c

        from ..errors import CorruptFileError

        lay = self.layout
        assert lay is not None
        n_inner = -(-lay.shard // lay.chunk)
        tail = _read(self.loc, path, start=-(16 * n_inner + 4))
        index = None
        if tail is not None:
            body, crc = tail[:-4], tail[-4:]
            if google_crc32c.value(body).to_bytes(4, "little") != crc:
                raise CorruptFileError(f"shard index checksum mismatch in {lay.key(j)}",
                                       path=self.loc.url)
            index = np.frombuffer(body, dtype="<u8").reshape(n_inner, 2)
        self._index[j] = index  # dict writes are atomic: concurrent readers are fine
        return index

    def _piece(self, j: int, c0: int, c1: int,
               put: Callable[[int, np.ndarray | None], None]) -> None:
        """Inner chunks ``[c0, c1)`` of shard ``j``: decode each and hand it to ``put``."""
        from numcodecs import blosc

        from ..errors import CorruptFileError

        lay = self.layout
        assert lay is not None
        path = f"{self.loc.path.rstrip('/')}/{lay.key(j)}"
        index = self._shard_index(j, path)
        if index is None:  # shard never written: every chunk is the fill value
            for c in range(c0, c1):
                put(c, None)
            return
        want = index[c0:c1]
        present = want[:, 0] != _MAX
        if not present.any():
            for c in range(c0, c1):
                put(c, None)
            return
        lo = int(want[present, 0].min())
        hi = int((want[present, 0] + want[present, 1]).max())
        data = _read(self.loc, path, start=lo, end=hi)
        if data is None or len(data) != hi - lo:
            raise CorruptFileError(f"shard {lay.key(j)} is shorter than its index says",
                                   path=self.loc.url)
        view = memoryview(data)
        rows = lay.shape[0]
        buf = np.empty(rows * lay.chunk, dtype=lay.dtype)
        for i, c in enumerate(range(c0, c1)):
            if not present[i]:
                put(c, None)
                continue
            off, length = int(want[i, 0]) - lo, int(want[i, 1])
            blosc.decompress(view[off: off + length], buf)
            put(c, buf.reshape(rows, lay.chunk))

    def read(self, rows: list[int], i0: int, i1: int,
             convert: Callable[[np.ndarray | None, np.ndarray], None],
             out: np.ndarray, finish: Callable[[int, int], None] | None = None) -> bool:
        """Fill ``out`` (rows x [i0, i1)) via ``convert(digital, dest)``; False if unsupported.

        ``digital`` is None for a chunk that was never written (the fill value). Two
        threads share a multi-chunk range: this one and the process's pool. ``finish(a, b)``
        runs on the same thread once columns ``out[:, a:b]`` are all converted (a second
        pass over them, e.g. dequantising, split over the threads with no extra hand-off).
        """
        lay = self.layout
        if lay is None or i1 <= i0:
            return lay is not None
        all_rows = rows == list(range(lay.shape[0]))
        per_shard = lay.shard // lay.chunk
        first, last = i0 // lay.chunk, (i1 - 1) // lay.chunk

        def put(c: int, block: np.ndarray | None) -> None:
            g0 = c * lay.chunk
            a, b = max(i0, g0), min(i1, g0 + lay.chunk)
            if block is None:  # never written: ``convert`` applies the fill value
                convert(None, out[:, a - i0: b - i0])
                return
            src = block[:, a - g0: b - g0] if all_rows else block[rows, a - g0: b - g0]
            convert(src, out[:, a - i0: b - i0])

        tasks = []
        for j, group in itertools.groupby(range(first, last + 1),
                                          key=lambda c: c // per_shard):
            cs = list(group)
            tasks.append((j, cs[0] - j * per_shard, cs[-1] + 1 - j * per_shard))
        if len(tasks) == 1 and tasks[0][2] - tasks[0][1] > 8:  # one shard: split it in two
            j, a, b = tasks[0]
            tasks = [(j, a, (a + b) // 2), (j, (a + b) // 2, b)]

        def run(t: tuple[int, int, int]) -> None:
            j, a, b = t

            def local_put(c: int, block: np.ndarray | None) -> None:
                put(j * per_shard + c, block)

            self._piece(j, a, b, local_put)
            if finish is not None:
                c0, c1 = j * per_shard + a, j * per_shard + b
                finish(max(i0, c0 * lay.chunk) - i0, min(i1, c1 * lay.chunk) - i0)

        if len(tasks) == 1:
            run(tasks[0])
            return True
        half = (len(tasks) + 1) // 2  # the pool takes the second half, this thread the first
        def rest() -> None:
            for t in tasks[half:]:
                run(t)

        fut = _pool().submit(rest)
        try:
            for t in tasks[:half]:
                run(t)
        finally:
            fut.result()
        return True


def read_level0(loc: Location, arr: Any, rows: list[int], i0: int, i1: int,
                convert: Callable[[np.ndarray | None, np.ndarray], None],
                out: np.ndarray) -> bool:
    """One-off :meth:`Level0Reader.read` (no index kept); False if unsupported."""
    return Level0Reader(loc, arr).read(rows, i0, i1, convert, out)
