"""ServingParams: validation, cap merging, canonical dict, and a version stable across runs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from biosigio_lib.serving import DEFAULT_RATE_CAPS, ServingParams


def test_defaults_match_the_spec() -> None:
    p = ServingParams()
    assert dict(p.rate_caps) == {"EEG": 250.0, "EMG": 1000.0, "IEEG": 1000.0, "MEG": 250.0}
    assert (p.dtype, p.view_factor, p.view_max_samples, p.max_view_levels) == (
        "int16", 4, 512, 12)
    assert (p.chunk_seconds, p.shard_seconds, p.compressor) == (4.0, 300.0, "zstd")
    assert (p.clevel, p.shuffle) == (5, "bitshuffle")
    assert p.cap_for("eeg") == 250.0 and p.cap_for("ECG") is None


def test_caller_caps_merge_with_defaults_and_none_removes_one() -> None:
    p = ServingParams(rate_caps={"ecg": 500, "EEG": 500.0, "EMG": None})
    assert p.cap_for("ECG") == 500.0 and p.cap_for("EEG") == 500.0
    assert p.cap_for("MEG") == DEFAULT_RATE_CAPS["MEG"]
    assert p.cap_for("EMG") is None


@pytest.mark.parametrize("kw", [
    {"dtype": "int32"}, {"view_factor": 1}, {"view_factor": 4.0}, {"clevel": 10},
    {"chunk_seconds": 0}, {"chunk_seconds": float("nan")}, {"shard_seconds": 1.0},
    {"compressor": "gzip"}, {"rate_caps": {"EEG": -1}}, {"rate_caps": {"": 1}},
    {"rate_caps": [("EEG", 1)]}, {"max_view_levels": -1},
])
def test_invalid_values_are_refused(kw: dict) -> None:
    with pytest.raises((ValueError, TypeError)):
        ServingParams(**kw)


def test_frozen() -> None:
    p = ServingParams()
    with pytest.raises(AttributeError):
        p.dtype = "float32"  # type: ignore[misc]


def test_to_dict_round_trips_and_is_plain_json() -> None:
    import json

    p = ServingParams(dtype="float32", rate_caps={"ECG": 125.5}, clevel=3)
    d = p.to_dict()
    json.dumps(d, allow_nan=False)
    assert ServingParams.from_dict(d) == p
    assert ServingParams.from_dict(d).version() == p.version()
    with pytest.raises(ValueError, match="unknown"):
        ServingParams.from_dict({**d, "bogus": 1})


def test_version_changes_with_every_parameter() -> None:
    base = ServingParams()
    changed = [
        base.replace(dtype="float32"), base.replace(view_factor=2),
        base.replace(view_max_samples=256), base.replace(max_view_levels=3),
        base.replace(view_chunk_columns=512), base.replace(chunk_seconds=2.0),
        base.replace(shard_seconds=600.0), base.replace(compressor="lz4"),
        base.replace(clevel=1), base.replace(shuffle="shuffle"),
        base.replace(filter_window="hamming"), base.replace(filter_beta=8.0),
        base.replace(filter_half_width=20), base.replace(max_ratio_denominator=100),
        base.replace(rate_caps={"EEG": 500}), base.replace(rate_caps={"ECG": 250}),
    ]
    versions = {p.version() for p in changed}
    assert base.version() not in versions and len(versions) == len(changed)
    assert ServingParams(rate_caps={"EEG": 250}).version() == base.version()  # same merged map
    assert hash(base) == hash(ServingParams())


def test_version_is_stable_across_processes() -> None:
    code = ("from biosigio_lib.serving import ServingParams as P;"
            "print(P(rate_caps={'ECG': 500}).version())")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
            for seed in ("1", "2")}
    assert outs == {ServingParams(rate_caps={"ECG": 500}).version()}
    assert len(outs.pop()) == 16
