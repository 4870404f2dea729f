"""Device support for timing records.

**DTYP "General Time"** -- EPICS's devGeneralTime.c, for the iocStats ``GTIM_*`` records. The
INST_IO parameter (``INP "@TIME"``) is matched case-insensitively against the whole text after
``@``, as ``epicsStrCaseCmp`` does:

======== ========= ==============================================================================
record   parm      behaviour
======== ========= ==============================================================================
ai       TIME      VAL = current time in seconds past the EPICS epoch (``sec + nsec*1e-9``), no
                   conversion; no time -> UDF and READ/INVALID. With TSE -2 the record's TIME is
                   that same time stamp (an addition: EPICS leaves TIME alone there).
bo       RSTERRCNT any write resets the backwards-time error count
longin   GETERRCNT VAL = backwards-time errors prevented
stringin BESTTCP   last current-time provider that answered
stringin TOPTCP    highest-priority registered current-time provider
stringin BESTTEP   last event-time provider that answered
======== ========= ==============================================================================

For the stringin records no provider gives ``No working providers`` with a READ/MAJOR alarm. A
bad parameter is reported (as ``recGblRecordError``) and the record is left with PACT set, so it
never processes -- EPICS's behaviour; the IOC still starts.

**DTYP "NTP Time"** (ours) -- the NTP provider's state, for ``db/ntp.db``. Use ``SCAN "I/O
Intr"``: the records process after every sync attempt. With TSE -2 a record's TIME is the time
of the server's last reply.

======== ========= ==============================================================================
bi       SYNCED    1 while the provider is synchronised
ai       OFFSET    server minus local realtime clock at the last reply, ms
ai       DELAY     round trip of the last reply, ms
longin   STRATUM   stratum of the last reply (0 = server unsynchronised)
stringin SERVER    ``host:port`` queried
======== ========= ==============================================================================

Before ``NTPTime_Init`` the NTP records read READ/INVALID; OFFSET, DELAY and STRATUM are INVALID
(READ) while the provider is unsynchronised, keeping the last reply's values.
"""
from __future__ import annotations

import logging
from typing import Callable

from ioc.devsup.registry import DeviceSupport, register
from ioc.records.constants import NO_CONVERT, TSE_DEVICE_TIME, Sevr, Stat
from ioc.scan import IoScanList

from . import general_time
from .providers import ntp
from .registry import GeneralTime

log = logging.getLogger(__name__)

NO_WORKING_PROVIDERS = "No working providers"
_STRING_LEN = 39                 # stringin VAL is char[40]

#: Processed after every sync attempt of the NTP provider.
NTP_SCAN = IoScanList("NTP sync")
ntp.SYNC_LISTENERS.append(NTP_SCAN.request)


def _registry(rec) -> GeneralTime:
    ts = rec.db.time_source
    return ts if isinstance(ts, GeneralTime) else general_time()


class _ParmDevice(DeviceSupport):
    """Common part: look the INST_IO parameter up in ``CHANNELS`` (case-insensitive)."""

    link_type = "INST_IO"
    CHANNELS: dict[str, Callable] = {}
    DSET = ""                      # for the messages, as EPICS names them

    def init_record(self) -> None:
        rec = self.record
        link = rec.links.get(rec.io_link)
        parm = getattr(link, "parm", None)
        self.channel = self.CHANNELS.get(parm.upper()) if parm is not None else None
        self.parm = (parm or "").upper()
        if self.channel is None:
            # recGblRecordError + PACT: the record is dead, the IOC runs on.
            what = "Illegal INP field" if parm is None else f"Bad parm {parm!r}"
            fname, line = rec.origin
            log.error("%s:%s: record %s: %s: %s", fname, line, rec.name, self.DSET, what)
            rec.f["PACT"] = 1


# ================================================================== General Time
def _ai_time(dev: "AiGeneralTime"):
    return _registry(dev.record).get_current()


class AiGeneralTime(_ParmDevice):
    CHANNELS = {"TIME": _ai_time}
    DSET = "devAiGeneralTime::init_ai"

    def read(self) -> int:
        rec = self.record
        f = rec.f
        ts = self.channel(self)
        if ts is None:
            f["UDF"] = 1
            rec.set_sevr(Stat.READ, Sevr.INVALID)
            return -1
        f["VAL"] = ts[0] + ts[1] * 1e-9
        f["UDF"] = 0
        if f["TSE"] == TSE_DEVICE_TIME:
            rec.time = ts
        return NO_CONVERT


