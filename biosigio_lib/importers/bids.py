"""BIDS (EEG / EMG / iEEG) importer: discover recordings, read one with its sidecars applied.

- :func:`scan_bids` lists ``sub-*/[ses-*/]<datatype>/*_<datatype>.<ext>`` (datatype eeg,
  emg, ieeg) as :class:`BidsRecording` (entities, data path, stable ``key``); data files with
  no importer here (.vhdr, .set, ...) are listed by :func:`scan_bids_skipped` with a reason.
- Reading a data file inside a dataset (``importer='bids'``, or automatically by
  ``Recording.from_file`` when a ``dataset_description.json`` is in an ancestor folder;
  ``importer='edf'`` reads the bare file) reads the samples with the format's importer, then
  applies, following the inheritance principle: the ``_<datatype>.json`` sidecars (merged,
  closer overrides) into ``metadata['bids_sidecar']``; the closest ``_channels.tsv`` (type,
  status and every other column as channel info; units: see ``_apply_channels``); the closest
  ``_events.tsv`` (all columns); and the participant's ``participants.tsv`` row.
- Whatever does not fit (channels in one place only, unit conflicts, events outside the
  recording, a missing sidecar) is kept, warned about and noted in ``metadata['bids_notes']``.
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd

from .._fs import Location, list_folder, resolve
from ..errors import CorruptFileError, MissingSidecarError, UnsupportedFormatError
from ..recording import Recording, make_unique_labels
from ._bids_layout import (
    DATATYPES,
    READABLE,
    BidsRecording,
    applicable,
    dataset_root,
    parse_name,
    read_json,
    read_tsv,
    scan,
    typed,
)
from ._registry import Importer, get_importer, register

__all__ = ["BidsImporter", "BidsRecording", "scan_bids", "scan_bids_skipped"]

_SIDECAR_SUFFIXES = ("channels", "events", "electrodes", "coordsystem", "photo", "scans")


def scan_bids(root: str | os.PathLike[str] | Location,
              storage_options: dict[str, Any] | None = None) -> list[BidsRecording]:
    """The readable recordings of a BIDS dataset, sorted by their ``key``."""
    return scan(resolve(root, storage_options))[0]


def scan_bids_skipped(root: str | os.PathLike[str] | Location,
                      storage_options: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Data files of the dataset that :func:`scan_bids` leaves out, with the reason."""
    return scan(resolve(root, storage_options))[1]


def _note(notes: list[str], path: str, text: str) -> None:
    notes.append(text)
    warnings.warn(f"{path}: {text}", stacklevel=4)


def _apply_channels(rec: Recording, table: pd.DataFrame, path: str, notes: list[str]) -> None:
    """Channel rows matched by name: type and status/other columns become channel info.

    Units: the samples are in the data file's unit, so that unit stays; the TSV's goes to
    ``bids_units`` (and fills an empty data unit); a conflict is noted, never "fixed".
    """
    if "name" not in table.columns:
        raise CorruptFileError("channels.tsv has no 'name' column", path=path)
    names, renamed = make_unique_labels(table["name"].astype(str).tolist())
    if renamed:  # matched the way importers rename repeated labels in the data file
        _note(notes, path, f"channels.tsv repeats name(s) {sorted(set(renamed.values()))[:10]}; "
              f"later rows apply to {sorted(renamed)[:10]}")
    missing_in_data = [n for n in names if n not in rec.channels]
    missing_in_tsv = [c for c in rec.labels if c not in set(names)]
    if missing_in_data:
        _note(notes, path, f"channels.tsv lists {len(missing_in_data)} channel(s) not in the "
              f"data: {missing_in_data[:10]}")
    if missing_in_tsv:
        _note(notes, path, f"{len(missing_in_tsv)} data channel(s) are not in channels.tsv: "
              f"{missing_in_tsv[:10]}")
    conflicts = []
    for label, row in zip(names, table.to_dict("records")):
        row.pop("name")
        if label not in rec.channels:
            continue
        info: dict[str, Any] = {str(k): typed(v) for k, v in row.items()}  # TSV headers
        ctype = info.pop("type", None)
        if ctype:
            info["channel_type"] = str(ctype)
        if "units" in info:
            units = info.pop("units")
            info["bids_units"] = units
            data_unit = rec.channels[label]["physical_dimension"]
            if not data_unit and units:
                info["physical_dimension"] = str(units)
            elif units is not None and str(units) != data_unit:
                conflicts.append(f"{label}: {units} vs {data_unit}")
        rec.set_channel_info(label, **info)
    if conflicts:
        _note(notes, path, f"channels.tsv units differ from the data file for {len(conflicts)} "
              f"channel(s) (data unit kept, TSV unit in 'bids_units'): {conflicts[:3]}")


