"""Device support ``DTYP "E3631A"``: records bound to a PSU port by ``INP``/``OUT "@PORT KEY"``.

KEY is a readback or setting of :mod:`ioc.psu.port` (``P6V:VOLT_MEAS``, ``P6V:VOLT``, ``OUT``,
``OUT_RBV``, ``COMM``, ...; ``db/e3631a.db`` uses them all). Contracts:

* **Readbacks** (input records, ``SCAN "I/O Intr"``, ``TSE -2``) take the value and the time
  stamp of the reply that carried it. While the link is not OK they go INVALID with the link's
  alarm status (TIMEOUT, READ or COMM) and the reason in AMSG, and keep their last value; the
  INVALID update carries the time of the failure (the port's stamp when the link state changed),
  not the last value's, so archivers record the outage. The first good reading after the
  outage clears the alarm (a value from before it does not).
* **Settings** (output records) are asynchronous: processing queues the value on the port and the
  record completes (a ``caput -c`` returns) when the instrument has taken it. A value the
  instrument would refuse (NaN, infinity, local mode, a ``*SAV`` location outside 1..3) is refused
  at the put with a CA error and nothing is sent; out-of-range values are clamped by DRVL/DRVH
  before they get here, as any EPICS ao does.
* **Outage**: while the link is not OK the setting records show COMM/INVALID too (posted when
  the link state changes, NO_ALARM again when it is OK). A put then follows the port's
  ``outage`` option: ``fail`` completes it at once with WRITE/INVALID and nothing is sent later;
  ``hold`` queues it (sent once after recovery, the put completes then; ``PENDING`` counts them).
* **Bumpless**: setting records start from the instrument's own settings (read at connect), and
  follow them when they change outside the IOC (front panel, ``*RST``, ``*RCL``, tracking) while
  no write of theirs is in flight.
"""
from __future__ import annotations

import logging
import math
import threading
from typing import Any

from ..devsup.registry import DeviceSupport, DevSupError, register
from ..records.base import PutError
from ..records.constants import DBE_LOG, DBE_VALUE, NO_CONVERT, Sevr, Stat
from ..records.links import InstioLink
from ..scan import IoScanList
from .port import LinkDownError, LinkState, PsuPort

log = logging.getLogger("ioc.psu")

#: Ports by name (E3631AConfigure).
PORTS: dict[str, PsuPort] = {}

#: Readbacks that come from the instrument: INVALID while the link is not OK.
_LINK_DEPENDENT_SUFFIXES = ("_RBV", "_MEAS", ":MODE")
_LINK_DEPENDENT = {"IDN", "FW_VERS", "ERR_MSG"}
#: Setting key -> the readback it follows (bumpless), and the tolerance for "different".
_FOLLOWS = {"OUT": "OUT_RBV", "TRACK": "TRACK_RBV", "REMOTE": "REMOTE"}
_FLOAT_TOLERANCE = 1e-3
#: Keys whose records process on every write but send only when VAL is 1 (instant commands).
_INSTANT = {"CLEAR", "RESET"}
_STAT = {"TIMEOUT": Stat.TIMEOUT, "READ": Stat.READ, "COMM": Stat.COMM}


def _follows(key: str) -> str | None:
    if key.endswith(":VOLT") or key.endswith(":CURR"):
        return key + "_RBV"
    return _FOLLOWS.get(key)


