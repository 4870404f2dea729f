"""Record-support metadata: the five rset functions behind DBR_GR_*/DBR_CTRL_* replies
(get_units, get_precision, get_graphic_double, get_control_double, get_alarm_double), their
recGbl defaults, and how dbAccess combines them (:meth:`RsetMeta.metadata`).

:class:`RsetMeta` is the base of every record (the types without rset functions: bi, mbbi,
mbbo, stringin, stringout); :class:`AnalogMeta` describes the analog family (ai, ao, longin,
longout, calc, calcout) with class attributes and is mixed in before Record.
"""
from __future__ import annotations

import math
from typing import ClassVar

from .fields import FLOAT_TYPES


# getMaxRangeValues (recGbl.c): display and control limits of a field without its own.
FIELD_RANGES: dict[str, tuple[float, float]] = {
    "DBF_CHAR": (-128.0, 127.0), "DBF_UCHAR": (0.0, 255.0),
    "DBF_SHORT": (-32768.0, 32767.0), "DBF_USHORT": (0.0, 65535.0),
    "DBF_ENUM": (0.0, 65535.0),
    "DBF_LONG": (-2147483648.0, 2147483647.0), "DBF_ULONG": (0.0, 4294967295.0),
    "DBF_INT64": (-9223372036854775808.0, 9223372036854775808.0),
    "DBF_UINT64": (0.0, 18446744073709551615.0),
    "DBF_FLOAT": (-1e30, 1e30), "DBF_DOUBLE": (-1e300, 1e300),
}

_INTEGER_TYPES = frozenset(FIELD_RANGES) - FLOAT_TYPES - {"DBF_ENUM"}


class RsetMeta:
    """The rset metadata functions of a record type and dbAccess's combination of them.
    Needs the record's ``spec``, ``f`` and ``field_type()`` (see ioc.records.base.Record)."""

    # ------------------------------------------------------------ CA metadata
    # The five rset functions behind DBR_GR_*/DBR_CTRL_* (and what dbLink's lset reads through
    # a DB link). Each returns None where the record type's rset has no such function: the base
    # class has none, as bi, mbbi, mbbo, stringin and stringout in EPICS base. Record types
    # that have them override these (AnalogMeta below for the analog family).
    def rset_units(self, fname: str) -> str | None:
        """get_units: the units of ``fname``."""
        return None

    def rset_precision(self, fname: str) -> int | None:
        """get_precision (asked only for DBF_FLOAT/DBF_DOUBLE fields)."""
        return None

    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        """get_graphic_double: (upper, lower) display limits."""
        return None

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        """get_control_double: (upper, lower) control limits."""
        return None

    def rset_alarm(self, fname: str) -> tuple[float, float, float, float] | None:
        """get_alarm_double: (upper alarm, upper warning, lower warning, lower alarm)."""
        return None

    def dbd_type(self, fname: str) -> str:
        """The field's type as the dbd declares it (pfldDes->field_type: DBF_MENU stays
        DBF_MENU, waveform VAL is DBF_NOACCESS), which is what the rset functions test."""
        fs = self.spec.fields.get(fname)
        return fs.dbf if fs is not None else ""

    def type_range(self, fname: str) -> tuple[float, float]:
        """recGblGetGraphicDouble/recGblGetControlDouble: (upper, lower) = the range of the
        field's dbd type (getMaxRangeValues); 0, 0 for menus, strings, links and the like."""
        rng = FIELD_RANGES.get(self.dbd_type(fname))
        return (rng[1], rng[0]) if rng is not None else (0.0, 0.0)

    def recgbl_prec(self, fname: str, prec: int) -> int:
        """recGblGetPrec: 0 for an integer field, ``prec`` for a float one (15 when outside
        0..15), ``prec`` unchanged for anything else."""
        dbf = self.dbd_type(fname)
        if dbf in FLOAT_TYPES:
            return prec if 0 <= prec <= 15 else 15
        return 0 if dbf in _INTEGER_TYPES else prec

    def metadata(self, fname: str) -> dict:
        """Units, precision and limits for DBR_GR/DBR_CTRL reads of ``fname``: the rset
        functions combined as dbAccess getOptions does.

        Keys: units, precision, upper/lower_disp_limit, upper/lower_ctrl_limit, upper/lower
        alarm and warning limits. A missing key is what dbAccess reports for a missing rset
        function: '' for units, 0 for precision and the display/control limits, NaN for the
        alarm limits. Precision is only asked for DBF_FLOAT/DBF_DOUBLE fields (as served, so a
        waveform VAL by its FTVL).
        """
        md: dict = {}
        units = self.rset_units(fname)
        if units:
            md["units"] = units
        if fname in self.spec.fields and self.field_type(fname) in FLOAT_TYPES:
            prec = self.rset_precision(fname)
            if prec is not None:
                md["precision"] = prec
        disp = self.rset_graphic(fname)
        if disp is not None:
            md["upper_disp_limit"], md["lower_disp_limit"] = disp
        ctrl = self.rset_control(fname)
        if ctrl is not None:
            md["upper_ctrl_limit"], md["lower_ctrl_limit"] = ctrl
        alarm = self.rset_alarm(fname)
        if alarm is not None:
            (md["upper_alarm_limit"], md["upper_warning_limit"], md["lower_warning_limit"],
             md["lower_alarm_limit"]) = alarm
        return md