def _events_frame(table: pd.DataFrame, path: str) -> pd.DataFrame:
    """events.tsv -> events: all columns kept; ``n/a`` -> NaN; description from trial_type."""
    if "onset" not in table.columns:
        raise CorruptFileError("events.tsv has no 'onset' column", path=path)
    frame = pd.DataFrame(index=range(len(table)))
    try:
        frame["onset"] = pd.to_numeric(table["onset"]).astype(np.float64)
        frame["duration"] = (pd.to_numeric(table["duration"]).astype(np.float64)
                             if "duration" in table else np.nan)
    except ValueError as exc:
        raise CorruptFileError(f"events.tsv onset/duration is not numeric: {exc}",
                               path=path) from None
    bad = ~np.isfinite(frame["onset"].to_numpy())
    if bad.any():
        raise CorruptFileError(f"events.tsv row {int(np.argmax(bad)) + 1}: onset is missing "
                               "(n/a) or not finite; BIDS requires an onset", path=path)
    label_col = next((c for c in ("trial_type", "value") if c in table.columns), None)
    frame["description"] = (table[label_col].fillna("").astype(str).to_numpy(dtype=object)
                            if label_col else "")
    for col in table.columns:
        if col in ("onset", "duration"):
            continue
        values = pd.to_numeric(table[col], errors="coerce")
        numeric = values.notna().sum() == table[col].notna().sum()
        frame[col] = values.to_numpy() if numeric else table[col].to_numpy(dtype=object)
    frame["source"] = "events.tsv"
    return frame


class _Reader:
    """Reads one data file of a dataset and applies its sidecars."""

    def __init__(self, loc: Location, root: str, strict: bool):
        self.loc, self.root, self.strict = loc, root, strict
        name = loc.path.rsplit("/", 1)[-1]
        parsed = parse_name(name)
        if parsed is None or parsed[1] not in DATATYPES or "sub" not in parsed[0]:
            raise UnsupportedFormatError(
                f"not a BIDS {'/'.join(DATATYPES)} data file name (sub-<label>_..._<datatype>"
                ".<ext>)", path=loc.url)
        self.entities, self.datatype, self.ext = parsed
        self.notes: list[str] = []
        self.used: list[str] = []

    def rel(self, path: str) -> str:
        return path[len(self.root.rstrip("/")) + 1:]

    def read(self, **kwargs: Any) -> Recording:
        if self.ext.lower() not in READABLE:
            raise UnsupportedFormatError(f"no importer for BIDS {self.ext} data files (readable:"
                                         f" {sorted(READABLE)})", path=self.loc.url)
        imp = get_importer(READABLE[self.ext.lower()])
        imp.require()
        if kwargs.get("lazy") and not imp.supports_lazy:
            kwargs.pop("lazy")
        rec = imp.read(self.loc, **kwargs)
        file_events = rec.events.copy()
        self._sidecar(rec)
        self._channels(rec)
        self._events(rec, file_events)
        self._participant(rec)
        key = self.loc.path.rsplit("/", 1)[-1].split(".", 1)[0]
        rec.metadata.update({
            "source_format": "bids", "data_format": imp.name,
            "subject": f"sub-{self.entities['sub']}", "bids_entities": dict(self.entities),
            "bids_datatype": self.datatype, "bids_key": key, "bids_root": self.root,
            "bids_files": self.used, "bids_notes": self.notes,
        })
        return rec

    def _find(self, suffix: str, ext: str) -> list[str]:
        return applicable(self.loc, self.root, self.entities, suffix, ext)

    def _sidecar(self, rec: Recording) -> None:
        merged: dict[str, Any] = {}
        files = self._find(self.datatype, ".json")
        for path in files:
            merged.update(read_json(self.loc, path))  # closer files override
            self.used.append(self.rel(path))
        if not files:
            msg = f"no _{self.datatype}.json sidecar applies (REQUIRED by BIDS)"
            if self.strict:
                raise MissingSidecarError(msg, path=self.loc.url)
            _note(self.notes, self.loc.url, msg)
        rec.metadata["bids_sidecar"] = merged
        fs = merged.get("SamplingFrequency")
        if isinstance(fs, int | float) and rec.rates and float(fs) not in rec.rates:
            _note(self.notes, self.loc.url, f"sidecar SamplingFrequency {fs} is none of the "
                  f"data rates {rec.rates}")

    def _channels(self, rec: Recording) -> None:
        files = self._find("channels", ".tsv")
        if not files:
            _note(self.notes, self.loc.url, "no _channels.tsv applies; channel types come from "
                  "the data file")
            return
        path = files[-1]  # TSVs are not merged: the closest applies
        self.used.append(self.rel(path))
        _apply_channels(rec, read_tsv(self.loc, path), path, self.notes)

    def _events(self, rec: Recording, file_events: pd.DataFrame) -> None:
        files = self._find("events", ".tsv")
        if not files:
            return
        path = files[-1]
        self.used.append(self.rel(path))
        frame = _events_frame(read_tsv(self.loc, path), path)
        # BIDS: onsets are seconds from the first data sample; events may lie before or
        # after the recorded data (the spec allows it), so all are kept and only noted.
        end = rec.duration
        outside = int(((frame["onset"] < 0) | (frame["onset"] > end)).sum())
        if outside:
            _note(self.notes, path, f"{outside} of {len(frame)} events lie outside the "
                  f"recording (0..{end:g} s); kept as BIDS allows")
        if len(file_events):
            file_events = file_events.assign(source="data_file")
            frame = pd.concat([frame, file_events], ignore_index=True)
        rec.events = frame

    def _participant(self, rec: Recording) -> None:
        path = f"{self.root.rstrip('/')}/participants.tsv"
        if not self.loc.fs.exists(path):
            return
        table = read_tsv(self.loc, path)
        if "participant_id" not in table.columns:
            _note(self.notes, path, "participants.tsv has no participant_id column")
            return
        rows = table[table["participant_id"] == f"sub-{self.entities['sub']}"]
        if rows.empty:
            _note(self.notes, path, f"sub-{self.entities['sub']} has no participants.tsv row")
            return
        self.used.append(self.rel(path))
        rec.metadata["participant"] = {k: typed(v) for k, v in rows.iloc[0].items()}


