"""Record support core: the dbCommon part every record shares, processed as EPICS base does.

A record holds its fields in ``self.f`` (field name -> Python value) with the types of EPICS's own
dbd (``base.dbd``). Processing mirrors ``dbProcess`` / ``recGbl*``:

* ``db_process()`` handles SDIS/DISA/DISV, PACT (with LCNT and the SCAN alarm), then calls the
  record type's ``process()``;
* ``process()`` (per record type) reads/writes through device support, sets alarms with
  ``set_sevr()``, posts monitors with ``reset_alarms()`` + deadbands, and ends with ``fwd_link()``
  (FLNK, RPRO, put-callback completion);
* alarms are per record (NSTA/NSEV collected during processing, STAT/SEVR published at the end);
* every value posted carries the record's TIME, taken from the pluggable time source according
  to TSE (see ``get_timestamp``).

Threading contract: all processing runs on the IOC's event-loop thread. Other threads (serial
ports, timing) hand work over with ``Database.call_soon_threadsafe`` or an ``IoScanList``.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from ..dbd import FieldSpec, RecordTypeSpec
from .constants import (DBE_ALARM, DBE_LOG, DBE_PROPERTY, DBE_VALUE, MAX_LOCK,
                        SCAN_PASSIVE, TSE_DEVICE_TIME, Sevr, Stat)
from .fields import (LINK_TYPES, FieldValueError, coerce,
                     default_value)
from .errors import PutError, PutErrorKept, RecordInitError  # noqa: F401 (re-exported)
from .meta import RsetMeta

if TYPE_CHECKING:
    from ..database.db import Database
    from .links import Link

log = logging.getLogger(__name__)

# The fields a client may never write (besides DBF_NOACCESS and special(SPC_NOMOD)).
_READONLY_SPECIALS = {"SPC_NOMOD"}


class _NoValue:
    """A put of zero elements to a scalar field (dbPut with nRequest 0)."""

    def __repr__(self) -> str:
        return "NO_VALUE"


NO_VALUE = _NoValue()


class PutNotify:
    """Completion of a put-with-callback (``caput -c``): done when every record that the put
    processed, including records that went asynchronous (PACT) along the way, has finished."""

    def __init__(self, loop):
        self.pending: set[Record] = set()
        self.future = loop.create_future()

    def add(self, rec: "Record") -> None:
        if rec not in self.pending:
            self.pending.add(rec)
            rec.notifies.append(self)

    def done(self, rec: "Record") -> None:
        self.pending.discard(rec)
        self.check()

    def check(self) -> None:
        if not self.pending and not self.future.done():
            self.future.set_result(True)


class _NotifyScope:
    """The put-notify that processing started now belongs to (single-threaded: a plain global)."""
    current: PutNotify | None = None


def check_deadband(last: float, val: float, deadband: float) -> bool:
    """recGblCheckDeadband: True when ``val`` differs from ``last`` by more than ``deadband``.

    NaN and infinities count as changes unless both values are the same NaN/inf, as in EPICS 7.
    """
    if math.isfinite(val) and math.isfinite(last):
        delta = abs(last - val)
    elif (math.isnan(val) and math.isnan(last)) or (math.isinf(val) and val == last):
        delta = 0.0
    else:
        delta = math.inf
    return not (delta <= deadband)


# checkAlarms' alarm ranges (the AFTC filter averages these numbers) and what they raise
_RANGE_LOLO, _RANGE_LOW, _RANGE_NORMAL, _RANGE_HIGH, _RANGE_HIHI = 1, 2, 3, 4, 5
_RANGE_STAT = {0: Stat.SOFT, _RANGE_LOLO: Stat.LOLO, _RANGE_LOW: Stat.LOW, _RANGE_NORMAL: Stat.NO_ALARM,
               _RANGE_HIGH: Stat.HIGH, _RANGE_HIHI: Stat.HIHI}
_RANGE_FIELDS = {_RANGE_LOLO: ("LLSV", "LOLO"), _RANGE_LOW: ("LSV", "LOW"),
                 _RANGE_HIGH: ("HSV", "HIGH"), _RANGE_HIHI: ("HHSV", "HIHI")}
#: (range, severity field, limit field, an upper limit?) in the order checkAlarms tests them
_LIMITS = ((_RANGE_HIHI, "HHSV", "HIHI", True), (_RANGE_LOLO, "LLSV", "LOLO", False),
           (_RANGE_HIGH, "HSV", "HIGH", True), (_RANGE_LOW, "LSV", "LOW", False))
_AFTC_THRESHOLD = 0.6321        # 1 - 1/e: where the filtered range rounds the other way

class Record(RsetMeta):
    """Base class of all record types. Subclasses set ``rtype`` and implement ``process()``."""

    rtype: ClassVar[str] = ""
    spec: ClassVar[RecordTypeSpec]
    menus: ClassVar[dict[str, list[tuple[str, str]]]]
    #: Field read/written by device support through a link ("INP" or "OUT"); "" if none.
    io_link: ClassVar[str] = "INP"

    def __init__(self, name: str, db: "Database"):
        self.name = name
        self.db = db
        self.f: dict[str, Any] = {}
        for fname, fs in self.spec.fields.items():
            if fs.dbf == "DBF_NOACCESS":
                continue
            self.f[fname] = default_value(fs)
            if fs.initial is not None:
                if fs.dbf == "DBF_MENU" and fs.initial.isdigit():
                    # dbd initial values may be out-of-menu markers (SSCN 65535 = "unset").
                    self.f[fname] = int(fs.initial)
                else:
                    self.f[fname] = coerce(fs, fs.initial, self.choices(fname))
        self.f["NAME"] = name
        self.links: dict[str, "Link"] = {}
        self.dset = None                      # device support instance (ioc.devsup)
        self.channels: dict[str, Any] = {}    # field -> CA channel (created on first connect)
        self.listeners: dict[str, list[Callable[[int], None]]] = {}
        self.time: tuple[int, int] = (0, 0)   # EPICS epoch seconds, nanoseconds
        self.time_last: tuple[int, int] = (0, 0)   # TIME when the current processing began
        self.notifies: list[PutNotify] = []   # put-callbacks waiting for this record
        # put-callbacks that came while the record was busy: (field, value, notify)
        self._deferred_puts: list[tuple[str, Any, PutNotify]] = []
        self.infos: dict[str, str] = {}
        self.aliases: list[str] = []
        self.scan_key = None                  # where the scanner has this record listed
        self._tse_failed = False
        self._failure_logged = False
        self.process_failure: Exception | None = None   # set by a failed db_process()
        self.origin = ("", 0)                 # file, line of the record() statement

    # ------------------------------------------------------------------ fields
    @classmethod
    def field_spec(cls, fname: str) -> FieldSpec:
        try:
            fs = cls.spec.fields[fname]
        except KeyError:
            raise KeyError(f"record type {cls.rtype} has no field {fname}") from None
        return fs

    @classmethod
    def has_field(cls, fname: str) -> bool:
        fs = cls.spec.fields.get(fname)
        return fs is not None and (fs.dbf != "DBF_NOACCESS" or fname in cls.extra_fields())

    @classmethod
    def extra_fields(cls) -> frozenset[str]:
        """DBF_NOACCESS fields that this record type still serves (e.g. waveform VAL)."""
        return frozenset()

    def dtyp_name(self) -> str:
        """The DTYP choice in force ("" when the record type has no device support or DTYP
        is out of its menu)."""
        dtyp = self.choices("DTYP")
        return dtyp[self.f["DTYP"]] if dtyp and self.f["DTYP"] < len(dtyp) else ""

    def choices(self, fname: str) -> list[str] | None:
        """Strings of an enumerated field: menu choices, device types, or the record's states."""
        fs = self.spec.fields[fname]
        if fs.dbf == "DBF_MENU":
            return [s for _, s in self.menus[fs.menu]]
        if fs.dbf == "DBF_DEVICE":
            return self.db.device_choices(self.rtype)
        if fs.dbf == "DBF_ENUM":
            return self.enum_strings()
        return None

    def enum_string(self, fname: str, index: int) -> str:
        """DBR_STRING of an enumerated field's value (rset get_enum_str for VAL)."""
        strs = self.choices(fname) or []
        if 0 <= index < len(strs):
            return strs[index]
        # A DTYP menu with no device support (calc, sel, seq...) reads as "" in base.
        return "" if self.spec.fields[fname].dbf == "DBF_DEVICE" else str(index)

    def enum_strings(self) -> list[str]:
        """rset get_enum_strs for a DBF_ENUM VAL (bi/bo/mbbi/mbbo override)."""
        return []

    def field_type(self, fname: str) -> str:
        """The DBF type a field is served with (waveform VAL overrides by FTVL)."""
        return self.spec.fields[fname].dbf

    def get(self, fname: str):
        return self.f[fname]

    def field_array(self, fname: str):
        """The used elements of an array field other than VAL (aSub A..U, VALA..VALU) as
        a DB link reads them; None for scalar fields."""
        return None

    def set_from_text(self, fname: str, text: str) -> None:
        """Set a field from a .db ``field()`` value (load time; no processing, no posts)."""
        fs = self.field_spec(fname)
        if fs.dbf == "DBF_NOACCESS" and fname not in self.extra_fields():
            raise FieldValueError(f"field {fname} is not accessible")
        self.f[fname] = self.coerce_field(fname, text, strict=True)

    def coerce_field(self, fname: str, value, strict: bool = False):
        fs = self.spec.fields[fname]
        return coerce(fs, value, self.choices(fname), strict_string=strict)

    def is_writable(self, fname: str) -> bool:
        fs = self.spec.fields.get(fname)
        if fs is None:
            return False
        if fs.dbf == "DBF_NOACCESS":
            return fname in self.extra_fields()
        return fs.special not in _READONLY_SPECIALS

    # ------------------------------------------------------------- monitors
    def post(self, fname: str, mask: int) -> None:
        """db_post_events: tell CA subscribers and in-IOC listeners (CP links) about a field."""
        ch = self.channels.get(fname)
        if ch is not None:
            ch.post(mask)
        ls = self.listeners.get(fname)
        if ls:
            for cb in list(ls):
                cb(mask)

    # --------------------------------------------------------------- alarms
    def set_sevr(self, stat: int, sevr: int, msg: str = "") -> bool:
        """recGblSetSevr: raise the pending alarm if ``sevr`` is worse. True if it was raised."""
        f = self.f
        if f["NSEV"] < sevr:
            f["NSTA"] = stat
            f["NSEV"] = sevr
            if "NAMSG" in f:
                f["NAMSG"] = msg[:39]
            return True
        return False

    def reset_alarms(self) -> int:
        """recGblResetAlarms: publish NSTA/NSEV as STAT/SEVR; returns DBE_ALARM if they changed."""
        f = self.f
        prev_stat, prev_sevr = f["STAT"], f["SEVR"]
        prev_amsg = f.get("AMSG", "")
        new_stat, new_sevr = f["NSTA"], f["NSEV"]
        f["STAT"], f["SEVR"] = new_stat, new_sevr
        f["NSTA"] = f["NSEV"] = 0
        if "NAMSG" in f:
            f["AMSG"] = f["NAMSG"]
            f["NAMSG"] = ""
        stat_mask = 0
        val_mask = 0
        if prev_sevr != new_sevr:
            stat_mask = DBE_ALARM
            self.post("SEVR", DBE_VALUE)
        if prev_stat != new_stat:
            stat_mask |= DBE_VALUE
        if prev_amsg != f.get("AMSG", ""):
            stat_mask |= DBE_VALUE
            self.post("AMSG", DBE_VALUE)
        if stat_mask:
            self.post("STAT", stat_mask)
            val_mask = DBE_ALARM
            if not f["ACKT"] or new_sevr >= f["ACKS"]:
                f["ACKS"] = new_sevr
                self.post("ACKS", DBE_VALUE)
        return val_mask

    def check_udf(self) -> bool:
        """The UDF alarm (severity UDFS) if the value was never defined; True if raised."""
        if self.f["UDF"]:
            self.set_sevr(Stat.UDF, self.f["UDFS"])
            return True
        return False

    def check_analog_alarms(self, val: float, *, lalm_field: str = "LALM") -> None:
        """HIHI/HIGH/LOW/LOLO with HYST, as ai/ao/calc/longin/int64in checkAlarms, with the
        AFTC alarm filter of the types that have it.

        A limit whose severity field is NO_ALARM is ignored, so an unset limit never alarms.
        """
        f = self.f
        if self.check_udf():
            if "AFVL" in f:
                f["AFVL"] = 0.0
            return
        hyst = f.get("HYST", 0)
        lalm = f[lalm_field]
        # (alarm range, severity, limit) of the first limit VAL is beyond, in base's order
        rng, asev, alev = _RANGE_NORMAL, 0, val
        for r, sv, lim, above in _LIMITS:
            sev, limit = f[sv], f[lim]
            if sev and ((val >= limit or (lalm == limit and val >= limit - hyst)) if above
                        else (val <= limit or (lalm == limit and val <= limit + hyst))):
                rng, asev, alev = r, sev, limit
                break
        if f.get("AFTC", 0) > 0:
            rng, asev, alev = self._alarm_filter(rng, asev, alev)
        elif "AFVL" in f:
            f["AFVL"] = 0.0
        if asev:
            if self.set_sevr(_RANGE_STAT[rng], asev):
                f[lalm_field] = alev
        else:
            f[lalm_field] = val

    def _alarm_filter(self, rng: int, asev: int, alev: float) -> tuple[int, int, float]:
        """check_analog_alarms' AFTC step: the filtered range and its severity and limit."""
        rng = self.alarm_filter_level(rng)
        if rng == _RANGE_NORMAL:
            return rng, 0, alev
        if rng not in _RANGE_FIELDS:
            return rng, asev, alev      # (cannot happen for AFVL in 1..5: base keeps them too)
        sv, lim = _RANGE_FIELDS[rng]
        return rng, self.f[sv], self.f[lim]

    def alarm_filter_level(self, level: int) -> int:
        """AFTC/AFVL (AFTC > 0): a first-order low-pass filter on an alarm level (a range,
        or mbbi's state severity), time constant AFTC seconds over the time since the last
        processing; AFVL's sign keeps the rounding direction (hysteresis between levels),
        as aiRecord.c/mbbiRecord.c's checkAlarms. Returns the filtered level."""
        f = self.f
        aftc, afvl = f["AFTC"], f["AFVL"]
        if afvl == 0:
            f["AFVL"] = float(level)
            return level
        (s1, n1), (s0, n0) = self.time, self.time_last
        dt = (s1 - s0) + (n1 - n0) * 1e-9
        alpha = aftc / (dt + aftc)
        afvl = alpha * afvl + ((1 - alpha) if afvl > 0 else (alpha - 1)) * level
        if afvl - math.floor(afvl) > _AFTC_THRESHOLD:
            afvl = -afvl            # reverse rounding
        f["AFVL"] = afvl
        return abs(int(math.floor(afvl)))

    def monitor_value(self, val_field: str = "VAL", *, deadbands: bool = True) -> None:
        """monitor(): alarms + MDEL/ADEL deadbands on a numeric VAL, then post it."""
        f = self.f
        mask = self.reset_alarms()
        val = f[val_field]
        if deadbands and "MDEL" in f:
            if check_deadband(f["MLST"], val, f["MDEL"]):
                mask |= DBE_VALUE
                f["MLST"] = val
            if check_deadband(f["ALST"], val, f["ADEL"]):
                mask |= DBE_LOG
                f["ALST"] = val
        elif "MLST" in f:
            if f["MLST"] != val:
                mask |= DBE_VALUE | DBE_LOG
                f["MLST"] = val
        else:
            mask |= DBE_VALUE | DBE_LOG
        if mask:
            self.post(val_field, mask)

    # ------------------------------------------------------------ timestamp
    def get_timestamp(self) -> None:
        """recGblGetTimeStamp: TIME from TSEL, or from the time source by TSE.

        TSE 0: current time; -1: best event time; > 0: that event's time; -2: device support
        already set ``self.time``. A failed event lookup keeps the old TIME and logs once.
        """
        tsel = self.links.get("TSEL")
        if tsel is not None and not tsel.is_constant:
            target = tsel.time_source_record()
            if target is not None:
                self.time = target.time
                return
            tse = tsel.get_value(self)
            if tse is not None:
                self.f["TSE"] = int(tse)
        tse = self.f["TSE"]
        if tse == TSE_DEVICE_TIME:
            return
        stamp = self.db.time_source.get_event(tse)
        if stamp is None:
            if not self._tse_failed:
                log.warning("%s: time for event %d not available; keeping the last TIME",
                            self.name, tse)
                self._tse_failed = True
            return
        self._tse_failed = False
        self.time = stamp

    # ----------------------------------------------------------- processing
    def init_record(self, pass_: int) -> None:
        """rset init_record; pass 0 before links are usable, pass 1 after."""

    def before_dset_init(self) -> None:
        """The part of rset init_record pass 1 that base runs before device support's
        init_record (iocInit calls it just before ``dset.init_record()``)."""

    def process(self) -> None:
        raise NotImplementedError

    def db_process(self) -> None:
        """dbProcess: disable check, busy check, then the record type's process()."""
        f = self.f
        sdis = self.links.get("SDIS")
        if sdis is not None and not sdis.is_constant:
            v = sdis.get_value(self)
            if v is not None:
                f["DISA"] = int(v)
        if f["DISA"] == f["DISV"]:
            if f["STAT"] != Stat.DISABLE:
                f["NSTA"], f["NSEV"] = Stat.DISABLE, f["DISS"]
                mask = self.reset_alarms()
                self.post(self.value_field(), mask | DBE_VALUE)
            self._finish_notify()
            return
        if f["PACT"]:
            f["LCNT"] += 1
            if f["LCNT"] >= MAX_LOCK and f["SEVR"] < Sevr.INVALID:
                self.set_sevr(Stat.SCAN, Sevr.INVALID)
                self.post(self.value_field(), self.reset_alarms())
            return
        f["LCNT"] = 0
        if f["TPRO"]:
            log.info("%s: Process %s", self.db.thread_name(), self.name)
        self.time_last = self.time      # process()'s timeLast (the AFTC filter's interval)
        self.process_failure = None
        try:
            self.process()
        except Exception as exc:  # a record/device/subroutine bug must not stop the IOC
            self._contain_failure(exc)
            return
        self._failure_logged = False
        notify = _NotifyScope.current
        if f["PACT"] and notify is not None:
            # Went asynchronous inside a put-with-callback: the put completes with us.
            notify.add(self)

    def value_field(self) -> str:
        return "VAL"

    def complete_async(self) -> None:
        """Second half of asynchronous processing (callbackRequestProcessCallback).

        Thread-safe: device support calls it from its own thread when the I/O finished.
        """
        self.db.call_soon_threadsafe(self._complete_async)

    def _complete_async(self) -> None:
        saved = _NotifyScope.current
        # Records this completion processes (FLNK, PP) join the first waiting put-callback.
        _NotifyScope.current = self.notifies[0] if self.notifies else None
        try:
            self.time_last = self.time
            self.process()
        except Exception as exc:  # see db_process: contained, the IOC goes on
            self._contain_failure(exc)
        finally:
            _NotifyScope.current = saved

    def _contain_failure(self, exc: Exception) -> None:
        """An unexpected exception out of ``process()``: logged (once until a processing
        succeeds again), the record left in SOFT/INVALID alarm with PACT cleared and its
        put-callbacks completed, so that the scan, link or CA put that processed it goes on.
        ``process_failure`` keeps the exception for a CA put to answer ECA_PUTFAIL."""
        self.process_failure = exc
        if not self._failure_logged:
            log.error("%s: processing failed: %s", self.name, exc,
                      exc_info=(type(exc), exc, exc.__traceback__))
            self._failure_logged = True
        f = self.f
        f["PACT"] = 0
        f["PUTF"] = 0
        f["RPRO"] = 0
        try:
            self.set_sevr(Stat.SOFT, Sevr.INVALID, "processing failed")
            self.post(self.value_field(), self.reset_alarms() | DBE_VALUE | DBE_LOG)
        except Exception:  # the record is broken enough that even posting fails
            log.debug("%s: posting after a failure failed", self.name, exc_info=True)
        self._finish_notify()

    def fwd_link(self) -> None:
        """recGblFwdLink: FLNK, then a pending re-process (RPRO), then put-notify completion."""
        flnk = self.links.get("FLNK")
        if flnk is not None:
            flnk.forward(self)
        f = self.f
        if f["RPRO"]:
            f["RPRO"] = 0
            self.db.scan_once(self)
        self._finish_notify()
        f["PUTF"] = 0

    def _finish_notify(self) -> None:
        waiting, self.notifies = self.notifies, []
        for n in waiting:
            n.done(self)
        if self._deferred_puts:
            # PACT is still set here (process() clears it after fwd_link): restart soon.
            self.db.call_soon_threadsafe(self._restart_deferred_put)

    def _restart_deferred_put(self) -> None:
        """The first put-callback that waited for this busy record: put and process now
        (or wait again if the record went busy meanwhile)."""
        if not self._deferred_puts or self.f["PACT"]:
            return
        fname, value, notify = self._deferred_puts.pop(0)
        notify.pending.discard(self)
        try:
            self.put_and_process(fname, value, notify)
            notify.check()
        except PutError as exc:
            if not notify.future.done():
                notify.future.set_exception(exc)
        if self._deferred_puts and not self.f["PACT"]:
            self.db.call_soon_threadsafe(self._restart_deferred_put)

    # ------------------------------------------------------------- puts
    def special(self, fname: str, after: bool) -> None:
        """rset special(): react to a put of a field with special(); raise PutError to refuse."""

    def put_field(self, fname: str, value, *, from_link: bool = False) -> None:
        """dbPut: convert and store a field, run special() and post it. No processing here.

        Raises PutError (read-only field, bad value, DISP set) and leaves the record unchanged.
        """
        if not self.is_writable(fname):
            raise PutError(f"{self.name}.{fname} is read-only")
        f = self.f
        if f["DISP"] and fname != "DISP" and not from_link:
            raise PutError(f"{self.name}: puts are disabled (DISP=1)")
        if value is NO_VALUE:
            # dbPut with no element for a scalar: the field keeps its value, the record
            # gets a LINK/INVALID alarm, and the put goes on (special, UDF, posts).
            self.set_sevr(Stat.LINK, Sevr.INVALID)
            value = f.get(fname)
        try:
            new = self.coerce_field(fname, value)
        except FieldValueError as exc:
            raise PutError(f"{self.name}.{fname}: {exc}") from None
        if self.dset is not None:
            # Device support may refuse what its hardware would refuse (nothing is changed).
            self.dset.check_put(fname, new)
        fs = self.spec.fields[fname]
        if fs.dbf in LINK_TYPES and self.db.initialized:
            if from_link:
                # dbPut (what a database link writes with) refuses every link field
                # (S_db_badDbrtype); only dbPutField (CA, dbpf) can change a link.
                raise PutError(f"{self.name}.{fname}: a link field can't be written by a link")
            check = getattr(self.db, "check_link_put", None)
            if check is not None:
                check(self, fname, new)
        rescan = fs.special == "SPC_SCAN" and self.db.initialized
        if rescan and fname == "SCAN":
            try:
                self.db.scanner.check_scan_change(self, new)
            except ValueError as exc:
                raise PutError(f"{self.name}.SCAN: {exc}") from None
        self.special(fname, after=False)
        if rescan:
            self.db.scanner.remove(self)
        old = f.get(fname)
        f[fname] = new
        self.db.put_count += 1
        try:
            self.special(fname, after=True)
        except PutErrorKept:
            raise
        except PutError:
            f[fname] = old
            raise
        finally:
            if rescan:
                self.db.scanner.add(self)
        if fs.dbf in LINK_TYPES and self.db.initialized:
            self.db.relink(self, fname)
        if fs.special == "SPC_AS" and self.db.initialized:
            # dbPut's asChangeGroup: the record's clients get the new group's rights.
            self.db.access.record_changed(self)
        if fname == self.value_field():
            f["UDF"] = 0        # dbPut clears UDF when VAL is written
        if fname != self.value_field() or not fs.pp:
            # dbPut posts every field except a pp(TRUE) VAL, whose processing will post it.
            self.post(fname, DBE_VALUE | DBE_LOG)
        if fs.prop:
            self.post(self.value_field(), DBE_PROPERTY)

    def put_and_process(self, fname: str, value, notify: PutNotify | None = None) -> None:
        """dbPutField: put, then process if the field is pp(TRUE) and the record Passive, or if
        the field is PROC. A busy (PACT) record is marked for re-processing (RPRO).

        A put-callback (``notify``) processes the record even when the put failed after its
        value was stored (PutErrorKept), as dbProcessNotify does; the error is raised after.
        """
        if notify is not None and self.f["PACT"]:
            # dbNotify processNotifyCommon: a put-callback to a busy record waits (restart
            # list) and puts only when the record's processing has finished.
            self._deferred_puts.append((fname, value, notify))
            notify.pending.add(self)        # keeps the put-callback open until then
            return
        kept: PutErrorKept | None = None
        try:
            self.put_field(fname, value)
        except PutErrorKept as exc:
            if notify is None:
                raise
            kept = exc
        try:
            self._process_after_put(fname, notify)
        finally:
            if kept is not None:
                raise kept

    def _process_after_put(self, fname: str, notify: PutNotify | None) -> None:
        fs = self.spec.fields[fname]
        if fname == "PROC" or (fs.pp and self.f["SCAN"] == SCAN_PASSIVE):
            self.f["PUTF"] = 1
            if self.f["PACT"]:
                self.f["RPRO"] = 1
                if notify is not None:
                    notify.add(self)
                return
            saved = _NotifyScope.current
            _NotifyScope.current = notify
            try:
                self.db_process()
            finally:
                _NotifyScope.current = saved
            failure, self.process_failure = self.process_failure, None
            if failure is not None:
                raise PutErrorKept(f"{self.name}: processing failed: {failure}")

    def __repr__(self) -> str:
        return f"<{self.rtype} {self.name}>"
