"""iocsh commands of EventTime: ``EvtSoftHwConfigure``, ``EvtTimeConfigure``, ``EvtTimeReport``.

``EvtTimeConfigure`` creates the driver; it starts at ``iocInit`` (after the records are
initialised, before the CA server serves them) and stops at exit. Each event the receiver gets
is also posted as a database event named by its number (``post_event``), so records with
``SCAN "Event"`` and ``EVNT "5"`` process when event 5 arrives -- with ``TSE 5`` they carry its
event time.
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from ioc.shell.registry import Arg, ShellError, command

from .. import general_time
from ..registry import GeneralTime
from . import driver, soft

if TYPE_CHECKING:
    from ioc.shell.interp import Shell

log = logging.getLogger("timing.evt")


def _registry(shell: "Shell") -> GeneralTime:
    ts = shell.ioc.db.time_source
    return ts if isinstance(ts, GeneralTime) else general_time()


@command("EvtSoftHwConfigure", Arg("link"), Arg("ppm", float),
         help="Use the soft event system: a soft EVG and EVR meeting on LINK (a multicast\n"
              "group:port on this host, e.g. 239.255.18.1:18324); the EVG's oscillator error is\n"
              "PPM. The EVG transmits only on an event master. Call before EvtTimeConfigure.")
def evt_soft_hw_configure(shell: "Shell", link: str | None, ppm: float) -> None:
    if not link:
        raise ShellError("usage: EvtSoftHwConfigure link ppm")
    try:
        hw = soft.configure(link, ppm)
    except (soft.LinkError, RuntimeError) as exc:
        raise ShellError(str(exc)) from None
    except OSError as exc:
        raise ShellError(f"can't open the link {link}: {exc.strerror}") from None
    shell.ioc.at_exit(hw.stop)


@command("EvtTimeConfigure", Arg("master", int), Arg("sync_rate_sec", int),
         Arg("clock_rate_hz", int), Arg("master_port", int), Arg("slave_port", int),
         Arg("time_out_ms", int),
         help="Configure EventTime (generalTime provider, priority 70): master 1 = event master,\n"
              "0 = slave; 0 for any of the rest takes its default: sync rate 1 s, clock\n"
              "1000000 Hz, master port 18323 (master listens), slave port 18322 (slaves listen),\n"
              "reply time-out 250 ms. Environment: EVT_SYNC_ADDR_LIST, EVT_MASTER_ADDR,\n"
              "EVT_AUTH_KEY, EVT_PLL_INTERVAL_S (see timing/evt/driver.py).")
def evt_time_configure(shell: "Shell", master: int, sync_rate: int, clock_hz: int,
                       master_port: int, slave_port: int, time_out_ms: int) -> None:
    if driver.instance() is not None:
        raise ShellError("EventTime is already configured")
    hw = soft.instance()
    if hw is None:
        raise ShellError("no timing hardware: call EvtSoftHwConfigure first")
    try:
        cfg = driver.EvtConfig.from_args(master, sync_rate, clock_hz, master_port, slave_port,
                                         time_out_ms)
        evt = driver.EventTime(cfg, hw.rx, hw.tx if cfg.master else None, _registry(shell))
    except driver.ConfigError as exc:
        raise ShellError(str(exc)) from None
    db = shell.ioc.db

    def post(code: int) -> None:
        db.call_soon_threadsafe(lambda: db.scanner.post_event(str(code)))

    evt.event_listeners.append(post)
    driver.set_instance(evt)
    if shell.ioc.initialized:
        evt.start()
    else:
        shell.ioc.at_init(lambda _ioc: evt.start())
    shell.ioc.at_exit(evt.stop)


@command("EvtTimeReport", Arg("level", int),
         help="EventTime state: role, validity, fault, master, rates, ports, PLL, counters\n"
              "(level 1: also bad messages by reason, clock watch and hardware)")
def evt_time_report(shell: "Shell", level: int) -> None:
    evt = driver.instance()
    shell.print(evt.report(level) if evt is not None else "EventTime not configured\n", end="")