# The fields of the analog family whose display (and mostly control) limits are HOPR/LOPR.
_ALARM_LIMIT_FIELDS = frozenset({"VAL", "HIHI", "HIGH", "LOW", "LOLO", "LALM", "ALST", "MLST"})


class AnalogMeta:
    """The rset metadata functions of the analog family (ai, ao, longin, longout, calc,
    calcout), described by class attributes; mix in before Record.

    * units: EGU for every field of dbd type ``egu_type`` except ``no_egu``; a field of
      ``link_fields`` (calc A..L) shows what its input link reads instead;
    * precision (``has_precision`` False: no get_precision): PREC as is for ``raw_prec``,
      through recGblGetPrec for the others; a ``link_fields`` field: its link's, else PREC;
    * display limits: HOPR/LOPR for ``disp_fields``, the link's for ``link_fields`` (0, 0
      without), the type's range for the others;
    * control limits: ``ctrl_limits()`` for ``ctrl_fields``, the type's range for the others;
    * alarm limits: VAL's HIHI/HIGH/LOW/LOLO where HHSV/HSV/LSV/LLSV are set (NaN where not),
      a ``link_fields`` field its link's, NaN for the others.
    """

    egu_type: ClassVar[str] = "DBF_DOUBLE"
    no_egu: ClassVar[frozenset[str]] = frozenset()
    has_precision: ClassVar[bool] = True
    raw_prec: ClassVar[frozenset[str]] = frozenset({"VAL"})
    disp_fields: ClassVar[frozenset[str]] = _ALARM_LIMIT_FIELDS
    ctrl_fields: ClassVar[frozenset[str]] = _ALARM_LIMIT_FIELDS
    #: field -> the input link whose target supplies its metadata (calc/calcout A..L, LA..LL)
    link_fields: ClassVar[dict[str, str]] = {}

    f: dict
    links: dict

    def ctrl_limits(self) -> tuple[float, float]:
        """(upper, lower) control limits of ``ctrl_fields``."""
        return self.f["HOPR"], self.f["LOPR"]

    def _link_md(self, fname: str) -> dict | None:
        link = self.links.get(self.link_fields[fname])
        return link.target_metadata() if link is not None else None

    def rset_units(self, fname: str) -> str | None:
        if self.dbd_type(fname) != self.egu_type or fname in self.no_egu:
            return ""
        if fname in self.link_fields:
            md = self._link_md(fname)
            return md.get("units", "") if md is not None else ""
        return self.f["EGU"]

    def rset_precision(self, fname: str) -> int | None:
        if not self.has_precision:
            return None
        prec = self.f["PREC"]
        if fname in self.raw_prec:
            return prec
        if fname in self.link_fields:
            md = self._link_md(fname)
            return int(md.get("precision", 0)) if md is not None else prec
        return self.recgbl_prec(fname, prec)

    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        if fname in self.disp_fields:
            return self.f["HOPR"], self.f["LOPR"]
        if fname in self.link_fields:
            md = self._link_md(fname) or {}
            return md.get("upper_disp_limit", 0.0), md.get("lower_disp_limit", 0.0)
        return self.type_range(fname)

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        if fname in self.ctrl_fields:
            return self.ctrl_limits()
        return self.type_range(fname)

    def rset_alarm(self, fname: str) -> tuple[float, float, float, float] | None:
        f = self.f
        if fname == "VAL":
            nan = math.nan
            return (f["HIHI"] if f["HHSV"] else nan, f["HIGH"] if f["HSV"] else nan,
                    f["LOW"] if f["LSV"] else nan, f["LOLO"] if f["LLSV"] else nan)
        if fname in self.link_fields:
            md = self._link_md(fname) or {}
            return tuple(md.get(k, math.nan) for k in (
                "upper_alarm_limit", "upper_warning_limit", "lower_warning_limit",
                "lower_alarm_limit"))
        return None         # recGblGetAlarmDouble: all NaN
