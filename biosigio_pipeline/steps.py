"""The conversion steps, without Dagster: where each output goes, and one call per step.

The Dagster assets and the ``convert`` CLI both call these, so the pipeline stays thin and
every step can be tested on its own. Output layout under a storage root (path or fsspec URL)::

    sources/<key>.json            the discovered source: files, sizes, checksum (lineage)
    canonical/<key>.json          the canonical Recording by reference: its source, importer,
                                  and the source's size/mtime (no copy of the samples)
    archive/parquet/<key>.parquet lossless Parquet archive (a folder for multi-rate)
    archive/feather/<key>.arrow   lossless Feather (Arrow IPC, lz4) archive
    serving/<key>.zarr            Zarr v3 serving store
    previews/<key>.png            preview drawn from the store's view pyramid
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from biosigio_lib._fs import atomic_target, resolve
from biosigio_lib.discovery import SourceRecording

if TYPE_CHECKING:
    from biosigio_lib import Recording
    from biosigio_lib.serving import ServingParams

__all__ = [
    "Outputs",
    "file_stamp",
    "load_source",
    "read_canonical",
    "read_manifest",
    "size_of",
    "summarise",
    "viewer_link",
    "write_archive",
    "write_canonical",
    "write_manifest",
    "write_preview",
    "write_store",
]


def _join(root: str, *parts: str) -> str:
    return "/".join([root.rstrip("/"), *parts])


def _opts(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``storage_options`` keyword only for URLs (the library refuses them for local paths)."""
    return {"storage_options": dict(storage_options)} if storage_options and "://" in url else {}


@dataclass(frozen=True)
class Outputs:
    """The URLs of one recording's outputs under a storage root."""

    root: str
    key: str

    @property
    def manifest(self) -> str:
        return _join(self.root, "sources", f"{self.key}.json")

    @property
    def canonical(self) -> str:
        return _join(self.root, "canonical", f"{self.key}.json")

    @property
    def parquet(self) -> str:
        return _join(self.root, "archive", "parquet", f"{self.key}.parquet")

    @property
    def feather(self) -> str:
        return _join(self.root, "archive", "feather", f"{self.key}.arrow")

    @property
    def store(self) -> str:
        return _join(self.root, "serving", f"{self.key}.zarr")

    @property
    def preview(self) -> str:
        return _join(self.root, "previews", f"{self.key}.png")


def _write_bytes(url: str, data: bytes, storage_options: Mapping[str, Any] | None) -> str:
    loc = resolve(url, _opts(url, storage_options).get("storage_options"))
    with atomic_target(loc, overwrite=True) as tmp:
        parent = tmp.path.rsplit("/", 1)[0]
        if parent:
            tmp.fs.makedirs(parent, exist_ok=True)
        with tmp.fs.open(tmp.path, "wb") as fh:
            fh.write(data)
    return loc.url


def write_manifest(source: SourceRecording, url: str,
                   storage_options: Mapping[str, Any] | None = None) -> str:
    """Record the discovered source (files, sizes, checksum) as JSON; returns its URL."""
    text = json.dumps(source.to_dict(), indent=1, sort_keys=True)
    return _write_bytes(url, text.encode(), storage_options)


def read_manifest(url: str, storage_options: Mapping[str, Any] | None = None) -> SourceRecording:
    """The source recorded by :func:`write_manifest`."""
    loc = resolve(url, _opts(url, storage_options).get("storage_options"))
    with loc.fs.open(loc.path, "rb") as fh:
        return SourceRecording.from_dict(json.loads(fh.read()))


def load_source(source: SourceRecording, source_options: Mapping[str, Any] | None = None,
                *, lazy: bool = True) -> Recording:
    """Import the source recording and stamp its lineage: source file, checksum and key.

    ``lazy`` (the default) leaves the samples of an EDF/BDF source in the file: the writers
    then read them a window at a time, so any length converts in bounded memory.
    """
    from biosigio_lib import Recording

    rec = Recording.from_file(source.url, lazy=lazy, **_opts(source.url, source_options))
    _stamp_lineage(rec, source.url, source.checksum, source.key)
    return rec


def _stamp_lineage(rec: Recording, url: str, checksum: str | None, key: str) -> None:
    rec.metadata.setdefault("source_file", url)
    rec.metadata["source_checksum"] = checksum
    rec.metadata["source_key"] = key


