"""Vendor quirks of real-world EDF writers: each gives ONE warning (naming the file and the
quirk) and the right values, or a typed error. Every case is a crafted file: a small valid
file written by pyedflib whose bytes are then bent the way some writer bends them.

Expected values come from pyedflib wherever it reads the file (or an equivalent one), else
they are computed by hand.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import random
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from biosigio_lib import Recording
from biosigio_lib.errors import BiosigIOError, CorruptFileError
from tests.lib.importers._edf_util import (
    field_offset,
    patch,
    pyedflib_signals,
    record_layout,
    set_field,
    write_edf,
)

_IMPORTERS = Path(__file__).resolve().parents[3] / "biosigio_lib" / "importers"


def read_one_warning(path: Path, match: str, **kw: object) -> Recording:
    """Read ``path`` expecting exactly one warning, naming the file and matching ``match``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rec = Recording.from_file(path, importer="edf", **kw)
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1, messages
    assert str(path) in messages[0]
    assert issubclass(caught[0].category, UserWarning)
    assert re.search(match, messages[0]), messages[0]
    return rec


def assert_bits(rec: Recording, labels: list[str], signals: list[np.ndarray]) -> None:
    assert rec.labels == labels
    for lab, ref in zip(labels, signals):
        assert rec.channel_data(lab).tobytes() == ref.tobytes(), lab


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    return write_edf(tmp_path / "plain.edf", rates=(20.0, 10.0), seconds=5, plus=False)


@pytest.fixture
def plus(tmp_path: Path) -> Path:
    return write_edf(tmp_path / "plus.edf", rates=(20.0, 10.0), seconds=5,
                     annotations=[(1.0, 0.0, "a"), (3.0, 0.5, "b")])


# ------------------------------------------------------------ 1. EDF+ without annotations
def test_no_assert_statements_in_the_importers() -> None:
    """``assert`` vanishes under ``python -O``: input checks must be typed errors."""
    found = [f"{p.name}:{node.lineno}" for p in sorted(_IMPORTERS.glob("*.py"))
             for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.Assert)]
    assert found == []


@pytest.mark.parametrize("kind", ["EDF+C", "EDF+D"])
def test_edf_plus_without_annotation_signal_reads_with_warning(plain: Path, kind: str) -> None:
    labels, signals = pyedflib_signals(plain)
    set_field(plain, "reserved", kind)
    rec = read_one_warning(plain, rf"{re.escape(kind)}.*no 'EDF Annotations' signal")
    assert_bits(rec, labels, signals)
    assert rec.metadata["start_time"] == dt.datetime(2021, 3, 4, 5, 6, 7)  # no sub-second
    assert rec.events.empty and rec.metadata["edf_file_type"] == kind


# ------------------------------------------------------------ 2. header fields range-checked
_SIGNAL_CASES = [
    ("samples_per_record", v, r"samples.per.record") for v in
    ("1e19", "-1e19", "nan", "inf", "-inf", "-1", "1e9")] + [
    ("digital_min", v, "digital") for v in ("1e19", "-1e19", "nan", "inf")] + [
    ("digital_max", v, "digital") for v in ("1e19", "nan", "-inf")] + [
    ("physical_min", v, "physical") for v in ("nan", "inf", "-inf", "1e999")] + [
    ("physical_max", v, "physical") for v in ("nan", "inf", "1e999")]


@pytest.mark.parametrize(("field", "value", "match"), _SIGNAL_CASES)
def test_out_of_range_signal_field_is_typed(plus: Path, field: str, value: str,
                                            match: str) -> None:
    set_field(plus, field, value, signal=1)
    with pytest.raises(CorruptFileError, match=match) as info:
        Recording.from_file(plus)
    assert str(plus) in str(info.value) and "signal 2 ('EEG C1')" in str(info.value)


def test_scaling_that_overflows_is_typed(plus: Path) -> None:
    set_field(plus, "physical_min", "-9e307", signal=1)
    set_field(plus, "physical_max", "9e307", signal=1)
    with pytest.raises(CorruptFileError, match=r"signal 2 \('EEG C1'\).*scal"):
        Recording.from_file(plus)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("n_records", "1e19", "number of records"),
    ("n_records", "nan", "number of records"),
    ("n_records", "-1e19", "number of records"),
    ("record_duration", "1e19", "data record duration"),
    ("record_duration", "nan", "data record duration"),
    ("record_duration", "inf", "data record duration"),
    ("record_duration", "1e-320", "data record duration"),
    ("header_bytes", "1e19", "header size"),
    ("header_bytes", "-inf", "header size"),
    ("n_signals", "1e99", "number of signals"),
    ("n_signals", "nan", "number of signals"),
])
def test_out_of_range_fixed_field_is_typed(plus: Path, field: str, value: str,
                                           match: str) -> None:
    set_field(plus, field, value)
    with pytest.raises(CorruptFileError, match=match) as info:
        Recording.from_file(plus)
    assert str(plus) in str(info.value)


