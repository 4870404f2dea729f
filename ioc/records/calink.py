"""CA links (base's dbCa): a PV link served through Channel Access instead of a DB link.

Which links are CA links (dbParseLink + dbInitLink): a PV link whose record is not in this IOC
(or names a field the record does not have), and any PV link with the ``CA``, ``CP`` or ``CPP``
flag, even to a record of this IOC. A forward link keeps only ``CA``; an output link loses
``CPP``. A name of this IOC is reached in-process (base's dbContext), any other through the
network (``EPICS_CA_ADDR_LIST``/``EPICS_CA_AUTO_ADDR_LIST``); iocInit says nothing about names
nobody serves, as base: ``dbcar`` lists them.

This module is only the link's side (dbCa's ``caLink`` and its lset): the state the channel
delivered, and what record processing sees. It never touches the network: the channel is
given by the database's link client (``rec.db.ca_links``, see :mod:`ioc.caclient`), which
calls :meth:`CaLink.connection`, :meth:`CaLink.access`, :meth:`CaLink.attributes` and
:meth:`CaLink.update` on the IOC loop. Processing reads only that cache, so it never waits.

What processing sees (dbCaGetLink & co.):

* a read while disconnected, without read access, or before the first monitor value: no
  value and a LINK/INVALID alarm (``AMSG`` "field INP") whatever the MS flag;
* otherwise the last monitored value with its severity inherited as MS/MSS/MSI ask, and its
  time stamp (``.time``, for TSEL ``REC.TIME`` and TSE -2);
* an enumerated channel read as a string subscribes to DBR_STRING on the first such read
  (which fails, as base's does) and answers from that monitor afterwards;
* CP: every monitor update (and a disconnect, and a loss of access rights) processes the
  record through a scanOnce (CPP: only while the record is Passive), at most 5 queued;
* a write is queued (dbCaPutLink) and fails (LINK/INVALID) while disconnected or without write
  access; a write not yet sent when the next comes is replaced (counted, dbcar's "writes
  prohibited"); :meth:`CaLink.put_value_async` is dbCaPutLinkCallback, used by the "Async Soft
  Channel" device supports: its ``done`` runs when the put completes (or its channel goes);
* a forward link to ``REC.PROC`` puts 1 (other forward CA links do nothing, with base's
  warning at iocInit);
* units, precision and limits (``target_metadata``) are those of the DBR_CTRL_DOUBLE the
  channel read at connect (none for a DBF_STRING channel).
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, Protocol

from .constants import SCAN_PASSIVE, Sevr, Stat
from .fields import format_double
from .links import Link

if TYPE_CHECKING:
    from .base import Record

_MAX_QUEUED_SCANS = 5          # dbCa's scanLinkOnce: at most this many scans queued per link


class CaChannel(Protocol):
    """What the link client gives a CaLink (one per link; all calls on the IOC loop)."""

    def want_string(self) -> None:
        """Start the DBR_TIME_STRING monitor (an enumerated channel read as a string)."""

    def put(self, value: Any, done: Callable[[], None] | None) -> bool:
        """Queue a write of ``value`` (``done``: with completion); False if it cannot be
        converted to the channel's type."""

    def host(self) -> str:
        """The server as libca names it (``host:port``, or this host for a local record)."""

    def close(self) -> None:
        """Drop the channel; a pending completion's ``done`` still runs."""


