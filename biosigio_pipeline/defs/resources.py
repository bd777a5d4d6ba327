"""Resources: where outputs go, where sources are, and how the canonical Recording persists.

Each is a small configurable interface with cheap variants (a temporary folder or a
``memory://`` root in tests). Defaults are filled in by ``build_defs`` from
:mod:`biosigio_pipeline.settings` when the definitions load, never at import.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from biosigio_lib.discovery import SourceRecording, find_source, find_sources

from ..steps import Outputs, file_stamp, read_canonical, size_of, write_canonical

if TYPE_CHECKING:
    from biosigio_lib import Recording

__all__ = ["LazyRecordings", "PipelineStorage", "RecordingIOManager", "SourceRoots"]


class PipelineStorage(dg.ConfigurableResource):
    """The storage root of every output (a local folder or any fsspec URL)."""

    root: str = Field(description="Output root: a local folder or an fsspec URL.")
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options for a URL root (e.g. credentials).")

    def outputs(self, key: str) -> Outputs:
        """The output URLs of one partition."""
        return Outputs(self.root, key)

    def size_of(self, url: str) -> int:
        """Bytes of an output file or folder."""
        return size_of(url, self.storage_options)


class SourceRoots(dg.ConfigurableResource):
    """The roots the sensor scans: BIDS datasets, WFDB databases, folders of EDF/BDF/XDF."""

    roots: list[str] = Field(description="Local folders or fsspec URLs to scan.")
    storage_options: dict[str, Any] = Field(default_factory=dict,
                                            description="fsspec options for URL roots.")
    max_per_tick: int = Field(default=25, description="Recordings checksummed per sensor tick.")

    def find(self, key: str) -> SourceRecording:
        """The source of partition ``key`` with its checksum (FileNotFoundError if gone)."""
        return find_source(self.roots, key, storage_options=self.storage_options or None)

    def find_many(self, keys: Sequence[str]) -> Callable[[str], SourceRecording]:
        """``find`` for many partitions, listing each root once: a function key -> source
        with its checksum (FileNotFoundError for a key that is gone)."""
        opts = self.storage_options or None
        found = find_sources(self.roots, keys, storage_options=opts)
        return lambda key: find_source(self.roots, key, storage_options=opts, listed=found)


# Recordings kept per process, so the steps of an in-process run do not reopen them: one
# decoded (in-memory) Recording, or up to _CACHE_LAZY lazily read ones (a batched run's, whose
# samples stay in their files), the least recently used dropped first. An entry is used only
# while its canonical reference and its source keep their size and mtime.
_CACHE: dict[str, tuple[tuple[Any, ...], Recording]] = {}
_CACHE_LAZY = 64
_CACHE_LOCK = threading.Lock()


def _remember(url: str, stamp: tuple[Any, ...], rec: Recording) -> None:
    """Keep ``rec`` in :data:`_CACHE` under the rules above."""
    with _CACHE_LOCK:
        if not rec.is_lazy or (_CACHE and not next(iter(_CACHE.values()))[1].is_lazy):
            _CACHE.clear()  # an eager Recording is only ever alone
        _CACHE.pop(url, None)
        _CACHE[url] = (stamp, rec)
        while len(_CACHE) > _CACHE_LAZY:
            del _CACHE[next(iter(_CACHE))]


class LazyRecordings(Mapping[str, "Recording"]):
    """Partition key -> canonical Recording, for a run over several partitions (a batched
    backfill): each is reopened (lazily) only when asked for and not kept here, so a run over
    many partitions never holds their samples at once."""

    def __init__(self, urls: Mapping[str, str], load: Callable[[str], Recording]) -> None:
        self._urls = dict(urls)
        self._load = load

    def __getitem__(self, key: str) -> Recording:
        return self._load(self._urls[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._urls)

    def __len__(self) -> int:
        return len(self._urls)

    def __repr__(self) -> str:
        return f"LazyRecordings({sorted(self._urls)})"


class RecordingIOManager(dg.ConfigurableIOManager):
    """Persists the canonical Recording by reference: a small JSON naming its source file,
    importer and lineage (``steps.write_canonical``), never a copy of the samples.

    Downstream steps reopen the source lazily (EDF/BDF samples stay in the file and are read
    a window at a time), so no step holds a whole recording and no full-size copy is written;
    a source that changed since (size or mtime) fails the step with a typed error.
    """

    root: str
    storage_options: dict[str, Any] = Field(default_factory=dict)
    source_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec options to reopen URL sources.")

    @staticmethod
    def _key(context: dg.OutputContext | dg.InputContext) -> str:
        return context.asset_partition_key if context.has_asset_partitions else "unpartitioned"

    def handle_output(self, context: dg.OutputContext, obj: Recording | LazyRecordings) -> None:
        if isinstance(obj, LazyRecordings):  # a run over several partitions: each persisted
            return                            # by the asset as it was built (see persist)
        context.add_output_metadata(self.persist(self._key(context), obj))

    def persist(self, key: str, obj: Recording) -> dict[str, Any]:
        """Write partition ``key``'s canonical reference; returns its metadata."""
        url = write_canonical(obj, Outputs(self.root, key).canonical, self.storage_options,
                              self.source_options or None)
        _remember(url, self._stamps(url, obj), obj)
        return {"canonical_uri": dg.MetadataValue.path(url),
                "canonical_bytes": size_of(url, self.storage_options)}

    def lazy(self, keys: Iterable[str]) -> LazyRecordings:
        """Key -> Recording over ``keys``, each reopened from its reference when asked for."""
        return LazyRecordings({k: Outputs(self.root, k).canonical for k in sorted(keys)},
                              self._read)

    def load_input(self, context: dg.InputContext) -> Recording | LazyRecordings:
        """One partition: its Recording. Several (a batched run): a :class:`LazyRecordings`
        over them (by key), reopening each only when asked for."""
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        if len(keys) > 1:
            return self.lazy(keys)
        return self._read(Outputs(self.root, self._key(context)).canonical)

    def _read(self, url: str) -> Recording:
        hit = _CACHE.get(url)
        if hit is not None and hit[0] == self._stamps(url, hit[1]):
            _remember(url, hit[0], hit[1])  # most recently used now
            return hit[1]
        rec = read_canonical(url, self.storage_options or None, self.source_options or None)
        _remember(url, self._stamps(url, rec), rec)
        return rec

    def _stamps(self, url: str, rec: Recording) -> tuple[Any, ...]:
        """The canonical reference's stamp and its source's (a source changed in place must
        not be served from the cache: :func:`read_canonical` refuses it)."""
        src = (rec.origin or {}).get("url")
        return (file_stamp(url, self.storage_options or None),
                file_stamp(src, self.source_options or None) if src else None)
