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
import re
import struct
from typing import Any, Protocol

import numpy as np

from . import protocol as P
from ..filters.fieldlog import FieldLog
from ..records.fields import format_double

FLOAT_DBF = frozenset({"DBF_FLOAT", "DBF_DOUBLE"})
ENUM_DBF = frozenset({"DBF_ENUM", "DBF_MENU", "DBF_DEVICE"})
LINK_DBF = frozenset({"DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK"})

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
_STSACK = struct.Struct(">HHHH40s")
_STSACK_META = struct.Struct(">HHHH")


def dbr_size_n(dtype: int, count: int) -> int:
    """dbr_size_n: bytes of a DBR with ``count`` elements; 0 elements is the metadata alone
    (EPICS 7's db_access.h: dbr_size + (count - 1) * dbr_value_size)."""
    if dtype == P.DBR_STSACK_STRING:
        size, vsize = _STSACK.size, P.MAX_STRING_SIZE
    elif dtype == P.DBR_CLASS_NAME:
        size = vsize = P.MAX_STRING_SIZE
    elif dtype in (P.DBR_PUT_ACKT, P.DBR_PUT_ACKS):
        size = vsize = 2
    else:
        vsize = _VALUE[dtype % 7][2]
        size = (_META[dtype].size if dtype >= 7 else 0) + vsize
    return size + (count - 1) * vsize


class Source(Protocol):
    """What the encoder reads besides the field log (a client channel implements it)."""

    record: Any
    field: str

    def read_array(self) -> np.ndarray: ...

    def meta(self) -> dict: ...

    def enum_strs(self) -> list[str] | None: ...

    def precision(self) -> int: ...

    nelm: int       # the channel's element count (what an autosized read is sized for)

    def record_states(self) -> list[str] | None: ...


_FLT_OVERFLOW = 3.4028235677973366e38     # the smallest double that rounds to float inf


_FLT_MAX = 3.4028234663852886e38
_FLT_MIN = 1.1754943508222875e-38


def double_to_float(v: float) -> float:
    """epicsConvertDoubleToFloat: 0, NaN and inf kept; magnitudes at or beyond FLT_MAX become
    FLT_MAX and those at or below FLT_MIN become FLT_MIN (with their sign)."""
    if v == 0.0 or not math.isfinite(v):
        return v
    a = abs(v)
    if a >= _FLT_MAX:
        return math.copysign(_FLT_MAX, v)
    if a <= _FLT_MIN:
        return math.copysign(_FLT_MIN, v)
    return v


class ConvertError(Exception):
    """The value cannot be converted to the requested type (base answers ECA_GETFAIL)."""


# ------------------------------------------------------------------------ conversions
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


_C_INT = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)[ \t\n\v\f\r]*$")
_C_UINT_LIMIT = 1 << 64


def _strtol10(text: str, signed: bool) -> int:
    """epicsParseLong/ULong with base 10: blanks around, digits, nothing else."""
    m = _C_INT.match(text)
    if m is None:
        raise ConvertError(f"{text!r} is not an integer")
    v = int(m.group(1))
    if signed:
        if not -(1 << 63) <= v < (1 << 63):
            raise ConvertError(f"{text!r} overflows")
        return v
    # strtoul: a minus sign negates in unsigned arithmetic
    if abs(v) >= _C_UINT_LIMIT:
        raise ConvertError(f"{text!r} overflows")
    return v % _C_UINT_LIMIT


_KIND_DBF = {1: "DBF_SHORT", 2: "DBF_FLOAT", 4: "DBF_UCHAR", 5: "DBF_LONG", 6: "DBF_DOUBLE"}


def _string_to(kind: int, text: str, src: Source):
    """dbFastLinkConv's cvt_st_*: a string field's value as a number of the DBR kind (the
    leading number, text after it ignored; CA's DBR_CHAR reads as DBR_UCHAR)."""
    if kind == 3:
        # cvt_st_e: the record's own state strings (put_enum_str), else an index below their
        # number; record types without enum strings cannot do it at all.
        strs = src.record_states()
        if strs is None:
            raise ConvertError("record has no enum strings")
        if text in strs:
            # base's put_enum_str stores the index into the *field* it was handed (for a
            # string field that is its own buffer), so the value read stays 0.
            return 0
        v = _strtol10(text, False) if text else None
        if v is None or v >= len(strs) or v > 0xFFFF:
            raise ConvertError(f"{text!r} is not a state")
        return v
    return put_string_number(text, _KIND_DBF[kind])


