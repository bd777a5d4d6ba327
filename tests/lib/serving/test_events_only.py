"""Events-only stores: a recording without channels (annotation-only EDF+) is served too."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

from biosigio_lib import Recording, StoreExistsError, serving
from biosigio_lib.errors import ArchiveFormatError
from biosigio_lib.importers import iter_blocks
from biosigio_lib.serving import ServingParams, writer
from biosigio_lib.testing import assert_recordings_equal

from .conftest import mixed_recording

_IGNORE_MD = ("source_file", "source_format", "original_source_file", "original_source_format",
              "zarr_group", "serving_version")


def annotations_only() -> Recording:
    """Sleep-stage style events with awkward values: NaN and -0.0 durations, repeats, extras."""
    rec = Recording({"subject": "sub-01", "source_file": "/data/hyp.edf", "source_format": "edf",
                     "source_checksum": "sha256:feed",
                     "start_time": dt.datetime(2020, 1, 2, 3, 4, 5, 678901)})
    onsets = np.array([0.0, 30.0, 60.0, 90.000000001, 120.0, 1e-9])
    rec.add_events(onsets, [30.0, np.nan, 30.0, -0.0, 30.0, 0.0],
                   ["Sleep stage W", "Sleep stage 1", "Sleep stage W", "Lights off",
                    "Sleep stage 1", "Sleep stage W"], scorer=["a", "b", "a", "a", "b", "b"],
                   epoch=[0, 1, 2, 3, 4, 5])
    return rec


def _store_root(store: str) -> zarr.Group:
    return zarr.open_group(writer.layout.open_store(store, read_only=True)[0], mode="r")


def test_round_trip_is_bit_exact(store: str) -> None:
    rec = annotations_only()
    out = serving.write_zarr(rec, store)
    assert serving.list_groups(out) == []
    back = Recording.from_file(out)
    assert back.n_channels == 0 and back.metadata["zarr_group"] is None
    assert back.metadata["original_source_file"] == "/data/hyp.edf"
    assert back.metadata["start_time"] == rec.metadata["start_time"]
    assert_recordings_equal(back, rec, ignore_metadata_keys=_IGNORE_MD)
    for col in ("onset", "duration"):  # bits, not just values (-0.0, NaN, 1e-9)
        assert back.events[col].to_numpy().tobytes() == rec.events[col].to_numpy().tobytes()
    assert_recordings_equal(serving.read_zarr(out), back, ignore_metadata_keys=())


def test_root_attrs_and_events_encoding(store: str) -> None:
    rec = annotations_only()
    out = serving.write_zarr(rec, store)
    root = _store_root(out)
    ra = root.attrs.asdict()
    assert (ra["format"], ra["format_version"]) == ("biosigio-zarr", 2)
    assert ra["channel_groups"] == [] and list(root.group_keys()) == ["events"]
    assert ra["source_file"] == "/data/hyp.edf" and ra["source_checksum"] == "sha256:feed"
    assert ra["serving_version"] == ServingParams().version()
    assert ra["recording_metadata"]["subject"] == "sub-01"
    for key in ("modality_rates", "serving_params", "dtype", "created_utc", "writer"):
        assert key in ra
    ev = root["events"]
    assert ev.attrs["n_events"] == 6
    assert ev.attrs["label_map"] == {"0": "Sleep stage W", "1": "Sleep stage 1", "2": "Lights off"}
    assert ev["code"][...].tolist() == [0, 1, 0, 2, 1, 0] and ev["code"].dtype == np.int32
    assert ev.attrs["extra_column_order"] == ["scorer", "epoch"]


def test_time_window_and_read_events(tmp_path: Path) -> None:
    out = annotations_only().to_zarr(tmp_path / "e.zarr")
    part = Recording.from_file(out, tmin=45.0, tmax=100.0)
    assert part.events["description"].tolist() == ["Sleep stage W", "Lights off"]
    ev = serving.read_events(out)
    assert list(ev.columns) == ["onset", "duration", "description", "scorer", "epoch"]
    assert ev["epoch"].tolist() == list(range(6))
    blocks = list(iter_blocks(out, 60.0))
    assert len(blocks) == 1 and len(blocks[0].events) == 6


def test_views_and_groups_say_there_is_no_signal(tmp_path: Path) -> None:
    out = annotations_only().to_zarr(tmp_path / "e.zarr")
    with pytest.raises(ValueError, match="no signal groups"):
        serving.read_view(out, None, 0)
    with pytest.raises(KeyError, match="no signal groups"):
        serving.read_view(out, "eeg_250hz", 1)
    with pytest.raises(ValueError, match="no signal groups"):
        serving.pick_view_level(out, None, 800)
    with pytest.raises(KeyError, match="no signal groups"):
        Recording.from_file(out, group="eeg_250hz")
    with pytest.raises(KeyError, match="no signal groups"):
        serving.read_zarr(out, channels=["Fpz"])


def test_verify_level0(tmp_path: Path) -> None:
    rec = annotations_only()
    out = rec.to_zarr(tmp_path / "e.zarr")
    report = serving.verify_level0(rec, out)
    assert report["ok"] and report["groups"] == {} and report["failures"] == []
    # a source with signal against the events-only store: each missing group is named
    bad = serving.verify_level0(mixed_recording(2.0), out)
    assert not bad["ok"]
    assert "eeg_250hz: missing from the store" in bad["failures"]


def test_no_channels_no_events_is_a_valid_empty_store(store: str) -> None:
    rec = Recording({"subject": "sub-09"})
    out = serving.write_zarr(rec, store)
    assert serving.list_groups(out) == []
    back = Recording.from_file(out)
    assert back.n_channels == 0 and len(back.events) == 0
    assert back.metadata["subject"] == "sub-09"
    assert _store_root(out)["events"].attrs["n_events"] == 0
    assert len(serving.read_events(out)) == 0


def test_overwrite_both_ways(store: str) -> None:
    serving.write_zarr(annotations_only(), store)
    with pytest.raises(StoreExistsError):
        serving.write_zarr(annotations_only(), store)
    serving.write_zarr(mixed_recording(2.0), store, overwrite=True)
    assert len(serving.list_groups(store)) == 3
    serving.write_zarr(annotations_only(), store, overwrite=True)
    assert serving.list_groups(store) == []
    assert sorted(_store_root(store).group_keys()) == ["events"]  # no stale signal groups


def test_interrupted_write_leaves_nothing(store: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(writer, "_write_events", failing)
    with pytest.raises(RuntimeError, match="disk on fire"):
        serving.write_zarr(annotations_only(), store)
    loc = writer.resolve(store)
    assert not loc.exists()
    if loc.is_local:
        assert list(Path(loc.path).parent.iterdir()) == []
    with pytest.raises((FileNotFoundError, ArchiveFormatError)):
        serving.read_zarr(store)


@pytest.mark.real_data
def test_real_hypnogram(real_data: Path, tmp_path: Path) -> None:
    """SC4001EC-Hypnogram.edf: EDF+ with 0 data signals; every annotation is served."""
    rec = Recording.from_file(real_data / "edf" / "SC4001EC-Hypnogram.edf")
    assert rec.n_channels == 0 and len(rec.events) == 154
    out = rec.to_zarr(tmp_path / "h.zarr")
    back = Recording.from_file(out)
    assert_recordings_equal(back, rec, ignore_metadata_keys=_IGNORE_MD)
    pd.testing.assert_frame_equal(serving.read_events(out), rec.events, check_exact=True)
