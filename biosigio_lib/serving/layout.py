"""The biosigio 1.2 Zarr layout: names, attribute vocabulary, chunk geometry, store opening.

Layout (readable by ``biosigio.importers.zarr``)::

    rec.zarr/zarr.json            root attrs: format="biosigio-zarr", format_version=2, ...
    rec.zarr/<modality>_<rate>hz/ one group per (modality, grid); level 0 array ``0``
        view/1, view/2, ...       (2, n_ch, n_L) min/max envelopes, render only
    rec.zarr/events/              onset, duration, code arrays + label_map attr

biosigio 1.2 validates channel types and modalities against its own vocabulary when it
reads, so each channel entry carries a biosigio-valid ``channel_type``/``modality`` and our
exact channel info (type, modality, importer extras) under ``info``.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

from .._fs import Location, resolve

if TYPE_CHECKING:
    from typing import TypeAlias

    from zarr.abc.store import Store

    #: Where a store is: a local path, an fsspec URL, a resolved Location, or a zarr Store.
    StoreLike: TypeAlias = "str | os.PathLike[str] | Location | Store"

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "biosigio_channel_type",
    "biosigio_modality",
    "chunk_shard",
    "group_name",
    "open_store",
    "rate_text",
]

FORMAT = "biosigio-zarr"
FORMAT_VERSION = 2
PHYSICAL_FORMULA = "physical = digital * scale + offset"

#: biosigio 1.2's accepted channel types and modalities (core/modality.py).
_BSIO_TYPES = frozenset({
    "EEG", "SEEG", "ECOG", "DBS", "MEGMAG", "MEGGRADAXIAL", "MEGGRADPLANAR", "MEGREFMAG",
    "MEGREFGRADAXIAL", "MEGREFGRADPLANAR", "EMG", "ECG", "EKG", "EOG", "VEOG", "HEOG", "REF",
    "TRIG", "MISC", "OTHER", "ACC", "GYRO", "QUAT", "CTRL", "MAGN", "RESP", "GSR", "TEMP",
    "PPG", "SYSCLOCK",
})
_BSIO_MODALITIES = frozenset({"EEG", "EMG", "IEEG", "MEG", "BEH", "MISC"})
_TYPE_FALLBACK = {"STIM": "TRIG", "STATUS": "TRIG", "EVENT": "TRIG", "IEEG": "SEEG",
                  "MEG": "MEGMAG", "MEGGRAD": "MEGGRADPLANAR"}


def biosigio_channel_type(channel_type: str) -> str:
    """A channel type biosigio 1.2 accepts (ours when it knows it, else the nearest)."""
    t = str(channel_type).upper()
    if t in _BSIO_TYPES:
        return t
    return _TYPE_FALLBACK.get(t, "MISC")


def biosigio_modality(modality: str) -> str:
    """A modality biosigio 1.2 accepts (EEG/EMG/IEEG/MEG kept, everything else MISC)."""
    m = str(modality).upper()
    return m if m in _BSIO_MODALITIES else "MISC"


def rate_text(rate: float) -> str:
    """``250`` for integral rates, the exact repr otherwise (``1000.5``)."""
    r = float(rate)
    return str(int(r)) if r.is_integer() else repr(r)


def group_name(modality: str, rate: float, native: float, taken: set[str]) -> str:
    """``eeg_250hz``; a second group at that name gets ``_from<native>`` (then ``_2``...)."""
    name = f"{modality.lower()}_{rate_text(rate)}hz"
    if name in taken:
        name = f"{name}_from{rate_text(native)}"
    base, i = name, 2
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    return name


def chunk_shard(n_time: int, rate: float, chunk_seconds: float,
                shard_seconds: float) -> tuple[int, int]:
    """Level-0 time chunk and shard (a whole number of chunks), as biosigio 1.2 picks them."""
    chunk_t = max(1, min(n_time, round(chunk_seconds * rate)))
    k = max(1, round(shard_seconds / chunk_seconds))
    n_chunks = max(1, math.ceil(n_time / chunk_t))
    return chunk_t, chunk_t * min(k, n_chunks)


def open_store(where: StoreLike,
               storage_options: dict[str, Any] | None = None, *,
               read_only: bool) -> tuple[Store, str]:
    """A zarr store for a local path, an fsspec URL (with options), or a zarr Store as is."""
    import zarr
    from zarr.abc.store import Store

    if isinstance(where, Store):
        return where, str(where)
    loc = resolve(where, storage_options)
    if loc.is_local:
        return zarr.storage.LocalStore(loc.path, read_only=read_only), loc.url
    return zarr.storage.FsspecStore(_async_fs(loc.fs), path=loc.path,
                                    read_only=read_only), loc.url


def _async_fs(fs: Any) -> Any:
    """The same filesystem in asynchronous mode (zarr's FsspecStore needs one)."""
    from zarr.storage._fsspec import _make_async

    return _make_async(fs)
