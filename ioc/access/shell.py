"""The access-security iocsh commands of EPICS base (asIocRegister.c), on ``db.access``.

``asSetFilename``, ``asSetSubstitutions``, ``asInit`` (before iocInit it only marks the file;
iocInit loads it; after, it re-reads it and keeps the rules in force when the file is bad),
the reports ``asdbdump``, ``aspuag``, ``asphag``, ``asprules``, ``aspmem``, ``ascar``, and
``astac`` (what a user at a host may do with a record), and the ``asCheckClientIP`` variable.
Their output follows asLibRoutines.c/asDbLib.c line for line.

Imported after :mod:`ioc.shell.core` (ioc.main), so these registrations replace the notes in
:mod:`ioc.shell.noop`.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Optional

from ..shell.registry import Arg, ShellError, command
from ..shell.variables import register_variable
from . import runtime
from .acf import ACCESS_NAMES
from .dump import dump, dump_hag, dump_rules, dump_uag

if TYPE_CHECKING:
    from ..shell.interp import Shell

_TRAP = ("NOTRAPWRITE", "TRAPWRITE")
_LEVEL = ("ASL0", "ASL1")


def _access(shell: "Shell") -> runtime.AccessSecurity:
    return shell.ioc.db.access


@command("asSetFilename", Arg("ascf"),
         help="Set the access security file iocInit (and asInit) loads.")
def as_set_filename(shell: "Shell", ascf: Optional[str]) -> None:
    if ascf and not os.path.isabs(ascf) and ":" not in ascf:
        shell.print("asSetFilename: Warning - relative paths won't usually work")
    _access(shell).set_filename(ascf)


@command("asSetSubstitutions", Arg("substitutions"),
         help="Macro substitutions for the access security file (\"A=1,B=2\").")
def as_set_substitutions(shell: "Shell", substitutions: Optional[str]) -> None:
    _access(shell).set_substitutions(substitutions)


@command("asInit", help="Load the access security file again (after iocInit); a bad file "
                        "keeps the rules in force.")
def as_init(shell: "Shell") -> None:
    acc = _access(shell)
    db = shell.ioc.db
    if not db.initialized:
        return                      # iocInit loads the file
    if not acc.active:
        shell.print("Access security is NOT enabled. Was asSetFilename specified before "
                    "iocInit?")
        raise ShellError("asInit: access security is not active")
    ok, why = acc.reload()
    if not ok:
        raise ShellError(why)


@command("asdbdump", help="Dump the access security configuration with its members.")
def asdbdump(shell: "Shell") -> None:
    acc = _access(shell)
    shell.print(_on_loop(shell, lambda: dump(acc.config, True, members=_member_text(acc,
                                                                             True))), end="")


@command("aspuag", Arg("uagname"), help="Show user access groups (all, or one).")
def aspuag(shell: "Shell", uagname: Optional[str]) -> None:
    shell.print(dump_uag(_access(shell).config, uagname or None), end="")


@command("asphag", Arg("hagname"), help="Show host access groups (all, or one).")
def asphag(shell: "Shell", hagname: Optional[str]) -> None:
    shell.print(dump_hag(_access(shell).config, hagname or None), end="")


@command("asprules", Arg("asgname"), help="Show the rules of access security groups.")
def asprules(shell: "Shell", asgname: Optional[str]) -> None:
    acc = _access(shell)
    shell.print(_on_loop(shell, lambda: dump_rules(acc.config, asgname or None)), end="")


@command("aspmem", Arg("asgname"), Arg("clients", int),
         help="Show the member records of access security groups (and their clients).")
def aspmem(shell: "Shell", asgname: Optional[str], clients: int) -> None:
    acc = _access(shell)

    def text() -> str:
        config = acc.config
        if config is None:
            return ""
        members = _member_text(acc, bool(clients))
        out = [] if config.asgs else ["No ASGs\n"]
        for asg in config.asgs:
            if asgname and asg.name != asgname:
                continue
            out.append(f"ASG({asg.name})\n{members(asg)}")
        return "".join(out)
    shell.print(_on_loop(shell, text), end="")


@command("ascar", Arg("level", int), help="Report the CA links of access security inputs.")
def ascar(shell: "Shell", level: int) -> None:
    acc = _access(shell)
    inputs = list(acc._inputs)
    connected = sum(1 for i in inputs if i.connected)
    if level > 0:
        for i in inputs:
            if level > 1 or not i.connected:
                shell.print(f"{'connected' if i.connected else 'not connected'} "
                            f"{i.inp.pv}")
    shell.print(f"{len(inputs)} channels {connected} connected "
                f"{len(inputs) - connected} not connected")


@command("astac", Arg("recordname"), Arg("user"), Arg("host"),
         help="What USER at HOST may do with a record (or record.FIELD).")
def astac(shell: "Shell", recordname: Optional[str], user: Optional[str],
          host: Optional[str]) -> None:
    if not recordname or user is None or host is None:
        shell.print('Usage: astac "record name", "user", "host"')
        return
    db = shell.ioc.db
    rec_name, _, field = recordname.partition(".")
    rec = db.lookup(rec_name)
    if rec is None or (field and not rec.has_field(field)):
        raise ShellError(f"astac: dbNameToAddr error: {recordname} not found")
    acc = _access(shell)

    def report(c: runtime.AsClient) -> None:
        shell.print(f"astac callback {rec.name}: status=0 get "
                    f"{'Yes' if c.can_read else 'No'} put {'Yes' if c.can_write else 'No'}")

    # as base, the client stays registered: its callback prints again whenever a reload, a
    # CALC input or the token changes what it may do
    client = _on_loop(shell, lambda: acc.add_client(rec, field or "VAL", user, host,
                                                    callback=report, owner="astac"))
    report(client)


def _on_loop(shell: "Shell", fn):
    """Run a report on the loop (clients and inputs change there), directly before iocInit."""
    return shell.ioc.db.run_sync(fn)


def _member_text(acc: runtime.AccessSecurity, clients: bool):
    """The MEMBERLIST block of an ASG (asDumpFP/asDumpMemFP): one member per record, named by
    the record's ASG field ("<null>" when empty), its clients under it when asked."""
    config = acc.config
    by_record: dict = {}
    if clients:
        for c in acc.clients:
            by_record.setdefault(c.record, []).append(c)

    def text(asg) -> str:
        if config is None:
            return ""
        recs = acc.member_records(asg)
        if not recs:
            return ""
        out = ["\tMEMBERLIST\n"]
        for r in recs:
            name = str(r.f.get("ASG", "") or "")
            out.append(f"\t\t{name or '<null>'} Record:{r.name}\n")
            for c in by_record.get(r, ()):
                a = c.access
                out.append(f"\t\t\t {c.user} {c.host} {_LEVEL[c.asl]} "
                           f"{ACCESS_NAMES[min(a.level, 2)]} {_TRAP[int(a.trapwrite)]}\n")
        return "".join(out)
    return text


def _set_check_ip(value: int) -> None:
    runtime.CHECK_CLIENT_IP = int(value)


register_variable("asCheckClientIP", int, lambda: runtime.CHECK_CLIENT_IP, _set_check_ip)