def _is_sidecar(name: str) -> bool:
    parsed = parse_name(name)
    if parsed is None:
        return False
    _, suffix, ext = parsed
    return (suffix in _SIDECAR_SUFFIXES or (suffix in DATATYPES and ext == ".json")
            or name in ("participants.tsv", "dataset_description.json"))


@register
class BidsImporter(Importer):
    """A data file inside a BIDS dataset (EEG/EMG/iEEG), with its sidecars applied."""

    name = "bids"
    extensions = ()
    extra = None
    requires = ()
    description = "BIDS EEG/EMG/iEEG data file with channels/events/sidecar/participants"
    opens_directories = True
    supports_lazy = True  # when the data file's importer does (EDF/BDF)

    def can_open(self, loc: Location, head: bytes) -> bool:
        """Files named ``sub-*`` (data or sidecar) in a dataset, or a dataset root folder."""
        name = loc.path.rstrip("/").rsplit("/", 1)[-1]
        if loc.fs.isdir(loc.path):
            return bool(loc.fs.exists(f"{loc.path.rstrip('/')}/dataset_description.json"))
        if not name.startswith("sub-"):
            return False
        parsed = parse_name(name)
        if parsed is None or not (parsed[1] in DATATYPES or _is_sidecar(name)):
            return False
        return dataset_root(loc) is not None

    def read(self, loc: Location, *, strict: bool = False, **kwargs: Any) -> Recording:
        """Read one recording; ``strict=True`` makes a missing required sidecar an error."""
        if loc.fs.isdir(loc.path):
            found = scan(loc)[0]
            if len(found) != 1:
                raise UnsupportedFormatError(
                    f"a BIDS dataset with {len(found)} recordings; list them with "
                    "biosigio_lib.importers.bids.scan_bids(root) and read each one's path",
                    path=loc.url)
            return self.read(resolve(found[0].path) if loc.is_local else
                             Location(loc.fs, _strip(loc, found[0].path), found[0].path),
                             strict=strict, **kwargs)
        name = loc.path.rsplit("/", 1)[-1]
        root = dataset_root(loc)
        if root is None:
            raise UnsupportedFormatError("no dataset_description.json in any parent folder: "
                                         "not inside a BIDS dataset", path=loc.url)
        if _is_sidecar(name):
            data = [n for n, _ in list_folder(loc.fs, loc.path.rsplit("/", 1)[0])
                    if n.startswith("sub-") and _is_data(n)]
            raise UnsupportedFormatError(
                f"{name} is a BIDS sidecar, not a recording; open the data file instead "
                f"({', '.join(sorted(data)[:5]) or 'none found in this folder'})", path=loc.url)
        return _Reader(loc, root, strict).read(**kwargs)


def _is_data(path: str) -> bool:
    parsed = parse_name(path.rsplit("/", 1)[-1])
    return parsed is not None and parsed[1] in DATATYPES and parsed[2] != ".json"


def _strip(loc: Location, url: str) -> str:
    """Filesystem path of a URL under the same root as ``loc``."""
    return f"{loc.path.rstrip('/')}/{url[len(loc.url.rstrip('/')) + 1:]}"
