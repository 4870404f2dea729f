"""sub and aSub record support (subRecord.c, aSubRecord.c of EPICS base 7.0) with subroutines
written in Python.

Subroutines are looked up by name (SNAM, INAM; aSub with LFLG=READ: the name SUBL reads) in
:data:`SUBROUTINES`, which the decorator :func:`subroutine` and the iocsh command
``registerSubroutine NAME module:function`` (ioc.shell.sub_cmds) fill, as base's
registryFunctionFind looks up C functions registered by a dbd ``function()`` line.

Calling convention: ``func(rec) -> int | None``, ``rec`` being the record.

* sub: inputs ``rec.f["A"]`` .. ``rec.f["L"]`` (floats, read from INPA..INPL before the call);
  the routine sets ``rec.f["VAL"]``. A negative return is a failure (SOFT alarm of severity
  BRSV, as base); 0 or None success (UDF = VAL is NaN). Returning 1 after setting
  ``rec.f["PACT"] = 1`` makes it asynchronous: call ``rec.complete_async()`` when done, and
  the routine is called again to finish (base's documented asynchronous API).
* aSub: ``rec.inputs["A"]`` .. ``["U"]`` are numpy arrays of NOA..NOU elements of the types
  FTA..FTU (NEA..NEU of them read); ``rec.outputs["VALA"]`` .. ``["VALU"]`` arrays of
  NOVA..NOVU elements of FTVA..FTVU, with NEVA..NEVU used (``rec.set_output`` sets both). The
  return value becomes VAL; a non-zero one means the outputs are not written, a negative one
  also raises the SOFT alarm of severity BRSV.
* INAM routines run once at iocInit with the record; their return value is ignored.

A routine that raises puts the record in SOFT/INVALID alarm (the exception is logged once per
record until the routine succeeds again) and never stops the IOC.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any, Callable, Optional

import numpy as np

from .base import PutError, Record
from .fields import FieldValueError
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat
from .errors import PutErrorKept, RecordInitReport
from .links import ConstantLink, as_float
from .meta import AnalogMeta
from .waveform import FTVL_TYPES

log = logging.getLogger(__name__)

Subroutine = Callable[[Record], Optional[int]]
#: name -> Python subroutine (base's function registry for sub/aSub).
SUBROUTINES: dict[str, Subroutine] = {}

_FAILED = -1            # the status of a routine that raised or returned a non-integer
_S_DB_BAD_SUB = (511 << 16) | 35    # S_db_BadSub (M_dbAccess|35): what aSub VAL shows
_S_DB_LINK = _FAILED    # an input link that could not be read (dbGetLink's failure)
_ASYNC = 1              # subRecord: "status 1 = asynchronous" (documented API)
_LFLG_READ = 1
_EFLG_NEVER, _EFLG_ON_CHANGE, _EFLG_ALWAYS = range(3)


def register_subroutine(name: str, func: Subroutine) -> None:
    """Make ``func`` known as ``name`` to SNAM/INAM/SUBL (a later registration replaces it)."""
    if not callable(func):
        raise TypeError(f"subroutine {name!r}: {func!r} is not callable")
    SUBROUTINES[name] = func


def subroutine(name: str) -> Callable[[Subroutine], Subroutine]:
    """Decorator: ``@subroutine("mySub")`` registers the function as ``mySub``."""
    def deco(func: Subroutine) -> Subroutine:
        register_subroutine(name, func)
        return func
    return deco


def find_subroutine(name: str) -> Subroutine | None:
    """registryFunctionFind: the routine registered as ``name``, None if there is none."""
    return SUBROUTINES.get(name)


class _SubCaller:
    """Calling a Python routine on behalf of a record: exceptions become a status (and the
    SOFT/INVALID alarm), logged once until the routine succeeds again."""

    name: str
    f: dict

    def call_routine(self, func: Subroutine, what: str) -> int:
        try:
            status = func(self)
        except Exception:       # a user routine must never take the IOC down
            if not getattr(self, "_sub_failed", False):
                log.exception("%s: %s %s raised", self.name, what, getattr(func, "__name__", func))
                self._sub_failed = True
            self.set_sevr(Stat.SOFT, Sevr.INVALID)
            return _FAILED
        self._sub_failed = False
        if status is None:
            return 0
        try:
            return int(status)
        except (TypeError, ValueError):
            log.error("%s: %s returned %r, not an integer status", self.name, what, status)
            self.set_sevr(Stat.SOFT, Sevr.INVALID)
            return _FAILED

    def run_inam(self) -> None:
        """INAM at iocInit: an unknown name ends the record's initialisation (reported), as in base."""
        inam = self.f["INAM"]
        if inam:
            func = find_subroutine(inam)
            if func is None:
                raise RecordInitReport(f"Init subroutine (INAM) {inam!r} not found")
            self.call_routine(func, "INAM")


