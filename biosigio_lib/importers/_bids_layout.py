"""BIDS layout: file-name entities, dataset discovery and the inheritance principle.

Works on any fsspec filesystem (paths joined with ``/``), so a dataset on S3 scans the same
way as a local one.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

import pandas as pd

from .._fs import Location, list_folder
from ..errors import CorruptFileError

__all__ = ["DATATYPES", "BidsRecording", "applicable", "dataset_root", "parse_name",
           "read_json", "read_tsv", "scan"]

#: Datatypes whose recordings we scan, and the data extensions we can / cannot read.
DATATYPES = ("eeg", "emg", "ieeg")
READABLE = {".edf": "edf", ".bdf": "edf"}
UNREADABLE = {".vhdr": "BrainVision", ".set": "EEGLAB", ".nwb": "NWB", ".mefd": "MEF3"}
#: Fixed entity order of BIDS file names (the ones that occur for eeg/emg/ieeg).
ENTITY_ORDER = ("sub", "ses", "task", "acq", "run", "recording")
_ENTITY = re.compile(r"([a-zA-Z0-9]+)-([a-zA-Z0-9+]+)")


def parse_name(name: str) -> tuple[dict[str, str], str, str] | None:
    """``sub-01_task-x_emg.edf`` -> ``({'sub': '01', 'task': 'x'}, 'emg', '.edf')``."""
    stem, dot, ext = name.partition(".")
    parts = stem.split("_")
    entities: dict[str, str] = {}
    for part in parts[:-1]:
        m = _ENTITY.fullmatch(part)
        if not m:
            return None
        entities[m.group(1)] = m.group(2)
    return entities, parts[-1], dot + ext


@dataclass(frozen=True)
class BidsRecording:
    """One recording found in a BIDS dataset: where it is, its entities and its stable key."""

    key: str  # the file stem, e.g. ``sub-01_task-x_run-1_emg``: unique in a dataset
    path: str  # path or URL of the data file, usable with Recording.from_file
    root: str
    datatype: str
    extension: str
    importer: str
    entity_items: tuple[tuple[str, str], ...]

    @property
    def entities(self) -> dict[str, str]:
        return dict(self.entity_items)

    @property
    def sub(self) -> str:
        return self.entities["sub"]

    @property
    def ses(self) -> str | None:
        return self.entities.get("ses")

    @property
    def task(self) -> str | None:
        return self.entities.get("task")

    @property
    def acq(self) -> str | None:
        return self.entities.get("acq")

    @property
    def run(self) -> str | None:
        return self.entities.get("run")

    @property
    def recording(self) -> str | None:
        return self.entities.get("recording")


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def _url_of(loc: Location, path: str) -> str:
    """The URL of ``path`` on ``loc``'s filesystem (a plain path for local files)."""
    if loc.is_local:
        return path
    rel = path[len(loc.path.rstrip("/")):].lstrip("/")
    return _join(loc.url, rel) if rel else loc.url


def scan(root: Location) -> tuple[list[BidsRecording], list[tuple[str, str]]]:
    """Readable recordings (sorted by key) and ``(path, reason)`` for data files we skip."""
    fs = root.fs
    if not fs.exists(_join(root.path, "dataset_description.json")):
        raise CorruptFileError("not a BIDS dataset root (no dataset_description.json)",
                               path=root.url)
    found: list[BidsRecording] = []
    skipped: list[tuple[str, str]] = []
    for path in _data_paths(fs, root.path):
        name = path.rsplit("/", 1)[-1]
        parsed = parse_name(name)
        if parsed is None:
            skipped.append((_url_of(root, path), "file name is not made of BIDS entities"))
            continue
        entities, suffix, ext = parsed
        ext_l = ext.lower()
        if ext_l in (".json", ".tsv", ".eeg", ".vmrk", ".fdt"):
            continue  # sidecars and companion files of a data file, not recordings
        if ext_l not in READABLE:
            kind = UNREADABLE.get(ext_l, "this format")
            skipped.append((_url_of(root, path), f"no importer for {kind} ({ext}) files"))
            continue
        folders = path[len(root.path.rstrip("/")) + 1:].split("/")[:-2]
        expected = [f"sub-{entities.get('sub')}"] + (
            [f"ses-{entities['ses']}"] if "ses" in entities else [])
        if folders != expected:
            skipped.append((_url_of(root, path), f"entities do not match its folders {folders}"))
            continue
        found.append(BidsRecording(
            key=name.split(".", 1)[0], path=_url_of(root, path), root=root.url,
            datatype=suffix, extension=ext_l, importer=READABLE[ext_l],
            entity_items=tuple((k, entities[k]) for k in _ordered(entities))))
    found.sort(key=lambda r: r.key)
    return found, skipped