class PortBinding:
    """The records of one database bound to one port: I/O Intr lists and setting records."""

    _bindings: dict[tuple[int, str], "PortBinding"] = {}
    _lock = threading.Lock()

    @classmethod
    def get(cls, port: PsuPort, db) -> "PortBinding":
        with cls._lock:
            b = cls._bindings.get((id(db), port.name))
            if b is None or b.port is not port:
                b = cls._bindings[(id(db), port.name)] = PortBinding(port, db)
            return b

    def __init__(self, port: PsuPort, db):
        self.port = port
        self.db = db
        self.ioscans: dict[str, IoScanList] = {}
        self.settings: dict[str, list] = {}       # key -> records writing it
        self.followers: dict[str, list[str]] = {}  # readback key -> setting keys following it
        port.listeners.append(self._on_values)
        port.state_listeners.append(self._on_state)
        if port.clock is None:
            port.clock = db.time_source.get_current

    def ioscan(self, key: str) -> IoScanList:
        lst = self.ioscans.get(key)
        if lst is None:
            lst = self.ioscans[key] = IoScanList(f"{self.port.name}:{key}")
        return lst

    # -- port thread side: never block, hand over to the loop
    def _on_values(self, values: dict[str, Any], stamp, settings: bool) -> None:
        lists = [lst for key in values if (lst := self.ioscans.get(key)) is not None]
        follow = [k for rb in values for k in self.followers.get(rb, ())]
        if lists or follow:
            # One hand-over to the loop per reply (one pipe write), not one per record list.
            self.db.call_soon_threadsafe(lambda: self._deliver(lists, follow, values, stamp))

    def _on_state(self, state: LinkState, stat: str, message: str) -> None:
        lists = list(self.ioscans.values())
        stamp = self.port.state_stamp

        def deliver() -> None:
            self._deliver(lists, [], {}, None)
            if self.db.running:
                self._settings_alarm(state, message, stamp)
        self.db.call_soon_threadsafe(deliver)

    def _settings_alarm(self, state: LinkState, message: str, stamp) -> None:
        """Setting records: COMM/INVALID while the link is not OK, NO_ALARM when it is."""
        for recs in self.settings.values():
            for rec in recs:
                if state != LinkState.OK:
                    if rec.f["SEVR"] == Sevr.INVALID and rec.f["STAT"] == Stat.WRITE:
                        continue        # a put refused during this outage: keep saying so
                    show_alarm(rec, Stat.COMM, Sevr.INVALID, message, stamp)
                elif rec.f["SEVR"] and rec.f["STAT"] in (Stat.COMM, Stat.WRITE):
                    show_alarm(rec, Stat.NO_ALARM, Sevr.NO_ALARM, "", stamp)

    def add_setting(self, key: str, rec) -> None:
        self.settings.setdefault(key, []).append(rec)
        rb = _follows(key)
        if rb is not None and key not in self.followers.setdefault(rb, []):
            self.followers[rb].append(key)

    # -- loop side
    def _deliver(self, lists: list[IoScanList], follow: list[str], values, stamp) -> None:
        if not self.db.running:
            return
        for lst in lists:
            lst.scan_now()
        if follow:
            self._sync_settings(follow, values, stamp)

    def _sync_settings(self, keys: list[str], values: dict[str, Any], stamp) -> None:
        pending = self.port.pending_keys()
        for key in keys:
            if key in pending:
                continue
            for rec in self.settings[key]:
                sync_setting(rec, values[_follows(key)], stamp)


def show_alarm(rec, stat: int, sevr: int, msg: str, stamp) -> None:
    """Publish an alarm on a record outside its processing (recGblResetAlarms with these as
    NSTA/NSEV), posting STAT/SEVR/AMSG and VAL (DBE_ALARM) with ``stamp`` as TIME. The alarm
    an asynchronous processing in progress has collected is kept for its second half."""
    f = rec.f
    if f["STAT"] == stat and f["SEVR"] == sevr and f.get("AMSG", "") == msg[:39]:
        return
    saved = f["NSTA"], f["NSEV"], f.get("NAMSG")
    f["NSTA"], f["NSEV"] = stat, sevr
    if "NAMSG" in f:
        f["NAMSG"] = msg[:39]
    if stamp is not None:
        rec.time = stamp
    mask = rec.reset_alarms()
    f["NSTA"], f["NSEV"] = saved[0], saved[1]
    if saved[2] is not None:
        f["NAMSG"] = saved[2]
    if mask:
        rec.post(rec.value_field(), mask)


def sync_setting(rec, value, stamp) -> None:
    """Make a setting record show the instrument's setting without writing it (bumpless)."""
    f = rec.f
    if f["PACT"]:
        return
    if rec.rtype == "ao":
        value = float(value)
        if not f["UDF"] and abs(f["VAL"] - value) <= _FLOAT_TOLERANCE:
            return
        f["VAL"] = f["OVAL"] = f["PVAL"] = value
        fields = ("VAL", "OVAL")
    else:
        value = int(value)
        if not f["UDF"] and f["VAL"] == value:
            return
        f["VAL"] = value
        if "RVAL" in f:
            f["RVAL"] = value
        fields = ("VAL",)
    f["UDF"] = 0
    if stamp is not None:
        rec.time = stamp
    for fld in fields:
        rec.post(fld, DBE_VALUE | DBE_LOG)


