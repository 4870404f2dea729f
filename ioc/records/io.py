"""The two processing skeletons of EPICS base's I/O records, with simulation mode.

Every input record type of base (ai, bi, mbbi, longin, stringin, waveform, int64in, lsi,
mbbiDirect, aai, event, histogram...) processes in the same order, and every output type (ao,
bo, mbbo, longout, stringout, int64out, lso, mbboDirect, aao) in another; a record type here
says only what differs (how it converts, its alarms, its monitors).

Input (``aiRecord.c`` ``process``)::

    readValue (device support, or SIOL in simulation) -> went asynchronous? return
    -> time stamp -> convert RVAL if asked -> alarms -> monitors -> forward link

Output (``aoRecord.c`` ``process``)::

    (not PACT) fetch DOL in closed loop and convert, time stamp -> alarms
    -> writeValue with the invalid-output action (IVOA) -> went asynchronous? return
    -> (PACT) time stamp again -> monitors -> forward link

Simulation (``recGbl*Simm``): SIML is read into SIMM before each read/write; with SIMM YES the
value goes through SIOL instead of device support (RAW: RVAL), with a SIMM alarm of severity
SIMS; SDLY >= 0 makes that asynchronous (the record stays active SDLY seconds); a change of SIMM
swaps SCAN with SSCN unless SSCN is unset (65535). TSE -2 in simulation takes SIOL's time stamp.
"""
from __future__ import annotations

import math
from typing import Any

from .base import Record
from .constants import CONVERT, NO_CONVERT, TSE_DEVICE_TIME, Sevr, Stat
from .links import ConstantLink, constant_value

SIMM_NO, SIMM_YES, SIMM_RAW = 0, 1, 2
SIM_WAIT, SIM_BAD = -1, -2     # sim_step(): SDLY started / SIMM out of its menu
SSCN_UNSET = 65535
OMSL_CLOSED_LOOP = 1
IVOA_CONTINUE, IVOA_DONT_DRIVE, IVOA_SET_IVOV = 0, 1, 2
#: read_value's status when simulation or device support failed (the record goes on).
READ_FAILED = -1


class _Simulated(Record):
    """SIML/SIMM/SSCN handling shared by input and output records (recGblGetSimm & co.)."""

    def has_simulation(self) -> bool:
        return "SIMM" in self.f

    def init_simulation(self) -> None:
        """recGblInitSimm: a constant SIML sets SIMM once at iocInit."""
        siml = self.links.get("SIML")
        if not self.has_simulation() or not isinstance(siml, ConstantLink):
            return
        self._save_simm()
        v = constant_value(siml, scalar=True)
        if v is not None:
            try:
                self.f["SIMM"] = self.coerce_field("SIMM", v)
            except ValueError:
                pass
        self._check_simm()

    def _save_simm(self) -> None:
        f = self.f
        if f["SSCN"] != SSCN_UNSET:
            f["OLDSIMM"] = f["SIMM"]

    def _check_simm(self) -> None:
        """A SIMM change swaps SCAN and SSCN (when SSCN is set)."""
        f = self.f
        if f["SSCN"] == SSCN_UNSET or f["SIMM"] == f["OLDSIMM"]:
            return
        scanner = self.db.scanner if self.db.initialized else None
        if scanner is not None:
            scanner.remove(self)
        f["SCAN"], f["SSCN"] = f["SSCN"], f["SCAN"]
        if scanner is not None:
            scanner.add(self)

    def get_simm(self) -> None:
        """recGblGetSimm: read SIML into SIMM; a failed read is a LINK status (no severity)."""
        f = self.f
        self._save_simm()
        siml = self.links.get("SIML")
        if siml is not None and not siml.is_constant:
            v = siml.get_value(self)
            try:
                simm = None if v is None else self.coerce_field(
                    "SIMM", v[0] if isinstance(v, list) else v)
            except ValueError:
                simm = None
            if simm is None:
                if not f["NSEV"]:
                    f["NSTA"] = Stat.LINK
            else:
                f["SIMM"] = simm
        self._check_simm()

    def special(self, fname: str, after: bool) -> None:
        if fname == "SIMM":
            if after:
                self._check_simm()
            else:
                self._save_simm()
        super().special(fname, after)

    def simulating(self) -> int:
        return self.f["SIMM"] if self.has_simulation() else SIMM_NO

    def sim_step(self) -> int:
        """Where this read or write goes: SIMM_NO (device support), SIMM_YES or SIMM_RAW (SIOL,
        now, with the SIMM alarm), SIM_WAIT (SDLY's delay started: PACT), SIM_BAD (a SIMM out
        of its menu: SOFT/INVALID)."""
        f = self.f
        if not self.has_simulation():
            return SIMM_NO
        if not f["PACT"]:
            self.get_simm()
        simm = f["SIMM"]
        if simm == SIMM_NO:
            return SIMM_NO
        if simm not in (SIMM_YES, SIMM_RAW):
            self.set_sevr(Stat.SOFT, Sevr.INVALID)
            return SIM_BAD
        self.set_sevr(Stat.SIMM, f["SIMS"])
        if not f["PACT"] and f["SDLY"] >= 0.0:
            f["PACT"] = 1
            self.db.call_later(f["SDLY"], self._complete_async)
            return SIM_WAIT
        f["PACT"] = 0
        return simm

    def get_timestamp_simm(self, sim_link: str | None = "SIOL") -> None:
        """recGblGetTimeStampSimm: as get_timestamp, but with TSE -2 in simulation the time is
        SIOL's (inputs) or the current time (outputs, ``sim_link`` None)."""
        if self.simulating() == SIMM_NO or self.f["TSE"] != TSE_DEVICE_TIME \
                or ("TSEL" in self.links and not self.links["TSEL"].is_constant):
            self.get_timestamp()
            return
        link = self.links.get(sim_link) if sim_link else None
        target = getattr(link, "target", None)
        if target is not None:
            self.time = target.time
        else:
            stamp = self.db.time_source.get_current()
            if stamp is not None:
                self.time = stamp


