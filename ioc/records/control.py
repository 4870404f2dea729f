"""Control-flow record support: fanout, dfanout, seq, sel, permissive, state (EPICS base 7.0).

None of these types converts values through device support; each subclasses Record and
processes as its ``xxxRecord.c`` does:

* fanout: SELL -> SELN, then forward-scan LNK0..LNKF by SELM (All / Specified: SELN+OFFS /
  Mask: SELN shifted by SHFT); VAL posts only on alarm changes;
* dfanout: closed-loop DOL -> VAL, SELL -> SELN, alarms on VAL, VAL written to OUTA..OUTH by SELM
  (Specified: SELN 1..8, 0 writes nothing), deadband monitors;
* seq: the selected groups whose DOLn or LNKn is not constant run one after another from the
  callback task (never inline), each after its DLYn: DOLn -> DOn, DOn -> LNKn. The record stays
  active (PACT) until the last group ran, so a put-callback completes after the whole sequence;
* sel: INPA..INPL -> A..L (Specified: only the NVL-selected one), VAL by SELM (Specified, High,
  Low, Median Signal; NaN inputs are skipped), alarms and deadbands on VAL, A..L posted on change;
* permissive, state: nothing but monitors (VAL/WFLG against OVAL/OFLG; state's string VAL).
"""
from __future__ import annotations

import math
from typing import Any

from .base import Record, _NotifyScope, check_deadband
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .links import as_float, constant_value
from .meta import AnalogMeta

HEX = "0123456789ABCDEF"
SEL_LETTERS = "ABCDEFGHIJKL"
DFANOUT_OUTS = tuple("OUT" + c for c in "ABCDEFGH")
SELM_ALL, SELM_SPECIFIED, SELM_MASK = range(3)
SEL_SPECIFIED, SEL_HIGH, SEL_LOW, SEL_MEDIAN = range(4)
OMSL_CLOSED_LOOP = 1
_ALL_BITS = (1 << 16) - 1
# seqDLYprecision, seqDLYlimit (iocsh variables of seqRecord.c, at their defaults)
SEQ_DLY_PRECISION, SEQ_DLY_LIMIT = 2, 100000.0


def load_constant(rec: Record, link_field: str, field: str) -> bool:
    """recGblInitConstantLink: a constant link's value stored in ``field``; True if stored."""
    v = constant_value(rec.links.get(link_field), scalar=True)
    if v is None:
        return False
    try:
        rec.f[field] = rec.coerce_field(field, v)
    except ValueError:
        return False
    return True


def fetch_link(rec: Record, link_field: str, field: str) -> bool:
    """dbGetLink into ``field`` (converted to its type). A constant link leaves the field as it
    is and succeeds; a failed read leaves it too and returns False."""
    link = rec.links.get(link_field)
    if link is None or link.is_constant:
        return True
    v = as_float(link.get_value(rec))
    if v is None:
        return False
    try:
        if rec.field_type(field) in ("DBF_DOUBLE", "DBF_FLOAT"):
            rec.f[field] = v
        else:
            # A C cast of the double: an out-of-range or NaN source gives 0 here.
            rec.f[field] = rec.coerce_field(field, int(v) if math.isfinite(v) else 0)
    except ValueError:
        return False
    return True


def selection_mask(rec: Record, nlinks: int) -> int | None:
    """The links fanout/seq select, as a bit mask of LNK0.. (SELN already fetched); None with a
    SOFT/INVALID alarm when SELN+OFFS or SHFT is out of range or SELM out of its menu."""
    f = rec.f
    selm = f["SELM"]
    if selm == SELM_ALL:
        return (1 << nlinks) - 1
    if selm == SELM_SPECIFIED:
        i = f["SELN"] + f["OFFS"]
        if 0 <= i < nlinks:
            return 1 << i
    elif selm == SELM_MASK:
        shft = f["SHFT"]
        if -15 <= shft <= 15:
            seln = f["SELN"]
            # epicsUInt16 arithmetic: bits shifted past bit 15 are lost.
            return ((seln >> shft) if shft >= 0 else (seln << -shft)) & _ALL_BITS
    rec.set_sevr(Stat.SOFT, Sevr.INVALID)
    return None


