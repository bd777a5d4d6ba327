"""The metadata envelope round-trips every value type importers produce."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import numpy as np

from biosigio_lib import _jsonsafe


def test_round_trip_of_non_json_values():
    value = {
        "when": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC),
        "naive": dt.datetime(2001, 1, 1, 0, 0, 0, 500000),
        "day": dt.date(1999, 12, 31),
        "clock": dt.time(23, 59, 58, 1),
        "span": dt.timedelta(days=1, seconds=3, microseconds=7),
        "raw": b"\x00\xffabc",
        "f32": np.float32(0.1),
        "i64": np.int64(-(2**62)),
        "u8": np.uint8(255),
        "b": np.bool_(True),
        "arr": np.arange(6, dtype=np.int16).reshape(2, 3),
        "nan": float("nan"),
        "inf": float("-inf"),
        "tup": (1, "a", None),
        "set": {3, 1, 2},
        "intkeys": {1: "a", 2: "b"},
        "dec": Decimal("1.10"),
        "nested": [{"x": np.float64(1.5)}],
        "looks_like_envelope": {"__biosigio_type__": "datetime", "value": "nope"},
    }
    text = _jsonsafe.dumps(value)
    json.loads(text)  # strict JSON
    back = _jsonsafe.loads(text)
    assert back["when"] == value["when"] and back["when"].tzinfo is not None
    for key in ("naive", "day", "clock", "span", "raw", "tup", "set", "intkeys", "dec",
                "looks_like_envelope"):
        assert back[key] == value[key], key
        assert type(back[key]) is type(value[key]), key
    for key in ("f32", "i64", "u8", "b"):
        assert type(back[key]) is type(value[key]) and back[key] == value[key], key
    np.testing.assert_array_equal(back["arr"], value["arr"])
    assert back["arr"].dtype == np.int16
    assert np.isnan(back["nan"]) and back["inf"] == float("-inf")
    assert type(back["nested"][0]["x"]) is np.float64


def test_reads_biosigio_12_envelope():
    text = '{"start": {"__biosigio_type__": "datetime", "value": "2020-01-02T03:04:05"}}'
    assert _jsonsafe.loads(text) == {"start": dt.datetime(2020, 1, 2, 3, 4, 5)}


def test_unknown_objects_never_fail():
    class Odd:
        def __repr__(self) -> str:
            return "Odd()"

    import warnings

    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert _jsonsafe.loads(_jsonsafe.dumps({"o": Odd()})) == {"o": "Odd()"}


def test_numpy_time_scalars_and_odd_numpy_types_round_trip():
    import pandas as pd

    value = {
        "td_ns": np.timedelta64(5, "ns"),
        "td_days": np.timedelta64(3, "D"),
        "td_nat": np.timedelta64("NaT", "s"),
        "dt_nat": np.datetime64("NaT", "ms"),
        "void": np.void(b"ab"),
        "pd_nat": pd.NaT,
    }
    back = _jsonsafe.loads(_jsonsafe.dumps(value))
    for key in ("td_ns", "td_days", "void"):
        assert type(back[key]) is type(value[key]) and back[key].dtype == value[key].dtype
        assert back[key] == value[key], key
    for key in ("td_nat", "dt_nat"):
        assert np.isnat(back[key]) and back[key].dtype == value[key].dtype
    assert back["pd_nat"] is pd.NaT


def test_long_double_never_makes_the_writer_fail():
    value = np.longdouble(1) / np.longdouble(3)
    back = _jsonsafe.loads(_jsonsafe.dumps({"x": value}))["x"]
    assert back == value and back.dtype == value.dtype


def test_pandas_nanosecond_times_keep_their_nanoseconds():
    import pandas as pd

    value = {"ts": pd.Timestamp("2020-01-01 00:00:00.123456789", tz="UTC"),
             "td": pd.Timedelta(1_000_000_007), "plain": pd.Timestamp("2020-01-01 00:00:01.5")}
    text = _jsonsafe.dumps(value)
    back = _jsonsafe.loads(text)
    assert back["ts"] == value["ts"] and back["ts"].nanosecond == 789
    assert back["td"] == value["td"] and back["td"].value == 1_000_000_007
    assert back["plain"] == value["plain"]
    assert '"datetime"' in text  # without nanoseconds: biosigio 1.2's own envelope


def _zoned_values() -> dict:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    return {
        "summer": dt.datetime(2024, 7, 1, 12, 0, tzinfo=berlin),
        "first_0230": dt.datetime(2024, 10, 27, 2, 30, tzinfo=berlin, fold=0),  # CEST, +02
        "second_0230": dt.datetime(2024, 10, 27, 2, 30, tzinfo=berlin, fold=1),  # CET, +01
        "naive_fold": dt.datetime(2024, 10, 27, 2, 30, fold=1),
        "utc": dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        "nested": [dt.datetime(2020, 3, 29, 3, 0, 1, 5, tzinfo=ZoneInfo("America/New_York"))],
    }


def _assert_same_zoned(back: dict, want: dict) -> None:
    """Equal, same zone key (not just offset), same fold and same UTC instant."""
    for key in ("summer", "first_0230", "second_0230", "naive_fold", "utc"):
        got, exp = back[key], want[key]
        assert got == exp and got.fold == exp.fold, key
        assert type(got.tzinfo) is type(exp.tzinfo), key
        assert getattr(got.tzinfo, "key", None) == getattr(exp.tzinfo, "key", None), key
        assert got.utcoffset() == exp.utcoffset(), key
    assert back["nested"][0].tzinfo.key == "America/New_York"
    assert back["nested"][0] == want["nested"][0]


def test_named_time_zone_and_fold_round_trip():
    want = _zoned_values()
    assert want["first_0230"].utcoffset() != want["second_0230"].utcoffset()
    _assert_same_zoned(_jsonsafe.loads(_jsonsafe.dumps(want)), want)


def test_old_fixed_offset_datetime_envelope_still_decodes():
    old = '{"__biosigio_type__": "datetime", "value": "2024-10-27T02:30:00+01:00"}'
    back = _jsonsafe.loads(old)
    assert back == dt.datetime(2024, 10, 27, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


def test_named_time_zone_round_trips_through_archive_and_zarr(tmp_path):
    from biosigio_lib import Recording
    from biosigio_lib.testing import synthetic_recording

    want = _zoned_values()
    rec = synthetic_recording(n_channels=1, seconds=1.0, fs=100.0, n_events=0)
    rec.metadata.update(want)
    for out in (rec.to_parquet(tmp_path / "r.parquet"), rec.to_arrow(tmp_path / "r.arrow"),
                rec.to_zarr(tmp_path / "r.zarr")):
        _assert_same_zoned(Recording.from_file(out).metadata, want)
