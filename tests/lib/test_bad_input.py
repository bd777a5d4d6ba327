"""Recording.from_file dispatch on odd input: content wins over names, errors are typed."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import BiosigIOError, UnsupportedFormatError
from biosigio_lib.testing import assert_recordings_equal
from tests.lib.importers._edf_util import write_edf


@pytest.fixture
def edf(tmp_path: Path) -> Path:
    return write_edf(tmp_path / "x.edf", rates=(20.0, 10.0), seconds=2,
                     annotations=[(1.0, 0.0, "a")])


def test_explicit_file_importer_on_a_folder_is_a_typed_error(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "notes.txt").write_text("hi")
    for name in ("edf", "xdf", "wfdb"):
        with pytest.raises(UnsupportedFormatError, match="folder") as info:
            Recording.from_file(folder, importer=name)
        assert str(folder) in str(info.value)
    with pytest.raises(UnsupportedFormatError, match="no importer recognises") as info:
        Recording.from_file(folder)
    assert "tabular" in str(info.value) and str(folder) in str(info.value)


def test_unknown_importer_name_names_the_file(edf: Path) -> None:
    with pytest.raises(UnsupportedFormatError, match="no importer named 'nope'") as info:
        Recording.from_file(edf, importer="nope")
    assert str(edf) in str(info.value)


def test_edf_named_gz_but_not_compressed_reads_by_content(edf: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain.edf.gz"
    shutil.copy(edf, plain)
    assert_recordings_equal(Recording.from_file(plain), Recording.from_file(edf),
                            ignore_metadata_keys=("source_file",))


def test_gzipped_edf_without_gz_suffix_reads(edf: Path, tmp_path: Path) -> None:
    packed = tmp_path / "packed.edf"
    packed.write_bytes(gzip.compress(edf.read_bytes()))
    assert_recordings_equal(Recording.from_file(packed), Recording.from_file(edf),
                            ignore_metadata_keys=("source_file",))


def test_truncated_gzipped_edf_is_typed(edf: Path, tmp_path: Path) -> None:
    packed = tmp_path / "cut.edf.gz"
    data = gzip.compress(edf.read_bytes())
    packed.write_bytes(data[: len(data) // 2])
    with pytest.raises(BiosigIOError, match=r"cut\.edf\.gz"):
        Recording.from_file(packed)


def test_default_iter_blocks_loses_no_sample_or_event(tmp_path: Path) -> None:
    """Samples before 0 s and events outside the data still come out of some block."""
    import numpy as np

    from biosigio_lib._fs import resolve
    from biosigio_lib.importers import Importer

    whole = Recording()
    whole.add_channel("x", np.arange(25.0), 10.0, t0=-0.5)
    whole.add_events([-2.0, 0.1, 1.0, 99.0], 0.0, ["before", "a", "b", "after"])

    class Fixed(Importer):
        name = "fixed-test"

        def read(self, loc, **kwargs):  # type: ignore[no-untyped-def]
            return whole

    blocks = list(Fixed().iter_blocks(resolve(tmp_path), block_seconds=1.0))
    samples = np.concatenate([b.channel_data("x") for b in blocks])
    assert np.array_equal(samples, whole.channel_data("x"))
    assert blocks[0].grid_of("x").t0 == -0.5
    seen = {d for b in blocks for d in b.events["description"]}
    assert seen == {"before", "a", "b", "after"}


@pytest.mark.parametrize("importer", [None, "edf", "xdf", "wfdb", "tabular", "zarr"])
@pytest.mark.parametrize("where", ["local", "memory"])
def test_missing_source_is_a_typed_not_found_error(tmp_path: Path, importer: str | None,
                                                   where: str) -> None:
    """A missing path is a BiosigIOError (code 'not_found') and still a FileNotFoundError."""
    from biosigio_lib.errors import SourceNotFoundError
    from biosigio_lib.importers import list_importers

    if importer is not None and importer not in list_importers():
        pytest.skip(f"no {importer} importer in this build")
    suffix = {"wfdb": ".hea", "tabular": ".parquet", "zarr": ".zarr"}.get(importer or "", ".edf")
    path = (str(tmp_path / f"nope{suffix}") if where == "local"
            else f"memory://missing-tests/nope{suffix}")
    with pytest.raises(SourceNotFoundError) as info:
        Recording.from_file(path, importer=importer)
    err = info.value
    assert isinstance(err, BiosigIOError) and isinstance(err, FileNotFoundError)
    assert err.code == "not_found"
    assert path in str(err) and "check" in str(err)


@pytest.mark.parametrize("error", [PermissionError(13, "Permission denied"),
                                   OSError(22, "Invalid argument")])
def test_unreadable_file_is_not_reported_as_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  error: OSError) -> None:
    """A file we may not read (mode 000, S3 AccessDenied) was 'the file is empty'."""
    from fsspec.implementations.local import LocalFileSystem

    from biosigio_lib.errors import FileReadError

    path = tmp_path / "locked.edf"
    path.write_bytes(b"0" * 300)

    def refuse(self: object, *args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(LocalFileSystem, "_open", refuse)
    with pytest.raises(FileReadError, match=r"locked\.edf.*cannot read") as info:
        Recording.from_file(path)
    assert "empty" not in str(info.value)
