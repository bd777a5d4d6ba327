"""A JSON envelope for metadata values JSON cannot hold, so they round-trip with their type.

Compatible with biosigio 1.2's envelope (``{"__biosigio_type__": "datetime", "value": iso}``),
extended to dates, times, timedeltas, bytes, numpy scalars/arrays, tuples, sets, non-finite
floats, dicts with non-string keys and strings that are not valid UTF-8 (surrogates).
Unknown objects are stored as their ``repr`` with a warning: nothing an importer puts in
metadata may make an exporter fail.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import warnings
from collections.abc import Mapping
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

__all__ = ["TYPE_KEY", "decode", "dumps", "encode", "loads", "utf8_safe"]

TYPE_KEY = "__biosigio_type__"


def _env(kind: str, value: Any, **extra: Any) -> dict[str, Any]:
    return {TYPE_KEY: kind, "value": value, **extra}


def utf8_safe(text: str) -> bool:
    """True when ``text`` encodes as strict UTF-8 (no lone or surrogate-escaped code points)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _encode_str(text: str) -> Any:
    """A string as is, or, if it holds surrogates (undecodable bytes of a Latin-1 file name,
    a lone surrogate), an envelope: base64 of its code points encoded with ``surrogatepass``
    (exact), and a readable ``text`` with the odd code points backslash-escaped."""
    if utf8_safe(text):
        return text
    raw = text.encode("utf-8", "surrogatepass")
    return _env("str", base64.b64encode(raw).decode("ascii"),
                text=text.encode("utf-8", "backslashreplace").decode("utf-8"))


def _zone_extra(obj: dt.datetime | dt.time) -> dict[str, Any]:
    """What ISO text loses: a named zone's key (``Europe/Berlin``, not just ``+01:00``) and
    ``fold=1`` (the second of a repeated wall-clock hour). Readers that ignore these keys
    (biosigio 1.2) still get the right instant from the ISO offset."""
    extra: dict[str, Any] = {}
    if isinstance(obj.tzinfo, ZoneInfo) and obj.tzinfo.key:
        extra["tz"] = obj.tzinfo.key
    if obj.fold:
        extra["fold"] = 1
    return extra


def _with_zone(value: dt.datetime, d: dict[str, Any]) -> dt.datetime:
    """Re-attach the zone key and fold written by :func:`_zone_extra` (old form: as is)."""
    key, fold = d.get("tz"), int(d.get("fold", 0))
    if isinstance(key, str):
        try:
            zone = ZoneInfo(key)
        except (ZoneInfoNotFoundError, ValueError):
            warnings.warn(f"time zone {key!r} is unknown here; keeping the fixed UTC offset "
                          f"of {value.isoformat()}", stacklevel=3)
            return value.replace(fold=fold)
        return value.replace(tzinfo=zone, fold=fold)  # the ISO text is the wall-clock time
    return value.replace(fold=fold) if fold else value