class InputRecord(_Simulated):
    """An input record: ``process`` is base's input skeleton; override the hooks.

    * ``sim_value_field``: where SIOL is read in simulation ("SVAL", copied to VAL; or "VAL"
      itself for array records, via ``sim_store``);
    * ``convert()``: RVAL -> VAL when device support (or SIMM RAW) asks for it;
    * ``after_read(status)``: what the type does with the status before its alarms;
    * ``check_alarms()`` and ``monitor()``.
    """

    io_link = "INP"
    sim_value_field = "SVAL"

    def init_record(self, pass_: int) -> None:
        if pass_ == 1:
            self.init_simulation()
            if self.sim_value_field in self.f:
                v = constant_value(self.links.get("SIOL"))
                if v is not None:
                    self.sim_store(v)

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        status = self.read_value()
        if not pact and f["PACT"]:
            return                       # asynchronous: device support (or SDLY) will call back
        f["PACT"] = 1
        self.get_timestamp_simm()
        if status == CONVERT:
            self.convert()
        self.after_read(status)
        self.check_alarms()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0

    def read_value(self) -> int:
        """readValue: device support's read, or SIOL in simulation. Returns CONVERT,
        NO_CONVERT or READ_FAILED; sets PACT when the read went asynchronous."""
        step = self.sim_step()
        if step == SIM_WAIT:
            return CONVERT
        if step == SIM_BAD:
            return READ_FAILED
        if step != SIMM_NO:
            return self.sim_read(step)
        if self.dset is None:
            return NO_CONVERT
        return self.dset.read()

    def sim_read(self, simm: int) -> int:
        """Read SIOL: into SVAL, then VAL (YES) or RVAL (RAW)."""
        link = self.links.get("SIOL")
        if link is not None and not link.is_constant:
            v = link.get_value(self)
            if v is None:
                return READ_FAILED
            if not self.sim_store(v):
                return READ_FAILED
        return self.sim_apply(simm)

    def sim_store(self, value: Any) -> bool:
        """Store what SIOL gave in ``sim_value_field``; False if it cannot be stored."""
        fld = self.sim_value_field
        if isinstance(value, list) and fld != "VAL":
            value = value[0] if value else 0
        try:
            self.f[fld] = self.coerce_field(fld, value)
        except ValueError:
            return False
        return True

    def sim_apply(self, simm: int) -> int:
        f = self.f
        if simm == SIMM_RAW and "RVAL" in f:
            sval = f["SVAL"]
            f["RVAL"] = self.coerce_field("RVAL", math.floor(sval) if isinstance(sval, float)
                                          and math.isfinite(sval) else sval)
            f["UDF"] = 0
            return CONVERT
        if self.sim_value_field != "VAL":
            f["VAL"] = self.coerce_field("VAL", f[self.sim_value_field])
        f["UDF"] = 0
        return NO_CONVERT

    # hooks
    def convert(self) -> None:
        """RVAL -> VAL (types with raw values)."""

    def after_read(self, status: int) -> None:
        """The type's handling of the read status (e.g. ai: UDF from a NaN)."""

    def check_alarms(self) -> None:
        self.check_udf()

    def monitor(self) -> None:
        self.monitor_value()


