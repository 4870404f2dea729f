"""Auto-detect (psud's ``--port auto``, done right): probe candidate ports for an E3631A.

Candidates are pyserial's port list (``auto``) or the list given (``auto:/dev/a,/dev/b``). Each is
probed in its own thread with a short deadline, opened exclusively (a port another process holds
is skipped, not stolen), and asked ``SYST:VERS?`` then ``*IDN?`` only: probing never writes a
setting, and only a reply that identifies an E3631A is accepted. pyserial's list never includes
ptys (reference e3631a.md §13), so simulators on ptys are found only through ``auto:LIST``.
"""
from __future__ import annotations

import logging
import threading

from .driver import E3631ADriver, NoDeviceError
from .transport import SerialSettings, SerialTransport, TransportError

log = logging.getLogger("ioc.psu")


def candidates(spec: str) -> list[str]:
    """``auto`` -> pyserial's serial ports; ``auto:/dev/a,/dev/b`` -> those."""
    if spec.startswith("auto:"):
        return [p.strip() for p in spec[5:].split(",") if p.strip()]
    from serial.tools import list_ports
    return [p.device for p in sorted(list_ports.comports(), key=lambda p: p.device)]


def probe_one(url: str, settings: SerialSettings, timeout_s: float) -> str:
    """Return the identity of an E3631A on ``url``; raise NoDeviceError/TransportError."""
    t = SerialTransport(url, settings)
    t.open()
    try:
        drv = E3631ADriver(t)
        return drv.identify(timeout_s).idn
    finally:
        t.close()


def detect(spec: str, settings: SerialSettings | None = None, timeout_s: float = 0.3) -> str:
    """Probe the candidates of ``spec`` in parallel; return the first (in list order) that
    answers as an E3631A. Raises NoDeviceError naming what each candidate said."""
    settings = settings or SerialSettings()
    ports = candidates(spec)
    if not ports:
        raise NoDeviceError(f"{spec}: no serial ports to probe")
    results: dict[str, str | Exception] = {}

    def run(url: str) -> None:
        try:
            results[url] = probe_one(url, settings, timeout_s)
        except (NoDeviceError, TransportError) as exc:
            results[url] = exc

    threads = [threading.Thread(target=run, args=(u,), name=f"probe:{u}", daemon=True)
               for u in ports]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout_s * 4 + 5.0)
    found = [u for u in ports if isinstance(results.get(u), str)]
    if found:
        if len(found) > 1:
            log.warning("auto-detect: E3631A on %s; using %s", ", ".join(found), found[0])
        log.info("auto-detect: %s on %s", results[found[0]], found[0])
        return found[0]
    why = "; ".join(f"{u}: {results.get(u, 'no answer')}" for u in ports)
    raise NoDeviceError(f"no E3631A found ({why})")