def file_stamp(url: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Size and modification time of a file (a source, a reference): cheap evidence it did
    not change."""
    loc = resolve(url, _opts(url, storage_options).get("storage_options"))
    info = loc.fs.info(loc.path)
    mtime = info.get("mtime", info.get("LastModified", info.get("created")))
    return {"size": info.get("size"), "mtime": str(mtime) if mtime is not None else None}


def write_canonical(rec: Recording, url: str,
                    storage_options: Mapping[str, Any] | None = None,
                    source_options: Mapping[str, Any] | None = None) -> str:
    """The canonical Recording between steps, by reference: where it was read from (source
    URL, importer and its arguments), its lineage, and the source's size and mtime. No copy
    of the samples is written; :func:`read_canonical` reopens the source (lazily)."""
    if rec.origin is None:
        raise ValueError("the recording was not read from a file: nothing to refer to")
    ref = {"format": "biosigio-recording-ref", "version": 1, "origin": rec.origin,
           "source_checksum": rec.metadata.get("source_checksum"),
           "source_key": rec.metadata.get("source_key"),
           "stamp": file_stamp(rec.origin["url"], source_options)}
    return _write_bytes(url, json.dumps(ref, indent=1, sort_keys=True).encode(),
                        storage_options)


def read_canonical(url: str, storage_options: Mapping[str, Any] | None = None,
                   source_options: Mapping[str, Any] | None = None) -> Recording:
    """Reopen the recording :func:`write_canonical` refers to; a source that changed since
    (size or mtime) is an error: rematerialize the ``recording`` asset."""
    from biosigio_lib import Recording
    from biosigio_lib.errors import FileReadError

    loc = resolve(url, _opts(url, storage_options).get("storage_options"))
    with loc.fs.open(loc.path, "rb") as fh:
        ref = json.loads(fh.read())
    origin = ref["origin"]
    src = origin["url"]
    if file_stamp(src, source_options) != ref["stamp"]:
        raise FileReadError("the source changed after the recording asset read it; "
                            "materialize the recording partition again", path=src)
    rec = Recording.from_file(src, importer=origin.get("importer"), lazy=True,
                              **dict(origin.get("kwargs") or {}), **_opts(src, source_options))
    _stamp_lineage(rec, src, ref.get("source_checksum"), str(ref.get("source_key")))
    return rec


def write_archive(rec: Recording, url: str, container: str,
                  storage_options: Mapping[str, Any] | None = None) -> str:
    """The lossless archive copy, ``container`` 'parquet' or 'feather'; returns its URL."""
    writer = rec.to_parquet if container == "parquet" else rec.to_arrow
    return writer(url, overwrite=True, **_opts(url, storage_options))


def write_store(rec: Recording, url: str, params: ServingParams,
                storage_options: Mapping[str, Any] | None = None) -> str:
    """The Zarr v3 serving store with these parameters; returns its URL."""
    from biosigio_lib.serving import write_zarr

    return write_zarr(rec, url, params=params, overwrite=True, **_opts(url, storage_options))


def write_preview(store_url: str, url: str,
                  storage_options: Mapping[str, Any] | None = None) -> bytes:
    """Draw the store's preview PNG from its view pyramid, save it, and return the bytes."""
    from biosigio_lib.preview import store_preview_png

    png = store_preview_png(store_url, **_opts(store_url, storage_options))
    _write_bytes(url, png, storage_options)
    return png


def size_of(url: str, storage_options: Mapping[str, Any] | None = None) -> int:
    """Bytes of a file, or of everything under a folder."""
    loc = resolve(url, _opts(url, storage_options).get("storage_options"))
    if loc.fs.isdir(loc.path):
        return int(sum(loc.fs.du(loc.path, total=False).values()))
    return int(loc.fs.size(loc.path))


def summarise(rec: Recording) -> dict[str, Any]:
    """Channel/rate/duration/event facts of a recording, JSON-safe (for asset metadata)."""
    return {
        "channels": rec.n_channels,
        "rates_hz": [float(r) for r in rec.rates],
        "grids": {k: g.n_channels for k, g in rec.grids.items()},
        "duration_s": round(float(rec.duration), 6),
        "events": len(rec.events),
        "source_checksum": str(rec.metadata.get("source_checksum")),
        "source_file": str(rec.metadata.get("source_file")),
    }


def viewer_link(base_url: str, storage_root: str, store_url: str) -> str:
    """The viewer page of a store, for a viewer serving ``storage_root`` at ``base_url``."""
    from biosigio_lib.viewer import viewer_link as link

    root = storage_root.rstrip("/")
    rel = store_url[len(root):].lstrip("/") if store_url.startswith(root) else store_url
    return link(base_url, rel)