def _scalar_to(kind: int, v: Any, dbf: str, src: Source) -> Any:
    """One value converted to the DBR value kind (0 STRING .. 6 DOUBLE)."""
    if kind == 0:
        if isinstance(v, str):
            return v
        if dbf == "DBF_ENUM":
            # rset get_enum_str (e.g. "Illegal_Value" for a bo beyond its two states)
            return src.record.enum_string(src.field, int(v))
        if dbf in ENUM_DBF:
            strs = src.enum_strs() or []     # a menu: out-of-range values as numbers
            if 0 <= v < len(strs):
                return strs[v]
            # ... but a DTYP with no device support at all (calc, sel...) is "" in base
            return "" if dbf == "DBF_DEVICE" and not strs else str(v)
        if dbf in FLOAT_DBF or isinstance(v, float):
            return format_double(float(v), src.precision())
        return str(int(v))
    if isinstance(v, str):
        if dbf in LINK_DBF:
            # getLinkValue: a string, chars, or (for dbCa) DBR_DOUBLE as NaN; nothing else
            if kind == 6:
                return math.nan
            raise ConvertError("a link field reads as a string, chars or NaN only")
        if dbf == "RTYP":
            raise ConvertError("an attribute reads as a string or chars only")
        v = _string_to(kind, v, src)
    if kind == 6:
        return float(v)
    if kind == 2:
        return double_to_float(float(v))
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
    if kind == 2 and arr.dtype.kind == "f" and arr.dtype.itemsize > 4:
        a = arr.astype(np.float64)
        with np.errstate(invalid="ignore"):
            mag = np.abs(a)
            a = np.where(np.isfinite(a) & (mag >= _FLT_MAX), np.copysign(_FLT_MAX, a), a)
            a = np.where((mag > 0) & (mag <= _FLT_MIN), np.copysign(_FLT_MIN, a), a)
        return a.astype(target)
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
        if kind == 6:
            out.append(float(v))
        elif kind == 2:
            out.append(double_to_float(float(v)))
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
    if dtype > P.LAST_BUFFER_TYPE or dtype in (P.DBR_PUT_ACKT, P.DBR_PUT_ACKS):
        raise ConvertError(f"DBR type {dtype} cannot be read")
    value = src.read_array() if fl.value is None else fl.value
    if isinstance(value, list):         # a DBF_STRING waveform keeps a list of str
        value = np.array(value, dtype=object)
    if dtype == P.DBR_CLASS_NAME:
        # the record type's name, then zeros; autosized: the channel's element count (the
        # read never reports a count of its own)
        n_out = count if count > 0 else max(src.nelm, 1)
        return P.padded(_bstr(src.record.rtype, 40) + b"\0" * (40 * (n_out - 1))), n_out
    kind = 0 if dtype == P.DBR_STSACK_STRING else dtype % 7
    if kind == 4 and isinstance(value, str) and (fl.dbf in LINK_DBF or fl.dbf == "RTYP"):
        # getLinkValue/getAttrValue: a link or attribute read as chars is its text, cut to
        # the request's count (1 when autosized), NUL-terminated; the count is its length+1.
        maxlen = count if count > 0 else max(src.nelm, 1)
        raw = value.encode("latin-1", "replace")[: maxlen - 1] + b"\0"
        value = np.frombuffer(raw, dtype=np.uint8)
        fl = FieldLog(value, "DBF_UCHAR", len(raw), fl.stat, fl.sevr, fl.time)
        if count == 0:
            count = len(raw)
    if count <= 1 and not isinstance(value, np.ndarray) and dtype <= P.LAST_TYPE:
        # Scalar fast path: metadata, value and padding packed in one go.
        v = _scalar_to(kind, value, fl.dbf, src)
        if kind == 0:
            v = _bstr(v, 40)
        if dtype < 7:
            return _FULL[dtype].pack(v), 1
        return _FULL[dtype].pack(*_meta_args(dtype, fl, src), v), 1
    if dtype == P.DBR_STSACK_STRING:
        f = src.record.f
        meta = _STSACK_META.pack(fl.stat, fl.sevr, f["ACKT"], f["ACKS"])
    else:
        meta = _meta_bytes(dtype, fl, src) if dtype >= 7 else b""
    if isinstance(value, np.ndarray):
        n_out = len(value) if count == 0 else count
        conv = _array_to(kind, value[: n_out], fl.dbf, src)
    else:
        n_out = 1 if count == 0 else count
        conv = [_scalar_to(kind, value, fl.dbf, src)]
        if kind != 0:
            conv = np.array(conv, dtype=_VALUE[kind][1])
    body = _values_bytes(kind, conv, n_out) if n_out else b""
    return P.padded(meta + body), n_out


