"""biosigio 1.2's public ``Recording`` API on our :class:`~biosigio_lib.recording.Recording`.

Scripts written for biosigio 1.2 keep working after changing the import line. Where our
behaviour deliberately differs (several sampling rates, calibrated channels, lossless EDF
export) the difference is a typed error or is listed in ``docs/migrating.md``; never silently
different numbers.

Multi-rate recordings (channels on several grids, which biosigio 1.2 cannot hold):

- ``get_n_samples`` / ``get_sampling_frequency`` raise :class:`MixedSamplingRateError`
  naming the rates (biosigio raises ``ValueError`` for the latter, too);
- ``get_duration`` is the end of the longest grid (``max(t0 + n / rate)``);
- ``resample`` resamples every grid to the target rate (each must be at least that rate);
- ``select_channels`` keeps each selected channel on its own grid;
- ``to_edf`` / ``to_bdf`` write every rate (samples per record = rate x record duration).
"""

from __future__ import annotations

import logging
import math
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .channels import MODALITIES, modality_for, normalise_type
from .errors import (
    EmptyRecordingError,
    InvalidChannelError,
    MixedSamplingRateError,
)

if TYPE_CHECKING:
    from .exporters.edf import EdfExportReport
    from .recording import Grid, Recording

__all__ = ["BIOSIGIO_MODALITIES", "BiosigioCompatMixin"]

log = logging.getLogger(__name__)

#: biosigio 1.2's modality vocabulary; ``BEH`` has no channels of ours (we never infer it).
BIOSIGIO_MODALITIES: frozenset[str] = frozenset({"EEG", "EMG", "IEEG", "MEG", "BEH", "MISC"})

#: Channel extras that describe a source's digital values; dropped when samples are computed.
_DIGITAL_EXTRAS = ("physical_min", "physical_max", "digital_min", "digital_max",
                   "samples_per_record")


def _check_modality(modality: str) -> str:
    m = str(modality).strip().upper()
    if m not in set(MODALITIES) | BIOSIGIO_MODALITIES:
        raise InvalidChannelError(
            f"Unknown modality {modality!r}. Valid modalities: "
            f"{sorted(set(MODALITIES) | BIOSIGIO_MODALITIES)}")
    return m


