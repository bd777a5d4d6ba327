"""Scan a source root into source recordings: stable safe keys, file lists, sizes, checksums.

A root (local path or fsspec URL) may hold BIDS datasets (a folder with
``dataset_description.json``), WFDB databases (``.hea`` headers) and loose EDF/BDF/XDF files,
in any mix and nesting. Each recording gets a key ``<dataset>__<name>`` made only of
``[A-Za-z0-9._-]`` (safe as a Dagster partition key and as a file name), derived from paths
alone so it never changes when other files come and go. Listing only stats files; checksums
(the expensive part) are computed for a bounded slice at a time (:func:`discover`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ._fs import Location, resolve
from .errors import BiosigIOError

__all__ = [
    "Discovery",
    "SourceRecording",
    "checksum",
    "discover",
    "find_source",
    "find_sources",
    "list_sources",
    "safe_key",
]

#: Suffixes of files that are one recording each (outside BIDS datasets).
FILE_SUFFIXES: tuple[str, ...] = (".edf", ".bdf", ".edf.gz", ".bdf.gz", ".xdf", ".xdfz")
#: BIDS data files we can import, and the datatypes we scan.
BIDS_SUFFIXES: tuple[str, ...] = (".edf", ".bdf")
BIDS_DATATYPES: tuple[str, ...] = ("eeg", "emg", "ieeg", "ecg", "beh", "motion", "physio")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+|\.{3,}")  # Dagster refuses '...' in partition keys
_CHUNK = 1 << 20
#: Longest key: ``.<key>.zarr.tmp-<12 hex>`` must still fit a 255-byte file name.
MAX_KEY = 200


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]


def _shorten(key: str, limit: int, seed: str) -> str:
    """``key`` cut to ``limit - 11`` characters plus ``-<hash of seed>``."""
    return key[: limit - 11].rstrip("-.") + "-" + _digest(seed)


def safe_key(*parts: str) -> str:
    """Join parts with ``__`` after replacing anything outside ``[A-Za-z0-9._-]`` (and runs of
    3+ dots) by ``-``; keys longer than :data:`MAX_KEY` end in a hash of the parts instead."""
    cleaned = [_UNSAFE.sub("-", p).strip("-") or "x" for p in parts]
    key = "__".join(cleaned)
    return key if len(key) <= MAX_KEY else _shorten(key, MAX_KEY, "\0".join(parts))


def _disambiguate(found: list[SourceRecording], base: str) -> list[SourceRecording]:
    """Tell apart recordings whose names map to one key (``a b.edf``, ``a-b.edf``): each gets
    ``-<hash of its relative path>``, except one whose names needed no change (it keeps the
    key). Never merges two recordings, and keys still come from each path alone."""
    groups: dict[str, list[SourceRecording]] = {}
    for s in found:
        groups.setdefault(s.key, []).append(s)
    out = []
    for key, group in groups.items():
        if len(group) > 1:
            natural = [s for s in group if safe_key(s.dataset, s.name) == f"{s.dataset}__{s.name}"]
            keep = natural[0] if len(natural) == 1 else None
            group = [s if s is keep else replace(s, key=_shorten(
                key, min(len(key) + 11, MAX_KEY), s.url[len(base):].lstrip("/"))) for s in group]
        out += group
    return out


@dataclass(frozen=True)
class SourceRecording:
    """One recording found under a root: what to open, every file it is made of, and stats."""

    key: str
    dataset: str
    name: str
    url: str
    format: str
    files: tuple[str, ...]
    size: int
    mtime: float
    root: str = ""
    checksum: str | None = None
    entities: Mapping[str, str] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """Cheap change marker from the listing: total size and newest modification time."""
        return f"{self.size}:{self.mtime:.6f}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for sensor cursors, run tags and manifests)."""
        return {"key": self.key, "dataset": self.dataset, "name": self.name, "url": self.url,
                "format": self.format, "files": list(self.files), "size": self.size,
                "mtime": self.mtime, "root": self.root, "checksum": self.checksum,
                "entities": dict(self.entities)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SourceRecording:
        """Inverse of :meth:`to_dict`."""
        return cls(key=d["key"], dataset=d["dataset"], name=d["name"], url=d["url"],
                   format=d["format"], files=tuple(d["files"]), size=int(d["size"]),
                   mtime=float(d["mtime"]), root=d.get("root", ""),
                   checksum=d.get("checksum"), entities=dict(d.get("entities") or {}))


@dataclass(frozen=True)
class Discovery:
    """A slice of a root's recordings: ``sources[start:start+limit]``, with the total count."""

    sources: list[SourceRecording]
    total: int
    start: int
    next_start: int  # 0 once the slice reached the end (the next scan starts over)


def _mtime(info: Mapping[str, Any]) -> float:
    for k in ("mtime", "LastModified", "last_modified", "updated", "created"):
        v = info.get(k)
        if v is None:
            continue
        if isinstance(v, dt.datetime):
            return v.timestamp()
        try:
            return float(v)
        except (TypeError, ValueError):
            try:
                return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def _suffix(name: str, suffixes: Iterable[str]) -> str | None:
    low = name.lower()
    return next((s for s in sorted(suffixes, key=len, reverse=True) if low.endswith(s)), None)


class _Listing:
    """The files under a root: relative path -> (size, mtime), plus URL/path helpers."""

    def __init__(self, loc: Location):
        self.loc = loc
        base = loc.path.rstrip("/")
        try:
            found = loc.fs.find(base, withdirs=False, detail=True)
        except FileNotFoundError:
            found = {}
        if not found and not loc.fs.exists(base):
            raise FileNotFoundError(f"{loc.url}: source root does not exist")
        self.files: dict[str, tuple[int, float]] = {}
        for path, info in found.items():
            rel = path[len(base):].lstrip("/") if path.startswith(base) else path
            parts = rel.split("/")
            if any(p.startswith(".") for p in parts) or info.get("type") == "directory":
                continue  # hidden files and our own temporaries
            self.files[rel] = (int(info.get("size") or 0), _mtime(info))
        self.base = base

    def url(self, rel: str) -> str:
        path = f"{self.base}/{rel}" if rel else self.base
        return path if self.loc.is_local else self.loc.fs.unstrip_protocol(path)

    def read_text(self, rel: str) -> str:
        with self.loc.fs.open(f"{self.base}/{rel}", "rb") as fh:
            return bytes(fh.read()).decode("latin-1")

    def stats(self, rels: Sequence[str]) -> tuple[int, float]:
        have = [self.files[r] for r in rels if r in self.files]
        return sum(s for s, _ in have), max((m for _, m in have), default=0.0)


def _dataset_and_name(rel: str, root_name: str) -> tuple[str, str]:
    parts = rel.split("/")
    if len(parts) == 1:
        return root_name, parts[0]
    return parts[0], "-".join(parts[1:])


def _make(lst: _Listing, key: str, dataset: str, name: str, main: str, fmt: str,
          rels: Sequence[str], entities: Mapping[str, str] | None = None) -> SourceRecording:
    rels = sorted(set(rels))
    size, mtime = lst.stats(rels)
    return SourceRecording(key=key, dataset=dataset, name=name, url=lst.url(main), format=fmt,
                           files=tuple(lst.url(r) for r in rels), size=size, mtime=mtime,
                           root=lst.loc.url, entities=dict(entities or {}))


# ------------------------------------------------------------------------------- BIDS
_BIDS_FILE = re.compile(
    r"^(?P<sub>sub-[^/]+)/(?:(?P<ses>ses-[^/]+)/)?(?P<dt>[a-z]+)/(?P<stem>[^/]+)_(?P=dt)(?P<ext>\.[^/]+)$")


def _applies(sidecar: str, data: str, data_entities: list[str]) -> bool:
    """BIDS inheritance: a .json/.tsv in the data file's folder or above whose entities are a
    subset of the data file's (``task-rest_eeg.json`` at the root applies to every rest run)."""
    if not sidecar.lower().endswith((".json", ".tsv")):
        return False
    folder = sidecar.rsplit("/", 1)[0] if "/" in sidecar else ""
    if folder and not data.startswith(folder + "/"):
        return False
    parts = sidecar.rsplit("/", 1)[-1].rsplit(".", 1)[0].split("_")[:-1]
    if any("-" not in p for p in parts):  # dataset_description.json: dataset-level files
        return not folder
    return all(p in data_entities for p in parts)


def _bids_recordings(lst: _Listing, broot: str) -> list[SourceRecording]:
    prefix = f"{broot}/" if broot else ""
    dataset = broot.rsplit("/", 1)[-1] if broot else lst.loc.path.rstrip("/").rsplit("/", 1)[-1]
    inner = {r[len(prefix):]: r for r in lst.files if r.startswith(prefix)}
    found = []
    for r_in, rel in sorted(inner.items()):
        m = _BIDS_FILE.match(r_in)
        if not m or m["dt"] not in BIDS_DATATYPES or m["ext"].lower() not in BIDS_SUFFIXES:
            continue
        found.append((m, rel))

    def r_in_of(rel: str) -> str:
        return rel[len(prefix):]

    out = []
    for m, rel in found:
        stem = f"{m['stem']}_{m['dt']}"  # the file stem: the key scan_bids gives too
        ents = m["stem"].split("_")
        side = [r for r_in, r in inner.items() if r != rel and _applies(r_in, r_in_of(rel), ents)]
        entities = dict(e.split("-", 1) for e in ents if "-" in e)
        entities["datatype"] = m["dt"]
        out.append(_make(lst, safe_key(dataset, stem), dataset, stem, rel, "bids",
                         [rel, *side], entities))
    return _use_scan_bids(lst, broot, dataset, out)


def _use_scan_bids(lst: _Listing, broot: str, dataset: str,
                   fallback: list[SourceRecording]) -> list[SourceRecording]:
    """Prefer the BIDS importer's ``scan_bids`` (keys, entities, readable files) when present."""
    try:
        from .importers.bids import scan_bids
    except ImportError:
        return fallback
    try:
        scanned = scan_bids(lst.loc.child(broot) if broot else lst.loc)
    except (BiosigIOError, OSError, ValueError):
        return fallback
    prefix = f"{broot}/" if broot else ""
    by_rel = {s.url[len(lst.url(prefix)):] if prefix else s.url[len(lst.url("")) + 1:]: s
              for s in fallback}
    out = []
    for b in scanned:
        path = str(getattr(b, "path", ""))
        src = next((s for rel, s in by_rel.items() if path.endswith("/" + rel)), None)
        if src is None or not getattr(b, "key", None):
            continue
        ents = {str(k): str(v) for k, v in dict(getattr(b, "entities", {}) or {}).items()}
        ents.setdefault("datatype", str(getattr(b, "datatype", "")))
        out.append(replace(src, key=safe_key(dataset, str(b.key)), name=str(b.key),
                           entities=ents))
    keys = [s.key for s in out]
    return out if out and len(set(keys)) == len(keys) else fallback


# ------------------------------------------------------------------------------- WFDB
def _wfdb_recordings(lst: _Listing, headers: list[str], root_name: str) -> list[SourceRecording]:
    infos: dict[str, tuple[bool, list[str]]] = {}  # rel -> (is multi-segment, referenced names)
    for rel in headers:
        lines = [ln.strip() for ln in lst.read_text(rel).splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if not lines:
            continue
        first = lines[0].split()
        multi = "/" in first[0]
        refs = [ln.split()[0] for ln in lines[1:] if ln.split()]
        infos[rel] = (multi, refs)
    segments: set[str] = set()
    for rel, (multi, refs) in infos.items():
        if multi:
            folder = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
            segments |= {f"{folder}{r}.hea" for r in refs if r != "~"}
    out = []
    for rel, (multi, refs) in sorted(infos.items()):
        if rel in segments:
            continue
        folder = rel.rsplit("/", 1)[0] + "/" if "/" in rel else ""
        record = rel.rsplit("/", 1)[-1][: -len(".hea")]
        rels = [rel]
        names = [record]
        if multi:
            for r in refs:
                if r != "~" and f"{folder}{r}.hea" in infos:
                    names.append(r)
                    rels.append(f"{folder}{r}.hea")
                    rels += [f"{folder}{x}" for x in infos[f"{folder}{r}.hea"][1]]
        else:
            rels += [f"{folder}{r}" for r in refs]
        # annotation and other companion files share the record name: 100.atr, 100.qrs
        rels += [f for f in lst.files if f.startswith(folder) and "/" not in f[len(folder):]
                 and f[len(folder):].rsplit(".", 1)[0] in names]
        dataset, name = _dataset_and_name(rel[: -len(".hea")], root_name)
        out.append(_make(lst, safe_key(dataset, name), dataset, name, rel, "wfdb",
                         [r for r in rels if r in lst.files]))
    return out


# ------------------------------------------------------------------------------- scan
def list_sources(root: str | os.PathLike[str], *,
                 storage_options: Mapping[str, Any] | None = None) -> list[SourceRecording]:
    """Every recording under ``root``, sorted by key, without checksums (a listing only)."""
    loc = resolve(root, storage_options)
    lst = _Listing(loc)
    root_name = loc.path.rstrip("/").rsplit("/", 1)[-1] or "root"
    bids_roots = sorted({r.rsplit("/", 1)[0] if "/" in r else "" for r in lst.files
                         if r.rsplit("/", 1)[-1] == "dataset_description.json"})

    def in_bids(rel: str) -> bool:
        return any(b == "" or rel.startswith(b + "/") for b in bids_roots)

    out: list[SourceRecording] = []
    for broot in bids_roots:
        if not any(broot != b and (b == "" or broot.startswith(b + "/")) for b in bids_roots):
            out += _bids_recordings(lst, broot)
    rest = [r for r in lst.files if not in_bids(r)]
    out += _wfdb_recordings(lst, [r for r in rest if r.lower().endswith(".hea")], root_name)
    for rel in sorted(rest):
        suf = _suffix(rel, FILE_SUFFIXES)
        if suf is None:
            continue
        dataset, name = _dataset_and_name(rel, root_name)
        name = name[: -len(suf)] + "_" + suf.lstrip(".").replace(".", "_")
        fmt = "xdf" if "xdf" in suf else "edf"
        out.append(_make(lst, safe_key(dataset, name), dataset, name, rel, fmt, [rel]))
    out = sorted(_disambiguate(out, lst.url("")), key=lambda s: s.key)
    keys = [s.key for s in out]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise BiosigIOError(f"several recordings map to the same key(s) {dupes[:5]}; rename "
                            "the files or split the root", path=loc.url)
    return out


def _name_bytes(name: str) -> bytes:
    """A file name's bytes: UTF-8, with surrogate-escaped bytes of a non-UTF-8 (e.g. Latin-1)
    name restored as the original bytes, and any other lone surrogate passed through."""
    try:
        return name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return name.encode("utf-8", "surrogatepass")


def checksum(source: SourceRecording, *,
             storage_options: Mapping[str, Any] | None = None) -> str:
    """SHA-256 over the recording's files (their names relative to the main file, then bytes)."""
    h = hashlib.sha256()
    base = source.url.rsplit("/", 1)[0]
    for url in source.files:
        loc = resolve(url, storage_options if "://" in url else None)
        rel = url[len(base) + 1:] if url.startswith(base + "/") else url.rsplit("/", 1)[-1]
        h.update(_name_bytes(rel) + b"\0")
        with loc.fs.open(loc.path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def discover(root: str | os.PathLike[str], *, storage_options: Mapping[str, Any] | None = None,
             start: int = 0, limit: int | None = None, checksums: bool = True) -> Discovery:
    """A bounded slice of ``root``'s recordings (by key order), with checksums computed."""
    everything = list_sources(root, storage_options=storage_options)
    total = len(everything)
    start = min(max(start, 0), total)
    stop = total if limit is None else min(total, start + max(limit, 1))
    part = everything[start:stop]
    if checksums:
        part = [replace(s, checksum=checksum(s, storage_options=storage_options)) for s in part]
    return Discovery(sources=part, total=total, start=start,
                     next_start=0 if stop >= total else stop)


def find_source(roots: Sequence[str], key: str, *,
                storage_options: Mapping[str, Any] | None = None,
                listed: Mapping[str, SourceRecording] | None = None) -> SourceRecording:
    """The recording with partition key ``key`` under one of ``roots``, with its checksum;
    ``listed``: what :func:`find_sources` already found for these roots (no new listing)."""
    found = listed if listed is not None else find_sources(roots, [key],
                                                            storage_options=storage_options)
    if key not in found:
        raise FileNotFoundError(
            f"no recording with key {key!r} under the source roots {list(roots)}")
    return replace(found[key], checksum=checksum(found[key], storage_options=storage_options))


def find_sources(roots: Sequence[str], keys: Sequence[str], *,
                 storage_options: Mapping[str, Any] | None = None
                 ) -> dict[str, SourceRecording]:
    """Key -> recording (without checksum) for those of ``keys`` found under ``roots``, the
    first root that has a key winning; each root is listed once, however many keys."""
    wanted = set(keys)
    found: dict[str, SourceRecording] = {}
    for root in roots:
        if wanted <= found.keys():
            break
        try:
            sources = list_sources(root, storage_options=storage_options)
        except FileNotFoundError:
            continue
        for s in sources:
            if s.key in wanted and s.key not in found:
                found[s.key] = s
    return found
