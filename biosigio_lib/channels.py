"""Channel type -> modality table, and which types hold discrete codes rather than waveforms."""

from __future__ import annotations

__all__ = [
    "DISCRETE_TYPES",
    "MODALITIES",
    "modality_for",
    "normalise_type",
]

#: Coarse modalities a channel can belong to (the Zarr store groups by these).
MODALITIES: tuple[str, ...] = (
    "EEG", "EMG", "MEG", "IEEG", "ECG", "EOG", "MOTION", "DISCRETE", "MISC",
)

_TYPE_TO_MODALITY: dict[str, str] = {
    "EEG": "EEG",
    "EMG": "EMG",
    "MEG": "MEG",
    "MEGMAG": "MEG",
    "MEGGRAD": "MEG",
    "MEGGRADAXIAL": "MEG",
    "MEGGRADPLANAR": "MEG",
    "MEGREFMAG": "MEG",
    "MEGREFGRADAXIAL": "MEG",
    "MEGREFGRADPLANAR": "MEG",
    "IEEG": "IEEG",
    "SEEG": "IEEG",
    "ECOG": "IEEG",
    "DBS": "IEEG",
    "ECG": "ECG",
    "EKG": "ECG",
    "EOG": "EOG",
    "VEOG": "EOG",
    "HEOG": "EOG",
    "ACC": "MOTION",
    "GYRO": "MOTION",
    "MAGN": "MOTION",
    "QUAT": "MOTION",
    "TRIG": "DISCRETE",
    "STIM": "DISCRETE",
    "STATUS": "DISCRETE",
    "EVENT": "DISCRETE",
    "SYSCLOCK": "DISCRETE",
    "CTRL": "DISCRETE",
}

#: Channel types whose samples are codes (never filtered, interpolated or rescaled).
DISCRETE_TYPES: frozenset[str] = frozenset(
    t for t, m in _TYPE_TO_MODALITY.items() if m == "DISCRETE"
)


def normalise_type(channel_type: object) -> str:
    """Upper-case, stripped channel type; anything empty or non-string becomes ``MISC``."""
    if not isinstance(channel_type, str) or not channel_type.strip():
        return "MISC"
    return channel_type.strip().upper()


def modality_for(channel_type: object) -> str:
    """Modality of a channel type; unknown types map to ``MISC`` and never fail."""
    return _TYPE_TO_MODALITY.get(normalise_type(channel_type), "MISC")