class CaLink(Link):
    """A CA link of one record field; state as dbCa's caLink."""

    def __init__(self, text: str, pvname: str, field: str, proc: str, ms: str,
                 local: "Record | None" = None):
        self.text = text
        self.pvname = pvname            # as written (dbcar shows it), e.g. "IOCA:SP.PROC"
        self.field = field
        self.proc = proc
        self.ms = ms
        #: the record of this IOC the name designates (reached in-process), or None
        self.local = local
        self.chname = pvname            # the channel's name (TSEL: without ".TIME")
        self.rec: "Record | None" = None
        self.fname = ""
        self.dbf = ""                   # DBF_INLINK / DBF_OUTLINK / DBF_FWDLINK
        self.fwd = False                # a forward link to .PROC (pvlOptFWD)
        self.tsel_time = False          # TSEL "REC.TIME" (DBLINK_FLAG_TSELisTIME)
        self.in_native = False          # dbcar's IN: the native monitor
        self.in_string = False          # dbcar's IS: the string monitor
        self.channel: CaChannel | None = None
        self.connected = False
        self.read_access = self.write_access = False
        self.native = ""                # the channel's type as a DBF name ("DBF_DOUBLE")
        self.count = 0                  # its element count
        self.value: Any = None
        self.got_value = False
        self.string = ""
        self.got_string = False
        self.stat, self.sevr = Stat.NO_ALARM, Sevr.NO_ALARM
        self.time: tuple[int, int] = (0, 0)
        self.md: dict | None = None     # DBR_CTRL_DOUBLE attributes (gotAttributes)
        self.n_disconnect = 0
        self.n_no_write = 0
        self.n_update = 0
        self._scans = 0

    # ------------------------------------------------------------ set-up
    def install(self, rec: "Record", fname: str) -> None:
        """dbCaAddLink at iocInit (or after a relink): ask the database's link client for a
        channel. Without a client (a Database used alone) the link stays disconnected."""
        self.rec, self.fname = rec, fname
        self.dbf = rec.spec.fields[fname].dbf
        name = self.pvname
        if fname == "TSEL" and ".TIME" in name:
            # TSEL_modified: REC.TIME means the time stamp of REC's VAL
            name = name[:name.index(".TIME")]
            self.tsel_time = True
        self.chname = name
        if self.dbf == "DBF_INLINK":
            self.in_native = True
        if self.dbf == "DBF_FWDLINK":
            dot = name.rfind(".")
            self.fwd = dot >= 0 and "PROC" in name[dot:]
            if not self.fwd:
                print("Warning: Forward-link uses Channel Access without pointing to PROC "
                      f"field\n    {rec.name}.{fname} => {name}", file=sys.stderr, flush=True)
        client = getattr(rec.db, "ca_links", None)
        if client is not None:
            self.channel = client.add(self, name)

    def uninstall(self) -> None:
        """dbCaRemoveLink (relink, IOC exit): the channel goes; nothing more is scanned."""
        ch, self.channel = self.channel, None
        rec, self.rec = self.rec, None
        if ch is not None:
            client = getattr(rec.db, "ca_links", None) if rec is not None else None
            if client is not None:
                client.remove(self, ch)
            else:
                ch.close()
        self.connected = False

    # ------------------------------------------------ from the channel (IOC loop)
    def connection(self, up: bool, native: str = "", count: int = 0,
                   read: bool = False, write: bool = False) -> None:
        """connectionCallback: the channel (re)connected with this type and count, or went."""
        if not up:
            if self.connected:
                self.n_disconnect += 1
            self.connected = False
            self._cp_scan()
            return
        if (self.native, self.count) != (native, count):
            # a new type or size: nothing cached is valid any more
            self.got_value = self.got_string = False
            self.value, self.string = None, ""
        self.native, self.count = native, count
        self.read_access, self.write_access = read, write
        self.md = None
        self.connected = True

    def access(self, read: bool, write: bool) -> None:
        """accessRightsCallback: a lost right processes a CP record (which then alarms)."""
        self.read_access, self.write_access = read, write
        if self.connected and not (read and write):
            self._cp_scan()

    def attributes(self, md: dict) -> None:
        """getAttribEventCallback: units, precision and limits of the channel."""
        self.md = md

    def update(self, value: Any, stat: int, sevr: int, stamp: tuple[int, int],
               is_string: bool = False) -> None:
        """eventCallback: a monitor update (``is_string``: from the DBR_STRING monitor)."""
        if self.rec is None:
            return
        self.n_update += 1
        scan = True
        if is_string:
            self.string, self.got_string = value, True
        else:
            self.value, self.got_value = value, True
            # with a string monitor too, only that one processes the record
            scan = not (self.native == "DBF_ENUM" and self.in_string)
        self.stat, self.sevr, self.time = stat, sevr, stamp
        if scan:
            self._cp_scan()

    def _cp_scan(self) -> None:
        rec = self.rec
        if rec is None or not (self.proc == "CP" or (self.proc == "CPP"
                                                     and rec.f["SCAN"] == SCAN_PASSIVE)):
            return
        if self._scans == 0:
            rec.db.call_soon_threadsafe(self._scan)
        if self._scans < _MAX_QUEUED_SCANS:
            self._scans += 1

    def _scan(self) -> None:
        rec = self.rec
        if rec is None:
            self._scans = 0
            return
        rec.db_process()
        self._scans -= 1
        if self._scans > 0:
            rec.db.call_soon_threadsafe(self._scan)

    # ------------------------------------------------------- processing side
    def _fail(self, rec: "Record") -> None:
        self.stat, self.sevr = Stat.LINK, Sevr.INVALID
        rec.set_sevr(Stat.LINK, Sevr.INVALID, f"field {self.fname}")

    def get_value(self, rec: "Record", as_string: bool = False) -> Any:
        """dbCaGetLink: the last monitored value; None (LINK/INVALID) when there is none."""
        if not self.connected or not self.read_access:
            self._fail(rec)
            return None
        if as_string and self.native == "DBF_ENUM":
            if not self.in_string:
                self.in_string = True
                if self.channel is not None:
                    self.channel.want_string()
            if not self.got_string:
                self._fail(rec)
                return None
            v: Any = self.string
        else:
            if not self.got_value or self.value is None:
                self._fail(rec)
                return None
            v = self.value
            if as_string and self.native in ("DBF_DOUBLE", "DBF_FLOAT") and \
                    isinstance(v, (int, float)):
                # dbCaGetLink converts with no dbAddr: cvt_d_st/cvt_f_st's default
                # precision 6, not the source's PREC (that is what a DB link uses)
                v = format_double(v, 6)
        self._inherit(rec)
        return v

    def _inherit(self, rec: "Record") -> None:
        """recGblInheritSevr with the link's MS mode."""
        sevr = self.sevr
        if self.ms == "MS" or (self.ms == "MSI" and sevr >= Sevr.INVALID):
            rec.set_sevr(Stat.LINK, sevr)
        elif self.ms == "MSS":
            rec.set_sevr(self.stat, sevr)

    def put_value(self, rec: "Record", value: Any) -> bool:
        """dbCaPutLink: queue the write; False (LINK/INVALID) if it cannot be made."""
        return self._put(rec, value, None)

    def put_value_async(self, rec: "Record", value: Any, done: Callable[[], None]) -> bool:
        """dbCaPutLinkCallback: as put_value, ``done()`` (on the IOC loop) once the server
        reports completion, or the channel is gone. False: not queued, ``done`` never runs."""
        return self._put(rec, value, done)

    def _put(self, rec: "Record", value: Any, done: Callable[[], None] | None) -> bool:
        ch = self.channel
        if ch is None or not self.connected or not self.write_access or \
                not ch.put(value, done):
            self._fail(rec)
            return False
        return True

    def forward(self, rec: "Record") -> None:
        """scanForward: a put of 1 to REC.PROC; nothing (no alarm) if it cannot be made."""
        ch = self.channel
        if self.fwd and ch is not None and self.connected and self.write_access:
            ch.put(1, None)

    def time_source_record(self) -> "CaLink | None":
        """For TSEL ``REC.TIME``: this link, whose ``time`` is the monitored time stamp."""
        return self if self.tsel_time else None

    def get_time_stamp(self) -> tuple[int, int] | None:
        """lset getTimeStamp: the last monitor's time stamp; None while disconnected."""
        return self.time if self.connected else None

    def target_metadata(self) -> dict | None:
        """lset getUnits/getPrecision/get*Limits: the channel's DBR_CTRL_DOUBLE attributes,
        None while disconnected or before they arrived."""
        return dict(self.md) if self.connected and self.md is not None else None
