"""Serving-store parameters: one frozen, validated value whose hash versions the store.

Every knob that changes the bytes of a store lives here, is written to the root attrs by
:meth:`ServingParams.to_dict`, and feeds :meth:`ServingParams.version` (the pipeline's Dagster
``code_version`` for the store asset). Validators follow zarr's ``parse_*`` style.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any

__all__ = ["ALGORITHM_VERSION", "DEFAULT_RATE_CAPS", "ServingParams"]

#: Bumped whenever the writer's numerics change in a way the parameters do not capture.
ALGORITHM_VERSION = 3  # 2: level-0 ratio rounded down, never above the cap; 3: int16
#: scales of calibrated <= 16-bit sources from their calibration (no measuring pass),
#: calibrated integers filtered in digital units, Blosc bit shuffle by default

#: Level-0 rate cap per modality (Hz); modalities not listed keep their native rate.
DEFAULT_RATE_CAPS: Mapping[str, float] = MappingProxyType(
    {"EEG": 250.0, "MEG": 250.0, "IEEG": 1000.0, "EMG": 1000.0}
)

_DTYPES = ("int16", "float32")
_COMPRESSORS = ("zstd", "lz4", "lz4hc", "zlib", "blosclz")
_SHUFFLES = ("shuffle", "bitshuffle", "noshuffle")
_WINDOWS = ("kaiser", "hamming", "hann", "blackman")


def parse_rate_caps(data: Mapping[str, Any] | None) -> Mapping[str, float | None]:
    """Merge a caller's caps over the defaults; ``None`` removes a cap (native rate)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise TypeError(f"rate_caps must be a mapping of modality -> Hz, got {type(data)}")
    merged: dict[str, float | None] = dict(DEFAULT_RATE_CAPS)
    for key, value in data.items():
        name: object = key  # from a config file: checked, whatever the annotation says
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"rate_caps keys must be modality names, got {key!r}")
        if value is None:
            merged[key.strip().upper()] = None
            continue
        cap = _positive_float(value, f"rate_caps[{key!r}]")
        merged[key.strip().upper()] = cap
    return MappingProxyType(dict(sorted(merged.items())))


def _positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out) or out <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def _int_in(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
    return int(value)


def _choice(value: Any, name: str, options: tuple[str, ...]) -> str:
    text = str(value).lower() if isinstance(value, str) else value
    if text not in options:
        raise ValueError(f"{name} must be one of {options}, got {value!r}")
    return str(text)


def parse_dtype(value: Any) -> str:
    """``"int16"`` (scaled, half the bytes) or ``"float32"`` (only the cast error)."""
    import numpy as np

    try:
        name = np.dtype(value).name
    except TypeError:
        raise ValueError(f"dtype must be 'int16' or 'float32', got {value!r}") from None
    return _choice(name, "dtype", _DTYPES)


@dataclass(frozen=True, eq=True)
class ServingParams:
    """Everything that shapes a serving store; immutable, validated, hashable by version."""

    rate_caps: Mapping[str, float | None] = field(default_factory=dict)
    dtype: str = "int16"
    view_factor: int = 4
    view_max_samples: int = 512
    max_view_levels: int = 12
    view_chunk_columns: int = 1024
    chunk_seconds: float = 4.0
    shard_seconds: float = 300.0
    compressor: str = "zstd"
    clevel: int = 5
    #: bit shuffle: on int16 EEG codes zstd-5 encodes ~8x faster than after a byte shuffle,
    #: for ~5 % more bytes (``bench/README.md``)
    shuffle: str = "bitshuffle"
    #: FIR design: ``firwin`` window, Kaiser beta, and half length in taps per max(up, down).
    filter_window: str = "kaiser"
    filter_beta: float = 5.0
    filter_half_width: int = 10
    #: Largest denominator of the up/down ratio (bounds the filter length; the rate stored
    #: is the exact result of the ratio used, so no drift either way).
    max_ratio_denominator: int = 4096

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "rate_caps", parse_rate_caps(self.rate_caps))
        set_(self, "dtype", parse_dtype(self.dtype))
        set_(self, "view_factor", _int_in(self.view_factor, "view_factor", 2, 1024))
        set_(self, "view_max_samples",
             _int_in(self.view_max_samples, "view_max_samples", 1, 2**31))
        set_(self, "max_view_levels", _int_in(self.max_view_levels, "max_view_levels", 0, 64))
        set_(self, "view_chunk_columns",
             _int_in(self.view_chunk_columns, "view_chunk_columns", 1, 2**31))
        set_(self, "chunk_seconds", _positive_float(self.chunk_seconds, "chunk_seconds"))
        set_(self, "shard_seconds", _positive_float(self.shard_seconds, "shard_seconds"))
        if self.shard_seconds < self.chunk_seconds:
            raise ValueError(f"shard_seconds ({self.shard_seconds}) must be >= chunk_seconds "
                             f"({self.chunk_seconds})")
        set_(self, "compressor", _choice(self.compressor, "compressor", _COMPRESSORS))
        set_(self, "clevel", _int_in(self.clevel, "clevel", 0, 9))
        set_(self, "shuffle", _choice(self.shuffle, "shuffle", _SHUFFLES))
        set_(self, "filter_window", _choice(self.filter_window, "filter_window", _WINDOWS))
        set_(self, "filter_beta", _positive_float(self.filter_beta, "filter_beta"))
        set_(self, "filter_half_width",
             _int_in(self.filter_half_width, "filter_half_width", 1, 64))
        set_(self, "max_ratio_denominator",
             _int_in(self.max_ratio_denominator, "max_ratio_denominator", 1, 10**6))

    def __hash__(self) -> int:
        return hash(self.version())

    def cap_for(self, modality: str) -> float | None:
        """The level-0 rate cap of a modality (None: keep the native rate)."""
        return self.rate_caps.get(str(modality).upper())

    def to_dict(self) -> dict[str, Any]:
        """Canonical JSON-able dict (sorted caps, plain types) written to the root attrs."""
        out: dict[str, Any] = {"algorithm_version": ALGORITHM_VERSION}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = dict(value) if f.name == "rate_caps" else value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ServingParams:
        """Rebuild from :meth:`to_dict` output (unknown keys are refused, not ignored)."""
        d = dict(d)
        d.pop("algorithm_version", None)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown ServingParams key(s) {unknown}; known: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes: Any) -> ServingParams:
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    def version(self) -> str:
        """Stable short hex hash of :meth:`to_dict` (same in every process and Python run)."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"),
                          allow_nan=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
