"""PSU iocsh commands: ``E3631AConfigure`` and ``E3631AReport`` (``../shared/spec/iocsh.md``)."""
from __future__ import annotations

import logging
import shlex
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..shell.registry import Arg, ShellError, command
from .autodetect import detect
from .devsup import PORTS
from .driver import BUSY_FOR_SIM_PROFILE, BUSY_TABLES
from .port import OUTAGE_POLICIES, PortOptions, PsuPort
from .transport import SerialSettings

log = logging.getLogger("ioc.psu")

_OPTION_HELP = ("baud=9600 bits=8 parity=N stop=2 timeout_ms=500 busy=observed|spec|none "
                "preempt=1 slow_every=10 backoff_max_ms=5000 outage=fail|hold "
                "profile=ideal|spec|realistic (sim:// only)")


def parse_options(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in shlex.split(text.replace(",", " ")):
        if "=" not in item:
            raise ShellError(f"option {item!r}: expected NAME=VALUE ({_OPTION_HELP})")
        k, v = item.split("=", 1)
        out[k.strip().lower()] = v.strip()
    return out


def build_port(name: str, device: str, options: str) -> PsuPort:
    """Create (not start) a port from E3631AConfigure's arguments. Raises ShellError."""
    opts = parse_options(options or "")
    known = {"baud", "bits", "parity", "stop", "timeout_ms", "busy", "preempt", "slow_every",
             "profile", "seed", "backoff_max_ms", "outage"}
    unknown = set(opts) - known
    if unknown:
        raise ShellError(f"unknown option(s) {', '.join(sorted(unknown))} ({_OPTION_HELP})")
    try:
        settings = SerialSettings(baud=int(opts.get("baud", 9600)),
                                  bytesize=int(opts.get("bits", 8)),
                                  parity=opts.get("parity", "N").upper()[:1],
                                  stopbits=int(opts.get("stop", 2)))
        port_opts = PortOptions(timeout_s=float(opts.get("timeout_ms", 500)) / 1000.0,
                                preempt=opts.get("preempt", "1") not in ("0", "no", "false"),
                                slow_every=max(1, int(opts.get("slow_every", 10))),
                                backoff_max_s=float(opts.get("backoff_max_ms", 5000)) / 1000.0)
    except ValueError as exc:
        raise ShellError(f"bad option value: {exc}") from None
    port_opts.outage = opts.get("outage", "fail").lower()
    if port_opts.outage not in OUTAGE_POLICIES:
        raise ShellError(f"outage={opts['outage']}: expected one of {'|'.join(OUTAGE_POLICIES)} "
                         "(fail: a put while the link is down completes at once with a "
                         "WRITE/INVALID alarm and is never sent; hold: it is sent once after "
                         "recovery and counted in $(P)PENDING)")
    url = device
    resolve = None
    if device.startswith("sim://"):
        parts = urlsplit(device)
        query = dict(parse_qsl(parts.query))
        for k in ("profile", "seed"):
            if k in opts:
                query[k] = opts[k]
        query.setdefault("baud", str(settings.baud))
        # An unnamed sim:// gets the port's name, so it survives reconnects (and tests and
        # users reach it with ioc.psu.sim.instance(NAME)).
        url = f"sim://{parts.netloc or name}?{urlencode(query)}"
        port_opts.busy = BUSY_FOR_SIM_PROFILE.get(query.get("profile", "realistic"), "observed")
    elif device == "auto" or device.startswith("auto:"):
        url = device
        resolve = lambda: detect(device, settings)  # noqa: E731
    if "busy" in opts:
        if opts["busy"] not in BUSY_TABLES:
            raise ShellError(f"busy={opts['busy']}: expected one of {', '.join(BUSY_TABLES)}")
        port_opts.busy = opts["busy"]
    return PsuPort(name, url, options=port_opts, settings=settings, resolve=resolve)


@command("E3631AConfigure", Arg("port name"), Arg("device"), Arg("options", default=""),
         help="Create a PSU port: E3631AConfigure(NAME, DEVICE, \"OPTIONS\"). DEVICE: a serial "
              "device, auto, auto:/dev/a,/dev/b, a pyserial URL, or sim:// (in-process "
              f"simulator). OPTIONS: {_OPTION_HELP}")
def e3631a_configure(shell, name: str | None, device: str | None, options: str) -> None:
    if not name or not device:
        raise ShellError("usage: E3631AConfigure(PORT_NAME, DEVICE, \"OPTIONS\")")
    if name in PORTS:
        raise ShellError(f"PSU port {name!r} already exists")
    if shell.ioc.initialized:
        raise ShellError("E3631AConfigure must come before iocInit")
    port = build_port(name, device, options)
    PORTS[name] = port
    shell.ioc.at_exit(lambda: (port.stop(), PORTS.pop(name, None)))
    port.start()
    # Only the open is waited for here (a port held by another IOC is a start-up error); the
    # records wait for the first connection at iocInit, so many ports connect in parallel.
    port.wait_opened(port.options.init_wait_s)
    if port.state is not None and "exclusive lock" in port.message:
        msg = port.message
        port.stop()
        PORTS.pop(name, None)
        raise ShellError(f"E3631AConfigure {name}: {msg}")


@command("E3631AReport", Arg("port name", default=""), Arg("level", int, default=0),
         help="Report PSU ports: link state, port, identity, queue, timing statistics")
def e3631a_report(shell, name: str, level: int) -> None:
    ports = [PORTS[name]] if name and name in PORTS else list(PORTS.values()) if not name else []
    if name and not ports:
        raise ShellError(f"no PSU port {name!r}")
    for port in ports:
        shell.print(port.report(level))
