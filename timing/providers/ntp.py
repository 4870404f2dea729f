"""The "NTP" current-time provider (EPICS osiNTPTime.c), queried with ntplib.

``NTPTime_Init(priority)`` (EPICS uses 100) creates the one NTP provider of the process: it asks
the server once, starts the sync thread "NTPTimeSync", and registers with generalTime last.

Configuration (environment, read at ``NTPTime_Init``):

=================================  ========  ====================================================
``EPICS_TS_NTP_INET``              required  server, ``host`` or ``host:port`` (port 123 default;
                                             ``[v6addr]:port`` for IPv6)
``EPICS_TS_NTP_SYNC_INTERVAL_S``   60        seconds between syncs while synchronised (EPICS's
                                             ``NTPTimeSyncInterval``)
``EPICS_TS_NTP_RETRY_INTERVAL_S``  5         seconds between attempts after a failed sync and
                                             while unsynchronised ("faster while unsynchronised")
``EPICS_TS_NTP_TIMEOUT_S``         4         reply timeout of one query (vxWorks sntpc's 4 s)
=================================  ========  ====================================================

A sync *fails* when the query fails (timeout, unreachable) or the reply is not usable: leap
indicator 3 (server unsynchronised), stratum 0 (unsynchronised / kiss-o'-death) or above 15, a
time before 1990, or a time not later than the previous accepted sync. After more than
:data:`SYNC_RETRIES` (4) failures in a row the provider is **unsynchronised**: it answers None and
generalTime falls through to the next provider (the OS clock). So the fallback comes within
``5 x (timeout + retry interval)`` of the first failed sync (when the server stops answering),
or ``5 x retry interval`` (when it answers but unsynchronised). The first accepted sync
synchronises it again.

Between syncs the time is extrapolated from the last accepted sync with the monotonic clock. A
new sync that is *ahead* of the extrapolation steps forward; one that is *behind* is never
stepped back: the difference is slewed out, the clock running at ``1 - 1/SLEW_DIVISOR`` (90 %) of
real time until it is absorbed (EPICS freezes the clock instead, ``ticksToSkip``). The clock
state survives a loss of sync, so the provider's own times never go backwards over its life.

Only transitions are logged (first sync, loss of sync, recovery, a large backwards correction).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Callable

from ..registry import POSIX_TIME_AT_EPICS_EPOCH, GeneralTime, Stamp, format_stamp

log = logging.getLogger(__name__)

NAME = "NTP"
DEFAULT_PRIORITY = 100
DEFAULT_PORT = 123
ENV_SERVER = "EPICS_TS_NTP_INET"
ENV_SYNC_INTERVAL = "EPICS_TS_NTP_SYNC_INTERVAL_S"
ENV_RETRY_INTERVAL = "EPICS_TS_NTP_RETRY_INTERVAL_S"
ENV_TIMEOUT = "EPICS_TS_NTP_TIMEOUT_S"
DEFAULT_SYNC_INTERVAL_S = 60.0
DEFAULT_RETRY_INTERVAL_S = 5.0
DEFAULT_TIMEOUT_S = 4.0
#: NTPTimeSyncRetries: unsynchronised after *more than* this many failed syncs in a row.
SYNC_RETRIES = 4
#: A backwards correction is absorbed at 1/SLEW_DIVISOR of the elapsed time.
SLEW_DIVISOR = 10
#: Backwards corrections larger than this are logged (they take 10x as long to slew out).
SLEW_LOG_THRESHOLD_NS = 1_000_000_000

_NS = 1_000_000_000
_EPOCH_NS = POSIX_TIME_AT_EPICS_EPOCH * _NS


class NtpConfigError(ValueError):
    """Bad or missing NTP configuration (server address, intervals)."""


@dataclasses.dataclass(frozen=True)
class NtpReply:
    """One answer of the server, as the provider uses it."""
    time_ns: int          #: server time at ``mono_ns``, ns past the EPICS epoch
    mono_ns: int          #: local monotonic clock (``time.monotonic_ns``) when it was taken
    stratum: int
    leap: int
    offset_s: float       #: server time minus the local realtime clock
    delay_s: float        #: round trip

    @property
    def stamp(self) -> Stamp:
        return divmod(self.time_ns, _NS)  # type: ignore[return-value]


def parse_server(text: str) -> tuple[str, int]:
    """``host``, ``host:port`` or ``[v6addr]:port`` -> (host, port)."""
    text = (text or "").strip()
    if not text:
        raise NtpConfigError(f"{ENV_SERVER} is not set (NTP server, host or host:port)")
    host, port = text, str(DEFAULT_PORT)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            raise NtpConfigError(f"bad NTP server address {text!r}")
    elif text.count(":") == 1:
        host, port = text.split(":")
    try:
        port_n = int(port)
    except ValueError:
        raise NtpConfigError(f"bad port in NTP server address {text!r}") from None
    if not host or not 0 < port_n < 65536:
        raise NtpConfigError(f"bad NTP server address {text!r}")
    return host, port_n


def _env_seconds(environ, name: str, default: float) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise NtpConfigError(f"{name}={text!r} is not a number of seconds") from None
    if not value > 0:
        raise NtpConfigError(f"{name} must be > 0 (got {text!r})")
    return value


class NtplibQuery:
    """One NTP request with ntplib, returned as an :class:`NtpReply` (raises on failure)."""

    def __init__(self, host: str, port: int, timeout_s: float, version: int = 3):
        import ntplib                      # only the real provider needs it
        self.host, self.port, self.timeout_s, self.version = host, port, timeout_s, version
        self._client = ntplib.NTPClient()

    def __call__(self) -> NtpReply:
        r = self._client.request(self.host, version=self.version, port=self.port,
                                 timeout=self.timeout_s)
        # offset = server - local realtime; pair "now" on both clocks right after the reply.
        mono = time.monotonic_ns()
        real = time.time_ns()
        return NtpReply(time_ns=real + round(r.offset * 1e9) - _EPOCH_NS, mono_ns=mono,
                        stratum=int(r.stratum), leap=int(r.leap), offset_s=float(r.offset),
                        delay_s=float(r.delay))


class NtpProvider:
    """The NTP provider: :meth:`get_current` for generalTime, :meth:`sync_once` for one sync,
    :meth:`start`/:meth:`shutdown` for the sync thread, :meth:`report` for ``NTPTime_Report``.

    ``query`` (default: ntplib against ``host:port``) and ``monotonic_ns`` can be injected for
    tests. ``listeners`` are called with no argument after every sync attempt, from the sync
    thread (device support uses it for I/O Intr records)."""

    name = NAME

    def __init__(self, host: str, port: int = DEFAULT_PORT, *,
                 sync_interval_s: float = DEFAULT_SYNC_INTERVAL_S,
                 retry_interval_s: float = DEFAULT_RETRY_INTERVAL_S,
                 timeout_s: float = DEFAULT_TIMEOUT_S,
                 query: Callable[[], NtpReply] | None = None,
                 monotonic_ns: Callable[[], int] = time.monotonic_ns,
                 listeners: list[Callable[[], None]] | None = None):
        self.host, self.port = host, port
        self.sync_interval_s = sync_interval_s
        self.retry_interval_s = retry_interval_s
        self.timeout_s = timeout_s
        self._query = query or NtplibQuery(host, port, timeout_s)
        self._mono = monotonic_ns
        self.listeners = listeners if listeners is not None else []
        # (base_ns, base_mono_ns, slew_ns): time = base + elapsed + max(slew - elapsed/10, 0).
        self._clock: tuple[int, int, int] | None = None
        self._live: tuple[int, int, int] | None = None    # _clock while synchronised, else None
        self.synchronized = False
        self.fails_in_row = 0
        self.syncs = 0                    # accepted syncs
        self.failures = 0                 # failed syncs, in total
        self.last_reply: NtpReply | None = None     # the last answer, accepted or not
        self.last_sync: NtpReply | None = None      # the last accepted answer
        self.last_error = ""
        self.tick_rate_hz = 0.0           # monotonic ns per NTP second, measured between syncs
        self._sync_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def server(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    # ------------------------------------------------------------ provider function
    def get_current(self) -> Stamp | None:
        """NTP time now (extrapolated from the last sync), or None while unsynchronised."""
        st = self._live
        if st is None:
            return None
        base_ns, base_mono, slew_ns = st
        elapsed = self._mono() - base_mono
        if slew_ns:
            left = slew_ns - elapsed // SLEW_DIVISOR
            if left > 0:
                return divmod(base_ns + elapsed + left, _NS)  # type: ignore[return-value]
        return divmod(base_ns + elapsed, _NS)  # type: ignore[return-value]

    @staticmethod
    def _extrapolate(st: tuple[int, int, int], mono_ns: int) -> int:
        base_ns, base_mono, slew_ns = st
        elapsed = mono_ns - base_mono
        return base_ns + elapsed + max(slew_ns - elapsed // SLEW_DIVISOR, 0)

    def slew_left_ns(self) -> int:
        """Backwards correction not yet absorbed (0 when the clock runs at full rate)."""
        st = self._clock
        if st is None:
            return 0
        return max(st[2] - (self._mono() - st[1]) // SLEW_DIVISOR, 0)

    # ------------------------------------------------------------------ one sync
    def sync_once(self) -> bool:
        """Ask the server once and update the state; True if the reply was accepted."""
        try:
            with self._sync_lock:
                try:
                    reply = self._query()
                except Exception as exc:    # noqa: BLE001 - any query failure is a failed sync
                    return self._failed(str(exc) or type(exc).__name__)
                self.last_reply = reply
                reason = self._reject_reason(reply)
                if reason:
                    return self._failed(reason)
                self._accept(reply)
                return True
        finally:
            for fn in list(self.listeners):
                try:
                    fn()
                except Exception:           # noqa: BLE001 - a listener must not stop syncing
                    log.exception("NTP sync listener failed")

    def _reject_reason(self, r: NtpReply) -> str:
        if r.leap == 3:
            return "server not synchronized (leap indicator 3)"
        if not 1 <= r.stratum <= 15:
            return f"server stratum {r.stratum} (unsynchronized or kiss-o'-death)"
        if r.time_ns <= 0:
            return "Bad time received from NTP server"
        last = self.last_sync
        if last is not None and r.time_ns <= last.time_ns:
            return f"NTP time not increasing, delta = {(r.time_ns - last.time_ns) / _NS:g}"
        return ""

    def _failed(self, reason: str) -> bool:
        self.fails_in_row += 1
        self.failures += 1
        self.last_error = reason
        if self.synchronized and self.fails_in_row > SYNC_RETRIES:
            self.synchronized = False
            self._live = None
            since = format_stamp(self.last_sync.stamp) if self.last_sync else "IOC was booted"
            log.warning("NTPTimeSync: NTP requests failed since %s - %s", since, reason)
        elif self.syncs == 0 and self.failures == 1:
            log.warning("NTPTimeSync: no sync with %s yet - %s", self.server, reason)
        return False

    def _accept(self, r: NtpReply) -> None:
        slew = 0
        if self._clock is not None:
            ahead = self._extrapolate(self._clock, r.mono_ns) - r.time_ns
            if ahead > 0:              # never step back: slew the difference out
                slew = ahead
                if ahead > SLEW_LOG_THRESHOLD_NS:
                    log.warning("NTPTimeSync: NTP time is %.3f s behind this clock; slewing",
                                ahead / _NS)
        last = self.last_sync
        if last is not None and r.time_ns > last.time_ns:
            self.tick_rate_hz = (r.mono_ns - last.mono_ns) * _NS / (r.time_ns - last.time_ns)
        self._clock = (r.time_ns, r.mono_ns, slew)
        was_synchronized = self.synchronized
        self.last_sync = r
        self.syncs += 1
        self.fails_in_row = 0
        self.last_error = ""
        self.synchronized = True
        self._live = self._clock
        if not was_synchronized:
            if self.syncs == 1:
                log.info("NTPTimeSync: synchronized with %s (stratum %d, offset %+.3f ms)",
                         self.server, r.stratum, r.offset_s * 1e3)
            else:
                log.warning("NTPTimeSync: Sync recovered at %s", format_stamp(r.stamp))

    # --------------------------------------------------------------- the thread
    def next_interval_s(self) -> float:
        """Wait before the next sync: the sync interval while all is well, else the retry
        interval."""
        if self.synchronized and self.fails_in_row == 0:
            return self.sync_interval_s
        return self.retry_interval_s

    def start(self) -> None:
        """Start the sync thread "NTPTimeSync" (idempotent)."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="NTPTimeSync", daemon=True)
        self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.next_interval_s()):
            try:
                self.sync_once()
            except Exception:                   # noqa: BLE001 - the loop must not die
                log.exception("NTPTimeSync: unexpected error")

    def shutdown(self) -> None:
        """NTPTime_Shutdown: stop the sync thread (waits for a query in flight) and stop
        answering (EPICS clears ``synchronized`` when its thread ends)."""
        self._stop.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(self.timeout_s + 2.0)
            if t.is_alive():
                log.warning("NTPTimeSync thread did not stop")
        self.synchronized = False
        self._live = None

    # ------------------------------------------------------------------ report
    def report(self, level: int = 0) -> str:
        """NTPTime_Report text: EPICS's lines, then ours (level >= 1)."""
        if self._thread is not None and not self.running:
            return "NTP synchronization thread not running.\n"
        out = [f"NTP driver {'is' if self.synchronized else 'is *not*'} synchronized with server"]
        if self.fails_in_row:
            if self.last_sync is not None:
                ago_s = (self._mono() - self.last_sync.mono_ns) / _NS
                out.append(f"Last successful sync was {ago_s / 60.0:.1f} minutes ago")
            else:
                out.append("No successful sync since the IOC was booted")
        if level:
            last = format_stamp(self.last_sync.stamp) if self.last_sync else "never"
            out += [f"Syncronization interval = {self.sync_interval_s:.1f} seconds",
                    f"Last synchronized at {last}",
                    f"Current OS tick rate = {_NS} Hz",
                    f"Measured tick rate = {self.tick_rate_hz:.3f} Hz",
                    f"NTP Server = {self.server}",
                    f"Retry interval = {self.retry_interval_s:.1f} seconds, "
                    f"timeout = {self.timeout_s:.1f} seconds",
                    f"Failed syncs in a row = {self.fails_in_row} "
                    f"(unsynchronized after more than {SYNC_RETRIES}); "
                    f"{self.syncs} accepted, {self.failures} failed in total"]
            r = self.last_reply
            if r is not None:
                out.append(f"Last reply: stratum {r.stratum}, leap {r.leap}, "
                           f"offset {r.offset_s * 1e3:+.3f} ms, delay {r.delay_s * 1e3:.3f} ms")
            if self.last_error:
                out.append(f"Last error: {self.last_error}")
            slew = self.slew_left_ns()
            if slew:
                out.append(f"Slewing out a backwards correction, {slew / 1e6:.3f} ms left")
        return "\n".join(out) + "\n"


