"""``psu-timing-ioc`` / ``python -m ioc``: start the IOC like EPICS base's softIoc.

    psu-timing-ioc [-S] [--strict] [-m MACROS] [-d FILE.db]... [-a FILE.acf] [-x PREFIX] [st.cmd]

Options are applied in order, as softIoc does: ``-m`` sets the macros for the ``-d`` files after
it. With a st.cmd, the script must call ``iocInit``; without one, iocInit runs after the ``-d``
files. With neither a st.cmd nor ``-d``, the embedded default ``iocBoot/iocsim/st.cmd`` runs.
``-S`` serves without an interactive shell (for procServ/systemd) until SIGTERM/SIGINT or a write
to the ``-x`` exit PV.

st.cmd errors are handled as EPICS base does: an unknown command or a failing one is reported
(``ERROR st.cmd line 7: ...``) and the script goes on, unless the script says ``on error break``
(stop) or ``on error halt`` (stop running commands; the IOC keeps serving what it serves until
SIGTERM). ``--strict`` (or IOC_STRICT=1 in the environment, for CI): the first error anywhere
stops the start. A failed iocInit always stops it: nothing is served.

Exit status: 0 after a clean stop; 1 when start-up failed (a -d file, a failed iocInit, a st.cmd
that cannot be read or stopped on ``on error break``, the first error with --strict) or the
shell was halted by ``on error halt``.
"""
from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import signal
import socket
import sys

from . import devsup  # noqa: F401  (registers the built-in device support)
from .app import Ioc, IocStartError
from .filters import dbstate as _dbstate  # noqa: F401  (dbStateCreate, dbStateSet, ... for sync)
from .database.db import IocInitError
from .database.errors import DbLoadError
from .psu import devsup as _psu_devsup  # noqa: F401  (DTYP "E3631A")
from .ca import shell as _ca_shell  # noqa: F401  (casr)
from .caclient import shell as _caclient_shell  # noqa: F401  (dbcar)
from .psu import shell as _psu_shell  # noqa: F401  (E3631AConfigure, E3631AReport)
from .shell import core  # noqa: F401  (registers the core commands)
from .access import shell as _access_shell  # noqa: F401  (asSetFilename, asInit, astac, ...)
from .shell import sub_cmds  # noqa: F401  (registerSubroutine)
from .putlog import shell as _putlog_shell  # noqa: F401  (caPutLogInit, ..., DTYP PutLog)
from .autosave import shell as _autosave_shell  # noqa: F401  (set_savefile_path, ...)
from .shell.misc import set_base_env
from .shell.interp import FatalShellError, HaltShell, Shell, StrictStop
from .shell.registry import ShellError
from timing import devsup as _timing_devsup  # noqa: F401  (DTYPs "General Time", "NTP Time")
from timing import devsup_stamp as _timing_stamp  # noqa: F401  (DTYP "Soft Timestamp")
from timing import shell as _timing_shell  # noqa: F401  (generalTimeReport, NTPTime_Init, ...)
from timing.evt import devsup as _evt_devsup  # noqa: F401  (DTYPs "EventTime", "Soft EVG")
from timing.evt import shell as _evt_shell  # noqa: F401  (EvtTimeConfigure, EvtTimeReport, ...)

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(PACKAGE_DIR)
DEFAULT_STCMD = os.path.join("iocBoot", "iocsim", "st.cmd")