# ------------------------------------------------------------------------ decode (puts)
_C_FLOAT_PREFIX = re.compile(
    r"[ \t\n\v\f\r]*([+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
    r"(?:[pP][+-]?[0-9]+)?|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    r"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN]))")
_C_INT_PREFIX = re.compile(r"[ \t\n\v\f\r]*([+-]?[0-9]+)")
_INT_LIMITS = {"DBF_CHAR": (-128, 127), "DBF_UCHAR": (0, 255), "DBF_SHORT": (-32768, 32767),
               "DBF_USHORT": (0, 65535), "DBF_LONG": (-2 ** 31, 2 ** 31 - 1),
               "DBF_ULONG": (0, 2 ** 32 - 1), "DBF_INT64": (-2 ** 63, 2 ** 63 - 1),
               "DBF_UINT64": (0, 2 ** 64 - 1)}


def put_string_state(text: str, states: list[str]) -> int:
    """cvt_st_e / cvt_st_menu for a put: a state (or menu choice) string, else a plain
    decimal index below the number of states."""
    if text in states:
        return states.index(text)
    m = _C_INT.match(text)
    if m is not None:
        v = int(m.group(1))
        if 0 <= v < min(len(states), 0x10000) and text.strip() == m.group(1).lstrip("+"):
            return v
    raise ConvertError(f"{text!r} is not one of the states")


def c_cast(v: float | int, dbf: str) -> int:
    """dbFastLinkConv's C cast of a double to an integer field, as x86-64 does it: through a
    32-bit conversion for types up to 32 bits signed (out of range and NaN: INT_MIN), a 64-bit
    one for ULONG and the 64-bit types (INT64_MIN), then truncated to the field's width."""
    lo, hi = _INT_LIMITS[dbf]
    bits = hi.bit_length() + (1 if lo < 0 else 0)
    if isinstance(v, int):
        iv = v
    elif dbf in ("DBF_ULONG", "DBF_INT64", "DBF_UINT64"):
        iv = int(v) if -9.223372036854775808e18 <= v < 9.223372036854775808e18 else -(1 << 63)
    elif -2147483649.0 < v < 2147483648.0:
        iv = int(v)
    else:
        iv = -(1 << 31)
    iv &= (1 << bits) - 1
    if lo < 0 and iv >> (bits - 1):
        iv -= 1 << bits
    return iv


def put_string_number(text: str, dbf: str) -> float | int:
    """dbFastLinkConv's cvt_st_* for a string put to a numeric field: an empty string is 0;
    otherwise the leading number (text after it ignored, as epicsParse* with an end pointer);
    integers in base 10 and within the field's range. Raises ConvertError (ECA_PUTFAIL)."""
    if text == "":
        return 0.0 if dbf in FLOAT_DBF else 0
    if dbf in FLOAT_DBF:
        m = _C_FLOAT_PREFIX.match(text)
        if m is None:
            raise ConvertError(f"{text!r} is not a number")
        t = m.group(1)
        v = float.fromhex(t) if "x" in t.lower() else float(t)
        if math.isinf(v) and "inf" not in t.lower():
            raise ConvertError(f"{text!r} overflows")
        if dbf == "DBF_FLOAT" and math.isfinite(v) and abs(v) > _FLT_OVERFLOW:
            raise ConvertError(f"{text!r} overflows a float")
        return v
    m = _C_INT_PREFIX.match(text)
    if m is None:
        raise ConvertError(f"{text!r} is not an integer")
    v = int(m.group(1))
    lo, hi = _INT_LIMITS.get(dbf, (-2 ** 63, 2 ** 64 - 1))
    if lo >= 0 and v < 0:
        v %= 1 << 64              # strtoul negates in unsigned arithmetic
        if v > hi and v <= (1 << 64) - 1 - hi:
            raise ConvertError(f"{text!r} overflows")
        return v & hi
    if not lo <= v <= hi:
        raise ConvertError(f"{text!r} overflows")
    return v


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