_NASTY = ["1e19", "-1e19", "nan", "inf", "-inf", "1e-320", "0", "-0", "-1", "-2", "", "+",
          "1_000", "0x10", "1e999", "9e307", "-9e307", "99999999", "\xff\xfe", "1.5", " 12 ",
          "\x00\x00", "EDF+C", "EDF+D", "EDF Annotations", "١٢"]


def test_random_header_mutations_parse_or_raise_typed(plus: Path, tmp_path: Path) -> None:
    """Any mutated header either reads or raises a BiosigIOError subclass: never a crash."""
    rng = random.Random(20240509)
    base = plus.read_bytes()
    hb = int(base[184:192])
    fixed = ["version", "patient", "recording", "startdate", "starttime", "header_bytes",
             "reserved", "n_records", "record_duration", "n_signals"]
    per_signal = ["label", "transducer", "physical_min", "physical_max", "digital_min",
                  "digital_max", "prefilter", "samples_per_record", "reserved_signal"]
    target = tmp_path / "m.edf"
    outcomes = {"read": 0, "typed": 0}
    for _ in range(300):
        target.write_bytes(base)
        for _ in range(rng.randint(1, 3)):
            kind = rng.random()
            if kind < 0.7:
                name = rng.choice(fixed[1:] + per_signal)
                off, width = field_offset(plus, name, rng.randrange(3)) \
                    if name in per_signal else field_offset(plus, name)
                raw = rng.choice(_NASTY).encode("utf-8")
                patch(target, off, raw.ljust(width)[:width])
            elif kind < 0.9:
                pos = rng.randrange(hb)
                patch(target, pos, bytes([rng.randrange(256)]))
            else:
                data = target.read_bytes()
                target.write_bytes(data[: rng.randrange(len(data) + 1)] if rng.random() < 0.5
                                   else data + bytes(rng.randrange(1, 300)))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                Recording.from_file(target, importer="edf")
            outcomes["read"] += 1
        except BiosigIOError:
            outcomes["typed"] += 1
    assert outcomes["read"] > 10 and outcomes["typed"] > 10, outcomes


# ------------------------------------------------------------ 3. vendor quirks
@pytest.mark.parametrize("tal", [
    b"+1\x14\x14+1.5\x14event A\x14+3\x14event B\x14",
    b"+1\x14\x14\x00+1.5\x14event A\x14+3\x14event B\x14",
    b"+1\x14\x14\x00+1.5\x14event A\x14+3\x14event B\x14\x00",
])
def test_tals_without_nul_separator(tmp_path: Path, tal: bytes) -> None:
    path = write_edf(tmp_path / "t.edf", rates=(10.0,), seconds=4)
    hb, rb, ann = record_layout(path)
    patch(path, hb + rb + ann, tal + b"\x00" * 4)
    rec = read_one_warning(path, r"not separated by \\x00")
    ev = rec.events
    assert ev["onset"].tolist() == [1.5, 3.0]
    assert ev["description"].tolist() == ["event A", "event B"]
    assert ev["duration"].isna().all()


def test_tals_without_nul_separator_keep_durations(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "t.edf", rates=(10.0,), seconds=4)
    hb, rb, ann = record_layout(path)
    patch(path, hb + rb + ann, b"+1\x14\x14+1.5\x150.25\x14A\x14B\x14+3\x14C\x14\x00")
    ev = read_one_warning(path, r"not separated by \\x00").events
    assert ev["onset"].tolist() == [1.5, 1.5, 3.0]
    assert ev["description"].tolist() == ["A", "B", "C"]
    assert ev["duration"].iloc[0] == 0.25 and math.isnan(ev["duration"].iloc[2])


def test_quirk_warned_once_per_file_in_blocks(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "t.edf", rates=(10.0,), seconds=4)
    hb, rb, ann = record_layout(path)
    for r in (1, 3):
        patch(path, hb + r * rb + ann, b"+%d\x14\x14+%d.5\x14A\x14+%d.7\x14B\x14\x00" % (r, r, r))
    from biosigio_lib.importers import iter_blocks

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        blocks = list(iter_blocks(path, block_seconds=1.0))
    assert len(caught) == 1, [str(w.message) for w in caught]
    assert sum(len(b.events) for b in blocks) == 4


