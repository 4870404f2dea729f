"""Device support for event time records (``db/evtTime.db``).

**DTYP "EventTime"** (INST_IO, ``@PARM``; needs ``EvtTimeConfigure``, else the record is
reported and left dead with PACT set, as EPICS does with a bad link):

========= ============ =========================================================================
record    parm         behaviour
========= ============ =========================================================================
ao        VALIDATE     the validating ao: processing it while event time is invalid validates it
                       only if generalTime and event time differ by less than VAL seconds, else
                       WRITE/MAJOR alarm (the reason in AMSG) and the time stays invalid; while
                       valid it does nothing
mbbi      FAULT        0 EVT_time_OK, 1 EVT_stream_lost, 2 EVT_sync_timeout, 3 EVT_ntpLock_lost,
                       4 EVT_tick_fail (I/O Intr: processed at every change of state)
bi        VALID        1 valid, 0 invalid (I/O Intr)
mbbi      ROLE         0 sync_master, 1 sync_slave, 2 direct_master, 3 direct_slave
stringin  TIME         event time now (read directly, valid or not); with TSE -2 the record's
                       time stamp is that time while valid (generalTime's while invalid)
ai        CLK_HZ       tick frequency now (master: as the PLL set it; slave: as measured)
ai        OFFSET       us: master: event time minus the reference (generalTime without 70),
                       measured at processing; slave: the last jam (its stamp minus the master's)
ai        HOST_OFFSET  us: event time minus the host clock (``CLOCK_REALTIME``), sampled at
                       processing: event time read between two host-clock reads and compared
                       with their midpoint; of :data:`HOST_TRIES` such triples the one with the
                       shortest host interval wins (a thread switch lengthens it). With TSE -2
                       the time stamp is the event time read (the sampling instant). READ/INVALID
                       while event time is invalid. IOCs on one host share the host clock, so
                       the difference of two IOCs' values sampled at the same instant is the
                       difference of their event times (``bench/evt.py``: ``slave_offset_us``)
bi        PLL_LOCKED   master PLL lock (a slave has no PLL: 0)
longin    SYNC_CNT     sync messages sent (master) or accepted (slave)
longin    BAD_MSG_CNT  UDP messages dropped (malformed, wrong magic, unauthenticated, foreign
                       master, replay)
stringin  MASTER       slave: ``ip:port`` of the master it follows; master: ``this IOC``
========= ============ =========================================================================

**DTYP "Soft EVG"** (INST_IO; needs ``EvtSoftHwConfigure``): fault injection in the soft event
system. ``STREAM`` (bo; on the event master: stop/run the generator's stream, so every receiver
loses it; on a slave: this receiver ignores the link), ``TICKS`` (bo; freeze/run this IOC's
receiver tick counter), ``PPM`` (ao; the generator's oscillator error), ``EVENT`` (longout; send
event code VAL now; 1..255 except 0x7d; only where the generator runs).
"""
from __future__ import annotations

import logging
import math
import time

from ioc.devsup.registry import DeviceSupport, register
from ioc.records.base import PutError
from ioc.records.constants import NO_CONVERT, TSE_DEVICE_TIME, Sevr, Stat
from ioc.scan import IoScanList

from ..registry import POSIX_TIME_AT_EPICS_EPOCH, format_stamp
from . import driver, soft
from .hw import SYNC_EVENT

log = logging.getLogger("timing.evt")
_NS = 1_000_000_000
_STRING_LEN = 39
_EPOCH_NS = POSIX_TIME_AT_EPICS_EPOCH * _NS
#: HOST_OFFSET: samples (host, event, host) taken per processing; the tightest one is used.
HOST_TRIES = 3

#: Processed at every change of validity, fault, PLL lock or master.
STATE_SCAN = IoScanList("EventTime state")
_hooked: set[int] = set()


