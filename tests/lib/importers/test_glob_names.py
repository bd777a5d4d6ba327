"""Importers find their companion files when names hold glob characters (``[``, ``*``, ``?``).

fsspec's ``glob``/``get`` expand those characters, so a pattern built from a folder or record
name matched other files or none: annotations or sidecars went missing without a word.
"""

from __future__ import annotations

import shutil
import uuid
import warnings
from pathlib import Path

import fsspec
import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import BiosigIOError, UnsupportedFormatError
from biosigio_lib.importers.bids import scan_bids, scan_bids_skipped
from tests.conftest import S3Server, requires
from tests.lib.importers.test_bids import dataset  # noqa: F401  (the generated BIDS dataset)

FOLDERS = ["set[1]", "set*", "set?", "a [b] c", "ünï [x]"]


def _upload(local: Path, url: str, opts: dict | None = None) -> None:
    """Copy a local tree to an fsspec URL one named file at a time (no glob expansion)."""
    fs, base = fsspec.core.url_to_fs(url, **(opts or {}))
    for f in sorted(p for p in local.rglob("*") if p.is_file()):
        fs.put_file(str(f), f"{base}/{f.relative_to(local).as_posix()}")


def _where(tmp_path: Path, local: Path, name: str, backend: str) -> str:
    """``local`` placed as folder ``name`` on local disk or memory://; its path or URL."""
    if backend == "local":
        dst = tmp_path / "in" / name
        dst.parent.mkdir(exist_ok=True)
        shutil.copytree(local, dst)
        return str(dst)
    url = f"memory://globnames-{uuid.uuid4().hex}/{name}"
    _upload(local, url)
    return url


def _decoy(name: str) -> str:
    """A sibling name that the glob pattern ``name`` matches (``set[1]`` -> ``set1``)."""
    return name.replace("[", "").replace("]", "").replace("*", "Z").replace("?", "Q")


# ------------------------------------------------------------------------------- WFDB
@pytest.fixture
def wfdb_record(tmp_path: Path) -> Path:
    """``rec1`` (signal + annotations) and a decoy ``rec2`` in one folder."""
    wfdb = pytest.importorskip("wfdb")
    d = tmp_path / "wfdb-src"
    d.mkdir()
    for name, value in (("rec1", 1.0), ("rec2", 2.0)):
        wfdb.wrsamp(name, fs=100, units=["mV"], sig_name=["a"], fmt=["16"],
                    p_signal=np.full((20, 1), value), write_dir=str(d))
    wfdb.wrann("rec1", "atr", np.array([2, 5]), np.array(["N", "V"]), write_dir=str(d))
    return d


@requires("wfdb")
@pytest.mark.parametrize("backend", ["local", "memory"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_wfdb_record_in_a_folder_with_glob_characters(wfdb_record: Path, tmp_path: Path,
                                                       backend: str, folder: str) -> None:
    base = _where(tmp_path, wfdb_record, folder, backend)
    _where(tmp_path, wfdb_record, _decoy(folder), backend)
    rec = Recording.from_file(f"{base}/rec1.hea")
    assert np.allclose(rec.channel_data("a"), 1.0)
    assert rec.events["description"].tolist() == ["N", "V"]


@requires("wfdb")
def test_wfdb_record_file_named_with_brackets_is_a_typed_error(tmp_path: Path) -> None:
    """WFDB record names are letters, digits, ``_`` and ``-``: ``rec[1]`` is refused, typed."""
    wfdb = pytest.importorskip("wfdb")
    for name, value in (("rec[1]", 1.0), ("rec1", 2.0)):
        wfdb.wrsamp(name, fs=100, units=["mV"], sig_name=["a"], fmt=["16"],
                    p_signal=np.full((20, 1), value), write_dir=str(tmp_path))
    assert np.allclose(Recording.from_file(tmp_path / "rec1.hea").channel_data("a"), 2.0)
    with pytest.raises(BiosigIOError, match=r"rec\[1\]\.hea"):
        Recording.from_file(tmp_path / "rec[1].hea")


# ------------------------------------------------------------------------------- BIDS
@pytest.mark.parametrize("backend", ["local", "memory"])
@pytest.mark.parametrize("folder", FOLDERS)
def test_bids_dataset_in_a_folder_with_glob_characters(dataset: Path,  # noqa: F811
                                                       tmp_path: Path, backend: str,
                                                       folder: str) -> None:
    root = _where(tmp_path, dataset, folder, backend)
    _where(tmp_path, dataset, _decoy(folder), backend)  # what a glob of the name matches
    found = scan_bids(root)
    assert [r.key for r in found] == ["sub-01_ses-a_task-rest_run-1_eeg", "sub-02_task-grip_emg"]
    assert found[0].path == f"{root}/sub-01/ses-a/eeg/sub-01_ses-a_task-rest_run-1_eeg.edf"
    assert [p.rsplit("/", 1)[1] for p, _ in scan_bids_skipped(root)] == [
        "sub-01_ses-a_task-rest_run-2_eeg.vhdr"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        rec = Recording.from_file(found[0].path)
    # sidecars from the root, subject and datatype levels (inheritance) all applied
    assert rec.metadata["bids_sidecar"] == {"PowerLineFrequency": 60, "TaskName": "rest",
                                            "EEGReference": "linked mastoids",
                                            "SamplingFrequency": 100}
    assert rec.channels["Fz"]["status"] == "good"
    with pytest.raises(UnsupportedFormatError, match=r"open the data file instead.*run-1_eeg"):
        Recording.from_file(f"{root}/sub-01/ses-a/eeg/sub-01_ses-a_task-rest_events.tsv")


@pytest.mark.parametrize("backend", ["local", "memory"])
def test_bids_entity_with_glob_characters_is_skipped_with_a_reason(
        dataset: Path, tmp_path: Path, backend: str) -> None:  # noqa: F811
    """``sub-[1]`` is not a BIDS entity value: reported as skipped, not silently dropped."""
    bad = dataset / "sub-[1]" / "eeg"
    bad.mkdir(parents=True)
    (bad / "sub-[1]_task-rest_eeg.edf").write_bytes(b"x")
    root = _where(tmp_path, dataset, "ds", backend)
    assert len(scan_bids(root)) == 2
    assert any(p.endswith("sub-[1]_task-rest_eeg.edf") and "not made of BIDS entities" in why
               for p, why in scan_bids_skipped(root))


@requires("wfdb")
def test_wfdb_and_bids_on_s3_in_a_folder_with_brackets(wfdb_record: Path, dataset: Path,  # noqa: F811
                                                       s3_server: S3Server) -> None:
    opts = s3_server.storage_options
    for name in ("set[1]", "set1"):
        _upload(wfdb_record, s3_server.url("wfdb", name), opts)
        _upload(dataset, s3_server.url("bids", name), opts)
    rec = Recording.from_file(s3_server.url("wfdb", "set[1]", "rec1.hea"), storage_options=opts)
    assert rec.events["description"].tolist() == ["N", "V"]
    root = s3_server.url("bids", "set[1]")
    found = scan_bids(root, storage_options=opts)
    assert [r.path for r in found] == [
        f"{root}/sub-01/ses-a/eeg/sub-01_ses-a_task-rest_run-1_eeg.edf",
        f"{root}/sub-02/emg/sub-02_task-grip_emg.bdf"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        bids = Recording.from_file(found[0].path, storage_options=opts)
    assert bids.metadata["bids_sidecar"]["PowerLineFrequency"] == 60
