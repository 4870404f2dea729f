"""DBR payloads: a field's value and metadata as each CA request type lays them out, and back.

Encoding follows EPICS base: the value is converted from the field's DBF type to the request's
DBR value type as dbConvert/dbFastLinkConv do (C casts; floats to strings with the record's
precision, enums to their state strings, strings parsed as numbers), after the status, severity,
time stamp, units, precision, limits or enum strings that the DBR type carries (db_access.h
structures, big-endian, padded as the C structures are). Decoding turns a put's payload into
the Python value ``Record.put_and_process`` takes.

Element counts (rsrv read_reply): a request for ``count`` elements gets exactly ``count``
(zero-filled past the field's current elements); ``count == 0`` asks for "what there is" and
gets the current number of elements (NORD for arrays), with an empty array answered by the
size of one element and a header count of 0, as base's ``dbr_size_n`` does.
"""
from __future__ import annotations

import math
import struct
from typing import Any, Protocol

import numpy as np

from . import protocol as P
from .fieldlog import FieldLog

FLOAT_DBF = frozenset({"DBF_FLOAT", "DBF_DOUBLE"})
ENUM_DBF = frozenset({"DBF_ENUM", "DBF_MENU", "DBF_DEVICE"})
STRING_DBF = frozenset({"DBF_STRING", "DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK"})

# Value type of each DBR family member (index = dtype % 7): struct code, numpy dtype, size.
_VALUE = [("40s", None, 40), ("h", np.dtype(">i2"), 2), ("f", np.dtype(">f4"), 4),
          ("H", np.dtype(">u2"), 2), ("B", np.dtype("u1"), 1), ("i", np.dtype(">i4"), 4),
          ("d", np.dtype(">f8"), 8)]

# Metadata part of each DBR type (everything before the first value), as struct formats.
# STS: status, severity (+ RISC padding); TIME adds the stamp; GR/CTRL add units, precision,
# limits (GR: display, alarm, warning; CTRL adds the control limits) or the enum strings.
_META_FMT: dict[int, str] = {
    7: ">hh", 8: ">hh", 9: ">hh", 10: ">hh", 11: ">hhx", 12: ">hh", 13: ">hhi",
    14: ">hhII", 15: ">hhIIh", 16: ">hhII", 17: ">hhIIh", 18: ">hhIIhx", 19: ">hhII",
    20: ">hhIIi",
    21: ">hh", 22: ">hh8s6h", 23: ">hhhh8s6f", 24: ">hhh416s", 25: ">hh8s6Bx", 26: ">hh8s6i",
    27: ">hhhh8s6d",
    28: ">hh", 29: ">hh8s8h", 30: ">hhhh8s8f", 31: ">hhh416s", 32: ">hh8s8Bx", 33: ">hh8s8i",
    34: ">hhhh8s8d",
}
_META = {k: struct.Struct(v) for k, v in _META_FMT.items()}
_ENUM_STRS = struct.Struct(">h416s")
_STSACK = struct.Struct(">HHHH40s")


def dbr_value_kind(dtype: int) -> int:
    """Index into the value table (0 STRING .. 6 DOUBLE) of a DBR type 0..34."""
    return dtype % 7


def dbr_size_n(dtype: int, count: int) -> int:
    """dbr_size_n: bytes of a DBR with ``count`` elements (one element when count <= 0)."""
    if dtype == P.DBR_STSACK_STRING:
        return _STSACK.size
    if dtype == P.DBR_CLASS_NAME:
        return P.MAX_STRING_SIZE
    if dtype in (P.DBR_PUT_ACKT, P.DBR_PUT_ACKS):
        return 2
    meta = _META[dtype].size if dtype >= 7 else 0
    vsize = _VALUE[dtype % 7][2]
    return meta + vsize * max(count, 1)


class Source(Protocol):
    """What the encoder reads besides the field log (a client channel implements it)."""

    record: Any
    field: str

    def read_array(self) -> np.ndarray: ...

    def meta(self) -> dict: ...

    def enum_strs(self) -> list[str] | None: ...

    def precision(self) -> int: ...


_FLT_OVERFLOW = 3.4028235677973366e38     # the smallest double that rounds to float inf


class ConvertError(Exception):
    """The value cannot be converted to the requested type (base answers ECA_GETFAIL)."""


# ------------------------------------------------------------------------ conversions
def format_double(value: float, precision: int) -> str:
    """DBR_STRING of a double, as EPICS's cvtDoubleToString with the record's PREC."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    precision = max(0, min(int(precision), 17))
    if value != 0 and (abs(value) >= 1e15 or abs(value) < 10 ** -precision):
        return f"{value:.{precision}e}"
    return f"{value:.{precision}f}"


def _c_int(v: float | int, bits: int, signed: bool) -> int:
    """C's cast of a number to an integer type of ``bits`` (x86: via a 32-bit conversion for
    doubles, so NaN and out-of-range doubles become INT_MIN before truncation)."""
    if isinstance(v, float):
        if not (-2147483649.0 < v < 2147483648.0):
            iv = -2147483648
        else:
            iv = int(v)
    else:
        iv = int(v)
    mask = (1 << bits) - 1
    iv &= mask
    if signed and iv >> (bits - 1):
        iv -= 1 << bits
    return iv


def _parse_number(text: str, want_float: bool) -> float | int:
    """dbConvert's string to number: blanks ignored, empty is 0, decimal/exponent/hex."""
    t = text.strip()
    if t == "":
        return 0.0 if want_float else 0
    try:
        return float(t) if want_float else int(t, 10)
    except ValueError:
        pass
    try:
        iv = int(t, 0)
        return float(iv) if want_float else iv
    except ValueError:
        pass
    try:
        fv = float(t)
    except ValueError:
        raise ConvertError(f"cannot convert {text!r} to a number") from None
    return fv if want_float else _c_int(fv, 32, True)


