"""iocsh commands of the timing package (output as EPICS prints it).

* ``generalTimeReport(interest_level)``, ``installLastResortEventProvider``
* ``NTPTime_Init(priority)``, ``NTPTime_Report(interest_level)``, ``NTPTime_Shutdown``
* ``ClockTime_Report(interest_level)``
* TEST FACILITY: ``testTimeProviderAdd(name, priority, events)`` and
  ``testTimeProviderSet(name, offset_s, fail)`` (see ``timing.providers.fake_clock``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from ioc.shell.registry import Arg, ShellError, command

from . import general_time
from .providers import fake_clock, ntp, os_clock
from .registry import GeneralTime, format_stamp

if TYPE_CHECKING:
    from ioc.shell.interp import Shell


def _registry(shell: "Shell") -> GeneralTime:
    ts = shell.ioc.db.time_source
    return ts if isinstance(ts, GeneralTime) else general_time()


@command("generalTimeReport", Arg("interest_level", int),
         help="interest level 0 - List providers and their priorities.\n"
              "               1 - Additionally show current time obtained from each provider.")
def general_time_report(shell: "Shell", level: int) -> None:
    shell.print(_registry(shell).report(level), end="")


@command("installLastResortEventProvider",
         help="Installs the optional Last Resort event provider at priority 999, which returns\n"
              "the current time for every event number")
def install_last_resort_event_provider(shell: "Shell") -> None:
    _registry(shell).install_last_resort_event_provider()


@command("ClockTime_Report", Arg("interest_level", int),
         help="Reports the OS clock provider (start time of the program)")
def clock_time_report(shell: "Shell", level: int) -> None:
    shell.print(f"Program started at {format_stamp(os_clock.STARTED)}")


# -------------------------------------------------------------------------- NTP
@command("NTPTime_Init", Arg("priority", int, default=ntp.DEFAULT_PRIORITY),
         help="Start the NTP time provider at this generalTime priority (EPICS uses 100).\n"
              f"Server: ${ntp.ENV_SERVER} (host or host:port). Intervals: "
              f"${ntp.ENV_SYNC_INTERVAL} ({ntp.DEFAULT_SYNC_INTERVAL_S:g} s),\n"
              f"${ntp.ENV_RETRY_INTERVAL} ({ntp.DEFAULT_RETRY_INTERVAL_S:g} s), "
              f"${ntp.ENV_TIMEOUT} ({ntp.DEFAULT_TIMEOUT_S:g} s). Runs once per IOC.")
def ntp_time_init(shell: "Shell", priority: int) -> None:
    try:
        prov, created = ntp.ntp_time_init(priority, _registry(shell))
    except ntp.NtpConfigError as exc:
        raise ShellError(str(exc)) from None
    if created:
        shell.ioc.at_exit(prov.shutdown)        # the sync thread stops with the IOC
    else:
        shell.print("NTPTime_Init: already initialized; ignored")


@command("NTPTime_Report", Arg("interest_level", int),
         help="Display time provider synchronization state\n"
              "  interest_level - with level 1 it also shows:\n"
              "                    * synchronization interval\n"
              "                    * time when last synchronized\n"
              "                    * nominal and measured system tick rates\n"
              "                    * server address, last reply, failures")
def ntp_time_report(shell: "Shell", level: int) -> None:
    prov = ntp.instance()
    shell.print(prov.report(level) if prov else "NTP driver not initialized\n", end="")


@command("NTPTime_Shutdown", help="Shuts down NTP time synchronization thread")
def ntp_time_shutdown(shell: "Shell") -> None:
    prov = ntp.instance()
    if prov is not None:
        prov.shutdown()


# ------------------------------------------------------------- TEST FACILITY
@command("testTimeProviderAdd", Arg("name"), Arg("priority", int), Arg("events", int),
         help="TEST FACILITY: register a steerable clock (OS clock + offset) as current-time\n"
              "provider NAME at PRIORITY (and as event provider if EVENTS is non-zero)")
def test_time_provider_add(shell: "Shell", name: str | None, priority: int, events: int) -> None:
    if not name:
        raise ShellError("usage: testTimeProviderAdd name priority [events]")
    try:
        fake_clock.add(_registry(shell), name, priority, bool(events))
    except ValueError as exc:
        raise ShellError(str(exc)) from None


@command("testTimeProviderSet", Arg("name"), Arg("offset_s", float), Arg("fail", int),
         help="TEST FACILITY: set test clock NAME to the OS clock + OFFSET_S seconds (a smaller\n"
              "offset than before makes it go backwards); FAIL non-zero makes it fail")
def test_time_provider_set(shell: "Shell", name: str | None, offset_s: float, fail: int) -> None:
    clock = fake_clock.get(name or "")
    if clock is None:
        raise ShellError(f"no test time provider {name!r}")
    clock.offset_ns = round(offset_s * 1e9)
    clock.failing = bool(fail)