def encode(obj: Any) -> Any:
    """Return a structure of plain JSON types (str/int/float/bool/None/list/dict) for ``obj``."""
    if isinstance(obj, str):
        return _encode_str(obj)
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, np.generic):
        if isinstance(obj, np.datetime64):
            return _env("numpy", str(obj), dtype=obj.dtype.str)
        if isinstance(obj, np.timedelta64):  # str() gives "5 nanoseconds": store the count
            return _env("numpy", int(obj.astype(np.int64)), dtype=obj.dtype.str)
        item = obj.item()
        if isinstance(item, float) and not math.isfinite(item):
            item = repr(item)
        elif isinstance(item, complex):
            item = [item.real, item.imag]
        elif isinstance(item, bytes):
            item = base64.b64encode(item).decode("ascii")
        elif isinstance(item, np.floating):  # long double: its exact decimal text
            item = str(obj)
        if not isinstance(item, np.generic):
            return _env("numpy", item, dtype=obj.dtype.str)
    if isinstance(obj, int):  # numpy scalars (np.float64 is a float) were handled above
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else _env("float", repr(obj))
    if isinstance(obj, np.ndarray):
        return _env("ndarray", [encode(v) for v in obj.ravel().tolist()],
                    dtype=obj.dtype.str, shape=list(obj.shape))
    if isinstance(obj, dt.datetime) and obj != obj:  # pandas NaT (a datetime subclass)
        return _env("nat", None)
    if isinstance(obj, dt.datetime):  # before date: datetime is a date subclass
        if getattr(obj, "nanosecond", 0):  # a pandas Timestamp finer than datetime holds
            return _env("timestamp", obj.isoformat())
        return _env("datetime", obj.isoformat(), **_zone_extra(obj))
    if isinstance(obj, dt.date):
        return _env("date", obj.isoformat())
    if isinstance(obj, dt.time):
        return _env("time", obj.isoformat(), **({"fold": 1} if obj.fold else {}))
    if isinstance(obj, dt.timedelta) and getattr(obj, "nanoseconds", 0) != 0:  # pd.Timedelta
        import pandas as pd

        if isinstance(obj, pd.Timedelta):
            return _env("pd_timedelta", int(obj.value))
    if isinstance(obj, dt.timedelta):
        return _env("timedelta", [obj.days, obj.seconds, obj.microseconds])
    if isinstance(obj, bytes | bytearray | memoryview):
        return _env("bytes", base64.b64encode(bytes(obj)).decode("ascii"))
    if isinstance(obj, Decimal):
        return _env("decimal", str(obj))
    if isinstance(obj, PurePath):
        return _encode_str(str(obj))
    if isinstance(obj, Mapping):
        if all(isinstance(k, str) and utf8_safe(k) for k in obj):
            if TYPE_KEY in obj:  # a user dict that looks like an envelope: wrap it
                return _env("dict", {k: encode(v) for k, v in obj.items()})
            return {k: encode(v) for k, v in obj.items()}
        return _env("items", [[encode(k), encode(v)] for k, v in obj.items()])
    if isinstance(obj, list):
        return [encode(v) for v in obj]
    if isinstance(obj, tuple):
        return _env("tuple", [encode(v) for v in obj])
    if isinstance(obj, set | frozenset):
        items = [encode(v) for v in obj]
        try:
            items.sort(key=lambda v: json.dumps(v, sort_keys=True))
        except TypeError:
            pass
        return _env("frozenset" if isinstance(obj, frozenset) else "set", items)
    if isinstance(obj, complex):
        return _env("complex", [obj.real, obj.imag])
    warnings.warn(
        f"metadata value of type {type(obj).__name__} stored as its repr", stacklevel=2
    )
    return _env("repr", repr(obj), type=type(obj).__qualname__)


def _decode_env(d: dict[str, Any]) -> Any:
    kind = d[TYPE_KEY]
    value: Any = d.get("value")
    if kind == "datetime":
        return _with_zone(dt.datetime.fromisoformat(value), d)
    if kind in ("nat", "timestamp", "pd_timedelta"):
        import pandas as pd

        if kind == "timestamp":
            return pd.Timestamp(value)
        return pd.NaT if kind == "nat" else pd.Timedelta(value, unit="ns")
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "time":
        return dt.time.fromisoformat(value).replace(fold=int(d.get("fold", 0)))
    if kind == "timedelta":
        days, seconds, micro = value
        return dt.timedelta(days=days, seconds=seconds, microseconds=micro)
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "str":
        return base64.b64decode(value).decode("utf-8", "surrogatepass")
    if kind == "float":
        return float(value)
    if kind == "decimal":
        return Decimal(value)
    if kind == "complex":
        return complex(*value)
    if kind == "numpy":
        dtype = np.dtype(d["dtype"])
        if dtype.kind == "M":
            return np.datetime64(value).astype(dtype)
        if dtype.kind == "m":
            if isinstance(value, int):
                return np.int64(value).astype(dtype)
            return np.timedelta64(value).astype(dtype)
        if dtype.kind == "c":
            return dtype.type(complex(*value))
        if dtype.kind in "SV":
            return dtype.type(base64.b64decode(value))
        return dtype.type(value)  # float strings ("nan", long double text) parse exactly
    if kind == "ndarray":
        flat = [decode(v) for v in value]
        return np.asarray(flat, dtype=np.dtype(d["dtype"])).reshape(d["shape"])
    if kind == "tuple":
        return tuple(decode(v) for v in value)
    if kind == "set":
        return {decode(v) for v in value}
    if kind == "frozenset":
        return frozenset(decode(v) for v in value)
    if kind == "items":
        return {_hashable(decode(k)): decode(v) for k, v in value}
    if kind == "dict":
        return {k: decode(v) for k, v in value.items()}
    if kind == "repr":
        return value
    return {k: decode(v) for k, v in d.items()}  # unknown kind (a newer writer): keep as is


def _hashable(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def decode(obj: Any) -> Any:
    """Inverse of :func:`encode` on an already-parsed JSON structure."""
    if isinstance(obj, dict):
        if TYPE_KEY in obj:
            return _decode_env(obj)
        return {k: decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [decode(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    """Encode and serialise to strict JSON (no NaN literals)."""
    return json.dumps(encode(obj), ensure_ascii=False, allow_nan=False)


def loads(text: str | bytes) -> Any:
    """Parse JSON written by :func:`dumps` (or by biosigio 1.2) back to typed values."""
    return decode(json.loads(text))
