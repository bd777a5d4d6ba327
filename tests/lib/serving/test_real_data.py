"""Real third-party recordings (../shared/data/real) through the serving store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording, serving
from biosigio_lib.importers import list_importers

pytestmark = pytest.mark.real_data


@pytest.fixture
def edf_reader() -> None:
    if "edf" not in list_importers() or not list_importers()["edf"]["available"]:
        pytest.skip("the edf importer is not available")


@pytest.mark.usefixtures("edf_reader")
def test_ten_rate_edf_serves_every_grid_within_its_bound(real_data: Path,
                                                         tmp_path: Path) -> None:
    rec = Recording.from_file(real_data / "edf" / "test_reduced.edf")
    out = rec.to_zarr(tmp_path / "r.zarr")
    groups = serving.list_groups(out)
    assert len(groups) == len(rec.grids) + 1  # the trigger gets a group of its own
    assert "eeg_250hz_from512" in groups and "eeg_1hz" in groups
    report = serving.verify_level0(rec, out)
    assert report["ok"], report["failures"][:5]
    low = Recording.from_file(out, group="eeg_1hz")
    label = low.labels[0]
    np.testing.assert_allclose(low.channel_data(label), rec.channel_data(label),
                               atol=low.channels[label]["max_abs_error"], rtol=0)
    assert len(low.events) == len(rec.events)


@pytest.mark.usefixtures("edf_reader")
def test_bdf_status_channel_keeps_its_levels(real_data: Path, tmp_path: Path) -> None:
    """The Status channel is not filtered: same samples, levels within the bound (its
    physical values are not integers, so int16 cannot hold them bit-exactly)."""
    rec = Recording.from_file(real_data / "bdf" / "test_bdf_stim_channel.bdf")
    status = [lab for lab, c in rec.channels.items() if c["modality"] == "DISCRETE"]
    assert status
    out = rec.to_zarr(tmp_path / "b.zarr")
    back = Recording.from_file(out, group="discrete_500hz")
    for lab in status:
        got, want = back.channel_data(lab), rec.channel_data(lab)
        bound = back.channels[lab]["max_abs_error"]
        np.testing.assert_allclose(got, want, atol=bound, rtol=0)
        assert len(np.unique(got)) == len(np.unique(want)) and not back.channels[lab][
            "anti_aliased"]
    eeg = Recording.from_file(out, group="eeg_250hz")
    assert eeg.grid(250.0).n_samples == rec.grid(500.0).n_samples // 2
