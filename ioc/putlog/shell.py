"""The caPutLog iocsh commands, on ``db.putlog`` (caPutLogShellCommands.c), plus ``caPutLogFile``.

``caPutLogInit "host[:port] ..." [config] [burst timeout]`` (port 7011 by default;
EPICS_CA_PUT_LOG_ADDR when the address is empty), ``caPutLogReconf config [timeout]``,
``caPutLogShow level``, ``caPutLogSetTimeFmt format``, ``caPutLogSetBurstTimeout timeout`` and
our ``caPutLogFile path [config] [burst timeout]`` (the same lines appended to a file).
Unlike caPutLog they work before or after iocInit and without access security (then every
put is logged). Importing this module also registers DTYP "PutLog" (ioc.putlog.devsup); it is
imported after ioc.shell.core (ioc.main), so these registrations replace ioc.shell.noop's.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from ..shell.registry import Arg, ShellError, command
from .devsup import PutLogDevSup
from .core import (CONFIG_ALL, CONFIG_ALL_NO_FILTER, CONFIG_NONE, CONFIG_ON_CHANGE,
                   DEFAULT_BURST_TIMEOUT, PutLog)
from .outputs import FileOutput, TcpOutput, parse_addresses

if TYPE_CHECKING:
    from ..shell.interp import Shell

_CONFIG_WORDS = {CONFIG_NONE: "Disabled", CONFIG_ON_CHANGE: "OnChange", CONFIG_ALL: "All",
                 CONFIG_ALL_NO_FILTER: "AllNoFilter"}
_CLOSE_HOOKED: set[int] = set()
__all__ = ["PutLogDevSup"]     # importing this module registers DTYP "PutLog"


def _putlog(shell: "Shell") -> PutLog:
    return shell.ioc.db.putlog


def _hook_exit(shell: "Shell", pl: PutLog) -> None:
    """Close the put log (last burst written, threads stopped) when the IOC stops."""
    at_exit = getattr(shell.ioc, "at_exit", None)
    if at_exit is None or id(pl) in _CLOSE_HOOKED:
        return
    _CLOSE_HOOKED.add(id(pl))

    def close() -> None:
        _CLOSE_HOOKED.discard(id(pl))
        pl.close()
    at_exit(close)


def _configure(shell: "Shell", cmd: str, config: int, timeout: float) -> bool:
    """Print and check ``config`` as caPutLogInit does; False when nothing is to be done."""
    word = _CONFIG_WORDS.get(config)
    if word is None:
        raise ShellError(f"{cmd} config: Unknown (must be -1, 0, 1, or 2)")
    shell.print(f"{cmd} config: {word}")
    return config != CONFIG_NONE


def _apply(pl: PutLog, config: int, timeout: float) -> None:
    pl.config = config
    if timeout > 0:
        pl.burst_timeout = timeout
    elif not pl.initialized:
        pl.burst_timeout = DEFAULT_BURST_TIMEOUT
    pl.initialized = True


@command("caPutLogInit", Arg("address"), Arg("config", int, 0), Arg("burst timeout", float, 0.0),
         help="Log CA puts to the log server(s) at \"host[:port] ...\" (port 7011). config: "
              "-1 off, 0 changes only, 1 all puts, 2 all puts without burst merging.")
def ca_put_log_init(shell: "Shell", address: Optional[str], config: int,
                    timeout: float) -> None:
    pl = _putlog(shell)
    if not _configure(shell, "caPutLogInit", config, timeout):
        return
    text = (address or "").strip() or os.environ.get("EPICS_CA_PUT_LOG_ADDR", "").strip()
    have = {o.addr for o in pl.outputs if isinstance(o, TcpOutput)}
    if not text and not have:
        raise ShellError("caPutLog: server address not specified")
    new = []
    for item in text.split():
        try:
            (host, port), = parse_addresses(item)
        except ValueError as exc:
            shell.print(f"caPutLog: {exc}")
            continue
        if f"{host}:{port}" in have:
            shell.print(f"caPutLog: address {item} already configured")
            continue
        have.add(f"{host}:{port}")
        new.append((host, port))
    if not new and not have:
        raise ShellError("caPutLogInit: no usable log server address")
    _apply(pl, config, timeout)
    for host, port in new:
        pl.add_output(TcpOutput(host, port))
    _hook_exit(shell, pl)
    shell.print("caPutLog: successfully initialized")


@command("caPutLogFile", Arg("path"), Arg("config", int, 0), Arg("burst timeout", float, 0.0),
         help="Append the put log lines to a file (our extension; config as caPutLogInit).")
def ca_put_log_file(shell: "Shell", path: Optional[str], config: int, timeout: float) -> None:
    pl = _putlog(shell)
    if not path:
        raise ShellError("caPutLogFile: a file name is needed")
    if not _configure(shell, "caPutLogFile", config, timeout):
        return
    full = os.path.abspath(path)
    if any(isinstance(o, FileOutput) and os.path.abspath(o.path) == full for o in pl.outputs):
        shell.print(f"caPutLog: file {path} already configured")
        return
    try:
        out = FileOutput(path)
    except OSError as exc:
        raise ShellError(f"caPutLogFile: cannot open {path}: {exc.strerror or exc}") from None
    _apply(pl, config, timeout)
    pl.add_output(out)
    _hook_exit(shell, pl)


def _need_init(shell: "Shell", pl: PutLog) -> bool:
    if pl.initialized or pl.enabled:
        return True
    shell.print("caPutLog not initialized")
    return False


@command("caPutLogReconf", Arg("config", int, 0), Arg("burst timeout", float, 0.0),
         help="Change the put log's config (-1..2) and, if > 0, its burst timeout.")
def ca_put_log_reconf(shell: "Shell", config: int, timeout: float) -> None:
    pl = _putlog(shell)
    if not _need_init(shell, pl):
        return
    if config not in _CONFIG_WORDS:
        raise ShellError("caPutLogReconf config: Unknown (must be -1, 0, 1, or 2)")
    pl.reconf(config, timeout if timeout > 0 else None)


@command("caPutLogShow", Arg("level", int, 0),
         help="Report the put log: mode, total count, log servers and files (level 0..2).")
def ca_put_log_show(shell: "Shell", level: int) -> None:
    pl = _putlog(shell)
    if not _need_init(shell, pl):
        return
    for line in pl.show(level):
        shell.print(line)


@command("caPutLogSetTimeFmt", Arg("format"),
         help="strftime format of the time stamp of each line (%f, %03f: fractions of a "
              "second); default \"%d-%b-%y %H:%M:%S\".")
def ca_put_log_set_time_fmt(shell: "Shell", fmt: Optional[str]) -> None:
    if fmt:
        _putlog(shell).time_fmt = fmt


@command("caPutLogSetBurstTimeout", Arg("burst timeout", float, 0.0),
         help="Seconds within which puts of one client to one PV are merged into one line.")
def ca_put_log_set_burst_timeout(shell: "Shell", timeout: float) -> None:
    pl = _putlog(shell)
    if not pl.set_burst_timeout(timeout):
        shell.print(f"caPutLog: invalid timeout value = {timeout:f}. Setting default value = "
                    f"{pl.burst_timeout:f}")