def test_annotation_signal_in_plain_edf_is_read_as_annotations(plus: Path) -> None:
    ref = Recording.from_file(plus)
    labels, signals = pyedflib_signals(plus)
    set_field(plus, "reserved", "")
    rec = read_one_warning(plus, r"plain EDF.*'EDF Annotations'")
    assert_bits(rec, labels, signals)
    assert rec.events.equals(ref.events)
    assert rec.metadata["edf_file_type"] == "EDF"


def test_minus_one_records_derived_from_size_with_warning(plus: Path) -> None:
    labels, signals = pyedflib_signals(plus)
    set_field(plus, "n_records", "-1")
    rec = read_one_warning(plus, r"-1.*5 data records")
    assert rec.metadata["edf_n_records"] == 5
    assert_bits(rec, labels, signals)
    plus.write_bytes(plus.read_bytes() + b"\x00" * 7)
    rec = read_one_warning(plus, r"-1.*5 data records.*7 trailing bytes")
    assert_bits(rec, labels, signals)


def test_zero_records_with_data_derived_from_size(plus: Path) -> None:
    labels, signals = pyedflib_signals(plus)
    set_field(plus, "n_records", "0")
    rec = read_one_warning(plus, r"declares 0 data records.*5")
    assert_bits(rec, labels, signals)