def _data_paths(fs: Any, root: str) -> list[str]:
    """``sub-*/[ses-*/]<datatype>/sub-*_<datatype>.*`` under ``root``, sorted.

    Walked with listings, not ``fs.glob``: the root's own name may hold ``[``, ``*`` or ``?``.
    """
    out: set[str] = set()
    for sub, sub_is_dir in list_folder(fs, root):
        if not (sub_is_dir and fnmatchcase(sub, "sub-*")):
            continue
        sub_path = _join(root, sub)
        entries = list_folder(fs, sub_path)
        levels = [(sub_path, entries)] + [(_join(sub_path, n), None) for n, is_dir in entries
                                          if is_dir and fnmatchcase(n, "ses-*")]
        for level, listed in levels:
            for dt, dt_is_dir in listed if listed is not None else list_folder(fs, level):
                if dt_is_dir and dt in DATATYPES:
                    folder = _join(level, dt)
                    out.update(_join(folder, n) for n, _ in list_folder(fs, folder)
                               if fnmatchcase(n, f"sub-*_{dt}.*"))
    return sorted(out)


def _ordered(entities: dict[str, str]) -> list[str]:
    known = [k for k in ENTITY_ORDER if k in entities]
    return known + sorted(k for k in entities if k not in ENTITY_ORDER)


def dataset_root(loc: Location, max_levels: int = 6) -> str | None:
    """The nearest ancestor folder holding ``dataset_description.json`` (None if none)."""
    path = loc.path.rstrip("/")
    for _ in range(max_levels):
        path = path.rsplit("/", 1)[0] if "/" in path else ""
        if not path:
            return None
        if loc.fs.exists(_join(path, "dataset_description.json")):
            return path
    return None


def applicable(loc: Location, root: str, entities: dict[str, str], suffix: str,
               ext: str) -> list[str]:
    """Files ``*_<suffix><ext>`` that apply to a recording, least to most specific.

    The inheritance principle: a file at the dataset, subject, session or datatype level
    applies when its entities are a subset of the recording's; closer (and, at one level,
    more specific) files come later so they override.
    """
    data_dir = loc.path.rsplit("/", 1)[0]
    levels = [root, _join(root, f"sub-{entities['sub']}")]
    if "ses" in entities:
        levels.append(_join(levels[1], f"ses-{entities['ses']}"))
    if data_dir not in levels:
        levels.append(data_dir)
    out: list[str] = []
    for level in levels:
        hits: list[tuple[int, str]] = []
        for name, _ in list_folder(loc.fs, level):  # not glob: names may hold "[" or "*"
            if not name.endswith(f"{suffix}{ext}"):
                continue
            path = _join(level, name)
            parsed = parse_name(name)
            if parsed is None or parsed[1] != suffix or parsed[2] != ext:
                continue
            if all(entities.get(k) == v for k, v in parsed[0].items()):
                hits.append((len(parsed[0]), path))
        out += [p for _, p in sorted(hits)]
    return out


def read_json(loc: Location, path: str) -> dict[str, Any]:
    try:
        with loc.fs.open(path, "rb") as fh:
            value = json.loads(fh.read().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"invalid JSON sidecar: {exc}", path=path) from None
    if not isinstance(value, dict):
        raise CorruptFileError("a JSON sidecar must hold an object", path=path)
    return value


def read_tsv(loc: Location, path: str) -> pd.DataFrame:
    """A BIDS TSV as strings; ``n/a`` (and empty cells) become missing values."""
    with loc.fs.open(path, "rb") as fh:
        raw = fh.read()
    try:
        return pd.read_csv(io.BytesIO(raw), sep="\t", dtype=str, na_values=["n/a", ""],
                           keep_default_na=False, encoding="utf-8")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"unreadable TSV: {exc}", path=path) from None


def typed(value: Any) -> Any:
    """A TSV cell as int/float when it is a number, None when missing, else the string."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    try:
        number = int(text)
        return number if str(number) == text else text  # keep "007" a string
    except ValueError:
        pass
    try:
        real = float(text)
    except ValueError:
        return text
    return real if real == real and abs(real) != float("inf") else text
