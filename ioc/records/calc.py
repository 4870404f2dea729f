"""calc and calcout record support (calcRecord.c, calcoutRecord.c of EPICS base 7.0)."""
from __future__ import annotations

import math

from .base import Record
from .errors import PutErrorKept, RecordInitReport
from .meta import AnalogMeta
from .calc_expr import CalcError, compile_calc
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .links import ConstantLink, as_float

LETTERS = "ABCDEFGHIJKL"
_IVOA_CONTINUE, _IVOA_DONT_DRIVE, _IVOA_SET_IVOV = 0, 1, 2
# calcoutOOPT
_EVERY, _ON_CHANGE, _WHEN_ZERO, _WHEN_NONZERO, _TO_ZERO, _TO_NONZERO = range(6)
_DOPT_USE_OCAL = 1
# calcoutODLYprecision, calcoutODLYlimit (iocsh variables of calcoutRecord.c, at their defaults)
ODLY_PRECISION, ODLY_LIMIT = 2, 100000.0


class _CalcBase(AnalogMeta, Record):
    # calcRecord.c / calcoutRecord.c rset: the inputs A..L and their previous values LA..LL
    # show the units, precision, display and alarm limits of what INPA..INPL read.
    link_fields = {p + x: "INP" + x for x in LETTERS for p in ("", "L")}
    expr_fields: tuple[str, ...] = ("CALC",)

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            self._exprs = {}
            errors = []
            for fld in self.expr_fields:
                if fld == "OCAL" and not self.f[fld].strip():
                    continue          # an empty OCAL is fine unless DOPT selects it
                try:
                    self._exprs[fld] = compile_calc(self.f[fld])
                except CalcError as exc:
                    # calcRecord.c/calcoutRecord.c init_record: recGblRecordError, and the
                    # record initialises on (processing raises CALC/INVALID); a bad OCAL
                    # is reported only when DOPT uses it.
                    if fld != "OCAL" or self.f.get("DOPT") == _DOPT_USE_OCAL:
                        errors.append(f"Illegal {fld} field {self.f[fld]!r}: {exc}")
            if errors:
                raise RecordInitReport("; ".join(errors))
            return
        for i, letter in enumerate(LETTERS):
            link = self.links.get("INP" + letter)
            if isinstance(link, ConstantLink):
                v = link.load_value()
                if v is not None:
                    self.f[letter] = float(v if not isinstance(v, list) else v[0])

    def special(self, fname: str, after: bool) -> None:
        if after and fname in self.expr_fields:
            if fname == "OCAL" and not self.f[fname].strip():
                self._exprs.pop(fname, None)
                return
            try:
                self._exprs[fname] = compile_calc(self.f[fname])
            except CalcError as exc:
                # As calcRecord's special(): the text stays (dbPut stored it), the put
                # fails, and processing raises CALC/INVALID until a valid expression comes.
                self._exprs.pop(fname, None)
                raise PutErrorKept(f"{self.name}.{fname}: {exc}") from None

    def fetch_values(self) -> bool:
        """Read INPA..INPL into A..L; False if a link could not be read (LINK alarm set)."""
        f = self.f
        ok = True
        for letter in LETTERS:
            link = self.links.get("INP" + letter)
            if link is None or link.is_constant:
                continue
            v = as_float(link.get_value(self))
            if v is None:
                ok = False
                continue
            f[letter] = v
        return ok

    def evaluate(self, fld: str) -> float | None:
        f = self.f
        args = [f[c] for c in LETTERS]
        expr = self._exprs.get(fld)
        if expr is None:
            return None
        try:
            result = expr.evaluate(args, f["VAL"])
        except CalcError:
            return None
        for c, v in zip(LETTERS, args):
            f[c] = v
        return result

    def monitor(self) -> None:
        f = self.f
        self.monitor_value()
        for c in LETTERS:
            if f[c] != f["L" + c] and not (math.isnan(f[c]) and math.isnan(f["L" + c])):
                f["L" + c] = f[c]
                self.post(c, DBE_VALUE | DBE_LOG)


