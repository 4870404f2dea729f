"""Field types: EPICS DBF types, their Python representation, and conversions.

Conversion rules follow EPICS base's dbStaticLib (values from .db files and ``dbpf``) and
dbConvert (CA puts): numbers accept decimal, exponent and (for integers) ``0x`` hex; a menu field
takes one of its choice strings or a choice index; a string longer than its buffer is refused when
loading a database and truncated when written at run time, as EPICS does.
"""
from __future__ import annotations

import math

from caproto import ChannelType

from ..dbd import FieldSpec

INT_RANGES: dict[str, tuple[int, int]] = {
    "DBF_CHAR": (-128, 127), "DBF_UCHAR": (0, 255),
    "DBF_SHORT": (-32768, 32767), "DBF_USHORT": (0, 65535),
    "DBF_LONG": (-2 ** 31, 2 ** 31 - 1), "DBF_ULONG": (0, 2 ** 32 - 1),
    "DBF_INT64": (-2 ** 63, 2 ** 63 - 1), "DBF_UINT64": (0, 2 ** 64 - 1),
}
FLOAT_TYPES = frozenset({"DBF_FLOAT", "DBF_DOUBLE"})
ENUM_TYPES = frozenset({"DBF_MENU", "DBF_DEVICE", "DBF_ENUM"})
LINK_TYPES = frozenset({"DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK"})

# DBF type -> the CA (DBR) type a client sees, as EPICS rsrv maps them (dbDBRnewToDBRold).
CA_TYPES: dict[str, ChannelType] = {
    "DBF_STRING": ChannelType.STRING,
    "DBF_CHAR": ChannelType.CHAR, "DBF_UCHAR": ChannelType.CHAR,
    "DBF_SHORT": ChannelType.INT, "DBF_USHORT": ChannelType.LONG,
    "DBF_LONG": ChannelType.LONG, "DBF_ULONG": ChannelType.DOUBLE,
    "DBF_INT64": ChannelType.DOUBLE, "DBF_UINT64": ChannelType.DOUBLE,
    "DBF_FLOAT": ChannelType.FLOAT, "DBF_DOUBLE": ChannelType.DOUBLE,
    "DBF_ENUM": ChannelType.ENUM, "DBF_MENU": ChannelType.ENUM, "DBF_DEVICE": ChannelType.ENUM,
    "DBF_INLINK": ChannelType.STRING, "DBF_OUTLINK": ChannelType.STRING,
    "DBF_FWDLINK": ChannelType.STRING,
}


class FieldValueError(ValueError):
    """A value that the field's type cannot hold; the message is shown to the user."""


def default_value(spec: FieldSpec):
    """The zero value of a field before its dbd ``initial()`` is applied."""
    if spec.dbf in FLOAT_TYPES:
        return 0.0
    if spec.dbf in INT_RANGES or spec.dbf in ENUM_TYPES:
        return 0
    return ""


def parse_int(text: str) -> int:
    """epicsParseLong with base 0: decimal, 0x hex; surrounding blanks ignored."""
    t = text.strip()
    if t == "":
        return 0
    try:
        return int(t, 0)
    except ValueError:
        pass
    # EPICS accepts a leading-zero decimal such as "010" as octal with base 0; Python refuses
    # "010" with base 0, so try plain decimal before giving up.
    try:
        return int(t, 10)
    except ValueError:
        raise FieldValueError(f"not an integer: {text!r}") from None


def parse_float(text: str) -> float:
    t = text.strip()
    if t == "":
        return 0.0
    try:
        return float(t)
    except ValueError:
        pass
    try:
        return float(int(t, 0))        # hex integers, as epicsParseDouble accepts them
    except ValueError:
        raise FieldValueError(f"not a number: {text!r}") from None


