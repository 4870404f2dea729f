"""Channel names with field modifiers and filters, as dbChannelCreate reads them.

    RECORD[.FIELD][$][[s:i:e]][{JSON5 filters}]

* The record name is everything up to the first ``.`` (the whole name if there is none, so
  ``rec{}`` names a record ``rec{}``: no modifiers without a dot). One ``.`` is skipped; the
  field name is the longest ``[A-Za-z_][A-Za-z0-9_]*`` there (``VAL`` when empty: ``rec.``
  and ``rec.{...}`` are VAL). Whether record and field exist is the caller's business.
* Then, in this order and each at most once: ``$`` (long string: DBF_STRING or link fields as
  a char array, see :func:`long_string_field`), ``[...]`` (the ``arr`` shorthand: ``[i]``,
  ``[s:e]``, ``[s:i:e]``, any number omitted, numbers as C ``strtol`` base 0 reads them:
  ``0x10``, ``010`` octal, leading blanks, values cut to 32 bits), then one JSON5 map whose
  keys name filters (several keys: several filters, in order). Anything else left over, white
  space before the ``{`` included, fails.
* The JSON5 text follows base's yajl (``_json5``) and the filter options chfPlugin's rules
  (``_chf``).

Every rule here was checked against softIoc 7.0.8 (see tests/unit/test_ca_filters.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import _json5
from ._base import FilterError
from ._chf import ChfInstance, FilterSpecReader, c_strtol, wrap_int32
from .chain import PLUGINS

PVLINK_STRINGSZ = 1024
LINK_DBFS = ("DBF_INLINK", "DBF_OUTLINK", "DBF_FWDLINK")


@dataclass
class ChannelName:
    """A parsed channel name. ``filters``: (filter name, settings) in application order, the
    settings complete and normalised (defaults filled in, enum options by name), e.g.
    ``("arr", {"s": 2, "i": 1, "e": 5})``, ``("dbnd", {"d": 1.5, "m": "abs"})``,
    ``("ts", {"num": None, "epoch": "epics", "str": None})``, ``("sync", {"m": "while",
    "s": "red"})``, ``("dec", {"n": 4})``, ``("utag", {"M": -1, "V": 0})``."""
    record: str
    field: str
    long_string: bool = False
    filters: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def split_pv_name(name: str) -> tuple[str, str, str]:
    """(record, field, rest) as pvNameLookup splits a name; never fails. This is all base's
    UDP search looks at (dbChannelTest): a name with bad modifiers is still found by a search,
    and only its CREATE_CHAN fails."""
    name = name.split("\0", 1)[0]
    rec, dot, rest = name.partition(".")
    if not dot:
        return rec, "VAL", ""
    n = 0
    if rest[:1] == "_" or rest[:1].isascii() and rest[:1].isalpha():
        n = 1
        while n < len(rest) and (rest[n] == "_" or rest[n].isascii() and rest[n].isalnum()):
            n += 1
    return rec, rest[:n] or "VAL", rest[n:]


def long_string_field(dbf: str, field_size: int) -> tuple[str, int]:
    """The ``$`` modifier on a field of type ``dbf`` and size ``field_size`` (bytes of a
    DBF_STRING, e.g. 40, or 80 for CALC): (DBF_CHAR, element count). Link fields give 1024
    elements (PVLINK_STRINGSZ; their value is still read as the link text). Any other type
    raises FilterError (``ai.VAL$`` is not found in base)."""
    if dbf == "DBF_STRING":
        return "DBF_CHAR", field_size
    if dbf in LINK_DBFS:
        return "DBF_CHAR", PVLINK_STRINGSZ
    raise FilterError(f"'$' needs a DBF_STRING or link field, not {dbf}")


def _array_range(text: str, pos: int) -> tuple[dict[str, int], int]:
    """parseArrayRange: ``text[pos]`` is '['. Returns the arr options given and the position
    after ']'. Only numbers that differ from the defaults are passed, as base does."""
    start, incr, end = 0, 1, -1
    bad = FilterError(f"bad array range in '{text[pos:]}'")

    def number(i: int) -> tuple[int | None, int]:
        v, j, _ = c_strtol(text, i)
        return (None, i) if v is None else (wrap_int32(v), j)

    v, i = number(pos + 1)
    if v is not None:
        start = v
    if text[i:i + 1] == "]" and v is not None:
        end = start
    else:
        if text[i:i + 1] != ":":
            raise bad
        v, i = number(i + 1)
        if text[i:i + 1] == "]":
            if v is not None:
                end = v
        else:
            if v is not None:
                incr = v
            if text[i:i + 1] != ":":
                raise bad
            v, i = number(i + 1)
            if v is not None:
                end = v
            if text[i:i + 1] != "]":
                raise bad
    given = {}
    if start != 0:
        given["s"] = start
    if incr != 1:
        given["i"] = incr
    if end != -1:
        given["e"] = end
    return given, i + 1


def _arr_shorthand(given: dict[str, int]) -> tuple[str, dict[str, Any]]:
    inst = ChfInstance(PLUGINS["arr"])
    for k, v in given.items():
        if not (inst.map_key(k) and inst.value("int32", v)):
            raise FilterError(inst.error)
    if not inst.end():
        raise FilterError(inst.error)
    return "arr", inst.plugin.public(inst.struct)


def parse_channel_name(name: str) -> ChannelName:
    """Parse a CA channel name with dbChannelCreate's grammar. Raises FilterError (message:
    what is wrong, yajl's text for JSON errors) where base fails channel creation on syntax or
    filter options. Not checked here: the record and field (caller), whether ``$`` suits the
    field (:func:`long_string_field`), sync states (``build_chain``).

    The name is read one character per byte (latin-1, as the server decodes it); it ends at a
    NUL as the C string does."""
    name = name.split("\0", 1)[0]
    record, fld, rest = split_pv_name(name)
    cn = ChannelName(record, fld)
    pos = 0
    if rest[:1] == "$":
        cn.long_string = True
        pos = 1
    if rest[pos:pos + 1] == "[":
        given, pos = _array_range(rest, pos)
        cn.filters.append(_arr_shorthand(given))
    if rest[pos:pos + 1] == "{":
        json = rest[pos:]
        if any(ord(c) > 0xFF for c in json):     # decoded as UTF-8 after all: back to bytes
            json = json.encode("utf-8").decode("latin-1")
        reader = FilterSpecReader(PLUGINS, cn.filters)
        try:
            _json5.parse(json, reader)
        except _json5.JsonError as exc:
            raise FilterError(f"dbChannelCreate: {exc}") from None
        except _json5.Cancelled:
            raise FilterError(f"dbChannelCreate: {reader.error}") from None
        pos = len(rest)
    if pos < len(rest):
        raise FilterError(f"unexpected '{rest[pos:]}' after the field name "
                          f"'{record}.{fld}'")
    return cn
