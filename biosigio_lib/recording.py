"""The data model: channels on one or more time grids, events, and recording metadata.

Channels are grouped into *grids*: all channels of a grid share one sampling rate, start
offset and length, and are held as one contiguous ``(n_channels, n_samples)`` array per dtype
(channel-major, so each channel is a contiguous row and a DataFrame over the grid is a view).
A recording with channels at several rates simply has several grids; nothing is resampled.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _jsonsafe
from ._compat import BiosigioCompatMixin
from .calibration import Calibration, to_physical
from .channels import modality_for, normalise_type
from .errors import (
    DuplicateLabelError,
    InvalidChannelError,
    MixedSamplingRateError,
    NonFiniteValueError,
)
from .lazy import LazySamples

if TYPE_CHECKING:
    from numpy.typing import ArrayLike, DTypeLike

__all__ = ["EVENT_COLUMNS", "Grid", "Recording", "grid_key", "make_unique_labels"]

#: The three event columns every recording has; importers may add more.
EVENT_COLUMNS: tuple[str, str, str] = ("onset", "duration", "description")

#: Per-channel keys the Recording owns; everything else in ``channels[label]`` is importer extra.
CORE_CHANNEL_KEYS: tuple[str, ...] = (
    "sample_frequency",
    "physical_dimension",
    "channel_type",
    "modality",
    "prefilter",
)


def grid_key(rate: float) -> str:
    """Default grid name for a rate: ``1000hz``, ``1000.5hz``, ``0.1hz`` (exact repr)."""
    r = float(rate)
    text = str(int(r)) if r.is_integer() else repr(r)
    return f"{text}hz"


def make_unique_labels(labels: Sequence[str]) -> tuple[list[str], dict[str, str]]:
    """Make labels unique deterministically: the 2nd ``X`` becomes ``X-1``, the 3rd ``X-2``.

    Returns the new labels and ``{new_label: original_label}`` for every label that changed
    (importers record the original in the channel's ``original_label``).
    """
    out: list[str] = []
    renamed: dict[str, str] = {}
    taken = set(labels)
    seen: set[str] = set()
    for raw in labels:
        label = raw
        if label in seen:
            i = 1
            while f"{raw}-{i}" in taken or f"{raw}-{i}" in seen:
                i += 1
            label = f"{raw}-{i}"
            renamed[label] = raw
        seen.add(label)
        out.append(label)
    return out, renamed


def _check_rate(fs: float, label: str) -> float:
    try:
        rate = float(fs)
    except (TypeError, ValueError):
        raise InvalidChannelError(
            f"channel {label!r}: sampling rate {fs!r} is not a number") from None
    if not math.isfinite(rate):
        raise NonFiniteValueError(f"channel {label!r}: sampling rate is {rate}")
    if rate <= 0:
        raise InvalidChannelError(f"channel {label!r}: sampling rate must be > 0, got {rate}")
    return rate


def _check_label(lab: object) -> None:
    """Refuse a label that is not a non-empty string (callers need not be type-checked)."""
    if not isinstance(lab, str) or lab == "":
        raise InvalidChannelError(f"channel label must be a non-empty string, got {lab!r}")


class _Block:
    """Rows of one dtype in a grid, in a buffer that grows geometrically (amortised appends)."""

    __slots__ = ("buf", "labels", "n")

    def __init__(self, buf: np.ndarray | LazySamples, n: int, labels: list[str]):
        self.buf, self.n, self.labels = buf, n, labels

    @property
    def array(self) -> np.ndarray | LazySamples:
        if isinstance(self.buf, LazySamples):
            return self.buf
        return self.buf[: self.n]

    def append(self, rows: np.ndarray | LazySamples, labels: Sequence[str]) -> None:
        if isinstance(self.buf, LazySamples):
            raise InvalidChannelError("channels cannot be appended to a file-backed block")
        need = self.n + rows.shape[0]
        if need > self.buf.shape[0]:
            cap = max(need, 2 * self.buf.shape[0], 4)
            new = np.empty((cap, self.buf.shape[1]), dtype=self.buf.dtype)
            new[: self.n] = self.buf[: self.n]
            self.buf = new
        self.buf[self.n : need] = rows
        self.n = need
        self.labels.extend(labels)


class Grid:
    """Channels sharing one sampling rate, start offset (s) and length.

    ``data`` is the ``(n_channels, n_samples)`` array of physical values (a view, no copy,
    when all channels have one dtype and none is calibrated); ``times`` the seconds of each
    sample, ``t0 + arange(n) / rate``. Calibrated channels (:mod:`biosigio_lib.calibration`)
    are stored as their integers: ``stored(label)`` gives those, ``channel(label)`` the
    physical values computed from them.
    """

    def __init__(self, key: str, rate: float, n_samples: int, t0: float = 0.0):
        self.key = key
        self.rate = rate
        self.n_samples = n_samples
        self.t0 = t0
        self.labels: list[str] = []
        #: (dtype, calibrated, 0 or the id of a file-backed block) -> block
        self._blocks: dict[tuple[np.dtype[Any], bool, int], _Block] = {}
        self._cal: dict[str, Calibration] = {}

    def __repr__(self) -> str:
        return (f"Grid({self.key!r}, rate={self.rate!r}, n_channels={len(self.labels)}, "
                f"n_samples={self.n_samples}, t0={self.t0!r})")

    @property
    def n_channels(self) -> int:
        return len(self.labels)

    @property
    def duration(self) -> float:
        return self.n_samples / self.rate

    @property
    def dtypes(self) -> dict[str, np.dtype[Any]]:
        """The dtype of each channel's physical values (float64 for calibrated channels)."""
        return {lab: np.dtype(np.float64) if cal else dt
                for (dt, cal, _), b in self._blocks.items() for lab in b.labels}

    @property
    def stored_dtypes(self) -> dict[str, np.dtype[Any]]:
        """The dtype each channel is stored in (the integers of a calibrated channel)."""
        return {lab: dt for (dt, _, _), b in self._blocks.items() for lab in b.labels}

    @property
    def calibrations(self) -> dict[str, Calibration]:
        """The calibration of every calibrated channel, by label."""
        return dict(self._cal)

    def calibration(self, label: str) -> Calibration | None:
        """The channel's calibration, or None when it is stored as physical values."""
        return self._cal.get(label)

    @property
    def times(self) -> np.ndarray:
        t = np.arange(self.n_samples, dtype=np.float64) / self.rate
        return t + self.t0 if self.t0 else t

    @property
    def data(self) -> np.ndarray:
        """All rows in label order, physical: a view when uniform and uncalibrated."""
        if len(self._blocks) == 1:
            return next(self.blocks())[1]
        if not self._blocks:
            return np.empty((0, self.n_samples), dtype=np.float64)
        dtype = np.result_type(*self.dtypes.values())
        out = np.empty((len(self.labels), self.n_samples), dtype=dtype)
        pos = {lab: i for i, lab in enumerate(self.labels)}
        for labs, arr in self.blocks():
            out[[pos[lab] for lab in labs]] = arr
        return out

    def _find(self, label: str) -> tuple[_Block, int]:
        for block in self._blocks.values():
            if label in block.labels:
                return block, block.labels.index(label)
        raise KeyError(label)

    def stored(self, label: str) -> np.ndarray:
        """One channel as stored (integers for a calibrated channel): a contiguous view."""
        block, i = self._find(label)
        return block.array[i]

    def channel(self, label: str) -> np.ndarray:
        """One channel's physical samples: a view, or computed from a calibrated channel."""
        raw = self.stored(label)
        cal = self._cal.get(label)
        return raw if cal is None else cal.apply(raw)

    @property
    def is_lazy(self) -> bool:
        """True when some samples stay in the source file until read (:mod:`.lazy`)."""
        return any(key[2] for key in self._blocks)

    def blocks(self) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield ``(labels, 2-D physical array)`` per stored block (views when uncalibrated;
        a file-backed block is read whole)."""
        for labels, arr, cals in self.stored_blocks():
            if isinstance(arr, LazySamples):
                arr = np.asarray(arr)
            if cals is None:
                yield labels, arr
            else:
                yield labels, to_physical(arr, cals)

    def stored_blocks(
            self) -> Iterator[tuple[list[str], np.ndarray | LazySamples, list[Calibration] | None]]:
        """Yield ``(labels, 2-D stored array, calibrations or None)`` per block, no copies.

        A file-backed block is yielded as its :class:`~biosigio_lib.lazy.LazySamples`: slice
        it (``arr[:, i0:i1]``) to read a window.
        """
        for (_, calibrated, _), block in self._blocks.items():
            labels = list(block.labels)
            yield (labels, block.array,
                   [self._cal[lab] for lab in labels] if calibrated else None)

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame (time index in s, one column per channel); a view for uniform dtype."""
        index = pd.Index(self.times, name="time")
        if len(self._blocks) <= 1:
            frame = pd.DataFrame(self.data.T, index=index, columns=list(self.labels), copy=False)
            return frame
        parts = [pd.DataFrame(a.T, index=index, columns=labs, copy=False)
                 for labs, a in self.blocks()]
        return pd.concat(parts, axis=1)[list(self.labels)]

    def _add(self, labels: Sequence[str], rows: np.ndarray | LazySamples, adopt: bool,
             cals: Sequence[Calibration] | None = None) -> None:
        lazy = isinstance(rows, LazySamples)
        key = (rows.dtype, cals is not None, id(rows) if lazy else 0)
        block = self._blocks.get(key)
        if block is None:
            buf = rows if adopt or lazy else np.array(rows, order="C", copy=True)
            self._blocks[key] = _Block(buf, rows.shape[0], list(labels))
        else:
            block.append(rows, labels)
        self.labels.extend(labels)
        if cals is not None:
            self._cal.update(zip(labels, cals))


class Recording(BiosigioCompatMixin):
    """A biosignal recording: channels on rate grids, events, and metadata.

    >>> rec = Recording()
    >>> rec.add_channel("EMG1", np.zeros(2048), 2048.0, "mV", "EMG")
    >>> rec.signals.shape
    (2048, 1)
    """

    def __init__(self, metadata: Mapping[str, Any] | None = None):
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.channels: dict[str, dict[str, Any]] = {}
        self._grids: dict[str, Grid] = {}
        self._grid_of: dict[str, str] = {}
        self._events: pd.DataFrame | None = None
        self._pending: list[tuple[Any, ...]] = []
        self._pending_extra: list[dict[str, Any]] = []
        #: Where :meth:`from_file` read it (url, importer, keyword arguments), or None: lets a
        #: pipeline hand a file-backed recording to another process by reference.
        self.origin: dict[str, Any] | None = None

    # ------------------------------------------------------------------ channels
    def add_channel(
        self,
        label: str,
        data: ArrayLike,
        fs: float,
        unit: str = "",
        type: str = "MISC",
        *,
        prefilter: str = "",
        t0: float = 0.0,
        grid: str | None = None,
        calibration: Calibration | None = None,
        **info: Any,
    ) -> None:
        """Add one channel; ``data`` keeps its dtype; its rate picks (or creates) its grid.

        Refuses a label already present (:class:`DuplicateLabelError`). Extra keyword
        arguments are kept in ``channels[label]`` (transducer, ranges, original_label...).
        With ``calibration``, ``data`` are the stored integers (see :meth:`add_channels`).
        """
        arr = np.asarray(data)
        if arr.ndim != 1:
            raise InvalidChannelError(
                f"channel {label!r}: data must be 1-D, got shape {arr.shape}"
            )
        self.add_channels([label], arr[None, :], fs, [unit], [type], prefilters=[prefilter],
                          infos=[info] if info else None, t0=t0, grid=grid,
                          calibration=calibration)

    def add_channels(
        self,
        labels: Sequence[str],
        data: ArrayLike,
        fs: float,
        units: Sequence[str] | str = "",
        types: Sequence[str] | str = "MISC",
        *,
        prefilters: Sequence[str] | str = "",
        infos: Sequence[Mapping[str, Any]] | None = None,
        t0: float = 0.0,
        grid: str | None = None,
        calibration: Calibration | Sequence[Calibration] | None = None,
    ) -> None:
        """Add several channels of one rate from a ``(n_channels, n_samples)`` array.

        A C-contiguous array added to a new grid is adopted without copying. With
        ``calibration`` (one for all rows, or one a row) ``data`` are the stored integers
        (ADC counts) and the physical values are computed from them when asked.
        """
        labels = list(labels)
        arr = data if isinstance(data, LazySamples) else np.asarray(data)
        n = len(labels)
        if arr.ndim != 2 or arr.shape[0] != n:
            raise InvalidChannelError(
                f"data for {n} channel(s) must have shape ({n}, n_samples), got {arr.shape}"
            )
        if arr.dtype.kind not in "biuf":
            raise InvalidChannelError(
                f"channels {labels[:3]}: samples must be numeric (bool/int/float), "
                f"got dtype {arr.dtype}"
            )
        cals: list[Calibration] | None = None
        if calibration is not None:
            cals = ([calibration] * n if isinstance(calibration, Calibration)
                    else list(calibration))
            if len(cals) != n or not all(isinstance(c, Calibration) for c in cals):
                raise InvalidChannelError(
                    f"channels {labels[:3]}: give one Calibration for all or one a channel")
            if arr.dtype.kind not in "iu":
                raise InvalidChannelError(
                    f"channels {labels[:3]}: calibrated channels store integers (digital "
                    f"values), got dtype {arr.dtype}")
        for lab in labels:
            _check_label(lab)
        dupes = [lab for lab in labels if lab in self.channels]
        if dupes or len(set(labels)) != n:
            dupes = dupes or [lab for lab in labels if labels.count(lab) > 1]
            raise DuplicateLabelError(
                f"channel label(s) {sorted(set(dupes))} already present; labels must be "
                "unique (importers rename repeats with make_unique_labels)"
            )
        rate = _check_rate(fs, labels[0] if labels else "?")
        t0 = float(t0)
        if not math.isfinite(t0):
            raise NonFiniteValueError(f"channels {labels[:3]}: start offset t0 is {t0}")
        key = grid or grid_key(rate)
        g = self._grids.get(key)
        if g is None:
            g = Grid(key, rate, arr.shape[1], t0)
        elif g.rate != rate or g.n_samples != arr.shape[1] or g.t0 != t0:
            raise InvalidChannelError(
                f"channels {labels[:3]}: grid {key!r} holds {g.n_samples} samples at "
                f"{g.rate!r} Hz from t0={g.t0!r}, these have {arr.shape[1]} at {rate!r} Hz "
                f"from t0={t0!r}; pass grid='<name>' to put them on a grid of their own"
            )
        # callers outside the type checker pass None for "no unit/prefilter": kept as ""
        units_l: list[str | None] = [units] * n if isinstance(units, str) else list(units)
        types_l = [types] * n if isinstance(types, str) else list(types)
        pre_l: list[str | None] = (
            [prefilters] * n if isinstance(prefilters, str) else list(prefilters))
        infos_l = list(infos) if infos is not None else [{}] * n
        if not (len(units_l) == len(types_l) == len(pre_l) == len(infos_l) == n):
            raise InvalidChannelError("units/types/prefilters/infos must have one entry a channel")
        adopt = (isinstance(arr, LazySamples) or (key not in self._grids
                 and arr.flags.c_contiguous and arr.base is None))
        g._add(labels, arr, adopt=adopt, cals=cals)
        self._grids[key] = g
        for lab, unit, ctype, pre, extra in zip(labels, units_l, types_l, pre_l, infos_l):
            ctype_n = normalise_type(ctype)
            self.channels[lab] = {
                "sample_frequency": rate,
                "physical_dimension": "" if unit is None else str(unit),
                "channel_type": ctype_n,
                "modality": modality_for(ctype_n),
                "prefilter": "" if pre is None else str(pre),
                **dict(extra),
            }
            self._grid_of[lab] = key

    def set_channel_info(self, label: str, **info: Any) -> None:
        """Update a channel's descriptive info (type, unit, extras); the rate is fixed."""
        if label not in self.channels:
            raise KeyError(label)
        if "sample_frequency" in info and float(info["sample_frequency"]) != self.rate_of(label):
            raise InvalidChannelError(f"channel {label!r}: the rate cannot be changed in place")
        ch = self.channels[label]
        ch.update(info)
        if "channel_type" in info:
            ch["channel_type"] = normalise_type(info["channel_type"])
            ch["modality"] = info.get("modality") or modality_for(ch["channel_type"])

    @property
    def labels(self) -> list[str]:
        return list(self.channels)

    @property
    def n_channels(self) -> int:
        return len(self.channels)

    @property
    def grids(self) -> dict[str, Grid]:
        """Grids by name, in the order they were created."""
        return dict(self._grids)

    @property
    def rates(self) -> list[float]:
        """The distinct sampling rates, ascending."""
        return sorted({g.rate for g in self._grids.values()})

    @property
    def duration(self) -> float:
        return max((g.t0 + g.duration for g in self._grids.values()), default=0.0)

    def rate_of(self, label: str) -> float:
        return self._grids[self._grid_of[label]].rate

    def grid_of(self, label: str) -> Grid:
        return self._grids[self._grid_of[label]]

    def channel_data(self, label: str) -> np.ndarray:
        """One channel's physical samples (a view, or computed from its digital values)."""
        if label not in self._grid_of:
            raise KeyError(label)
        return self.grid_of(label).channel(label)

    def calibration(self, label: str) -> Calibration | None:
        """The channel's calibration (None when it holds physical values only)."""
        if label not in self._grid_of:
            raise KeyError(label)
        return self.grid_of(label).calibration(label)

    def digital_data(self, label: str) -> np.ndarray:
        """One calibrated channel's stored integers (ADC counts), as the source stored them."""
        if label not in self._grid_of:
            raise KeyError(label)
        g = self.grid_of(label)
        if g.calibration(label) is None:
            raise InvalidChannelError(
                f"channel {label!r} has no digital values: it holds physical values only "
                "(a float source, or one read with digital=False)")
        return g.stored(label)

    @property
    def is_lazy(self) -> bool:
        """True when some samples are read from the source file only when asked for."""
        return any(g.is_lazy for g in self._grids.values())

    @property
    def is_calibrated(self) -> bool:
        """True when any channel is stored as integers plus a calibration."""
        return any(g.calibrations for g in self._grids.values())

    def grid(self, which: float | str) -> Grid:
        """The grid named ``which`` or the single grid at rate ``which``."""
        if isinstance(which, str) and which in self._grids:
            return self._grids[which]
        try:
            rate = float(which)
        except (TypeError, ValueError):
            raise KeyError(f"no grid {which!r}; grids: {list(self._grids)}") from None
        found = [g for g in self._grids.values() if g.rate == rate]
        if len(found) == 1:
            return found[0]
        if not found:
            raise KeyError(f"no channels at {rate!r} Hz; rates: {self.rates}")
        raise KeyError(f"several grids at {rate!r} Hz: {[g.key for g in found]}; name one")

    def signals_at(self, which: float | str) -> pd.DataFrame:
        """The DataFrame of one grid (by rate or grid name)."""
        return self.grid(which).to_frame()

    @property
    def signals(self) -> pd.DataFrame:
        """All channels as one DataFrame; only for a recording with a single grid."""
        if not self._grids:
            return pd.DataFrame(index=pd.Index([], dtype=np.float64, name="time"))
        if len(self._grids) > 1:
            desc = ", ".join(f"{g.key} ({g.n_channels} ch)" for g in self._grids.values())
            raise MixedSamplingRateError(
                f"channels are on {len(self._grids)} grids ({desc}) at rates {self.rates} Hz; "
                "use rec.signals_at(rate) for one grid or rec.grids to iterate them"
            )
        (g,) = self._grids.values()
        return g.to_frame()

    # -------------------------------------------------------------------- events
    def add_event(self, onset: float, duration: float = 0.0, description: str = "",
                  **extra: Any) -> None:
        """Append one event (onset and duration in seconds from the recording start)."""
        onset_f, dur_f = _event_number(onset, "onset"), _event_number(duration, "duration")
        if not math.isfinite(onset_f):  # checked now: a bad event must not poison the queue
            raise NonFiniteValueError(f"event onset is {onset_f} (description {description!r})")
        self._pending.append((onset_f, dur_f, description))
        self._pending_extra.append(extra)

    def add_events(
        self,
        onset: ArrayLike,
        duration: ArrayLike | None = None,
        description: ArrayLike | None = None,
        **columns: ArrayLike,
    ) -> None:
        """Append many events at once (vectorised); extra keyword columns are kept."""
        try:
            onset_a = np.asarray(onset, dtype=np.float64).ravel()
            n = onset_a.size

            def fit(name: str, values: Any, dtype: Any = None) -> Any:
                arr = np.asarray(values, dtype=dtype)
                if arr.ndim == 0:
                    return np.broadcast_to(arr, (n,))
                if arr.shape != (n,):
                    raise InvalidChannelError(
                        f"add_events: {n} onsets but {name!r} has shape {arr.shape}; give one "
                        "value per event or a single value for all")
                return arr

            dur = np.zeros(n) if duration is None else fit("duration", duration, np.float64)
            desc = [""] * n if description is None else fit("description", description, object)
            extra = {name: fit(name, values) if np.ndim(values) else values
                     for name, values in columns.items()}
        except (TypeError, ValueError) as exc:
            if isinstance(exc, InvalidChannelError):
                raise
            raise InvalidChannelError(f"add_events: onsets/durations must be numbers ({exc})"
                                      ) from exc
        frame = pd.DataFrame({"onset": onset_a, "duration": np.array(dur, dtype=np.float64),
                              "description": _text_column(np.array(desc, dtype=object))})
        for name, values in extra.items():
            frame[name] = _text_column(values)
        self._append_events(frame)

    def _flush(self) -> None:
        if not self._pending:
            return
        onsets, durs, descs = zip(*self._pending)
        frame = pd.DataFrame({
            "onset": np.asarray(onsets, dtype=np.float64),
            "duration": np.asarray(durs, dtype=np.float64),
            "description": _text_column(np.asarray(descs, dtype=object)),
        })
        if any(self._pending_extra):
            try:
                extra = pd.DataFrame.from_records(self._pending_extra)
            except UnicodeEncodeError:  # a non-UTF-8 string: that column stays object
                names = list(dict.fromkeys(k for row in self._pending_extra for k in row))
                extra = pd.DataFrame({k: _text_column(np.array(
                    [row.get(k, np.nan) for row in self._pending_extra], dtype=object))
                    for k in names})
            for col in extra.columns:
                frame[col] = _text_column(extra[col].to_numpy())
        self._pending, self._pending_extra = [], []
        self._append_events(frame)

    def _append_events(self, frame: pd.DataFrame) -> None:
        bad = ~np.isfinite(frame["onset"].to_numpy(dtype=np.float64))
        if bad.any():
            raise NonFiniteValueError(
                f"{int(bad.sum())} event onset(s) are NaN/Inf (first at row {int(np.argmax(bad))})"
            )
        if self._events is None or (self._events.empty and not len(self._events.columns) > 3):
            self._events = frame.reset_index(drop=True)
        else:
            self._events = pd.concat([self._events, frame], ignore_index=True)

    @property
    def events(self) -> pd.DataFrame:
        """Events: ``onset`` and ``duration`` (s, float64), ``description`` (str), extras."""
        self._flush()
        if self._events is None:
            self._events = pd.DataFrame({
                "onset": np.empty(0, np.float64), "duration": np.empty(0, np.float64),
                "description": np.empty(0, dtype=object)})
        return self._events

    @events.setter
    def events(self, frame: pd.DataFrame) -> None:
        if "onset" not in frame.columns:
            raise InvalidChannelError("an events table needs an 'onset' column")
        frame = frame.copy()
        frame["onset"] = frame["onset"].astype(np.float64)
        frame["duration"] = (frame["duration"].astype(np.float64) if "duration" in frame
                             else 0.0)
        if "description" not in frame:
            frame["description"] = ""
        cols = list(EVENT_COLUMNS) + [c for c in frame.columns if c not in EVENT_COLUMNS]
        self._pending, self._pending_extra, self._events = [], [], None
        self._append_events(frame[cols].reset_index(drop=True))

    # ------------------------------------------------------------ whole recording
    def select(self, channels: Iterable[str] | None = None, tmin: float | None = None,
               tmax: float | None = None) -> Recording:
        """A new Recording with some channels and/or the samples in ``[tmin, tmax)`` seconds.

        Sample ``i`` of a grid is kept when ``t0 + i / rate`` lies in the window; grids keep
        their rate, and ``t0`` becomes the time of their first kept sample.
        """
        wanted = list(self.channels) if channels is None else list(channels)
        missing = [c for c in wanted if c not in self.channels]
        if missing:
            raise KeyError(f"no channel(s) {missing}; channels: {list(self.channels)[:20]}")
        out = Recording(self.metadata)
        for g in self._grids.values():
            labs = [lab for lab in g.labels if lab in set(wanted)]
            if not labs:
                continue
            i0, i1 = _window(g, tmin, tmax)
            for blabs, arr, cals in g.stored_blocks():
                sel = [i for i, lab in enumerate(blabs) if lab in set(labs)]
                if not sel:
                    continue
                rows = arr[sel, i0:i1] if len(sel) < len(blabs) else arr[:, i0:i1]
                out.add_channels(
                    [blabs[i] for i in sel], np.ascontiguousarray(rows), g.rate,
                    [self.channels[blabs[i]]["physical_dimension"] for i in sel],
                    [self.channels[blabs[i]]["channel_type"] for i in sel],
                    prefilters=[self.channels[blabs[i]]["prefilter"] for i in sel],
                    infos=[_extras(self.channels[blabs[i]]) for i in sel],
                    t0=g.t0 + i0 / g.rate if i0 else g.t0, grid=g.key,
                    calibration=None if cals is None else [cals[i] for i in sel])
            for lab in labs:  # keep the channel order and any modality override
                out.channels[lab]["modality"] = self.channels[lab]["modality"]
        out.channels = {lab: out.channels[lab] for lab in wanted}
        ev = self.events
        if tmin is not None or tmax is not None:
            keep = np.ones(len(ev), dtype=bool)
            if tmin is not None:
                keep &= ev["onset"].to_numpy() + ev["duration"].fillna(0).to_numpy() >= tmin
            if tmax is not None:
                keep &= ev["onset"].to_numpy() < tmax
            ev = ev[keep]
        out._events = ev.reset_index(drop=True).copy()
        return out

    def copy(self) -> Recording:
        """A deep copy (samples, channel info, events and metadata)."""
        import copy as _copy

        out = self.select()
        out.metadata = _copy.deepcopy(self.metadata)
        out.channels = _copy.deepcopy(out.channels)
        return out

    def __repr__(self) -> str:
        grids = ", ".join(f"{g.n_channels}ch@{g.rate:g}Hz" for g in self._grids.values())
        return (f"<Recording {self.n_channels} channels [{grids}] {self.duration:.3f} s, "
                f"{len(self.events)} events>")

    # ------------------------------------------------------------------------ IO
    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike[str],
        importer: str | None = None,
        group: str | None = None,
        **kwargs: Any,
    ) -> Recording:
        """Read any supported file, folder or URL; the importer is chosen by magic and suffix.

        ``lazy=True`` keeps the samples in the file (EDF/BDF, also inside BIDS) and reads
        them a window at a time when used: any length converts in bounded memory.
        """
        from .importers import read

        if group is not None:
            kwargs["group"] = group
        return read(path, importer=importer, **kwargs)

    def to_parquet(self, path: str | os.PathLike[str], **kwargs: Any) -> str:
        """Write the lossless Parquet archive (one file, or a folder for several grids)."""
        from .archive import write_parquet

        return write_parquet(self, path, **kwargs)

    def to_arrow(self, path: str | os.PathLike[str], **kwargs: Any) -> str:
        """Write the lossless Arrow IPC (Feather v2) archive."""
        from .archive import write_arrow

        return write_arrow(self, path, **kwargs)

    def to_zarr(self, path: str | os.PathLike[str], dtype: DTypeLike = "int16",
                **kwargs: Any) -> str:
        """Write the Zarr v3 serving store (level 0 + min/max view pyramid)."""
        from .serving import write_zarr

        return write_zarr(self, path, dtype=dtype, **kwargs)