def _enum_index(text: str, strs: list[str] | None) -> int:
    if strs:
        try:
            return strs.index(text)
        except ValueError:
            pass
    v = _parse_number(text, False)
    return int(v)


def _scalar_to(kind: int, v: Any, dbf: str, src: Source) -> Any:
    """One value converted to the DBR value kind (0 STRING .. 6 DOUBLE)."""
    if kind == 0:
        if isinstance(v, str):
            return v
        if dbf in ENUM_DBF:
            strs = src.enum_strs() or []
            return strs[v] if 0 <= v < len(strs) else str(v)
        if dbf in FLOAT_DBF or isinstance(v, float):
            return format_double(float(v), src.precision())
        return str(int(v))
    if isinstance(v, str):
        if dbf in ENUM_DBF:
            v = _enum_index(v, src.enum_strs())
        else:
            v = _parse_number(v, kind in (2, 6))
    if kind == 6:
        return float(v)
    if kind == 2:
        v = float(v)
        # struct refuses what C's double -> float cast makes infinite
        if v > _FLT_OVERFLOW or v < -_FLT_OVERFLOW:
            return math.copysign(math.inf, v)
        return v
    if kind == 5:
        return _c_int(v, 32, True)
    if kind == 1:
        return _c_int(v, 16, True)
    if kind == 3:
        return _c_int(v, 16, False)
    return _c_int(v, 8, False)      # CHAR: dbr_char_t is unsigned


def _array_to(kind: int, arr: np.ndarray, dbf: str, src: Source) -> np.ndarray | list[str]:
    """An array converted to the DBR value kind: a big-endian numpy array, or strings."""
    if kind == 0:
        return [_scalar_to(0, x.item() if hasattr(x, "item") else x, dbf, src) for x in arr]
    if arr.dtype.kind in "OUS":       # strings (a DBF_STRING waveform)
        return np.array([_scalar_to(kind, str(x), dbf, src) for x in arr],
                        dtype=_VALUE[kind][1])
    target = _VALUE[kind][1]
    if arr.dtype.kind == "f" and target.kind in "iu":
        a = arr.astype(np.float64)
        bad = ~((a > -2147483649.0) & (a < 2147483648.0))
        ints = np.trunc(np.where(bad, 0.0, a)).astype(np.int64)
        ints[bad] = -2147483648
        return ints.astype(target.newbyteorder("=")).astype(target)
    if target.kind in "iu":
        return arr.astype(np.int64).astype(target.newbyteorder("=")).astype(target)
    return arr.astype(target)


def _bstr(s: str, size: int) -> bytes:
    b = s.encode("latin-1", "replace")[: size - 1]
    return b + b"\0" * (size - len(b))


def _values_bytes(kind: int, values, n_out: int) -> bytes:
    """``n_out`` elements of ``values`` (a list or array already of the kind), zero-filled."""
    size = _VALUE[kind][2]
    if kind == 0:
        out = b"".join(_bstr(s, 40) for s in values[:n_out])
    else:
        out = np.asarray(values)[:n_out].tobytes()
    want = size * n_out
    if len(out) < want:
        out += b"\0" * (want - len(out))
    return out


# ------------------------------------------------------------------------ metadata
def _limits(md: dict, keys: tuple[str, ...], kind: int) -> list:
    out = []
    for key in keys:
        v = md.get(key)
        if v is None:
            v = math.nan if ("alarm" in key or "warning" in key) else 0.0
        if kind in (2, 6):
            out.append(float(v))
        else:
            # dbAccess getOptions: limits go through epicsInt32 (non-finite alarm limits as
            # 0), then db_access narrows them to the request's type.
            if ("alarm" in key or "warning" in key) and not math.isfinite(v):
                v = 0
            bits, signed = {1: (16, True), 4: (8, False), 5: (32, True)}[kind]
            out.append(_c_int(_c_int(v, 32, True), bits, signed))
    return out


_GR_KEYS = ("upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "upper_warning_limit",
            "lower_warning_limit", "lower_alarm_limit")
_CTRL_KEYS = _GR_KEYS + ("upper_ctrl_limit", "lower_ctrl_limit")


