"""Time registry benchmark: cost of one generalTime ``get_current()`` against libCom's own.

    python -m bench.gtime          (or: python bench/gtime.py)

Ours: a :class:`timing.registry.GeneralTime` with the providers of the embedded IOC plus issue 5's
-- "OS Clock" (999), "NTP" (100; the real NtpProvider, synchronised from a scripted reply, so no
network is involved) and an EventTime-like provider at 70 (validity check, then sync stamp +
ticks since the sync event / clock rate, as drvTS/EventTime compute event time).

Reference, in the same run: ``epicsTimeGetCurrent`` of EPICS base's libCom (epicscorelibs),
called through ctypes. In a plain process libCom has only its OS clock, so it takes its
"OS clock only" short circuit: no lock, no ratchet -- the cheapest generalTime there is. The
ctypes call itself costs a few hundred ns, which that figure includes (``ctypes_noop_us``
shows the bare ctypes overhead).

Figures (µs per call, median of ROUNDS runs of N calls, loop overhead included):
``get_current_us`` (EventTime valid: the usual case), ``evt_invalid_us`` (EventTime fails, NTP
answers), ``os_only_us`` (only the OS clock), ``threads2_us`` (two threads calling at once, wall
time per call), ``libcom_us``. ``vs_libcom = get_current_us / libcom_us``. Target: get_current
<= 2 µs. Not a test: exit status 0 whatever the figures.
"""
from __future__ import annotations

import ctypes
import os
import statistics
import sys
import threading
import time

if __package__ in (None, ""):            # python bench/gtime.py
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from timing.providers import os_clock                                  # noqa: E402
from timing.providers.ntp import NtpProvider, NtpReply                  # noqa: E402
from timing.registry import POSIX_TIME_AT_EPICS_EPOCH, GeneralTime     # noqa: E402

N = 200_000
ROUNDS = 7
TARGET_US = 2.0
_NS = 1_000_000_000
_EPOCH_NS = POSIX_TIME_AT_EPICS_EPOCH * _NS


class EventTimeLike:
    """Per call what an EventTime provider does: check validity, then
    sync stamp + ticks since the last sync event / clock_hz."""

    def __init__(self, clock_hz: int = 1_000_000):
        self.valid = True
        self.clock_hz = clock_hz
        self.sync_ns = time.time_ns() - _EPOCH_NS
        self.sync_mono = time.monotonic_ns()

    def get_current(self):
        if not self.valid:
            return None
        ticks = (time.monotonic_ns() - self.sync_mono) * self.clock_hz // _NS
        return divmod(self.sync_ns + ticks * _NS // self.clock_hz, _NS)


def synced_ntp() -> NtpProvider:
    def reply() -> NtpReply:
        return NtpReply(time_ns=time.time_ns() - _EPOCH_NS, mono_ns=time.monotonic_ns(),
                        stratum=2, leap=0, offset_s=0.0, delay_s=0.0)
    prov = NtpProvider("bench", 123, query=reply)
    assert prov.sync_once()
    return prov


def per_call_us(fn, n: int = N, rounds: int = ROUNDS) -> float:
    runs = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter_ns() - t0) / n / 1000.0)
    return statistics.median(runs)