def _extras(info: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in info.items() if k not in CORE_CHANNEL_KEYS}


def _text_column(values: Any) -> Any:
    """``values`` unchanged, or as an object Series when it holds a string that is not valid
    UTF-8 (surrogates): pandas' pyarrow-backed ``str`` dtype cannot hold those."""
    arr = np.asarray(values) if not isinstance(values, pd.Series) else values.to_numpy()
    if arr.dtype.kind not in "OU" or all(
            not isinstance(v, str) or _jsonsafe.utf8_safe(v) for v in arr.ravel().tolist()):
        return values
    return pd.Series(arr, dtype=object)


def _event_number(value: Any, what: str) -> float:
    """An event onset/duration as a float (None is a missing duration: NaN)."""
    if value is None and what == "duration":
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InvalidChannelError(f"event {what} must be a number of seconds, got {value!r}"
                                  ) from None


def _bound(t: float | None, g: Grid, default: int, what: str) -> int:
    """The first sample index at or after time ``t`` (clipped to the grid)."""
    if t is None:
        return default
    t = float(t)
    if math.isnan(t):
        raise NonFiniteValueError(f"select: {what} is NaN")
    if math.isinf(t):
        return 0 if t < 0 else g.n_samples
    return int(np.clip(math.ceil((t - g.t0) * g.rate - 1e-9), 0, g.n_samples))


def _window(g: Grid, tmin: float | None, tmax: float | None) -> tuple[int, int]:
    """Sample range of a grid whose times fall in ``[tmin, tmax)``."""
    i0 = _bound(tmin, g, 0, "tmin")
    i1 = _bound(tmax, g, g.n_samples, "tmax")
    return i0, max(i0, i1)
