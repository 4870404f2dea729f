"""Values between record processing and a CA channel's native type, as dbCa converts them.

A CA channel has one of the seven DBR types; a CA link keeps it as a DBF name (the field type
of that DBR in dbDBRoldToDBFnew): DBR_STRING -> DBF_STRING, DBR_SHORT -> DBF_SHORT, DBR_FLOAT ->
DBF_FLOAT, DBR_ENUM -> DBF_ENUM, DBR_CHAR -> DBF_UCHAR (CA chars are unsigned), DBR_LONG ->
DBF_LONG, DBR_DOUBLE -> DBF_DOUBLE.

Puts (dbCaPutLinkCallback): a value is converted to the channel's type before it is sent, as
dbFastPutConvertRoutine does with no dbAddr: doubles to integers by C cast, numbers to strings
with cvtDoubleToString at precision 6, strings to numbers with epicsParse*; a string put to an
enumerated channel goes as DBR_STRING (the server picks the state).
"""
from __future__ import annotations

from typing import Any

from caproto import ChannelType

from ..ca import dbr
from ..records.fields import CA_TYPES, format_double

#: caproto's native ChannelType -> the DBF name a CA link keeps
CA_NATIVE: dict[ChannelType, str] = {
    ChannelType.STRING: "DBF_STRING", ChannelType.INT: "DBF_SHORT",
    ChannelType.FLOAT: "DBF_FLOAT", ChannelType.ENUM: "DBF_ENUM",
    ChannelType.CHAR: "DBF_UCHAR", ChannelType.LONG: "DBF_LONG",
    ChannelType.DOUBLE: "DBF_DOUBLE",
}
_WIRE: dict[str, ChannelType] = {v: k for k, v in CA_NATIVE.items()}


def native_of(field_dbf: str) -> str:
    """The native type a CA client sees for a field of type ``field_dbf`` (rsrv's mapping)."""
    return CA_NATIVE[CA_TYPES.get(field_dbf, ChannelType.STRING)]


def _one(v: Any, native: str) -> Any:
    if native == "DBF_STRING":
        if isinstance(v, float):
            return format_double(v, 6)
        if isinstance(v, (bool, int)):
            return str(int(v))
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).decode("latin-1")
    if isinstance(v, str):
        return dbr.put_string_number(v, "DBF_DOUBLE" if native in dbr.FLOAT_DBF else
                                     ("DBF_USHORT" if native == "DBF_ENUM" else native))
    if native in dbr.FLOAT_DBF:
        return float(v)
    return dbr.c_cast(v, "DBF_USHORT" if native == "DBF_ENUM" else native)


def to_wire(value: Any, native: str, count: int) -> tuple[list, ChannelType] | None:
    """``value`` (a scalar or a list) as at most ``count`` elements of the channel's type, and
    the DBR type to send; None when it does not convert (the put fails)."""
    if native == "DBF_ENUM" and isinstance(value, str):
        return [value], ChannelType.STRING
    if hasattr(value, "tolist"):           # numpy arrays and scalars
        value = value.tolist()
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    try:
        out = [_one(v, native) for v in items[:max(1, count)]]
    except (dbr.ConvertError, TypeError, ValueError, OverflowError):
        return None
    return out, _WIRE[native]


def from_wire(data: Any, native: str, count: int) -> Any:
    """A monitor's data as a link value: a Python scalar for a one-element channel (None when
    the update carried no element), a list for an array channel."""
    if native == "DBF_STRING" or hasattr(data, "encoding") or (
            len(data) and isinstance(data[0], (bytes, bytearray))):
        items: list = [bytes(x).decode("latin-1") for x in data]
    else:
        items = data.tolist() if hasattr(data, "tolist") else list(data)
    if count <= 1:
        return items[0] if items else None
    return items