# ------------------------------------------------- softIoc's own routines (asSub registrar)
def _as_sub_init(rec: Record) -> int:
    """asSubInit (INAM of an access-security re-init sub record): nothing to prepare here."""
    return 0


def _as_sub_process(rec: Record) -> int:
    """asSubProcess: VAL 1 asks for an access-security re-init (asInitAsyn), which runs in a
    thread of its own; when it is done VAL goes back to 0 and the record completes, in
    READ alarm of severity BRSV when the file was bad (its rules stay in force). Without a
    file the request never completes and the record stays busy, as in softIoc. Any other
    VAL: post VAL, then process normally."""
    rec.post("VAL", DBE_VALUE)
    if not rec.f["PACT"] and rec.f["VAL"] == 1.0:
        rec.f["PACT"] = 1
        access = getattr(rec.db, "access", None)
        if access is not None and access.filename is not None:
            threading.Thread(target=_as_reinit, args=(rec, access), name="asInitTask",
                             daemon=True).start()
        return _ASYNC
    return 0


def _as_reinit(rec: Record, access) -> None:
    try:
        ok, why = access.reload()
    except Exception as exc:  # noqa: BLE001 - reported on the record, never raised
        ok, why = False, f"asInit failed: {exc}"

    def done() -> None:
        rec.f["VAL"] = 0.0
        if not ok:
            rec.set_sevr(Stat.READ, int(rec.f.get("BRSV", Sevr.NO_ALARM)), "asInit Failed")
            log.error("%s: asInit Failed: %s", rec.name, why)
        rec.complete_async()
    rec.db.call_soon_threadsafe(done)


register_subroutine("asSubInit", _as_sub_init)
register_subroutine("asSubProcess", _as_sub_process)


# --------------------------------------------------------------------------- sub
_SUB_LETTERS = "ABCDEFGHIJKL"


class SubRecord(_SubCaller, AnalogMeta, Record):
    """sub: A..L from INPA..INPL, the subroutine computes VAL, alarms as calc."""

    rtype = "sub"
    io_link = ""
    # subRecord.c rset: A..L and LA..LL show what INPA..INPL read; VAL and limits HOPR/LOPR.
    link_fields = {p + x: "INP" + x for x in _SUB_LETTERS for p in ("", "L")}

    def init_record(self, pass_: int) -> None:
        f = self.f
        if pass_ == 0:
            self._sadr: Subroutine | None = None
            self._sub_failed = False
            return
        for letter in _SUB_LETTERS:
            link = self.links.get("INP" + letter)
            if isinstance(link, ConstantLink):
                v = link.load_value()
                if v is not None:
                    f[letter] = as_float(v[0] if isinstance(v, list) else v) or 0.0
        self.run_inam()
        if not self._bind_snam():
            if f["SNAM"]:
                raise RecordInitReport(f"Proc subroutine (SNAM) {f['SNAM']!r} not found")
            return
        f["MLST"] = f["ALST"] = f["LALM"] = f["VAL"]

    def special(self, fname: str, after: bool) -> None:
        if fname != "SNAM":
            return
        f = self.f
        if not after:
            if not f["SNAM"] and f["PACT"]:
                f["PACT"] = f["RPRO"] = 0
            return
        if not self._bind_snam() and f["SNAM"]:
            # The name stays (dbPut stored it); processing raises BAD_SUB until a good one.
            raise PutErrorKept(f"{self.name}.SNAM: subroutine {f['SNAM']!r} not found")

    def _bind_snam(self) -> bool:
        """Look SNAM up; True when bound. An empty SNAM is logged and leaves the record busy
        (PACT), as base does: it never processes; an unknown one leaves ``_sadr`` None."""
        f = self.f
        if not f["SNAM"]:
            log.warning("%s.SNAM is empty", self.name)
            f["PACT"] = 1
            return False
        self._sadr = find_subroutine(f["SNAM"])
        return self._sadr is not None

    def _fetch(self) -> bool:
        f = self.f
        for letter in _SUB_LETTERS:
            link = self.links.get("INP" + letter)
            if link is None or link.is_constant:
                continue
            v = as_float(link.get_value(self))
            if v is None:
                return False
            f[letter] = v
        return True

    def _do_sub(self) -> int:
        f = self.f
        if self._sadr is None:
            self.set_sevr(Stat.BAD_SUB, Sevr.INVALID)
            return 0
        status = self.call_routine(self._sadr, "subroutine")
        if status < 0:
            # BRSV is the severity of a failure; an exception already raised INVALID.
            self.set_sevr(Stat.SOFT, f["BRSV"])
        else:
            f["UDF"] = int(math.isnan(f["VAL"]))
        return status

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        status = 0
        if not pact:
            f["PACT"] = 1
            status = 0 if self._fetch() else -1
            f["PACT"] = 0
        if status == 0:
            status = self._do_sub()
        if not pact and f["PACT"]:
            return                  # the routine went asynchronous
        f["PACT"] = 1
        if status == _ASYNC:
            return
        self.get_timestamp()
        self.check_analog_alarms(f["VAL"])
        self.monitor_value()
        for c in _SUB_LETTERS:
            if f[c] != f["L" + c]:
                f["L" + c] = f[c]
                self.post(c, DBE_VALUE | DBE_LOG)
        self.fwd_link()
        f["PACT"] = 0