def _meta_args(dtype: int, fl: FieldLog, src: Source) -> tuple:
    """The values of a DBR type's metadata part, in its struct's order."""
    stat, sevr = fl.stat, fl.sevr
    if dtype < 14:
        return (stat, sevr) if dtype != 13 else (stat, sevr, 0)
    if dtype < 21:
        sec, nsec = fl.time
        if dtype in (15, 17, 18, 20):
            return stat, sevr, sec, nsec, 0
        return stat, sevr, sec, nsec
    kind = dtype % 7
    if kind == 0:
        return stat, sevr
    if kind == 3:
        strs = (src.enum_strs() or [])[: P.MAX_ENUM_STATES]
        blob = b"".join(_bstr(s, P.MAX_ENUM_STRING_SIZE) for s in strs)
        return stat, sevr, len(strs), blob
    md = src.meta()
    units = str(md.get("units", "")).encode("latin-1", "replace")[: P.MAX_UNITS_SIZE - 1]
    lims = _limits(md, _CTRL_KEYS if dtype >= 28 else _GR_KEYS, kind)
    if kind in (2, 6):
        return (stat, sevr, int(md.get("precision", 0)), 0, units, *lims)
    return (stat, sevr, units, *lims)


def _meta_bytes(dtype: int, fl: FieldLog, src: Source) -> bytes:
    return _META[dtype].pack(*_meta_args(dtype, fl, src))


def _full_struct(dtype: int) -> struct.Struct:
    """Metadata + one value + padding to 8, as one struct (the scalar fast path)."""
    fmt = _META_FMT.get(dtype, ">") + _VALUE[dtype % 7][0]
    size = struct.calcsize(fmt)
    return struct.Struct(fmt + "x" * (P.pad8(size) - size))


_FULL = {dt: _full_struct(dt) for dt in range(P.LAST_TYPE + 1)}


# ------------------------------------------------------------------------ encode
def encode(dtype: int, count: int, fl: FieldLog, src: Source) -> tuple[bytes, int]:
    """(payload padded to 8 bytes, element count for the header) of ``fl`` as ``dtype``.

    ``count``: the request's element count (0 = the current number of elements).
    Raises ConvertError where base's conversion fails (the caller answers ECA_GETFAIL).
    """
    if dtype == P.DBR_CLASS_NAME:
        return P.padded(_bstr(src.record.rtype, 40)), max(count, 1)
    if dtype == P.DBR_STSACK_STRING:
        f = src.record.f
        text = _first_string(fl, src)
        return (P.padded(_STSACK.pack(fl.stat, fl.sevr, f["ACKT"], f["ACKS"], _bstr(text, 40))),
                max(count, 1))
    if dtype > P.LAST_TYPE:
        raise ConvertError(f"DBR type {dtype} cannot be read")
    kind = dtype % 7
    value = src.read_array() if fl.value is None else fl.value
    if count <= 1 and not isinstance(value, np.ndarray):
        # Scalar fast path: metadata, value and padding packed in one go.
        v = _scalar_to(kind, value, fl.dbf, src)
        if kind == 0:
            v = _bstr(v, 40)
        if dtype < 7:
            return _FULL[dtype].pack(v), 1
        return _FULL[dtype].pack(*_meta_args(dtype, fl, src), v), 1
    meta = _meta_bytes(dtype, fl, src) if dtype >= 7 else b""
    if isinstance(value, np.ndarray):
        n_have = len(value)
        n_out = n_have if count == 0 else count
        conv = _array_to(kind, value[: n_out], fl.dbf, src)
    else:
        n_have = 1
        n_out = 1 if count == 0 else count
        conv = [_scalar_to(kind, value, fl.dbf, src)]
        if kind != 0:
            conv = np.array(conv, dtype=_VALUE[kind][1])
    body = _values_bytes(kind, conv, max(n_out, 1))
    del n_have
    return P.padded(meta + body), n_out


def _first_string(fl: FieldLog, src: Source) -> str:
    value = src.read_array() if fl.value is None else fl.value
    if isinstance(value, np.ndarray):
        if len(value) == 0:
            return ""
        return _scalar_to(0, value[0].item() if hasattr(value[0], "item") else value[0],
                          fl.dbf, src)
    return _scalar_to(0, value, fl.dbf, src)


# ------------------------------------------------------------------------ decode (puts)
def decode(dtype: int, count: int, payload: bytes | memoryview) -> list | np.ndarray:
    """The elements of a put payload: a list of str for DBR_STRING, else a numpy array.

    ``count`` is clipped to what the payload holds. Types other than the plain 0..6 are the
    caller's business (ACKT/ACKS, and the refused ones).
    """
    kind = dtype % 7
    size = _VALUE[kind][2]
    if kind == 0:
        # A client may send a lone string shorter than 40 bytes (its length, padded to 8).
        n = min(count, (len(payload) + 39) // 40)
        raw = bytes(payload[: 40 * n])
        return [raw[i * 40:(i + 1) * 40].split(b"\0", 1)[0].decode("latin-1")
                for i in range(n)]
    n = min(count, len(payload) // size)
    return np.frombuffer(bytes(payload[: size * n]), dtype=_VALUE[kind][1]).astype(
        _VALUE[kind][1].newbyteorder("="))
