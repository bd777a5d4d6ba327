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

__all__ = ["Level0Reader", "ShardLayout", "read_level0"]

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

    def __init__(self, loc: Location, arr: Any):
        self.loc = loc
        self.layout = ShardLayout.of(arr)
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
             out: np.ndarray) -> bool:
        """Fill ``out`` (rows x [i0, i1)) via ``convert(digital, dest)``; False if unsupported.

        ``digital`` is None for a chunk that was never written (the fill value). Two
        threads share a multi-chunk range: this one and the process's pool.
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