# -------------------------------------------------------------------------- aSub
_ASUB_LETTERS = "ABCDEFGHIJKLMNOPQRSTU"


def _dtype(ft: int):
    """The numpy dtype of a menuFtype index (strings: object arrays of str)."""
    if not 0 <= ft < len(FTVL_TYPES):
        ft = 1                     # initFields: a type past ENUM becomes CHAR
    return FTVL_TYPES[ft][1] or object


def _as_array(value: Any, dtype) -> np.ndarray | None:
    """A link's value (scalar, list, array, str) as a 1-d array of ``dtype``; None if it
    cannot be converted."""
    if isinstance(value, (str, bytes)) and dtype is not object:
        try:
            value = float(value)
        except ValueError:
            return None
    try:
        return np.atleast_1d(np.asarray(value)).astype(dtype).ravel()
    except (TypeError, ValueError):
        return None


class ASubRecord(_SubCaller, Record):
    """aSub: array inputs A..U, array outputs VALA..VALU, VAL = the routine's status.

    The arrays live in ``self.inputs`` / ``self.outputs`` (name -> numpy array of NOx/NOVx
    elements); the previous outputs, for EFLG ON CHANGE, in ``self._ovl``.
    """

    rtype = "aSub"
    io_link = ""
    _ARRAY_FIELDS = frozenset(_ASUB_LETTERS) | frozenset("VAL" + x for x in _ASUB_LETTERS)

    # aSubRecord.c cvt_dbaddr: A..U and VALA..VALU are the input/output arrays, of type
    # FTx/FTVx, served over CA and written by dbPut (put_array_info sets NEx/NEVx). Over CA
    # they are served here as a scalar (the first element); DB links read the used elements.
    @classmethod
    def extra_fields(cls) -> frozenset[str]:
        return cls._ARRAY_FIELDS

    def field_type(self, fname: str) -> str:
        if fname in self._ARRAY_FIELDS:
            ft = self.f["FTV" + fname[-1] if len(fname) == 4 else "FT" + fname]
            if not 0 <= ft < len(FTVL_TYPES):
                ft = 1
            return FTVL_TYPES[ft][0]
        return super().field_type(fname)

    def field_array(self, fname: str):
        if fname in self._ARRAY_FIELDS:
            if len(fname) == 4:
                return self.outputs[fname][: self.f["NEV" + fname[-1]]]
            return self.inputs[fname][: self.f["NE" + fname]]
        return None

    def _mirror(self) -> None:
        """Keep f[A..U], f[VALA..VALU] (what CA serves) at the arrays' first elements."""
        f = self.f
        for arrays in (self.inputs, self.outputs):
            for key, arr in arrays.items():
                v = arr[0]
                f[key] = v if isinstance(v, str) else v.item()

    def coerce_field(self, fname: str, value, strict: bool = False):
        if fname not in self._ARRAY_FIELDS:
            return super().coerce_field(fname, value, strict)
        buf = self.outputs[fname] if len(fname) == 4 else self.inputs[fname]
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        arr = _as_array(value, buf.dtype)
        if arr is None or len(arr) == 0:
            raise PutError(f"{self.name}.{fname}: cannot convert {value!r}")
        return arr[: len(buf)]

    def set_from_text(self, fname: str, text: str) -> None:
        if fname in self._ARRAY_FIELDS:
            raise FieldValueError(f"field {fname} is not accessible")
        super().set_from_text(fname, text)

    def put_field(self, fname: str, value, *, from_link: bool = False) -> None:
        if fname not in self._ARRAY_FIELDS:
            return super().put_field(fname, value, from_link=from_link)
        if self.f["DISP"] and not from_link:
            raise PutError(f"{self.name}: puts are disabled (DISP=1)")
        arr = self.coerce_field(fname, value)
        n = len(arr)
        if len(fname) == 4:
            self.outputs[fname][:n] = arr
            self.f["NEV" + fname[-1]] = n
        else:
            self.inputs[fname][:n] = arr
            self.f["NE" + fname] = n
        self._mirror()
        self.db.put_count += 1
        self.post(fname, DBE_VALUE | DBE_LOG)

    def init_record(self, pass_: int) -> None:
        f = self.f
        if pass_ == 0:
            self._sadr: Subroutine | None = None
            self._sub_failed = False
            self.inputs: dict[str, np.ndarray] = {}
            self.outputs: dict[str, np.ndarray] = {}
            self._ovl: dict[str, np.ndarray] = {}
            for x in _ASUB_LETTERS:
                for ft, no, ne, arrays, key in (("FT" + x, "NO" + x, "NE" + x, self.inputs, x),
                                                ("FTV" + x, "NOV" + x, "NEV" + x, self.outputs,
                                                 "VAL" + x)):
                    f[no] = max(1, f[no])
                    f[ne] = f[no]
                    dt = _dtype(f[ft])
                    arrays[key] = np.full(f[no], "" if dt is object else 0, dtype=dt)
                f["ONV" + x] = f["NEV" + x]
                # base allocates OVLx in pass 0: a record whose pass 1 fails still monitors
                self._ovl[x] = self.outputs["VAL" + x].copy()
            self._mirror()
            return
        for x in _ASUB_LETTERS:
            link = self.links.get("INP" + x)
            if isinstance(link, ConstantLink):
                v = link.load_value()
                if v is not None:
                    n = self._store_input(x, v)
                    if n:
                        f["NE" + x] = n
        self.run_inam()
        if f["LFLG"] != _LFLG_READ and f["SNAM"]:
            self._sadr = find_subroutine(f["SNAM"])
            if self._sadr is None:
                raise RecordInitReport(f"SNAM subr {f['SNAM']!r} not found")
        f["ONAM"] = f["SNAM"]
        f["OVAL"] = f["VAL"]
        for x in _ASUB_LETTERS:
            f["ONV" + x] = f["NEV" + x]
            self._ovl[x] = self.outputs["VAL" + x].copy()
        self._mirror()

    def set_output(self, name: str, values: Any) -> None:
        """Copy ``values`` into output ``name`` ("VALA".."VALU", or the letter) and set its
        NEVx (at most NOVx elements are kept)."""
        x = name[-1]
        out = self.outputs["VAL" + x]
        arr = _as_array(values, out.dtype)
        if arr is None:
            raise ValueError(f"{self.name}.VAL{x}: cannot convert {values!r} to {out.dtype}")
        n = min(len(arr), len(out))
        out[:n] = arr[:n]
        self.f["NEV" + x] = n

    def _store_input(self, x: str, value: Any) -> int:
        """Copy a link's value into input ``x``; returns the element count (0: unusable)."""
        buf = self.inputs[x]
        arr = _as_array(value, buf.dtype)
        if arr is None:
            return 0
        n = min(len(arr), len(buf))
        buf[:n] = arr[:n]
        return n

    def special(self, fname: str, after: bool) -> None:
        f = self.f
        if fname != "SNAM" or not after or f["LFLG"] == _LFLG_READ:
            return
        self._sadr = find_subroutine(f["SNAM"]) if f["SNAM"] else None
        if f["SNAM"] and self._sadr is None:
            raise PutErrorKept(f"{self.name}.SNAM: subroutine {f['SNAM']!r} not found")

    def _fetch(self) -> int:
        f = self.f
        if f["LFLG"] == _LFLG_READ:
            subl = self.links.get("SUBL")
            if subl is not None and not subl.is_constant:
                name = subl.get_value(self, as_string=True)
                if name is None:
                    return _S_DB_LINK
                f["SNAM"] = str(name)[:40]
            if f["SNAM"] and f["SNAM"] != f["ONAM"]:
                func = find_subroutine(f["SNAM"])
                if func is None:
                    return _S_DB_BAD_SUB
                self._sadr = func
                f["ONAM"] = f["SNAM"]
        for x in _ASUB_LETTERS:
            link = self.links.get("INP" + x)
            if link is None or link.is_constant:
                continue
            v = link.get_value(self)
            if v is None:
                return _S_DB_LINK
            n = self._store_input(x, v)
            if n == 0:
                self.set_sevr(Stat.LINK, Sevr.INVALID)
                return _S_DB_LINK
            f["NE" + x] = n
        return 0

    def _do_sub(self) -> int:
        f = self.f
        if not f["SNAM"]:
            return 0
        if self._sadr is None:
            self.set_sevr(Stat.BAD_SUB, Sevr.INVALID)
            return _S_DB_BAD_SUB
        status = self.call_routine(self._sadr, "subroutine")
        if status < 0:
            self.set_sevr(Stat.SOFT, f["BRSV"])
        else:
            f["UDF"] = 0
        return status

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        status = 0
        if not pact:
            f["PACT"] = 1
            status = self._fetch()
            f["PACT"] = 0
        if status == 0:
            status = self._do_sub()
            f["VAL"] = status
        if not pact and f["PACT"]:
            return                  # the routine went asynchronous
        f["PACT"] = 1
        self.get_timestamp()
        if status == 0:
            for x in _ASUB_LETTERS:
                link = self.links.get("OUT" + x)
                if link is None or link.is_constant:
                    continue
                n = f["NEV" + x]
                out = self.outputs["VAL" + x][:n]
                link.put_value(self, out[0].item() if n == 1 and out.dtype != object
                               else (out[0] if n == 1 else out))
        self._monitor()
        self.fwd_link()
        f["PACT"] = 0

    def _monitor(self) -> None:
        f = self.f
        self._mirror()
        mask = self.reset_alarms() | DBE_VALUE | DBE_LOG
        if f["VAL"] != f["OVAL"]:
            self.post("VAL", mask)
            f["OVAL"] = f["VAL"]
        eflg = f["EFLG"]
        if eflg == _EFLG_NEVER:
            return
        for x in _ASUB_LETTERS:
            name, nev = "VAL" + x, "NEV" + x
            if eflg == _EFLG_ALWAYS:
                self.post(name, mask)
                self.post(nev, mask)
                continue
            n, onv = f[nev], f["ONV" + x]
            cur = self.outputs[name][:n]
            if n != onv or not np.array_equal(self._ovl[x][:n], cur):
                self._ovl[x][:n] = cur
                self.post(name, mask)
                if n != onv:
                    f["ONV" + x] = n
                    self.post(nev, mask)

    # aSubRecord.c rset: no units/limits of its own for scalar fields (A..U and VALA..VALU,
    # which would show their links', are not served over CA here); PREC via recGblGetPrec.
    def rset_units(self, fname: str) -> str | None:
        return ""

    def rset_precision(self, fname: str) -> int | None:
        return self.recgbl_prec(fname, self.f["PREC"])

    def rset_graphic(self, fname: str) -> tuple[float, float] | None:
        return 0.0, 0.0

    def rset_control(self, fname: str) -> tuple[float, float] | None:
        return self.type_range(fname)

    def rset_alarm(self, fname: str) -> tuple[float, float, float, float] | None:
        return None