class _SelnMonitor:
    """fanout/seq monitors: VAL only on an alarm change; SELN when it changed since ``last``."""

    def post_selection(self: Any, last: int) -> None:
        f = self.f
        events = self.reset_alarms()
        if events:
            self.post("VAL", events)
        if f["SELN"] != last:
            self.post("SELN", events | DBE_VALUE | DBE_LOG)


class FanoutRecord(_SelnMonitor, Record):
    rtype = "fanout"
    io_link = ""

    def init_record(self, pass_: int) -> None:
        if pass_ == 1:
            load_constant(self, "SELL", "SELN")

    def process(self) -> None:
        f = self.f
        oldn = f["SELN"]
        f["PACT"] = 1
        fetch_link(self, "SELL", "SELN")
        mask = selection_mask(self, 16)
        for i in range(16):
            if mask and mask >> i & 1:
                link = self.links.get("LNK" + HEX[i])
                if link is not None:
                    link.forward(self)
        f["UDF"] = 0
        self.get_timestamp()
        self.post_selection(oldn)
        self.fwd_link()
        f["PACT"] = 0


class _AnalogSelect(AnalogMeta, Record):
    """dfanout/sel: HIHI..LOLO alarms with HYST and MDEL/ADEL deadbands on a double VAL."""

    io_link = ""

    def check_alarms(self) -> None:
        self.check_analog_alarms(self.f["VAL"])


class DfanoutRecord(_AnalogSelect):
    rtype = "dfanout"
    # dfanoutRecord.c: HOPR/LOPR are the control limits of VAL, LALM, ALST, MLST only.
    ctrl_fields = frozenset({"VAL", "LALM", "ALST", "MLST"})

    def init_record(self, pass_: int) -> None:
        if pass_ == 1:
            load_constant(self, "SELL", "SELN")
            if load_constant(self, "DOL", "VAL"):
                self.f["UDF"] = int(math.isnan(self.f["VAL"]))

    def process(self) -> None:
        f = self.f
        dol = self.links.get("DOL")
        if (not f["PACT"] and dol is not None and not dol.is_constant
                and f["OMSL"] == OMSL_CLOSED_LOOP):
            if fetch_link(self, "DOL", "VAL"):
                f["UDF"] = int(math.isnan(f["VAL"]))
        f["PACT"] = 1
        self.get_timestamp()
        fetch_link(self, "SELL", "SELN")
        self.check_alarms()
        self._push_values()
        self.monitor_value()
        self.fwd_link()
        f["PACT"] = 0

    def _push_values(self) -> None:
        f = self.f
        selm, seln = f["SELM"], f["SELN"]
        if selm == SELM_ALL:
            mask = _ALL_BITS
        elif selm == SELM_SPECIFIED:
            if seln > len(DFANOUT_OUTS):
                self.set_sevr(Stat.SOFT, Sevr.INVALID)
                return
            mask = 1 << (seln - 1) if seln else 0
        elif selm == SELM_MASK:
            mask = seln
        else:
            self.set_sevr(Stat.SOFT, Sevr.INVALID)
            return
        for i, name in enumerate(DFANOUT_OUTS):
            link = self.links.get(name)
            if mask >> i & 1 and link is not None and not link.put_value(self, f["VAL"]):
                self.set_sevr(Stat.LINK, Sevr.MAJOR)