class E3631ADevSup(DeviceSupport):
    link_type = "INST_IO"

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        if not isinstance(link, InstioLink):
            raise DevSupError(f"{rec.io_link} must be \"@PORT KEY\"")
        parts = link.parm.split()
        if len(parts) != 2:
            raise DevSupError(f"{rec.io_link} \"@{link.parm}\": expected \"@PORT KEY\"")
        name, self.key = parts
        port = PORTS.get(name)
        if port is None:
            known = ", ".join(sorted(PORTS)) or "none"
            raise DevSupError(f"no PSU port {name!r} (E3631AConfigure it first; known: {known})")
        self.port = port
        if not getattr(port, "_init_waited", False) and \
                not port.wait_first_attempt(port.options.init_wait_s):
            log.warning("%s: no answer from port %s yet; starting without its settings",
                        rec.name, name)
        port._init_waited = True
        self.binding = PortBinding.get(port, rec.db)
        self.is_output = rec.io_link == "OUT"
        self.link_dependent = (self.key.endswith(_LINK_DEPENDENT_SUFFIXES)
                               or self.key in _LINK_DEPENDENT)
        self._result: tuple[bool, str] | None = None
        if self.is_output:
            self.binding.add_setting(self.key, rec)
            follows = _follows(self.key)
            if follows is not None:
                v = port.values.get(follows)
                if v is not None:
                    sync_setting(rec, v[0], v[1])
        else:
            self.binding.ioscan(self.key)

    def get_ioint_info(self) -> IoScanList | None:
        return None if self.is_output else self.binding.ioscan(self.key)

    # ------------------------------------------------------------- readbacks
    def read(self) -> int:
        rec, port, key = self.record, self.port, self.key
        f = rec.f
        if key == "COMM":
            state = port.state if port.state is not None else LinkState.DISCONNECTED
            f["VAL"] = int(state)
            f["UDF"] = 0
            rec.time = port.state_stamp or port.now_stamp()
            return NO_CONVERT
        if key == "COMM_MSG":
            f["VAL"] = (port.message or "")[:39]
            f["UDF"] = 0
            rec.time = port.now_stamp()
            return NO_CONVERT
        entry = port.values.get(key)
        if self.link_dependent and port.state != LinkState.OK:
            rec.set_sevr(_STAT.get(port.stat, Stat.COMM), Sevr.INVALID, port.message)
            # Keep the last value; the time is the failure's (the link state change), so an
            # archiver records when the outage began, not the last good reading again.
            rec.time = port.state_stamp or port.now_stamp()
            return NO_CONVERT
        if self.link_dependent and entry is not None and port.down_stamp is not None \
                and tuple(entry[1]) < tuple(port.down_stamp) and f["SEVR"] == Sevr.INVALID:
            # Link OK again, but this value is from before the outage: not a good reading
            # yet. Stay as posted (INVALID, the outage's time) until the next reply.
            stat = f["STAT"] if f["STAT"] else Stat.COMM
            rec.set_sevr(stat, Sevr.INVALID, f.get("AMSG", "") or "no reading since recovery")
            return NO_CONVERT
        if entry is None:
            rec.set_sevr(Stat.UDF, Sevr.INVALID, "no reading yet")
            return NO_CONVERT
        value, stamp = entry
        if rec.rtype == "stringin":
            f["VAL"] = str(value)[:39]
        elif rec.rtype in ("ai",):
            f["VAL"] = float(value)
        else:
            f["VAL"] = int(value)
        f["UDF"] = 0
        rec.time = stamp
        return NO_CONVERT

    # ------------------------------------------------------------- settings
    def _value(self):
        f = self.record.f
        if self.record.rtype == "ao":
            return float(f["OVAL"])
        return int(f["VAL"])

    def check_put(self, fname: str, value) -> None:
        if not self.is_output or fname != "VAL":
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise PutError(f"{self.record.name}: {value} is not a finite number; nothing sent")
        try:
            if self.key in ("SAVE", "RECALL"):
                self.port.check(self.key, value)
            elif not (self.key.endswith(":VOLT") or self.key.endswith(":CURR")):
                self.port.check(self.key, 1)
            else:
                self.port.check(self.key, float(value)
                                if self.record.rtype != "ao" else self._clamped(value))
        except ValueError as exc:
            raise PutError(f"{self.record.name}: {exc}") from None

    def _clamped(self, value: float) -> float:
        f = self.record.f
        if f["DRVH"] > f["DRVL"]:
            return min(max(value, f["DRVL"]), f["DRVH"])
        return value

    def write(self) -> None:
        rec = self.record
        f = rec.f
        if f["PACT"]:
            # Second half: the port has answered.
            ok, msg = self._result or (False, "no result")
            self._result = None
            if not ok:
                rec.set_sevr(Stat.WRITE, Sevr.INVALID, msg)
            return
        value = self._value()
        if self.key in _INSTANT and not value:
            if self.port.state != LinkState.OK:
                rec.set_sevr(Stat.COMM, Sevr.INVALID, self.port.message)
            return
        try:
            self.port.check(self.key, value)
        except ValueError as exc:
            rec.set_sevr(Stat.WRITE, Sevr.INVALID, str(exc))
            return

        def done(ok: bool, msg: str, latency_s: float) -> None:
            self._result = (ok, msg)
            rec.complete_async()

        f["PACT"] = 1
        try:
            self.port.submit(self.key, value, done)
        except LinkDownError as exc:
            # outage=fail: the put completes now, with the alarm; nothing is sent, now or later.
            f["PACT"] = 0
            rec.set_sevr(Stat.WRITE, Sevr.INVALID, str(exc))

    def report(self) -> str:
        return f"port {self.port.name} key {self.key}"


register(("ai", "ao", "bi", "bo", "mbbi", "stringin", "longin", "longout"), "E3631A",
         E3631ADevSup, link_type="INST_IO")
