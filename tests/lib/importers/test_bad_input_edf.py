"""Bad EDF/BDF input: a typed error naming the file and the problem, or a warned tolerant read.

Each case starts from a small valid file written by pyedflib, then corrupts bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import CorruptFileError, TruncatedFileError, UnsupportedFormatError
from tests.lib.importers._edf_util import patch, record_layout, set_field, write_edf


@pytest.fixture
def edf(tmp_path: Path) -> Path:
    return write_edf(tmp_path / "x.edf", rates=(20.0, 10.0), seconds=5,
                     annotations=[(1.0, 0.0, "a"), (3.0, 0.0, "b")])


def _raises(path: Path, exc: type[Exception], match: str, **kw: object) -> None:
    with pytest.raises(exc, match=match) as info:
        Recording.from_file(path, importer="edf", **kw)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.edf"
    path.write_bytes(b"")
    with pytest.raises(TruncatedFileError, match="empty"):
        Recording.from_file(path)  # chosen by suffix, refused by the reader
    _raises(path, TruncatedFileError, "empty")
    with pytest.raises(UnsupportedFormatError, match="empty"):
        Recording.from_file(path.rename(path.with_suffix(".unknownext")))


def test_truncated_inside_header(edf: Path) -> None:
    edf.write_bytes(edf.read_bytes()[:300])
    _raises(edf, TruncatedFileError, "inside the header")


def test_truncated_data_raises_then_tolerant_read_warns(edf: Path) -> None:
    full = Recording.from_file(edf)
    hb, rb, _ = record_layout(edf)
    edf.write_bytes(edf.read_bytes()[: hb + 3 * rb + rb // 2])  # 3.5 of 5 records
    _raises(edf, TruncatedFileError, "promises 5 data records")
    with pytest.warns(UserWarning, match="only 3 complete"):
        part = Recording.from_file(edf, on_truncated="warn")
    for lab in full.labels:
        data = part.channel_data(lab)
        assert np.array_equal(data, full.channel_data(lab)[: data.size])
        assert data.size == 3 * part.rate_of(lab)


def test_unknown_record_count_computed_from_size(edf: Path) -> None:
    full = Recording.from_file(edf)
    set_field(edf, "n_records", "-1")
    with pytest.warns(UserWarning, match="-1"):  # never silently (issue 9)
        rec = Recording.from_file(edf)
    assert rec.metadata["edf_n_records"] == 5
    assert rec.channel_data("EEG C0").tobytes() == full.channel_data("EEG C0").tobytes()
    edf.write_bytes(edf.read_bytes() + b"\x00" * 7)  # plus a partial record
    with pytest.warns(UserWarning, match="7 trailing bytes"):
        assert Recording.from_file(edf).metadata["edf_n_records"] == 5


def test_trailing_bytes_warned(edf: Path) -> None:
    edf.write_bytes(edf.read_bytes() + b"junk")
    with pytest.warns(UserWarning, match="4 bytes after the 5 declared"):
        Recording.from_file(edf)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("n_signals", "abcd", "number of signals"),
    ("n_signals", "-3", "number of signals is -3"),
    ("header_bytes", "999", "header size field says 999"),
    ("n_records", "many", "number of records"),
    ("n_records", "-7", "number of data records is -7"),
    ("record_duration", "x", "data record duration"),
    ("record_duration", "-1", "duration is '-1'"),
    ("record_duration", "0", "duration is 0 but"),
    ("samples_per_record", "ten", "samples_per_record of signal 1"),
    ("samples_per_record", "0", "has 0 samples per record"),
    ("physical_min", "low", "physical_min of signal 1"),
    # physical_min == physical_max now reads as a flat signal with a warning:
    # test_edf_quirks.py::test_physical_min_equals_max_reads_constant
    ("digital_min", "40000", "digital range"),
    ("digital_max", "-40000", "digital range"),
    ("version", "1       ", "version field"),
])
def test_corrupt_header_fields(edf: Path, field: str, value: str, match: str) -> None:
    set_field(edf, field, value)
    _raises(edf, CorruptFileError, match)


def test_wrong_extension_content_is_not_edf(tmp_path: Path) -> None:
    path = tmp_path / "notes.edf"
    path.write_text("subject,value\n1,2\n" * 40)
    _raises(path, CorruptFileError, "neither EDF")


def test_edf_with_a_wrong_extension_is_found_by_magic(edf: Path, tmp_path: Path) -> None:
    other = tmp_path / "data.txt"
    other.write_bytes(edf.read_bytes())
    assert Recording.from_file(other).labels == Recording.from_file(edf).labels


@pytest.mark.parametrize(("tal", "match"), [
    (b"x0\x14\x14\x00", "does not start with"),
    (b"+zz\x14\x14\x00", "not a number"),
    (b"+0\x14\x00", "no timekeeping TAL"),
    (b"+0", "unterminated TAL"),
    (b"+0\x14\x14\x00+1\x15-2\x14bad\x14\x00", "duration '-2' is invalid"),
])
def test_unreadable_annotation_record(edf: Path, tal: bytes, match: str) -> None:
    hb, rb, ann = record_layout(edf)
    patch(edf, hb + 2 * rb + ann, tal + b"\x00" * 8)
    _raises(edf, CorruptFileError, f"data record 2.*{match}")


def test_non_utf8_annotation_falls_back_to_latin1(edf: Path) -> None:
    hb, rb, ann = record_layout(edf)
    patch(edf, hb + 1 * rb + ann, b"+1\x14\x14\x00+1.5\x14caf\xe9\x14\x00")
    with pytest.warns(UserWarning, match="not UTF-8"):
        rec = Recording.from_file(edf)
    assert "café" in rec.events["description"].tolist()


def test_invalid_start_date_warns_and_leaves_it_unset(edf: Path) -> None:
    set_field(edf, "startdate", "31.02.21")
    with pytest.warns(UserWarning, match="not a valid date"):
        assert Recording.from_file(edf).metadata["start_time"] is None


def test_bad_options_are_refused(edf: Path) -> None:
    with pytest.raises(ValueError, match="status"):
        Recording.from_file(edf, status="bits")
    with pytest.raises(ValueError, match="on_truncated"):
        Recording.from_file(edf, on_truncated="ignore")
    with pytest.raises(TypeError, match="does not take"):
        Recording.from_file(edf, channels=["x"])
