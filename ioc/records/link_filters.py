"""Channel filters in DB links (base 7.0.8 dbDbLink: a DB link reads through a dbChannel).

``INP "src.[2:4]"``, ``"src.{dbnd:{d:2}}"``, ``"src.VAL{arr:{s:1}}"``: a get makes a read log
of the target field and runs the channel's pre and post chains on it (dbDbGetValue); a
filter that drops a read (dbnd on a scalar) leaves the plain field value. A name whose filters
do not parse is no DB link at all in base (dbChannelCreate fails, the link becomes a CA link
that never connects): :func:`split_link_name` reports such a name with its raw field, which
no record has.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..filters import FieldInfo, FilterChain, FilterError, build_chain, parse_channel_name
from ..filters.fieldlog import FieldLog

if TYPE_CHECKING:
    from .base import Record


def split_link_name(name: str) -> tuple[str, str, bool]:
    """(record, field, has_filters) of a DB link's PV name; a malformed filter spec gives the
    field as written (unresolvable, so the caller falls back to a CA link as base does)."""
    rec, dot, rest = name.partition(".")
    if not dot:
        return rec, "VAL", False
    try:
        cn = parse_channel_name(name)
    except FilterError:
        return rec, rest, False
    return cn.record, cn.field or "VAL", bool(cn.filters)


def build_link_chain(name: str, target: "Record", field: str) -> FilterChain | None:
    """The filter chain of a DB link to ``target.field`` named ``name``; None without filters.
    Raises FilterError when dbChannelOpen would fail (e.g. an unknown sync state)."""
    cn = parse_channel_name(name)
    is_array = field == "VAL" and hasattr(target, "array")
    nelm = int(target.f.get("NELM", 1)) if is_array else 1
    info = FieldInfo(target.field_type(field), nelm, is_array,
                     target.array if is_array else None, name)
    return build_chain(cn.filters, info, now=lambda: _now(target))


def _now(target: "Record") -> tuple[int, int]:
    """The target's TIME (a record keeps it as ``time``, not among its fields)."""
    return target.time


def filtered_read(chain: FilterChain, target: "Record", field: str, plain: Any) -> Any:
    """What a get through ``chain`` gives for the target's ``plain`` value (a scalar, or the
    array as ``target.array()`` returns it)."""
    is_array = field == "VAL" and hasattr(target, "array")
    f = target.f
    fl = FieldLog(None if is_array else plain, target.field_type(field),
                  len(plain) if is_array else 1, f["STAT"], f["SEVR"], _now(target))
    out = chain.read(fl)
    if out is None:
        return plain
    if out.value is None:
        return plain
    v = out.value
    if hasattr(v, "tolist") and getattr(v, "ndim", 0):
        return v[:out.count].tolist()       # a list, as device supports take arrays
    return v