# ---------------------------------------------------------------- NTPTime_Init (once)
#: Called after every sync attempt of the process's NTP provider (device support I/O Intr).
SYNC_LISTENERS: list[Callable[[], None]] = []
_instance: NtpProvider | None = None
_instance_lock = threading.Lock()


def instance() -> NtpProvider | None:
    """The provider ``NTPTime_Init`` created, or None."""
    return _instance


def ntp_time_init(priority: int, registry: GeneralTime, environ=None) -> tuple[NtpProvider, bool]:
    """NTPTime_Init: once per process, create the provider from the environment, sync once,
    start the thread, then register it as current-time provider "NTP" at ``priority``.

    Returns (provider, created); a second call returns the first provider and False (EPICS
    runs NTPTime_Init once). Raises NtpConfigError for a bad configuration."""
    global _instance
    environ = os.environ if environ is None else environ
    with _instance_lock:
        if _instance is not None:
            return _instance, False
        host, port = parse_server(environ.get(ENV_SERVER, ""))
        prov = NtpProvider(
            host, port,
            sync_interval_s=_env_seconds(environ, ENV_SYNC_INTERVAL, DEFAULT_SYNC_INTERVAL_S),
            retry_interval_s=_env_seconds(environ, ENV_RETRY_INTERVAL, DEFAULT_RETRY_INTERVAL_S),
            timeout_s=_env_seconds(environ, ENV_TIMEOUT, DEFAULT_TIMEOUT_S),
            listeners=SYNC_LISTENERS)
        prov.sync_once()
        prov.start()
        registry.register_current_provider(NAME, priority, prov.get_current)
        _instance = prov
        return prov, True