def test_more_records_than_declared_reads_declared(plus: Path) -> None:
    labels, signals = pyedflib_signals(plus)
    set_field(plus, "n_records", "3")
    rec = read_one_warning(plus, r"after the 3 declared data records")
    assert rec.metadata["edf_n_records"] == 3
    assert_bits(rec, labels, [s[: s.size * 3 // 5] for s in signals])


def test_trailing_partial_record_dropped_with_warning(plus: Path) -> None:
    labels, signals = pyedflib_signals(plus)
    _, rb, _ = record_layout(plus)
    plus.write_bytes(plus.read_bytes() + b"\x01" * (rb // 2))
    rec = read_one_warning(plus, rf"{rb // 2} bytes after the 5 declared data records")
    assert_bits(rec, labels, signals)


def test_non_ascii_and_nul_header_bytes(plus: Path) -> None:
    _, signals = pyedflib_signals(plus)
    raw = {"patient": b"P-007 M X M\xfcller", "label0": b"EEG\x00junk1",
           "label1": b"EEG\x00junk2"}
    off, width = field_offset(plus, "patient")
    patch(plus, off, raw["patient"].ljust(width))
    for i in (0, 1):
        off, width = field_offset(plus, "label", i)
        patch(plus, off, raw[f"label{i}"].ljust(width))
    rec = read_one_warning(plus, r"non-ASCII.*patient.*label of signal 1")
    assert_bits(rec, ["EEG", "EEG-1"], signals)
    assert rec.channels["EEG-1"]["original_label"] == "EEG"
    assert rec.metadata["edf_patient"]["name"] == "Müller"
    kept = rec.metadata["edf_header_raw"]
    assert kept["patient"].rstrip(b" ") == raw["patient"]
    assert kept["label of signal 1"].rstrip(b" ") == raw["label0"]
    assert "transducer of signal 1" not in kept


def test_utf8_label_decoded_with_warning(plain: Path) -> None:
    _, signals = pyedflib_signals(plain)
    off, width = field_offset(plain, "label", 1)
    patch(plain, off, "Fpz-Cé".encode().ljust(width))
    rec = read_one_warning(plain, r"non-ASCII.*label of signal 2")
    assert_bits(rec, ["EEG C0", "Fpz-Cé"], signals)
    assert rec.metadata["edf_header_raw"]["label of signal 2"].decode("utf-8").strip() \
        == "Fpz-Cé"


def test_physical_min_equals_max_reads_constant(plus: Path) -> None:
    _, signals = pyedflib_signals(plus)
    set_field(plus, "physical_min", "5", signal=1)
    set_field(plus, "physical_max", "5", signal=1)
    rec = read_one_warning(plus, r"signal 2 \('EEG C1'\).*physical minimum equals maximum")
    assert rec.channel_data("EEG C0").tobytes() == signals[0].tobytes()
    flat = rec.channel_data("EEG C1")
    assert flat.size == signals[1].size and (flat == 5.0).all()


def test_digital_and_physical_min_equal_max_reads_constant(plus: Path) -> None:
    for field, value in (("physical_min", "0"), ("physical_max", "0"), ("digital_min", "0"),
                         ("digital_max", "0")):
        set_field(plus, field, value, signal=0)
    rec = read_one_warning(plus, r"signal 1 \('EEG C0'\)")
    assert (rec.channel_data("EEG C0") == 0.0).all()


def test_digital_min_equals_max_is_typed(plus: Path) -> None:
    set_field(plus, "digital_min", "7", signal=1)
    set_field(plus, "digital_max", "7", signal=1)
    with pytest.raises(CorruptFileError, match=r"signal 2 \('EEG C1'\).*digital minimum equals"):
        Recording.from_file(plus)


@pytest.mark.parametrize("bdf", [False, True])
def test_swapped_physical_range_inverts_polarity_like_pyedflib(tmp_path: Path,
                                                               bdf: bool) -> None:
    path = write_edf(tmp_path / ("s.bdf" if bdf else "s.edf"), rates=(20.0, 10.0), seconds=3,
                     bdf=bdf)
    set_field(path, "physical_min", "200", signal=0)
    set_field(path, "physical_max", "-200", signal=0)
    labels, signals = pyedflib_signals(path)  # pyedflib reads it: negative gain is legal
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rec = Recording.from_file(path)
    assert_bits(rec, labels, signals)
    assert rec.channel_data(labels[0])[5] < -50  # 100 sin(pi/2) + noise, inverted


@pytest.mark.parametrize("bdf", [False, True])
def test_swapped_digital_range_reads_as_declared_pairs(tmp_path: Path, bdf: bool) -> None:
    path = write_edf(tmp_path / ("s.bdf" if bdf else "s.edf"), rates=(20.0, 10.0), seconds=3,
                     bdf=bdf)
    dmax = 8388607 if bdf else 32767
    # pyedflib refuses digital_min > digital_max; the equivalent file it reads has the
    # physical pair swapped instead (the same two (digital, physical) points).
    twin = tmp_path / ("twin.bdf" if bdf else "twin.edf")
    shutil.copy(path, twin)
    set_field(twin, "physical_min", "200", signal=0)
    set_field(twin, "physical_max", "-200", signal=0)
    labels, signals = pyedflib_signals(twin)
    set_field(path, "digital_min", str(dmax), signal=0)
    set_field(path, "digital_max", str(-dmax - 1), signal=0)
    rec = read_one_warning(path, r"signal 1 \('EEG C0'\).*digital minimum .* above")
    assert_bits(rec, labels, signals)
    assert rec.channels["EEG C0"]["digital_min"] == dmax  # the header's values, as declared


def test_swapped_digital_and_physical_ranges_equal_the_original(plus: Path) -> None:
    _, signals = pyedflib_signals(plus)
    for field, value in (("physical_min", "200"), ("physical_max", "-200"),
                         ("digital_min", "32767"), ("digital_max", "-32768")):
        set_field(plus, field, value, signal=0)
    rec = read_one_warning(plus, r"signal 1 \('EEG C0'\).*digital minimum")
    assert rec.channel_data("EEG C0").tobytes() == signals[0].tobytes()



@pytest.mark.parametrize("onset", [b"+1e20", b"+99999999999999999999", b"+4e9"])
def test_absurd_first_record_onset_is_typed(tmp_path: Path, onset: bytes) -> None:
    path = write_edf(tmp_path / "t.edf", rates=(10.0,), seconds=3)
    hb, rb, ann = record_layout(path)
    for r in range(3):
        patch(path, hb + r * rb + ann, onset + b"%d\x14\x14\x00" % r)
    with pytest.raises(CorruptFileError, match=r"data record 0 starts at .* after the header"):
        Recording.from_file(path)


def test_decimal_comma_in_numeric_fields(plus: Path) -> None:
    labels, signals = pyedflib_signals(plus)
    set_field(plus, "physical_min", "-200,0", signal=0)
    set_field(plus, "physical_max", "200,25", signal=1)
    rec = read_one_warning(plus, r"decimal comma.*physical_min of signal 1.*physical_max of "
                                 r"signal 2")
    assert_bits(rec, labels, signals)
    set_field(plus, "samples_per_record", "20,0", signal=0)
    with pytest.raises(CorruptFileError, match="samples_per_record of signal 1"):
        Recording.from_file(plus)


def test_start_plus_onset_past_year_9999_is_typed(tmp_path: Path) -> None:
    path = write_edf(tmp_path / "t.edf", rates=(10.0,), seconds=2,
                     start=dt.datetime(2099, 12, 31, 23, 59, 59))
    set_field(path, "recording", "Startdate 31-DEC-9999 X X unit_test")
    hb, rb, ann = record_layout(path)
    for r in range(2):
        patch(path, hb + r * rb + ann, b"+%d\x14\x14\x00" % (86400 * 365 + r))
    with pytest.raises(CorruptFileError, match="past year 9999"):
        Recording.from_file(path)