class SeqRecord(_SelnMonitor, Record):
    rtype = "seq"
    io_link = ""

    def init_record(self, pass_: int) -> None:
        if pass_ == 1:
            load_constant(self, "SELL", "SELN")
            for c in HEX:
                load_constant(self, "DOL" + c, "DO" + c)
            self.f["OLDN"] = self.f["SELN"]
            self._groups: list[str] = []
            self._index = 0

    def process(self) -> None:
        f = self.f
        if f["PACT"]:
            self._finish()
            return
        f["PACT"] = 1
        if f["SELM"] == SELM_ALL:
            mask: int | None = _ALL_BITS
        else:
            fetch_link(self, "SELL", "SELN")
            mask = selection_mask(self, 16)
        if not mask:
            self._finish()
            return
        self._groups = [c for i, c in enumerate(HEX)
                        if mask >> i & 1 and not (self._is_constant("LNK" + c)
                                                  and self._is_constant("DOL" + c))]
        self._index = 0
        if not self._groups:
            self._finish()
            return
        self._next_group()

    # ------------------------------------------------------------ metadata
    # seqRecord.c finds a field's kind from its offset after DLY1 in the groups (DLY, DOL, DO,
    # LNK): bit 1 clear is "a delay" (s, 2 digits, 0..100000; display limits 10 and 0 swapped
    # by a typo), set is "a value" with the metadata of the DOL one group before; group 0 and
    # the fields before it get recGbl's defaults. Carried over as base serves it.
    def _seq_slot(self, fname: str) -> tuple[str, str] | None:
        """("dly", "") or ("do", DOL link field) for a group field, None for the rest."""
        for pos, prefix in enumerate(("DLY", "DOL", "DO", "LNK")):
            c = fname[len(prefix):]
            if fname.startswith(prefix) and len(c) == 1 and c in HEX:
                offset = 4 * (HEX.index(c) - 1) + pos
                if offset < 0:
                    return None
                return ("do", "DOL" + HEX[offset >> 2]) if offset & 2 else ("dly", "")
        return None

    def _dol_md(self, link_field: str) -> dict | None:
        link = self.links.get(link_field)
        return link.target_metadata() if link is not None else None

    def rset_units(self, fname: str) -> str | None:
        slot = self._seq_slot(fname)
        if slot is None:
            return ""
        if slot[0] == "dly":
            return "s"
        md = self._dol_md(slot[1])
        return md.get("units", "") if md is not None else ""

    def rset_precision(self, fname: str) -> int | None:
        slot = self._seq_slot(fname)
        if slot is not None:
            if slot[0] == "dly":
                return SEQ_DLY_PRECISION
            md = self._dol_md(slot[1])
            if md is not None and "precision" in md:
                return int(md["precision"])
        return self.recgbl_prec(fname, self.f["PREC"])

    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        slot = self._seq_slot(fname)
        if slot is None:
            return self.type_range(fname)
        if slot[0] == "dly":
            return 0.0, 10.0
        md = self._dol_md(slot[1]) or {}
        return md.get("upper_disp_limit", 0.0), md.get("lower_disp_limit", 0.0)

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        slot = self._seq_slot(fname)
        if slot is not None and slot[0] == "dly":
            return SEQ_DLY_LIMIT, 0.0
        return self.type_range(fname)

    def rset_alarm(self, fname: str) -> tuple[float, float, float, float] | None:
        slot = self._seq_slot(fname)
        if slot is None or slot[0] == "dly":
            return None
        md = self._dol_md(slot[1]) or {}
        return tuple(md.get(k, math.nan) for k in (
            "upper_alarm_limit", "upper_warning_limit", "lower_warning_limit",
            "lower_alarm_limit"))

    def _is_constant(self, fname: str) -> bool:
        link = self.links.get(fname)
        return link is None or link.is_constant

    def _next_group(self) -> None:
        """Schedule the next group on the callback task (after its delay), or finish."""
        if self._index >= len(self._groups):
            self._in_scope(self.process)
            return
        dly = self.f["DLY" + self._groups[self._index]]
        self.db.call_later(dly if dly > 0.0 else 0.0, lambda: self._in_scope(self._run_group))

    def _in_scope(self, fn) -> None:
        # What the sequence processes joins the put-callback waiting for the record.
        saved = _NotifyScope.current
        _NotifyScope.current = self.notifies[0] if self.notifies else None
        try:
            fn()
        finally:
            _NotifyScope.current = saved

    def _run_group(self) -> None:
        f = self.f
        c = self._groups[self._index]
        old = f["DO" + c]
        fetch_link(self, "DOL" + c, "DO" + c)
        self.get_timestamp()
        link = self.links.get("LNK" + c)
        if link is not None:
            link.put_value(self, f["DO" + c])
        if old != f["DO" + c]:
            self.post("DO" + c, DBE_VALUE | DBE_LOG)
        self._index += 1
        self._next_group()

    def _finish(self) -> None:
        """asyncFinish: time stamp, monitors, forward link, PACT off."""
        f = self.f
        f["UDF"] = 0
        self.get_timestamp()
        self.post_selection(f["OLDN"])
        f["OLDN"] = f["SELN"]
        self.fwd_link()
        f["PACT"] = 0