def coerce(spec: FieldSpec, value, choices: list[str] | None = None, *, strict_string: bool = False):
    """Convert ``value`` (str, int, float, or bytes) to the field's Python value.

    ``choices`` are the menu/device/enum strings for enumerated fields. Raises
    FieldValueError when EPICS would refuse the value. ``strict_string`` (database load) refuses
    over-long strings instead of truncating them (run-time put) and wraps integer text that
    fits 64 bits into the field's width, as dbPutStringNum does.
    """
    dbf = spec.dbf
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if dbf in FLOAT_TYPES:
        if isinstance(value, str):
            return parse_float(value)
        return float(value)
    if dbf in INT_RANGES:
        lo, hi = INT_RANGES[dbf]
        if isinstance(value, str):
            t = value.strip()
            try:
                v = parse_int(t)
            except FieldValueError:
                # dbConvert: a string put to an integer field goes through a double.
                v = int(parse_float(t))
        elif isinstance(value, float):
            if math.isnan(value):
                raise FieldValueError("NaN cannot be stored in an integer field")
            v = int(value)  # C truncation toward zero, as a double->long cast
        else:
            v = int(value)
        if not lo <= v <= hi:
            # A number wraps like the C cast dbConvert does. Text in a database file wraps too
            # if it fits 64 bits (dbPutStringNum parses an int64/uint64 and casts: 0xffffffff
            # in a LONG field is -1); text put at run time out of range is refused.
            top = 2 ** 64 if lo == 0 else 2 ** 63         # epicsParseUInt64 / epicsParseInt64
            if isinstance(value, str) and not (strict_string and -2 ** 63 <= v < top):
                raise FieldValueError(f"{v} out of range for {dbf[4:]}")
            v = (v - lo) % (hi - lo + 1) + lo
        return v
    if dbf in ENUM_TYPES:
        choices = choices or []
        if isinstance(value, str):
            for cand in (value, value.strip()):
                if cand in choices:
                    return choices.index(cand)
            try:
                idx = parse_int(value)
            except FieldValueError:
                raise FieldValueError(f"bad choice {value!r}; expected one of {choices}") from None
        else:
            idx = int(value)
        if dbf != "DBF_ENUM" and not 0 <= idx < max(len(choices), 1):
            raise FieldValueError(f"choice index {idx} out of range 0..{len(choices) - 1}")
        if dbf == "DBF_ENUM" and not 0 <= idx <= 65535:
            raise FieldValueError(f"enum value {idx} out of range")
        return idx
    # strings and links
    if not isinstance(value, str):
        value = format_number(value)
    limit = spec.size - 1 if spec.size else 0
    if dbf == "DBF_STRING" and limit and len(value) > limit:
        if strict_string:
            raise FieldValueError(f"string longer than {limit} characters")
        value = value[:limit]
    return value


def format_double(value: float, precision: int) -> str:
    """cvtDoubleToString (libCom cvtFast.c), which dbConvert uses for DBR_STRING of a double:
    fixed point with ``precision`` decimals, rounded half up, for |value| <= 1e7 and a
    precision up to 8; beyond that ``%.Ne`` (|value| > 1e16 or precision > 8) or ``%.Nf``
    with at most 3 decimals."""
    precision = int(precision) & 0xFFFF
    v = float(value)
    if math.isnan(v) or precision > 8 or v > 10000000.0 or v < -10000000.0:
        if precision > 8 or v > 1e16 or v < -1e16:
            p = min(precision, 17)
            return "%*.*e" % (p + 7, p, v)
        return "%.*f" % (min(precision, 3), v)
    neg = v < 0
    x = -v if neg else v
    whole = int(x)
    fplace = 10 ** precision
    fraction = (int((x - whole) * fplace * 10) + 5) // 10
    if fraction // fplace >= 1:
        whole += 1
        fraction -= fplace
    text = ("-" if neg else "") + str(whole)
    if precision > 0:
        text += "." + str(fraction).zfill(precision)
    return text


def format_number(value) -> str:
    """Format a number as EPICS's cvtDoubleToString-ish %g with enough digits."""
    if isinstance(value, float):
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.12g}"
    return str(value)
