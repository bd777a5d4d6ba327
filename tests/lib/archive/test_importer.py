"""The ``tabular`` importer: dispatch by magic/suffix/manifest, kwargs, blocks, the contract."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.importers import get_importer, guess_importer, iter_blocks
from biosigio_lib.testing import assert_recordings_equal, synthetic_recording
from tests.lib.importers.contract import ImporterContract


@pytest.fixture(params=["to_parquet", "to_arrow"])
def archived(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Recording, str]:
    rec = synthetic_recording(n_channels=3, seconds=3.0, extra_rates=(256.0,))
    rec.metadata["source_file"] = "/data/original.edf"
    return rec, getattr(rec, request.param)(tmp_path / "rec.bin")


class TestTabularImporter(ImporterContract):
    source_format = "synthetic"

    @pytest.fixture
    def recording(self, archived: tuple[Recording, str]) -> Recording:
        return Recording.from_file(archived[1])


def test_folder_is_recognised_by_its_manifest(archived: tuple[Recording, str]) -> None:
    assert guess_importer(archived[1]).name == "tabular"


@pytest.mark.parametrize("method", ["to_parquet", "to_arrow"])
def test_single_file_is_recognised_by_magic(tmp_path: Path, method: str) -> None:
    rec = synthetic_recording()
    out = getattr(rec, method)(tmp_path / "rec.parquet")
    renamed = tmp_path / "no_suffix.dat"
    shutil.move(out, renamed)
    assert guess_importer(renamed).name == "tabular"
    assert_recordings_equal(Recording.from_file(renamed), rec)


def test_importer_declares_its_formats() -> None:
    imp = get_importer("tabular")
    assert set(imp.extensions) == {".parquet", ".feather", ".arrow"}
    assert imp.match_magic(b"PAR1....") and imp.match_magic(b"ARROW1\x00\x00")


def test_unknown_keyword_is_refused(archived: tuple[Recording, str]) -> None:
    with pytest.raises(TypeError, match="mixed_rate"):
        Recording.from_file(archived[1], mixed_rate="error")


def test_iter_blocks_reassemble(archived: tuple[Recording, str]) -> None:
    rec, out = archived
    blocks = list(iter_blocks(out, block_seconds=1.0, channels=["EEG002"]))
    assert len(blocks) == 3
    data = np.concatenate([b.channel_data("EEG002") for b in blocks])
    assert data.tobytes() == rec.channel_data("EEG002").tobytes()
    assert blocks[1].grid_of("EEG002").t0 == 1.0