def two_threads_us(fn, n: int = N // 2) -> float:
    start = threading.Barrier(3)

    def worker():
        start.wait()
        for _ in range(n):
            fn()
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter_ns()
    for t in threads:
        t.join()
    return (time.perf_counter_ns() - t0) / (2 * n) / 1000.0


def libcom():
    """(epicsTimeGetCurrent via ctypes, a ctypes no-op) as callables."""
    import epicscorelibs.path
    lib = ctypes.CDLL(os.path.join(epicscorelibs.path.lib_path, "libCom.so"))

    class EpicsTimeStamp(ctypes.Structure):
        _fields_ = [("secPastEpoch", ctypes.c_uint32), ("nsec", ctypes.c_uint32)]
    ts = EpicsTimeStamp()
    ref = ctypes.byref(ts)
    get = lib.epicsTimeGetCurrent
    get.argtypes = [ctypes.POINTER(EpicsTimeStamp)]
    get.restype = ctypes.c_int
    assert get(ref) == 0 and abs(ts.secPastEpoch + POSIX_TIME_AT_EPICS_EPOCH - time.time()) < 5
    noop = lib.epicsThreadGetIdSelf          # a trivial libCom call: the ctypes overhead
    noop.restype = ctypes.c_void_p
    return (lambda: get(ref)), noop


def main() -> int:
    gt = GeneralTime()
    gt.register_current_provider(os_clock.NAME, os_clock.PRIORITY, os_clock.get_current)
    gt.register_current_provider("NTP", 100, synced_ntp().get_current)
    evt = EventTimeLike()
    gt.register_current_provider("EventTime", 70, evt.get_current)
    os_only = GeneralTime()
    os_only.register_current_provider(os_clock.NAME, os_clock.PRIORITY, os_clock.get_current)
    lc_get, lc_noop = libcom()
    print(f"# providers: {', '.join(f'{p.name}@{p.priority}' for p in gt.current_providers())}; "
          f"{N} calls x {ROUNDS} rounds, median; Python {sys.version.split()[0]}", flush=True)

    # Interleave ours and libCom's so that machine noise hits both alike.
    figures: dict[str, list[float]] = {k: [] for k in
                                       ("full", "evt_invalid", "os_only", "libcom", "noop",
                                        "provider_evt", "provider_os")}
    for _ in range(3):
        evt.valid = True
        figures["full"].append(per_call_us(gt.get_current))
        figures["libcom"].append(per_call_us(lc_get))
        evt.valid = False
        assert gt.get_current() is not None and gt.current_provider_name() == "NTP"
        figures["evt_invalid"].append(per_call_us(gt.get_current))
        evt.valid = True
        figures["os_only"].append(per_call_us(os_only.get_current))
        figures["noop"].append(per_call_us(lc_noop))
        figures["provider_evt"].append(per_call_us(evt.get_current))
        figures["provider_os"].append(per_call_us(os_clock.get_current))
    med = {k: statistics.median(v) for k, v in figures.items()}
    gt.get_current()
    assert gt.current_provider_name() == "EventTime"
    threads2 = two_threads_us(gt.get_current)

    print(f"get_current_us (EventTime valid): {med['full']:.3f}", flush=True)
    print(f"evt_invalid_us (NTP answers): {med['evt_invalid']:.3f}", flush=True)
    print(f"os_only_us: {med['os_only']:.3f}", flush=True)
    print(f"threads2_us (2 threads, wall time per call): {threads2:.3f}", flush=True)
    print(f"provider alone: EventTime-like {med['provider_evt']:.3f} us, "
          f"OS Clock {med['provider_os']:.3f} us", flush=True)
    print(f"libcom_us (epicsTimeGetCurrent via ctypes): {med['libcom']:.3f}", flush=True)
    print(f"ctypes_noop_us (epicsThreadGetIdSelf via ctypes): {med['noop']:.3f}", flush=True)
    print(f"backwards errors counted: {gt.error_count()} (from switching EventTime off and on: "
          f"its µs ticks vs NTP's ns)",
          flush=True)
    vs = med["full"] / med["libcom"]
    print(f"target get_current_us <= {TARGET_US:.1f}: {med['full']:.3f} "
          f"({'met' if med['full'] <= TARGET_US else 'NOT met'})", flush=True)
    print(f"RESULT gtime get_current_us={med['full']:.3f} vs_libcom={vs:.2f} "
          f"evt_invalid_us={med['evt_invalid']:.3f} os_only_us={med['os_only']:.3f} "
          f"threads2_us={threads2:.3f} libcom_us={med['libcom']:.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