class _ParmDevice(DeviceSupport):
    link_type = "INST_IO"
    PARMS: frozenset[str] = frozenset()
    DSET = ""

    def target(self):
        return driver.instance()

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        parm = getattr(link, "parm", None)
        self.parm = (parm or "").strip().upper()
        self.obj = self.target()
        if self.parm not in self.PARMS or self.obj is None:
            what = (f"Bad parm {parm!r}" if self.parm not in self.PARMS else
                    "no EvtTimeConfigure" if isinstance(self, _EvtDevice) else
                    "no EvtSoftHwConfigure")
            fname, line = rec.origin
            log.error("%s:%s: record %s: %s: %s", fname, line, rec.name, self.DSET, what)
            rec.f["PACT"] = 1
            self.obj = None


class _EvtDevice(_ParmDevice):
    def init_record(self) -> None:
        super().init_record()
        evt = self.obj
        if evt is not None and id(evt) not in _hooked:
            _hooked.add(id(evt))
            evt.state_listeners.append(STATE_SCAN.request)

    def get_ioint_info(self) -> IoScanList:
        return STATE_SCAN

    def value(self):
        return None

    def read(self) -> int:
        rec = self.record
        v = self.value()
        if v is None:
            rec.set_sevr(Stat.READ, Sevr.INVALID)
            return NO_CONVERT
        rec.f["VAL"] = v
        rec.f["UDF"] = 0
        return NO_CONVERT


