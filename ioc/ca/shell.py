"""iocsh commands of the CA server: ``casr`` (rsrv's report)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from ..shell.registry import Arg, ShellError, command

if TYPE_CHECKING:
    from ..shell.interp import Shell


@command("casr", Arg("level", int, default=0),
         help="Channel Access server report: port, clients and their channels (level 1)")
def casr(shell: "Shell", level: int) -> None:
    server = shell.ioc.server
    if server is None or server.port is None:
        raise ShellError("casr: the CA server is not running (before iocInit)")
    shell.print(shell.ioc.db.run_sync(lambda: server.report(level)))