class BoGeneralTime(_ParmDevice):
    CHANNELS = {"RSTERRCNT": lambda dev: _registry(dev.record).reset_error_count()}
    DSET = "devBoGeneralTime::init_bo"

    def init_record(self) -> None:
        super().init_record()
        self.record.f["MASK"] = 0

    def write(self) -> None:
        self.channel(self)


class LonginGeneralTime(_ParmDevice):
    CHANNELS = {"GETERRCNT": lambda dev: _registry(dev.record).error_count()}
    DSET = "devLiGeneralTime::init_li"

    def read(self) -> int:
        self.record.f["VAL"] = self.channel(self)
        self.record.f["UDF"] = 0
        return 0


class StringinGeneralTime(_ParmDevice):
    CHANNELS = {
        "BESTTCP": lambda dev: _registry(dev.record).current_provider_name(),
        "TOPTCP": lambda dev: _registry(dev.record).highest_current_name(),
        "BESTTEP": lambda dev: _registry(dev.record).event_provider_name(),
    }
    DSET = "devSiGeneralTime::init_si"

    def init_record(self) -> None:
        super().init_record()
        if self.parm == "BESTTEP":
            # iocInit asks for event 1 once to prime the last event provider.
            _registry(self.record).get_event(1)

    def read(self) -> int:
        rec = self.record
        name = self.channel(self)
        if name:
            rec.f["VAL"] = name[:_STRING_LEN]
        else:
            rec.f["VAL"] = NO_WORKING_PROVIDERS
            rec.set_sevr(Stat.READ, Sevr.MAJOR)
        rec.f["UDF"] = 0
        return 0


register("ai", "General Time", AiGeneralTime, link_type="INST_IO")
register("bo", "General Time", BoGeneralTime, link_type="INST_IO")
register("longin", "General Time", LonginGeneralTime, link_type="INST_IO")
register("stringin", "General Time", StringinGeneralTime, link_type="INST_IO")


# ====================================================================== NTP Time
class _NtpDevice(_ParmDevice):
    DSET = "devNTPTime::init_record"
    #: Channels that go INVALID while the provider is unsynchronised.
    NEEDS_SYNC = frozenset({"OFFSET", "DELAY", "STRATUM"})

    def get_ioint_info(self) -> IoScanList:
        return NTP_SCAN

    def read(self) -> int:
        rec = self.record
        prov = ntp.instance()
        if prov is None:
            rec.set_sevr(Stat.READ, Sevr.INVALID)
            return -1
        value = self.channel(prov)
        if value is None:                    # no reply yet
            rec.set_sevr(Stat.READ, Sevr.INVALID)
            return -1
        if self.parm in self.NEEDS_SYNC and not prov.synchronized:
            rec.set_sevr(Stat.READ, Sevr.INVALID)
        rec.f["VAL"] = value
        rec.f["UDF"] = 0
        reply = prov.last_reply
        if rec.f["TSE"] == TSE_DEVICE_TIME and reply is not None:
            rec.time = reply.stamp
        return NO_CONVERT


def _reply_attr(fn: Callable) -> Callable:
    def get(prov: ntp.NtpProvider):
        r = prov.last_reply
        return None if r is None else fn(r)
    return get


class BiNtpTime(_NtpDevice):
    CHANNELS = {"SYNCED": lambda prov: int(prov.synchronized)}


class AiNtpTime(_NtpDevice):
    CHANNELS = {"OFFSET": _reply_attr(lambda r: r.offset_s * 1e3),
                "DELAY": _reply_attr(lambda r: r.delay_s * 1e3)}


class LonginNtpTime(_NtpDevice):
    CHANNELS = {"STRATUM": _reply_attr(lambda r: r.stratum)}


class StringinNtpTime(_NtpDevice):
    CHANNELS = {"SERVER": lambda prov: prov.server[:_STRING_LEN]}


register("bi", "NTP Time", BiNtpTime, link_type="INST_IO")
register("ai", "NTP Time", AiNtpTime, link_type="INST_IO")
register("longin", "NTP Time", LonginNtpTime, link_type="INST_IO")
register("stringin", "NTP Time", StringinNtpTime, link_type="INST_IO")