class CalcRecord(_CalcBase):
    rtype = "calc"
    io_link = ""

    def process(self) -> None:
        f = self.f
        f["PACT"] = 1
        if self.fetch_values():
            v = self.evaluate("CALC")
            if v is None:
                self.set_sevr(Stat.CALC, Sevr.INVALID)
            else:
                f["VAL"] = v
                f["UDF"] = int(math.isnan(v))
        self.get_timestamp()
        self.check_analog_alarms(f["VAL"])
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0


class CalcoutRecord(_CalcBase):
    rtype = "calcout"
    io_link = "OUT"
    expr_fields = ("CALC", "OCAL")

    # The output delay ODLY: seconds, its own precision, display from 0, control 0..limit.
    def rset_units(self, fname: str) -> str | None:
        return "s" if fname == "ODLY" else super().rset_units(fname)

    def rset_precision(self, fname: str) -> int | None:
        return ODLY_PRECISION if fname == "ODLY" else super().rset_precision(fname)

    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        if fname == "ODLY":
            return self.type_range(fname)[0], 0.0
        return super().rset_graphic(fname)

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        return (ODLY_LIMIT, 0.0) if fname == "ODLY" else super().rset_control(fname)

    def process(self) -> None:
        f = self.f
        if not f["PACT"]:
            f["PACT"] = 1
            if self.fetch_values():
                v = self.evaluate("CALC")
                if v is None:
                    self.set_sevr(Stat.CALC, Sevr.INVALID)
                else:
                    f["VAL"] = v
                    f["UDF"] = int(math.isnan(v))
            self.check_analog_alarms(f["VAL"])
            oopt, val, pval = f["OOPT"], f["VAL"], f["PVAL"]
            do_output = (oopt == _EVERY
                         or (oopt == _ON_CHANGE and abs(pval - val) > f["MDEL"])
                         or (oopt == _WHEN_ZERO and val == 0)
                         or (oopt == _WHEN_NONZERO and val != 0)
                         or (oopt == _TO_ZERO and pval != 0 and val == 0)
                         or (oopt == _TO_NONZERO and pval == 0 and val != 0))
            f["PVAL"] = val
            if do_output:
                if f["ODLY"] > 0:
                    # Output delay: stay active (PACT) until it expires; a put-callback waits.
                    f["DLYA"] = 1
                    self.get_timestamp()
                    self.post("DLYA", DBE_VALUE)
                    self.db.call_later(f["ODLY"], self._complete_async)
                    return
                f["PACT"] = 0
                self.exec_output()
                if f["PACT"]:
                    return
                f["PACT"] = 1
            self.get_timestamp()
        else:
            if f["DLYA"]:
                f["DLYA"] = 0
                self.get_timestamp()
                self.post("DLYA", DBE_VALUE)
                f["PACT"] = 0
                self.exec_output()
                if f["PACT"]:
                    return
                f["PACT"] = 1
            else:
                if self.dset is not None:
                    self.dset.write()      # second half of asynchronous device support
                self.get_timestamp()
        self.monitor()
        if f["POVL"] != f["OVAL"]:
            f["POVL"] = f["OVAL"]
            self.post("OVAL", DBE_VALUE | DBE_LOG)
        self.fwd_link()
        f["PACT"] = 0

    def exec_output(self) -> None:
        f = self.f
        if f["DOPT"] == _DOPT_USE_OCAL:
            v = self.evaluate("OCAL")
            if v is None:
                self.set_sevr(Stat.CALC, Sevr.INVALID)
            else:
                f["OVAL"] = v
                f["UDF"] = int(math.isnan(v))
        else:
            f["OVAL"] = f["VAL"]
        if self.dset is None:
            return
        if f["NSEV"] < Sevr.INVALID or f["IVOA"] == _IVOA_CONTINUE:
            self.dset.write()
        elif f["IVOA"] == _IVOA_SET_IVOV:
            f["OVAL"] = f["IVOV"]
            self.dset.write()
