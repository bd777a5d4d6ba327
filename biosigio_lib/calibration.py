"""Per-channel calibration: how a stored integer (ADC count) becomes its physical value.

A digitized source (EDF/BDF digital values, WFDB ADC units) is kept as the integers it stored
plus one :class:`Calibration` per channel, the way EDF itself, NWB (``conversion``/``offset``)
and Onda (``sample_resolution_in_unit``/``sample_offset_in_unit``) keep data: 2-4 bytes a
sample instead of 8, and the digital values stay available. Physical values are computed on
request, with the reference readers' own float operations so they are bit-identical:

- EDF/BDF (EDFlib, pyedflib): ``bitvalue * (offset + digital)``, i.e. ``gain = bitvalue``,
  ``baseline = -offset``;
- WFDB (``wfdb.rdrecord(physical=True)``): ``(digital - baseline) / adc_gain``, NaN where the
  digital value is the format's "invalid sample" code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import InvalidChannelError

__all__ = ["IDENTITY", "Calibration", "to_physical"]


@dataclass(frozen=True)
class Calibration:
    """``physical = (digital - baseline) * gain`` (``/ gain`` when ``divide``).

    ``missing`` is the digital code that means "no sample" (read as NaN), or None.
    The arithmetic is float64, in exactly that order: values equal the reference readers'.
    """

    gain: float
    baseline: float = 0.0
    divide: bool = False
    missing: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "gain", float(self.gain))
        object.__setattr__(self, "baseline", float(self.baseline))
        object.__setattr__(self, "divide", bool(self.divide))
        if self.missing is not None:
            object.__setattr__(self, "missing", int(self.missing))

    @classmethod
    def edf(cls, physical_min: float, physical_max: float, digital_min: int,
            digital_max: int) -> Calibration:
        """EDFlib's scaling: ``bitvalue = (pmax - pmin) / (dmax - dmin)``,
        ``offset = pmax / bitvalue - dmax`` and ``physical = bitvalue * (offset + digital)``."""
        pmin, pmax = np.float64(physical_min), np.float64(physical_max)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            bitvalue = (pmax - pmin) / (np.float64(digital_max) - np.float64(digital_min))
            offset = pmax / bitvalue - np.float64(digital_max)
        return cls(gain=float(bitvalue), baseline=float(-offset))

    @classmethod
    def wfdb(cls, adc_gain: float, baseline: int, missing: int | None) -> Calibration:
        """wfdb's ``dac``: ``(digital - baseline) / adc_gain``, NaN at the invalid code."""
        return cls(gain=float(adc_gain), baseline=float(baseline), divide=True,
                   missing=missing)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (floats as repr strings only where JSON cannot hold them)."""
        out: dict[str, Any] = {"gain": _num(self.gain), "baseline": _num(self.baseline)}
        if self.divide:
            out["divide"] = True
        if self.missing is not None:
            out["missing"] = self.missing
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Calibration:
        """Inverse of :meth:`to_json`; raises ``InvalidChannelError`` on a malformed entry."""
        try:
            return cls(gain=float(obj["gain"]), baseline=float(obj.get("baseline", 0.0)),
                       divide=bool(obj.get("divide", False)), missing=obj.get("missing"))
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidChannelError(f"malformed calibration {dict(obj)!r}: {exc}") from None

    def apply(self, digital: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Physical float64 values of a 1-D or ``(n_channels, n)`` integer array."""
        if digital.ndim == 1:
            return to_physical(digital[None, :], [self],
                               out=None if out is None else out[None, :])[0, :]
        return to_physical(digital, [self] * digital.shape[0], out=out)


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else repr(x)


def to_physical(digital: np.ndarray, cals: Sequence[Calibration],
                out: np.ndarray | None = None) -> np.ndarray:
    """Physical float64 rows of a ``(n_channels, n)`` integer array, one calibration a row.

    Vectorised over channels: one float conversion, one subtract and one multiply (or divide)
    pass over the output, with per-row broadcast constants.
    """
    if digital.ndim != 2 or digital.shape[0] != len(cals):
        raise ValueError(f"need one calibration per row: {digital.shape} vs {len(cals)}")
    if out is None:
        out = np.empty(digital.shape, dtype=np.float64)
    if not cals:
        return out
    gain = np.array([c.gain for c in cals], dtype=np.float64)[:, None]
    base = np.array([c.baseline for c in cals], dtype=np.float64)[:, None]
    divide = np.array([c.divide for c in cals])
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        np.subtract(digital, base, out=out, dtype=np.float64)
        if divide.all():
            np.divide(out, gain, out=out)
        elif not divide.any():
            np.multiply(out, gain, out=out)
        else:
            rows = np.flatnonzero(divide)
            out[rows] = out[rows] / gain[rows]
            rows = np.flatnonzero(~divide)
            out[rows] = out[rows] * gain[rows]
    for i, c in enumerate(cals):
        if c.missing is not None:
            out[i][digital[i] == c.missing] = np.nan
    return out


#: For integer samples that already are the values (an XDF int16 stream): physical = digital.
IDENTITY = Calibration(gain=1.0)