class _Ordered(argparse.Action):
    """Keep -m/-d/-x in command-line order (softIoc applies them sequentially)."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.ops.append((self.dest, values))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="psu-timing-ioc", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(ops=[])
    p.add_argument("-S", dest="no_shell", action="store_true", help="no interactive shell")
    p.add_argument("--strict", action="store_true",
                   default=os.environ.get("IOC_STRICT", "") not in ("", "0"),
                   help="stop the start at the first st.cmd error, exit status 1 (default: "
                        "report errors and go on, as EPICS base; also IOC_STRICT=1)")
    p.add_argument("-m", dest="m", action=_Ordered, metavar="MACROS",
                   help='macros for the following -d files, "A=1,B=2"')
    p.add_argument("-d", dest="d", action=_Ordered, metavar="FILE.db", help="load a database")
    p.add_argument("-a", dest="acf", metavar="FILE.acf", help="access security file")
    p.add_argument("-x", dest="x", action=_Ordered, metavar="PREFIX",
                   help="load the exit PV PREFIX:exit")
    p.add_argument("stcmd", nargs="?", metavar="st.cmd", help="startup script")
    return p


def _install_signals() -> None:
    def handler(signum, frame):
        raise KeyboardInterrupt
    # `kill -USR1 <pid>` prints every thread's stack: how to see what a stuck IOC is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def _configure_logging() -> None:
    level = os.environ.get("IOC_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for name in ("caproto", "caproto.ctx", "caproto.circ", "caproto.bcast"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging()
    os.environ.setdefault("TOP", TOP)
    # this host's name as its CA clients send it (the example ACF's HAG uses it; shells
    # rarely export HOSTNAME)
    os.environ.setdefault("HOSTNAME", socket.gethostname())
    set_base_env()
    ioc = Ioc()
    shell = Shell(ioc, strict=args.strict)
    halted = False
    _install_signals()
    try:
        try:
            macros = ""
            for op, value in args.ops:
                if op == "m":
                    macros = value
                elif op == "d":
                    ioc.db.load_records(value, macros)
                elif op == "x":
                    ioc.db.load_records(os.path.join(PACKAGE_DIR, "exit.db"), {"IOC": value})
            if args.acf:
                # softIoc -a: asSetFilename before the st.cmd (which may still change it)
                ioc.db.access.set_filename(args.acf)
            stcmd = args.stcmd
            if stcmd is None and not any(op == "d" for op, _ in args.ops):
                stcmd = os.path.join(TOP, DEFAULT_STCMD)
                print(f"psu-timing-ioc: no st.cmd given, running {stcmd}", flush=True)
            if stcmd is not None:
                try:
                    status = shell.run_file(stcmd)
                except StrictStop as exc:
                    raise ShellError(f"{exc} (--strict: stopped at the first error)") from None
                except FatalShellError as exc:
                    path, line = shell.location
                    first = str(exc).splitlines()[0].rstrip(":")
                    raise ShellError(f"{path}:{line}: {first}") from None
                except HaltShell:
                    halted = True
                if halted:
                    # base suspends the shell's thread: no command runs any more, whatever
                    # was started keeps running until the IOC is stopped
                    print(f"psu-timing-ioc: {stcmd}: halted by 'on error halt'; stop the IOC "
                          "with SIGTERM", file=sys.stderr, flush=True)
                    while not ioc.exit_requested.wait(3600):
                        pass
                    return 1                # (SIGTERM arrives as KeyboardInterrupt: below)
                if status:
                    raise ShellError(f"{stcmd}: cannot be read" if not os.path.isfile(stcmd)
                                     else f"{stcmd}: stopped by 'on error break'; nothing "
                                     "more is run")
                if not ioc.initialized:
                    print(f"warning: {stcmd} did not call iocInit; nothing is served",
                          file=sys.stderr)
            else:
                ioc.ioc_init()
        except (ShellError, DbLoadError, IocInitError, IocStartError) as exc:
            print(f"psu-timing-ioc: {exc}", file=sys.stderr, flush=True)
            return 1
        if args.no_shell:
            while not ioc.exit_requested.wait(3600):
                pass
        else:
            shell.strict = False    # --strict is about the start-up; the prompt never stops
            try:
                shell.interact()
            except FatalShellError as exc:      # iocInit typed at the prompt failed
                print(f"psu-timing-ioc: {str(exc).splitlines()[0].rstrip(':')}",
                      file=sys.stderr, flush=True)
                return 1
            except HaltShell:                   # a script run from the prompt halted
                halted = True
                while not ioc.exit_requested.wait(3600):
                    pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        ioc.stop()
    if ioc.failed:
        print("psu-timing-ioc: the CA server failed; exiting", file=sys.stderr, flush=True)
        return 1
    return 1 if halted else 0


if __name__ == "__main__":
    sys.exit(main())
