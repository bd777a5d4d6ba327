"""Strings that are not valid UTF-8 (surrogate-escaped bytes, lone surrogates) archive losslessly.

A Latin-1 file name on Linux reaches Python as ``'caf\\udce9.edf'`` (surrogateescape); a label
or annotation decoded the same way carries lone surrogates. Parquet/Arrow names and metadata
must be UTF-8, so such strings travel as typed envelopes and escaped column names.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from biosigio_lib import Recording
from biosigio_lib._jsonsafe import dumps, loads
from biosigio_lib.archive import write_arrow, write_parquet
from biosigio_lib.testing import assert_recordings_equal

WRITERS = {"parquet": write_parquet, "arrow": write_arrow}
LATIN1_NAME = b"/data/caf\xe9.edf".decode("utf-8", "surrogateescape")  # '/data/caf\udce9.edf'


def _recording(multi_grid: bool) -> Recording:
    rec = Recording({"source_file": LATIN1_NAME, "source_format": "edf",
                     "subject": "M\udcfcller", "lone": "\ud800 high, \udfff low",
                     "nested": {"k\udce9y": ["v\udce9", 1]}})
    rng = np.random.default_rng(0)
    rec.add_channel("Fp1\udce9", rng.standard_normal(200), 100.0, "\udcb5V", "EEG",
                    transducer="Ag\udce9Cl")
    rec.add_channel("Fp1\\udce9", rng.standard_normal(200), 100.0, "uV", "EEG")  # escape look-alike
    rec.add_channel("time", rng.standard_normal(200), 100.0, "s", "MISC")
    if multi_grid:
        rec.add_channel("ECG\udc80", rng.standard_normal(50), 25.0, "mV", "ECG")
    rec.add_events([0.5, 1.0], [0.1, 0.0], ["caf\udce9 start", "plain"],
                   note=["x\udcff", "y"])
    return rec


@pytest.mark.parametrize("container", ["parquet", "arrow"])
@pytest.mark.parametrize("multi_grid", [False, True])
def test_non_utf8_strings_round_trip_bit_exact(tmp_path: Path, container: str,
                                               multi_grid: bool) -> None:
    rec = _recording(multi_grid)
    out = WRITERS[container](rec, tmp_path / f"r.{container}")
    back = Recording.from_file(out)
    assert_recordings_equal(back, rec)
    assert back.labels == rec.labels and back.labels[0] == "Fp1\udce9"
    assert back.metadata["source_file"] == LATIN1_NAME
    assert back.metadata["source_file"].encode("utf-8", "surrogateescape") == \
        b"/data/caf\xe9.edf"
    assert back.events["description"].tolist() == ["caf\udce9 start", "plain"]
    assert back.events["note"].tolist() == ["x\udcff", "y"]
    sub = Recording.from_file(out, channels=["Fp1\udce9"])  # selecting by the original label
    assert sub.labels == ["Fp1\udce9"]


def test_parquet_column_names_are_valid_utf8_and_unique(tmp_path: Path) -> None:
    out = write_parquet(_recording(False), tmp_path / "r.parquet")
    names = pq.read_schema(out).names
    for name in names:
        name.encode("utf-8")  # strict: raises on a surrogate
    assert len(set(names)) == len(names) == 4
    blob = json.loads(pq.read_schema(out).metadata[b"biosigio"])
    assert set(blob["channels"]) == set(names[:-1])  # biosigio 1.2 finds each column's info


def test_jsonsafe_envelope_keeps_exact_code_points() -> None:
    value = {"s": "caf\udce9", "lone": "\ud800", "k\udce9": 1, "ok": "Ünïcødé"}
    text = dumps(value)
    text.encode("utf-8")  # the JSON itself is valid UTF-8
    assert loads(text) == value
    assert '"Ünïcødé"' in text  # valid strings stay plain JSON strings
    assert dumps({"ok": "Ünïcødé"}) == '{"ok": "Ünïcødé"}'



def test_non_utf8_strings_through_the_zarr_store(tmp_path: Path) -> None:
    """Event descriptions with surrogates crashed the Zarr writer (UnicodeEncodeError)."""
    pytest.importorskip("zarr")
    rec = _recording(False)
    back = Recording.from_file(rec.to_zarr(tmp_path / "r.zarr"), group="eeg_100hz")
    assert back.labels == ["Fp1\udce9", "Fp1\\udce9"]
    assert back.events["description"].tolist() == ["caf\udce9 start", "plain"]
    assert back.events["note"].tolist() == ["x\udcff", "y"]
    assert back.metadata["subject"] == "M\udcfcller"
    assert back.channels["Fp1\udce9"]["transducer"] == "Ag\udce9Cl"
    attrs = json.loads((tmp_path / "r.zarr" / "events" / "zarr.json").read_text("utf-8"))
    json.dumps(attrs, ensure_ascii=False).encode("utf-8")  # strict UTF-8: no lone surrogates
