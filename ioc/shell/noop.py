"""Commands that have no meaning in this IOC: accepted with a one-line note, never an error.

They come from EPICS base's softIoc (breakpoints, lock sets, access security, the registry,
callback queues...) and from modules st.cmd files often call (asyn tracing, autosave's triggered sets).
Each prints ``NAME: not available in this IOC (REASON); ignored`` and the script goes
on. A command listed here with reason None is accepted silently: it is needed by every base
st.cmd and its job is done already (record and device registration is built in).

To give one of them a meaning, register it in its own module: the last registration wins, so
register after ``ioc.shell.core`` is imported (ioc.main's import order).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from .interp import raw_argv
from .registry import COMMANDS, Arg, command

if TYPE_CHECKING:
    from .interp import Shell

_BKPT = "no breakpoints: records run on one event loop"
_DBD = "record, menu and device definitions are built in (ioc/records/base.dbd)"
_REG = "no EPICS registry: commands and device support are Python registrations"
_ASYN = "no asyn"
_AUTOSAVE = "not in this IOC's autosave"

#: name -> (argument names as base's help shows them, reason or None for silent acceptance)
NOT_HERE: dict[str, tuple[tuple[str, ...], str | None]] = {
    # registration: built in (every st.cmd for softIoc calls it)
    "softIoc_registerRecordDeviceDriver": (("pdbbase",), None),
    "registerAllRecordDeviceDrivers": (("pdbbase",), None),
    # access security: ioc.access.shell has them all but the hash table dump
    "asDumpHash": ((), "user and host names are matched without asLib's hash table"),
    # callback and scanOnce queues
    "callbackParallelThreads": (("no of threads", "priority"), "no callback threads"),
    "callbackQueueShow": (("reset",), "no callback queues"),
    "callbackSetQueueSize": (("bufsize",), "no callback queues"),
    "scanOnceQueueShow": (("reset",), "scanOnce runs on the event loop, no queue"),
    "scanOnceSetQueueSize": (("size",), "scanOnce runs on the event loop, no queue"),
    # static database dumps
    "dbDumpBreaktable": (("pdbbase", "tableName"), "breakpoint tables are not dumped"),
    "dbDumpDevice": (("pdbbase", "recordTypeName"), _DBD),
    "dbDumpDriver": (("pdbbase",), _DBD), "dbDumpField": (("pdbbase", "recordTypeName",
                                                          "fieldName"), _DBD),
    "dbDumpFunction": (("pdbbase",), _DBD), "dbDumpLink": (("pdbbase",), _DBD),
    "dbDumpMenu": (("pdbbase", "menuName"), _DBD), "dbDumpPath": (("pdbbase",), _DBD),
    "dbDumpRecord": (("pdbbase", "recordTypeName", "interest level"), "use dbpr"),
    "dbDumpRecordType": (("pdbbase", "recordTypeName"), _DBD),
    "dbDumpRegistrar": (("pdbbase",), _DBD), "dbDumpVariable": (("pdbbase",), "use var"),
    "dbPutAttribute": (("record type", "attribute name", "value"), _DBD),
    "dbPvdDump": (("pdbbase", "verbose"), "no process variable directory"),
    "dbPvdTableSize": (("size",), "no process variable directory"),
    # breakpoints, lock sets, notify, channels
    "dba": (("record name",), "no dbAddr: use dbgf"), "dbap": (("record name",), _BKPT),
    "dbb": (("record name",), _BKPT), "dbc": (("record name",), _BKPT),
    "dbd": (("record name",), _BKPT), "dbp": (("record name", "interest level"), _BKPT),
    "dbs": (("record name",), _BKPT),
    "dbLockShowLocked": (("interest level",), "no lock sets: one event loop"),
    "dblsr": (("record name", "interest level"), "no lock sets: one event loop"),
    "dbNotifyDump": ((), "no report of put-notifies"),
    "dbtpn": (("record name", "value"), "no process-notify test"),
    "tpn": (("record name", "value"), "no process-notify test"),
    "dbel": (("record name", "level"), "no event-list report: use casr 1"),
    "dbjlr": (("record name", "level"), "no JSON links"),
    "gft": (("record name",), "no dbChannel test: use dbgf or caget"),
    "pft": (("record name", "value"), "no dbChannel test: use dbpf or caput"),
    "iocPause": ((), "an IOC here cannot be paused"),
    # libCom
    "dlload": (("path/library.so",), "no shared libraries to load"),
    "epicsMutexShowAll": (("onlyLocked", "level"), "no epicsMutex"),
    "epicsThreadResume": (("[thread ...]",), "threads are never suspended"),
    "taskwdShow": (("level",), "no task watchdog"),
    "errlog": (("message",), "no IOC log to send it to"),
    "iocLogPrefix": (("prefix",), "no IOC log client"),
    "iocLogShow": (("level",), "no IOC log client"),
    "setIocLogDisable": (("(0,1)=>(false,true)",), "no IOC log client"),
    # registry lookups
    "registryDump": ((), _REG), "registryDeviceSupportFind": (("name",), _REG),
    "registryDriverSupportFind": (("name",), _REG), "registryFunctionFind": (("name",), _REG),
    "registryRecordTypeFind": (("name",), _REG),
    # modules st.cmd files often use
    "asynSetTraceMask": (("portName", "addr", "mask"), _ASYN),
    "asynSetTraceIOMask": (("portName", "addr", "mask"), _ASYN),
    "asynSetTraceInfoMask": (("portName", "addr", "mask"), _ASYN),
    "asynSetTraceFile": (("portName", "addr", "filename"), _ASYN),
    "asynSetTraceIOTruncateSize": (("portName", "addr", "size"), _ASYN),
    "asynReport": (("level", "portName"), _ASYN),
    # autosave: ioc.autosave.shell has set_*_path, set_pass<n>_restoreFile, create_monitor_set,
    # create_periodic_set, create_manual_set, manual_save and save_restoreShow
    "create_triggered_set": (("file", "trigger", "macros"), _AUTOSAVE),
    "save_restoreSet_status_prefix": (("prefix",), _AUTOSAVE),
}


def _handler(name: str, reason: str | None):
    @raw_argv
    def handler(shell: "Shell", argv: list[str]) -> None:
        if reason is not None:
            shell.print(f"{name}: not available in this IOC ({reason}); ignored")
    handler.__name__ = f"noop_{name}"
    return handler


def register_all() -> None:
    """Register every listed command that nothing else registered (a module that gives one a
    meaning keeps it, whichever was imported first)."""
    for name, (args, reason) in NOT_HERE.items():
        if name in COMMANDS:
            continue
        text = ("Accepted and ignored: " + reason + ".") if reason else \
            "Accepted: its work is built into this IOC."
        command(name, *(Arg(a) for a in args), help=text)(_handler(name, reason))


register_all()
