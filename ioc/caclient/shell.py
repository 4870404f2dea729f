"""``dbcar [record] [level]``: base's Database Channel Access Report (dbCaTest.c), same text.

Records are visited as base does (record types in the dbd's sorted order, records in load
order, link fields in field order); level 0 prints the totals, 1 adds the links not
connected (``-->``), 2 every link (connected ones ``==>`` with their monitors, server and
access). The link states are read on the IOC loop; server names are looked up afterwards, on
the shell's thread, so a slow resolver never stalls processing. Level 3 and up print no
libca context report (there is no libca here).
"""
from __future__ import annotations

import socket
from functools import lru_cache
from typing import TYPE_CHECKING

from ..records.calink import CaLink
from ..shell.registry import Arg, command

if TYPE_CHECKING:
    from ..database.db import Database
    from ..shell.interp import Shell

_RIGHTS = ("No Access", "Read Only", "Write Only", "Read/Write")


@lru_cache(maxsize=256)
def _host_name(host: str) -> str:
    """ipAddrToA's ``name:port`` for an ``ip:port`` (the dotted address when unresolved)."""
    ip, sep, port = host.rpartition(":")
    if not sep or not ip[:1].isdigit():
        return host
    try:
        name = socket.gethostbyaddr(ip)[0]
    except OSError:
        name = ip
    return f"{name}:{port}"


def _snapshot(db: "Database", name: str | None) -> list[tuple]:
    """(record, field, pvname, connected, nDisconnect, nNoWrite, flags, host, rw) per CA link."""
    if name:
        rec = db.lookup(name)
        records = [rec] if rec is not None else []
    else:
        records = sorted(db.records.values(), key=lambda r: r.rtype)   # stable: load order
    out = []
    for rec in records:
        for fname in rec.spec.fields:
            link = rec.links.get(fname)
            if not isinstance(link, CaLink):
                continue
            ch = link.channel
            flags = ("IN" if link.in_native else "  ") + ("IS" if link.in_string else "  ") \
                + "    "                       # ON/OS: disabled in base as well
            out.append((rec.name, fname, link.chname, link.connected, link.n_disconnect,
                        link.n_no_write, flags, ch.host() if ch is not None else "",
                        int(link.read_access) | int(link.write_access) << 1))
    return out


def report(db: "Database", name: str | None, level: int) -> str:
    """The text ``dbcar name level`` prints."""
    if not name or name == "*":
        name = None
        lines = ["CA links in all records", ""]
    else:
        lines = [f"CA links in record named '{name}'", ""]
    rows = db.run_sync(lambda: _snapshot(db, name))
    nconn = n_disc = n_nowrite = no_read = no_write = 0
    for rname, fname, pv, connected, ndis, nnw, flags, host, rw in rows:
        if connected:
            nconn += 1
            n_disc += ndis
            n_nowrite += nnw
            no_read += not rw & 1
            no_write += not rw & 2
            if level > 1:
                lines.append(f"{rname:>28}.{fname:<4} ==> {pv:<28}  ({ndis}, {nnw})")
                lines.append(f"{'':>21} [{flags}] host {_host_name(host)}, {_RIGHTS[rw]}")
        elif level > 0:
            lines.append(f"{rname:>28}.{fname:<4} --> {pv:<28}  ({ndis}, {nnw})")
    n = len(rows)
    if (level > 1 and nconn > 0) or (level > 0 and n != nconn):
        lines.append("")
    lines.append(f"Total {n} CA link{'s' if n != 1 else ''}; {nconn} connected, "
                 f"{n - nconn} not connected.")
    lines.append(f"    {no_read} can't read, {no_write} can't write.  ({n_disc} disconnects, "
                 f"{n_nowrite} writes prohibited)")
    lines.append("")
    return "\n".join(lines)


@command("dbcar", Arg("record name"), Arg("level", int),
         help="Database Channel Access Report.\n"
              "Shows status of Channel Access links (CA_LINK).\n"
              " level 0 - Shows statistics for all links.\n"
              "       1 - Shows info. of only disconnected links.\n"
              "       2 - Shows info. for all links.\n")
def dbcar(shell: "Shell", name: str | None, level: int) -> None:
    shell.print(report(shell.ioc.db, name, level))
