"""write_zarr: biosigio 1.2 layout and attrs, grouping, existing targets, complete-or-absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from biosigio_lib import Recording, StoreExistsError, serving
from biosigio_lib.errors import ArchiveFormatError
from biosigio_lib.serving import ServingParams, writer

from .conftest import mixed_recording


def test_layout_and_attrs_follow_biosigio(tmp_path: Path) -> None:
    rec = mixed_recording()
    out = rec.to_zarr(tmp_path / "rec.zarr")
    assert out == str(tmp_path / "rec.zarr")
    root = zarr.open_group(out, mode="r")
    ra = root.attrs.asdict()
    assert (ra["format"], ra["format_version"], ra["dtype"]) == ("biosigio-zarr", 2, "int16")
    assert ra["channel_groups"] == ["eeg_250hz", "ecg_500hz", "discrete_1000hz"]
    assert ra["source_file"] == "/data/sub-01.edf" and ra["source_checksum"] == "sha256:abc"
    assert ra["serving_version"] == ServingParams().version()
    assert ServingParams.from_dict(ra["serving_params"]) == ServingParams()
    assert ra["recording_metadata"]["start_time"]["__biosigio_type__"] == "datetime"
    for key in ("modality_rates", "view_downsample", "anti_alias_filter", "created_utc"):
        assert key in ra
    g = root["eeg_250hz"]
    ga = g.attrs.asdict()
    assert (ga["modality"], ga["rate"], ga["original_rate"]) == ("EEG", 250.0, 1000.0)
    assert (ga["n_channels"], ga["n_samples"]) == (6, 3000)
    assert ga["view_levels"] == [1, 2] and ga["n_view_levels"] == 2  # 3000 -> 750 -> 188
    assert ga["resampling"]["up"] == 1 and ga["resampling"]["down"] == 4
    ch = ga["channels"][0]
    for key in ("label", "channel_type", "modality", "unit", "original_rate", "target_rate",
                "anti_aliased", "usable_for_inference", "scale", "offset", "row_index",
                "max_abs_error", "info"):
        assert key in ch
    a0 = g["0"]
    assert a0.shape == (6, 3000) and a0.dtype == np.int16
    assert a0.chunks == (6, 1000) and a0.shards == (6, 3000)
    assert a0.attrs["scale"] == [c["scale"] for c in ga["channels"]]
    assert [g["view"][str(i)].shape for i in (1, 2)] == [(2, 6, 750), (2, 6, 188)]
    trig = root["discrete_1000hz"].attrs.asdict()
    assert trig["rate"] == 1000.0 and trig["channels"][0]["exact"]
    assert trig["channels"][0]["channel_type"] == "TRIG"
    ev = root["events"]
    assert ev.attrs["n_events"] == 5 and ev["code"][...].dtype == np.int32


def test_fractional_rates_name_groups_exactly(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("EEG1", np.random.default_rng(0).standard_normal(2001 * 3), 1000.5, "uV",
                    "EEG")
    rec.add_channel("RESP", np.zeros(77), 25.5, "", "RESP")
    out = rec.to_zarr(tmp_path / "f.zarr")
    assert serving.list_groups(out) == ["eeg_250hz", "misc_25.5hz"]
    g = zarr.open_group(out, mode="r")["eeg_250hz"]
    assert g.attrs["rate"] == 250.0 and g["0"].shape == (1, 1500)
    assert g.attrs["original_rate"] == 1000.5


def test_same_modality_two_grids_get_distinct_groups(tmp_path: Path) -> None:
    rec = Recording()
    rec.add_channel("A", np.zeros(1000), 1000.0, "uV", "EEG")
    rec.add_channel("B", np.zeros(500), 500.0, "uV", "EEG")
    out = rec.to_zarr(tmp_path / "g.zarr")
    assert serving.list_groups(out) == ["eeg_250hz", "eeg_250hz_from500"]


def test_existing_target_is_refused_unless_overwrite(store: str) -> None:
    rec = mixed_recording(2.0)
    rec.to_zarr(store)
    with pytest.raises(StoreExistsError) as info:
        rec.to_zarr(store)
    assert isinstance(info.value, FileExistsError)
    rec.to_zarr(store, overwrite=True, dtype="float32")
    assert zarr.open_group(writer.layout.open_store(store, read_only=True)[0],
                           mode="r").attrs["dtype"] == "float32"


def test_existing_non_store_folder_is_not_deleted(tmp_path: Path) -> None:
    target = tmp_path / "keep.zarr"
    target.mkdir()
    (target / "precious.txt").write_text("x")
    with pytest.raises(StoreExistsError):
        mixed_recording(1.0).to_zarr(target)
    assert (target / "precious.txt").exists()


def test_interrupted_write_leaves_nothing_that_opens(store: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    calls = {"n": 0}
    real = writer._create_views

    def failing(*args, **kwargs):  # fail on the second group, after data was written
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "_create_views", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        mixed_recording(2.0).to_zarr(store)
    loc = writer.resolve(store)
    assert not loc.exists()
    if loc.is_local:
        assert list(Path(loc.path).parent.iterdir()) == []  # no temporary left behind
    with pytest.raises((FileNotFoundError, ArchiveFormatError)):
        Recording.from_file(store)


def test_a_killed_write_without_root_attrs_does_not_read_as_valid(tmp_path: Path) -> None:
    rec = mixed_recording(2.0)
    out = rec.to_zarr(tmp_path / "k.zarr")
    meta = Path(out) / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["attributes"] = {}  # what a write killed before its last step leaves
    meta.write_text(json.dumps(doc))
    with pytest.raises(ArchiveFormatError, match="format"):
        serving.read_zarr(out, group="ecg_500hz")
    with pytest.raises(ArchiveFormatError):  # by suffix only now, and refused
        Recording.from_file(out, group="ecg_500hz")


def test_params_overrides_and_errors(tmp_path: Path) -> None:
    rec = mixed_recording(2.0)
    out = serving.write_zarr(rec, tmp_path / "p.zarr", rate_caps={"ECG": 125},
                             view_max_samples=64, chunk_seconds=1.0, shard_seconds=2.0)
    root = zarr.open_group(out, mode="r")
    assert "ecg_125hz" in root.attrs["channel_groups"]
    assert root["ecg_125hz"]["0"].chunks == (1, 125)
    with pytest.raises(TypeError):
        serving.write_zarr(rec, tmp_path / "q.zarr", bogus=1)
    with pytest.raises(ValueError, match="storage_options"):
        serving.write_zarr(rec, tmp_path / "s.zarr", storage_options={"anon": True})