def host_offset_ns(evt, tries: int = HOST_TRIES,
                   host_ns=time.time_ns) -> tuple[int, int] | None:
    """(event time - host clock, ns; event time read, ns past the EPICS epoch), or None while
    event time is invalid. Each try reads the host clock, event time and the host clock again
    and compares event time with the midpoint of the two host reads (off by at most half their
    spread); the try with the smallest spread wins."""
    best = None
    for _ in range(tries):
        h1 = host_ns()
        ev = evt.now_ns()
        h2 = host_ns()
        if ev is None or not evt.valid:
            return None
        if best is None or h2 - h1 < best[0]:
            best = (h2 - h1, ev + _EPOCH_NS - (h1 + h2) // 2, ev)
    return best[1], best[2]


class AiEventTime(_EvtDevice):
    PARMS = frozenset({"CLK_HZ", "OFFSET", "HOST_OFFSET"})
    DSET = "devAiEventTime"

    def value(self):
        evt = self.obj
        return evt.clock_hz_now() if self.parm == "CLK_HZ" else evt.offset_us()

    def read(self) -> int:
        if self.parm != "HOST_OFFSET":
            return super().read()
        rec = self.record
        sample = host_offset_ns(self.obj)
        if sample is None:
            rec.set_sevr(Stat.READ, Sevr.INVALID, "event time invalid")
            if rec.f["TSE"] == TSE_DEVICE_TIME:
                now = rec.db.time_source.get_current()
                if now is not None:
                    rec.time = now
            return NO_CONVERT
        off_ns, ev = sample
        rec.f["VAL"] = off_ns / 1e3
        rec.f["UDF"] = 0
        if rec.f["TSE"] == TSE_DEVICE_TIME:
            rec.time = divmod(ev, _NS)
        return NO_CONVERT


class BiEventTime(_EvtDevice):
    PARMS = frozenset({"VALID", "PLL_LOCKED"})
    DSET = "devBiEventTime"

    def value(self):
        evt = self.obj
        return int(evt.valid) if self.parm == "VALID" else int(evt.pll_locked())


class MbbiEventTime(_EvtDevice):
    PARMS = frozenset({"FAULT", "ROLE"})
    DSET = "devMbbiEventTime"

    def value(self):
        evt = self.obj
        return int(evt.fault) if self.parm == "FAULT" else int(evt.role)


class LonginEventTime(_EvtDevice):
    PARMS = frozenset({"SYNC_CNT", "BAD_MSG_CNT"})
    DSET = "devLiEventTime"

    def value(self):
        evt = self.obj
        return (evt.sync_count if self.parm == "SYNC_CNT" else evt.bad_msgs) & 0x7FFFFFFF


class StringinEventTime(_EvtDevice):
    PARMS = frozenset({"TIME", "MASTER"})
    DSET = "devSiEventTime"

    def read(self) -> int:
        rec = self.record
        evt = self.obj
        if self.parm == "MASTER":
            rec.f["VAL"] = evt.master_text()[:_STRING_LEN]
            rec.f["UDF"] = 0
            return NO_CONVERT
        ns = evt.now_ns()
        if ns is None:
            rec.f["UDF"] = 1
            rec.set_sevr(Stat.READ, Sevr.INVALID)
            return NO_CONVERT
        stamp = divmod(ns, _NS)
        rec.f["VAL"] = format_stamp(stamp, 9)[:_STRING_LEN]
        rec.f["UDF"] = 0
        if rec.f["TSE"] == TSE_DEVICE_TIME:
            if evt.valid:
                rec.time = stamp
            else:
                now = rec.db.time_source.get_current()
                if now is not None:
                    rec.time = now
        if not evt.valid:
            rec.set_sevr(Stat.READ, Sevr.MAJOR, "event time invalid")
        return NO_CONVERT


class AoEventTime(_EvtDevice):
    PARMS = frozenset({"VALIDATE"})
    DSET = "devAoEventTime"

    def get_ioint_info(self):
        return None

    def write(self) -> None:
        rec = self.record
        ok, msg = self.obj.validate(float(rec.f["VAL"]))
        if not ok:
            rec.set_sevr(Stat.WRITE, Sevr.MAJOR, msg)


# ====================================================================== Soft EVG
class _SimDevice(_ParmDevice):
    def target(self):
        return soft.instance()

    def init_record(self) -> None:
        super().init_record()
        hw = self.obj
        if hw is None:
            return
        f = self.record.f
        if self.parm == "STREAM":
            f["VAL"] = 1
        elif self.parm == "TICKS":
            f["VAL"] = 0 if hw.rx.frozen else 1
        elif self.parm == "PPM":
            f["VAL"] = hw.tx.ppm
        else:
            return
        f["UDF"] = 0

    def fail(self, msg: str) -> None:
        log.warning("%s: %s", self.record.name, msg)
        self.record.set_sevr(Stat.WRITE, Sevr.MAJOR, msg)


class BoSoftEvg(_SimDevice):
    PARMS = frozenset({"STREAM", "TICKS"})
    DSET = "devBoSoftEvg"

    def write(self) -> None:
        hw = self.obj
        on = bool(self.record.f["VAL"])
        if self.parm == "TICKS":
            hw.rx.freeze(not on)
        elif hw.tx.running:
            hw.tx.set_streaming(on)            # the generator: every receiver loses it
        else:
            hw.rx.set_listening(on)            # only this receiver ignores the link


class AoSoftEvg(_SimDevice):
    PARMS = frozenset({"PPM"})
    DSET = "devAoSoftEvg"

    def check_put(self, fname: str, value) -> None:
        if fname == "VAL" and not math.isfinite(float(value)):
            raise PutError(f"{self.record.name}: PPM must be finite")

    def write(self) -> None:
        self.obj.tx.set_ppm(float(self.record.f["VAL"]))


class LongoutSoftEvg(_SimDevice):
    PARMS = frozenset({"EVENT"})
    DSET = "devLoSoftEvg"

    def check_put(self, fname: str, value) -> None:
        if fname == "VAL" and (not 0 < int(value) < 256 or int(value) == SYNC_EVENT):
            raise PutError(f"{self.record.name}: event code must be 1..255, not 0x7d")

    def write(self) -> None:
        code = int(self.record.f["VAL"])
        try:
            self.obj.tx.send_event(code)
        except (RuntimeError, ValueError) as exc:
            self.fail(str(exc))


register("ai", "EventTime", AiEventTime, link_type="INST_IO")
register("ao", "EventTime", AoEventTime, link_type="INST_IO")
register("bi", "EventTime", BiEventTime, link_type="INST_IO")
register("mbbi", "EventTime", MbbiEventTime, link_type="INST_IO")
register("longin", "EventTime", LonginEventTime, link_type="INST_IO")
register("stringin", "EventTime", StringinEventTime, link_type="INST_IO")
register("bo", "Soft EVG", BoSoftEvg, link_type="INST_IO")
register("ao", "Soft EVG", AoSoftEvg, link_type="INST_IO")
register("longout", "Soft EVG", LongoutSoftEvg, link_type="INST_IO")