class BiosigioCompatMixin:
    """The biosigio 1.2 ``Recording`` accessors, selection, resampling and EDF/BDF export."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give the subclass's read-only ``signals`` property biosigio's setter."""
        super().__init_subclass__(**kwargs)
        prop = cls.__dict__.get("signals")
        if isinstance(prop, property) and prop.fset is None:
            cls.signals = prop.setter(BiosigioCompatMixin._set_signals)  # type: ignore[attr-defined]

    if TYPE_CHECKING:  # what the mixin uses of Recording, the one class it is mixed into
        metadata: dict[str, Any]
        channels: dict[str, dict[str, Any]]
        _grids: dict[str, Grid]
        _grid_of: dict[str, str]

        @property
        def rates(self) -> list[float]: ...
        @property
        def duration(self) -> float: ...
        @property
        def events(self) -> pd.DataFrame: ...
        def add_channel(self, *args: Any, **kwargs: Any) -> None: ...
        def select(self, *args: Any, **kwargs: Any) -> Recording: ...

    def _recording(self) -> Recording:
        """``self``, typed as the Recording it is."""
        from .recording import Recording

        if not isinstance(self, Recording):
            raise TypeError(f"{type(self).__name__} is not a Recording")
        return self

    # ------------------------------------------------------------------ accessors
    def get_n_channels(self) -> int:
        """Number of channels (all grids)."""
        return len(self.channels)

    def get_n_samples(self) -> int:
        """Samples per channel; 0 without channels. Several grids: MixedSamplingRateError."""
        grids = list(self._grids.values())
        if not grids:
            return 0
        if len({(g.rate, g.n_samples) for g in grids}) > 1:
            desc = ", ".join(f"{g.key}: {g.n_samples} samples at {g.rate:g} Hz" for g in grids)
            raise MixedSamplingRateError(
                f"channels have differing sampling rates or lengths ({desc}); use "
                "rec.grid(rate).n_samples for one grid or iterate rec.grids")
        return grids[0].n_samples

    def get_sampling_frequency(self) -> float:
        """The one sampling rate (Hz). No channels: EmptyRecordingError; several rates:
        MixedSamplingRateError naming them (both are ``ValueError``, as in biosigio)."""
        if not self.channels:
            raise EmptyRecordingError("No channels loaded: the recording has no channels, so "
                                      "it has no sampling frequency; add channels first")
        rates = self.rates
        if len(rates) > 1:
            shown = ", ".join(f"{r:g}" for r in rates)
            raise MixedSamplingRateError(
                f"Channels have differing sampling frequencies ({shown} Hz); read "
                "channels[label]['sample_frequency'] per channel, or rec.rates")
        return float(rates[0])

    def get_duration(self) -> float:
        """Duration in seconds: ``n_samples x (1 / rate)`` as biosigio computes it (0.0 below
        two samples); several grids: the end of the longest one, ``max(t0 + n / rate)``."""
        grids = list(self._grids.values())
        if not grids:
            return 0.0
        if len(grids) == 1:
            g = grids[0]
            return 0.0 if g.n_samples < 2 else g.n_samples * (1.0 / g.rate)
        return float(self.duration)

    # ------------------------------------------------------------------ metadata
    def set_metadata(self, key: str, value: Any) -> None:
        """``metadata[key] = value``."""
        self.metadata[key] = value

    def get_metadata(self, key: str) -> Any:
        """``metadata.get(key)`` (None when absent)."""
        return self.metadata.get(key)

    def has_metadata(self, key: str) -> bool:
        """True when ``key`` is in the metadata."""
        return key in self.metadata

    # ------------------------------------------------------------------ channels
    def get_channel_types(self) -> list[str]:
        """The distinct channel types, in first-channel order (biosigio: set order)."""
        return list(dict.fromkeys(info["channel_type"] for info in self.channels.values()))

    def get_channels_by_type(self, channel_type: str) -> list[str]:
        """Labels of the channels of one type (case-insensitive)."""
        want = normalise_type(channel_type)
        return [lab for lab, info in self.channels.items() if info["channel_type"] == want]

    def get_modalities(self) -> list[str]:
        """The distinct modalities, in first-channel order (our vocabulary: see migrating.md)."""
        return list(dict.fromkeys(info["modality"] for info in self.channels.values()
                                  if info.get("modality")))

    def get_channels_by_modality(self, modality: str) -> list[str]:
        """Labels of the channels of one modality; an unknown modality is an error."""
        m = _check_modality(modality)
        return [lab for lab, info in self.channels.items() if info.get("modality") == m]

    def set_channel(self, label: str, *, channel_type: str | None = None,
                    modality: str | None = None, physical_dimension: str | None = None,
                    prefilter: str | None = None) -> None:
        """Update an existing channel's type, modality, unit or prefilter (never samples).

        A new ``channel_type`` without ``modality`` re-derives the modality from it.
        """
        if label not in self.channels:
            raise KeyError(f"Channel not found: {label}")
        info = self.channels[label]
        if channel_type is not None:
            info["channel_type"] = normalise_type(channel_type)
            if modality is None:
                info["modality"] = modality_for(info["channel_type"])
        if modality is not None:
            info["modality"] = _check_modality(modality)
        if physical_dimension is not None:
            info["physical_dimension"] = str(physical_dimension)
        if prefilter is not None:
            info["prefilter"] = str(prefilter)

    def select_channels(self, channels: str | Iterable[str] | None = None,
                        channel_type: str | None = None, inplace: bool = False, *,
                        modality: str | None = None) -> Recording:
        """biosigio's channel selection: by names, type and/or modality; same errors.

        Unlike biosigio 1.2 the events are kept (biosigio drops them) and calibrated channels
        keep their digital values. ``inplace=True`` changes this recording and returns it.
        """
        if not self.channels:
            raise EmptyRecordingError("No signals loaded: the recording has no channels to "
                                      "select from")
        if channels is None and channel_type is None and modality is None:
            raise InvalidChannelError(
                "Specify at least one of: channels, channel_type, or modality.")
        if channels is None and channel_type is not None:
            names = self.get_channels_by_type(channel_type)
            if not names:
                raise InvalidChannelError(f"No channels found of type: {channel_type}")
        elif channels is None:
            names = self.get_channels_by_modality(str(modality))
            if not names:
                raise InvalidChannelError(f"No channels found of modality: {modality}")
        else:
            names = [channels] if isinstance(channels, str) else list(channels)
        repeated = [str(c) for c, n in Counter(names).items() if n > 1]
        if repeated:
            raise InvalidChannelError(f"Channels listed more than once: {repeated}")
        missing = [c for c in names if c not in self.channels]
        if missing:
            raise InvalidChannelError(f"Channels not found: {missing}")
        if channel_type is not None:
            want = normalise_type(channel_type)
            names = [c for c in names if self.channels[c]["channel_type"] == want]
            if not names:
                raise InvalidChannelError(
                    f"None of the selected channels are of type: {channel_type}")
        if modality is not None:
            m = _check_modality(modality)
            names = [c for c in names if self.channels[c].get("modality") == m]
            if not names:
                raise InvalidChannelError(
                    f"None of the selected channels are of modality: {modality}")
        out = self.select(names)
        out.metadata = dict(self.metadata)
        if not inplace:
            return out
        self.__dict__.update(out.__dict__)
        return self._recording()

    # ------------------------------------------------------------------ signals setter
    def _set_signals(self, frame: pd.DataFrame | None) -> None:
        """``rec.signals = frame``: replace all channels by the frame's columns.

        A column named like an existing channel keeps that channel's unit, type, prefilter
        and extras (not its calibration or digital ranges: the values are new); other columns
        get unit ``''`` and type ``MISC``. The rate is the channels' common rate, else it is
        inferred from a uniform float time index. ``None`` removes every channel.
        """
        from .recording import _extras

        if frame is None:
            self._grids, self._grid_of, self.channels = {}, {}, {}
            return
        if not isinstance(frame, pd.DataFrame):
            raise InvalidChannelError(
                f"signals must be a pandas DataFrame (time index, one column per channel), "
                f"got {type(frame).__name__}")
        labels = [str(c) for c in frame.columns]
        known = {self.channels[c]["sample_frequency"] for c in labels if c in self.channels}
        index = frame.index
        t0 = 0.0
        if len(known) == 1 and all(c in self.channels for c in labels):
            rate = float(known.pop())
            if index.dtype.kind == "f" and len(index):
                t0 = float(index[0])
        elif index.dtype.kind == "f" and len(index) >= 2:
            steps = np.diff(index.to_numpy(dtype=np.float64))
            step = float(np.median(steps))
            if step <= 0 or not np.allclose(steps, step, rtol=1e-9, atol=0):
                raise InvalidChannelError(
                    "signals: the time index is not uniform; cannot infer one sampling rate")
            rate, t0 = 1.0 / step, float(index[0])
        else:
            raise InvalidChannelError(
                f"signals: cannot tell the sampling rate of columns {labels[:5]}: give a float "
                "time index in seconds, or only columns of existing channels of one rate")
        old = {c: self.channels[c] for c in labels if c in self.channels}
        self._grids, self._grid_of, self.channels = {}, {}, {}
        for label, col in zip(labels, frame.columns):
            values = np.ascontiguousarray(frame[col].to_numpy())
            info = old.get(label)
            extras = {} if info is None else {k: v for k, v in _extras(info).items()
                                              if k not in _DIGITAL_EXTRAS}
            self.add_channel(label, values, rate,
                             "" if info is None else info["physical_dimension"],
                             "MISC" if info is None else info["channel_type"],
                             prefilter="" if info is None else info["prefilter"], t0=t0,
                             **extras)
            if info is not None:
                self.channels[label]["modality"] = info["modality"]

    # ------------------------------------------------------------------ resampling
    def resample(self, target_rate: float) -> Recording:
        """A new, anti-aliased down-sampled copy (``scipy.signal.resample_poly``), as biosigio.

        Factors ``up/down`` are the reduced ratio of the rates (biosigio: of the rounded
        integer rates; the same for integer rates). Each grid is resampled on its own and
        must be at least ``target_rate``; an equal rate is copied. Channels become physical
        float64 (digital values and their ranges are dropped); events and metadata are kept.
        """
        from scipy.signal import resample_poly

        from .recording import Recording as _Recording
        from .recording import _extras, grid_key

        if not self.channels:
            raise EmptyRecordingError("No signals loaded: nothing to resample")
        target = float(target_rate)
        if not (target > 0 and math.isfinite(target)):
            raise InvalidChannelError(f"target_rate must be positive, got {target_rate}")
        slower = [g for g in self._grids.values() if g.rate < target]
        if slower:
            raise InvalidChannelError(
                f"target_rate {target:g} Hz exceeds the source rate "
                f"{', '.join(f'{g.rate:g}' for g in slower)} Hz of grid(s) "
                f"{[g.key for g in slower]}; resample() only down-samples")
        out = _Recording(self.metadata)
        for g in self._grids.values():
            if g.rate == target:
                up = down = 1
                data = g.data.astype(np.float64)
                actual = g.rate
            else:
                ratio = (Fraction(repr(target)) / Fraction(repr(g.rate))).limit_denominator(
                    1_000_000)
                up, down = ratio.numerator, ratio.denominator
                actual = g.rate * up / down
                if abs(actual - target) > 1e-9 * target:
                    log.warning("Requested resample to %g Hz; nearest achievable rational rate "
                                "is %g Hz, which is what is stored on the channels.",
                                target, actual)
                data = resample_poly(g.data.astype(np.float64), up, down, axis=1)
            labels = list(g.labels)
            infos = [{k: v for k, v in _extras(self.channels[lab]).items()
                      if k not in _DIGITAL_EXTRAS} for lab in labels]
            kw: dict[str, Any] = dict(
                units=[self.channels[lab]["physical_dimension"] for lab in labels],
                types=[self.channels[lab]["channel_type"] for lab in labels],
                prefilters=[self.channels[lab]["prefilter"] for lab in labels],
                infos=infos, t0=g.t0)
            try:
                out.add_channels(labels, np.ascontiguousarray(data), actual, **kw)
            except InvalidChannelError:  # another grid at this rate, other length or t0
                out.add_channels(labels, np.ascontiguousarray(data), actual,
                                 grid=f"{grid_key(actual)}-{g.key}", **kw)
            for lab in labels:
                out.channels[lab]["modality"] = self.channels[lab]["modality"]
        out.channels = {lab: out.channels[lab] for lab in self.channels}
        out._events = self.events.copy()
        return out

    # ------------------------------------------------------------------ EDF / BDF export
    def to_edf(self, filepath: str | os.PathLike[str], method: str = "both",
               fft_noise_range: tuple[float, float] | None = None, svd_rank: int | None = None,
               precision_threshold: float = 0.01, format: str = "auto",
               bypass_analysis: bool | None = None, verify: bool = False,
               verify_tolerance: float = 1e-6, verify_channel_map: Mapping[str, str] | None = None,
               verify_plot: bool = False, events_df: pd.DataFrame | None = None,
               create_channels_tsv: bool = False, clip_outliers: bool | str = "auto",
               **kwargs: Any) -> EdfExportReport:
        """Write EDF+ (``format='edf'``, or ``'auto'`` when 16 bits hold every channel exactly)
        or BDF+ (``'bdf'``, or ``'auto'`` when a channel needs 24 bits); returns an
        :class:`~biosigio_lib.exporters.edf.EdfExportReport` with each channel's max error.

        biosigio's analysis arguments (``method``, ``fft_noise_range``, ``svd_rank``,
        ``precision_threshold``, ``bypass_analysis``) are accepted and unused: every channel
        keeps its digital values or gets its minimal-error calibration. ``clip_outliers=True``
        and ``verify_plot=True`` are refused. Keyword options of
        :func:`~biosigio_lib.exporters.edf.write_edf` (``overwrite``, ``record_duration``,
        ``pad_last_record``, ``storage_options``) pass through.
        """
        from .exporters.edf import export_compat

        return export_compat(self._recording(), filepath, format=format, verify=verify,
                             verify_tolerance=verify_tolerance,
                             verify_channel_map=verify_channel_map, verify_plot=verify_plot,
                             events_df=events_df, create_channels_tsv=create_channels_tsv,
                             clip_outliers=clip_outliers, **kwargs)

    def to_bdf(self, filepath: str | os.PathLike[str],
               **kwargs: Any) -> EdfExportReport:
        """Write BDF+ (24-bit): :meth:`to_edf` with ``format='bdf'``."""
        kwargs.setdefault("format", "bdf")
        if kwargs["format"] != "bdf":
            raise InvalidChannelError(f"to_bdf writes BDF; got format={kwargs['format']!r} "
                                      "(use to_edf for EDF)")
        return self.to_edf(filepath, **kwargs)