class SelRecord(_AnalogSelect):
    rtype = "sel"
    # selRecord.c: HOPR/LOPR are the display and control limits of A..L and LA..LL too.
    disp_fields = ctrl_fields = AnalogMeta.disp_fields | frozenset(
        p + c for c in SEL_LETTERS for p in ("", "L"))

    def init_record(self, pass_: int) -> None:
        if pass_ == 1:
            load_constant(self, "NVL", "SELN")
            for c in SEL_LETTERS:
                self.f[c] = math.nan
                load_constant(self, "INP" + c, c)

    def process(self) -> None:
        f = self.f
        f["PACT"] = 1
        if self._fetch_values():
            self._select()
        self.get_timestamp()
        self.check_alarms()
        self._monitor()
        self.fwd_link()
        f["PACT"] = 0

    def _fetch_values(self) -> bool:
        f = self.f
        if f["SELM"] == SEL_SPECIFIED:
            if not fetch_link(self, "NVL", "SELN"):
                return False
            if f["SELN"] >= len(SEL_LETTERS):
                return True         # base: do_sel then raises the SOFT alarm
            c = SEL_LETTERS[f["SELN"]]
            return fetch_link(self, "INP" + c, c)
        ok = True
        for c in SEL_LETTERS:
            ok = fetch_link(self, "INP" + c, c)     # base keeps only the last link's status
        return ok

    def _select(self) -> None:
        f = self.f
        values = [f[c] for c in SEL_LETTERS]
        selm = f["SELM"]
        if selm == SEL_SPECIFIED:
            if f["SELN"] >= len(values):
                self.set_sevr(Stat.SOFT, Sevr.INVALID)
                return
            val = values[f["SELN"]]
        elif selm in (SEL_HIGH, SEL_LOW):
            val = -math.inf if selm == SEL_HIGH else math.inf
            for i, v in enumerate(values):
                if not math.isnan(v) and (v > val if selm == SEL_HIGH else v < val):
                    val = v
                    f["SELN"] = i
        elif selm == SEL_MEDIAN:
            good = sorted(v for v in values if not math.isnan(v))
            f["SELN"] = len(good)
            val = good[len(good) // 2] if good else math.nan
        else:
            self.set_sevr(Stat.CALC, Sevr.INVALID)
            return
        f["VAL"] = val
        f["UDF"] = int(math.isnan(val))

    def _monitor(self) -> None:
        f = self.f
        mask = self.reset_alarms()
        if check_db(f, "MLST", "MDEL"):
            mask |= DBE_VALUE
        if check_db(f, "ALST", "ADEL"):
            mask |= DBE_LOG
        if mask:
            self.post("VAL", mask)
        mask |= DBE_VALUE | DBE_LOG
        if f["NLST"] != f["SELN"]:
            f["NLST"] = f["SELN"]
            self.post("SELN", mask)
        for c in SEL_LETTERS:
            # C's != : a NaN input is posted every time.
            if f[c] != f["L" + c]:
                self.post(c, mask)
                f["L" + c] = f[c]


def check_db(f: dict, last: str, deadband: str) -> bool:
    """recGblCheckDeadband on VAL against ``last`` (updated when it reports a change)."""
    if check_deadband(f[last], f["VAL"], f[deadband]):
        f[last] = f["VAL"]
        return True
    return False


class PermissiveRecord(Record):
    rtype = "permissive"
    io_link = ""

    def process(self) -> None:
        f = self.f
        f["PACT"] = 1
        f["UDF"] = 0
        self.get_timestamp()
        mask = self.reset_alarms()
        for fld, old in (("VAL", "OVAL"), ("WFLG", "OFLG")):
            changed = f[old] != f[fld]
            f[old] = f[fld]
            if changed:
                self.post(fld, mask | DBE_VALUE | DBE_LOG)
        self.fwd_link()
        f["PACT"] = 0


class StateRecord(Record):
    rtype = "state"
    io_link = ""

    def process(self) -> None:
        f = self.f
        f["UDF"] = 0
        f["PACT"] = 1
        self.get_timestamp()
        mask = self.reset_alarms()
        if f["OVAL"] != f["VAL"]:
            self.post("VAL", mask | DBE_VALUE | DBE_LOG)
            f["OVAL"] = f["VAL"]
        self.fwd_link()
        f["PACT"] = 0