class OutputRecord(_Simulated):
    """An output record: ``process`` is base's output skeleton; override the hooks.

    * ``fetch_and_convert()``: closed-loop DOL (``fetch_dol``) and the type's conversion;
    * ``set_ivov()``: IVOA "Set output to IVOV";
    * ``write_device()``: device support's write (longout: only when OOPT says so);
    * ``sim_out_field``: what SIOL is written in simulation (YES; RAW writes RVAL);
    * ``check_alarms()``, ``after_write()`` and ``monitor()``.
    """

    io_link = "OUT"
    sim_out_field = "VAL"
    #: the DBF type a constant DOL is loaded as (None: the record has no DOL)
    has_dol = True

    def init_record(self, pass_: int) -> None:
        if pass_ == 1:
            self.init_simulation()
            if self.has_dol:
                self.init_constant_dol()

    def init_constant_dol(self) -> None:
        """recGblInitConstantLink(DOL -> VAL): a constant DOL sets VAL at iocInit."""
        v = constant_value(self.links.get("DOL"), scalar=True)
        if v is None:
            return
        try:
            self.f["VAL"] = self.coerce_field("VAL", v)
        except ValueError:
            return
        val = self.f["VAL"]
        self.f["UDF"] = int(isinstance(val, float) and math.isnan(val))

    def process(self) -> None:
        f = self.f
        pact = f["PACT"]
        if not pact:
            self.fetch_and_convert()
            # The time stamp before the write, so a downstream record's TSEL sees it.
            self.get_timestamp_simm(None)
        self.check_alarms()
        if f["NSEV"] < Sevr.INVALID or f["IVOA"] == IVOA_CONTINUE:
            self.write_value()
        elif f["IVOA"] == IVOA_SET_IVOV:
            if not f["PACT"]:
                self.set_ivov()
            self.write_value()
        if not pact and f["PACT"]:
            return
        f["PACT"] = 1
        if pact:
            self.get_timestamp_simm(None)   # again, for asynchronous device support
        self.after_write()
        self.monitor()
        self.fwd_link()
        f["PACT"] = 0

    def fetch_dol(self) -> Any:
        """The closed-loop DOL value; None when there is none to fetch (supervisory, constant
        DOL) or the read failed (then with a LINK/INVALID alarm). ``dol_failed`` tells which."""
        f = self.f
        self.dol_failed = False
        dol = self.links.get("DOL")
        if f["OMSL"] != OMSL_CLOSED_LOOP or dol is None or dol.is_constant:
            return None
        v = dol.get_value(self, as_string=self.field_type("VAL") == "DBF_STRING")
        if v is None:
            self.set_sevr(Stat.LINK, Sevr.INVALID)
            self.dol_failed = True
        return v

    def write_value(self) -> None:
        """writeValue: device support's write, or SIOL in simulation."""
        step = self.sim_step()
        if step == SIMM_NO:
            self.write_device()
        elif step in (SIMM_YES, SIMM_RAW):
            link = self.links.get("SIOL")
            if link is not None and not link.is_constant:
                fld = "RVAL" if step == SIMM_RAW and "RVAL" in self.f else self.sim_out_field
                link.put_value(self, self.sim_out_value(fld))

    def sim_out_value(self, fld: str) -> Any:
        return self.f[fld]

    # hooks
    def fetch_and_convert(self) -> None:
        v = self.fetch_dol()
        if v is not None:
            self.f["VAL"] = self.coerce_field("VAL", v)
            self.f["UDF"] = 0

    def set_ivov(self) -> None:
        self.f["VAL"] = self.f["IVOV"]

    def write_device(self) -> None:
        if self.dset is not None:
            self.dset.write()

    def check_alarms(self) -> None:
        self.check_udf()

    def after_write(self) -> None:
        """After the write completed, before monitors (bo: the momentary HIGH timer)."""

    def monitor(self) -> None:
        self.monitor_value()
