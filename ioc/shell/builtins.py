"""The shell's own commands (iocsh.cpp's): ``help``, ``#``, ``exit``, ``on``, ``iocshLoad``,
``iocshRun``, ``iocshCmd``."""
from __future__ import annotations

import re
import textwrap
from typing import TYPE_CHECKING

from .interp import IocshError, ansi, raw_argv
from .registry import COMMANDS, Arg, Command, command

if TYPE_CHECKING:
    from .interp import Shell


def glob_match(name: str, pattern: str) -> bool:
    """epicsStrGlobMatch: ``*`` any run of characters, ``?`` any one character, nothing else
    special."""
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, name, re.S) is not None


def usage_line(cmd: Command) -> str:
    """``name arg 'arg with blanks' ...`` as base's help prints a command's arguments."""
    parts = [cmd.name]
    for a in cmd.args:
        parts.append(f"'{a.name}'" if " " in a.name and not getattr(cmd.func, "raw_argv", False)
                     else a.name)
    return " ".join(parts)


@command("help", Arg("[command ...]"),
         help="Without arguments: the names of all commands. With names (wildcards * and ? "
              "allowed): each matching command's arguments and what it does.")
@raw_argv
def help_(shell: "Shell", argv: list[str]) -> None:
    names = sorted(COMMANDS)
    if len(argv) <= 1:
        # base's layout: names in 16-column slots, lines kept under 80 columns
        col, line = 0, ""
        lines = []
        for n in names:
            if len(n) + col >= 79:
                lines.append(line.rstrip())
                line, col = "", 0
            line += n
            col += len(n)
            if col >= 64:
                lines.append(line.rstrip())
                line, col = "", 0
            else:
                pad = 16 - col % 16
                line += " " * pad
                col += pad
        if line:
            lines.append(line.rstrip())
        for ln in lines:
            shell.print(ln)
        shell.print()
        shell.print("Type 'help <command>' to see the arguments of <command>.  eg. 'help db*'")
        return
    first = True
    for pattern in argv[1:]:
        for n in names:
            if not glob_match(n, pattern):
                continue
            cmd = COMMANDS[n]
            if not first:
                shell.print(ansi(" " * 60, "underline", shell.out))
            shell.print()
            shell.print(ansi(usage_line(cmd), "bold", shell.out))
            if cmd.help:
                shell.print()
                for line in cmd.help.rstrip("\n").splitlines():
                    indent = line[:len(line) - len(line.lstrip())]
                    for part in textwrap.wrap(line, 79, initial_indent="",
                                              subsequent_indent=indent + "  ") or [""]:
                        shell.print(part)
            first = False


@command("#", Arg("newline-terminated comment"), help="A comment: the rest of the line is "
                                                      "ignored.")
@raw_argv
def comment(shell: "Shell", argv: list[str]) -> None:
    pass


@command("exit", help="End the current script (in iocshLoad: return to the caller); at the "
                      "prompt, stop the IOC.")
def exit_(shell: "Shell") -> None:
    # The interpreter handles "exit" itself before looking commands up; this entry is for help.
    pass


_ON_USAGE = "Usage: on error [continue | break | halt | wait <delay>]"


@command("on", Arg("'error' 'continue' | 'break' | 'wait' [value] | 'halt'"),
         help="What an error does to the rest of this script (iocshLoad files have their own "
              "setting):\n"
              "  continue (default) - report it and go on with the next line\n"
              "  break - stop this script and return to its caller, with an error\n"
              "  halt - stop everything: no further command runs (the IOC keeps serving what "
              "it serves)\n"
              "  wait N - pause N seconds (default 5), then go on")
@raw_argv
def on(shell: "Shell", argv: list[str]) -> None:
    scope = shell.scope
    if scope is None:
        return
    if len(argv) < 3 or argv[1] != "error":
        shell.eprint(_ON_USAGE)
        return
    if scope.interactive:
        shell.eprint("Interactive shell ignores  on error ...")
        return
    scope.errored = False            # errors before this line were already let through
    action = argv[2]
    if action == "continue":
        scope.onerr = "continue"
    elif action == "break":
        scope.onerr = "break"
    elif action == "halt":
        scope.onerr, scope.timeout = "halt", 0.0
    elif action == "wait":
        scope.onerr = "halt"
        if len(argv) <= 3:
            shell.eprint(_ON_USAGE)
            scope.timeout = 5.0
            return
        try:
            scope.timeout = float(argv[3])
        except ValueError:
            shell.eprint(_ON_USAGE)
            shell.eprint(f"Unable to parse 'on error wait' time {argv[3]}")
            scope.timeout = 5.0
    else:
        raise IocshError(_ON_USAGE)


@command("iocshLoad", Arg("pathname"), Arg("macros"),
         help="Run the commands of file PATHNAME; MACROS (\"A=1,B=2\") are defined while it "
              "runs and forgotten after.")
def iocsh_load(shell: "Shell", path: str | None, macros: str | None) -> None:
    if not path:
        raise IocshError("Usage: iocshLoad pathname [macros]")
    if shell.run_file(path, macros):
        raise IocshError("")        # its errors were reported where they happened


@command("iocshRun", Arg("command"), Arg("macros"),
         help="Run one command line with MACROS defined for it (quote it with '...' so its "
              "macros are not expanded before).")
def iocsh_run(shell: "Shell", line: str | None, macros: str | None) -> None:
    if line is not None and shell.run_command(line, macros):
        raise IocshError("")


@command("iocshCmd", Arg("command"), help="Run one command line.")
def iocsh_cmd(shell: "Shell", line: str | None) -> None:
    if line is not None and shell.run_command(line):
        raise IocshError("")
