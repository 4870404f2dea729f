"""The iocsh interpreter: st.cmd files and the interactive ``epics>`` prompt.

Syntax as EPICS iocsh: one command per line; ``#`` starts a comment line (echoed, except ``#-``);
``$(VAR)``, ``${VAR}`` and ``$(VAR=default)`` expand from the environment (epicsmacrolib, i.e.
EPICS macLib); arguments are separated by commas or blanks, optionally in parentheses and quoted
(epicsmacrolib's iocsh tokenizer); ``< file`` reads commands from a file.

Errors: a failing or unknown command is reported as ``file:line: message``. In a script run
non-interactively (``strict``) the first error stops the run with ShellError, so a bad st.cmd
makes the IOC exit non-zero before anything is served.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

from epicsmacrolib import MacroContext, split_iocsh_line

from ..database.errors import DbLoadError
from .registry import COMMANDS, ShellError

if TYPE_CHECKING:
    from ..app import Ioc


class ExitShell(Exception):
    """``exit`` was typed."""


class Shell:
    def __init__(self, ioc: "Ioc", out: TextIO | None = None):
        self.ioc = ioc
        self.out = out or sys.stdout
        self.location = ("<stdin>", 0)
        self._depth = 0

    def print(self, *args, **kw) -> None:
        print(*args, file=self.out, **kw)
        self.out.flush()

    # ------------------------------------------------------------------ lines
    def expand(self, line: str) -> str:
        ctx = MacroContext(use_environment=True)
        return ctx.expand(line)

    def execute(self, line: str, echo: bool = False) -> None:
        """Run one line. Raises ShellError (with file:line) or ExitShell."""
        stripped = line.strip()
        if not stripped:
            return
        if stripped.startswith("#"):
            if echo and not stripped.startswith("#-"):
                self.print(stripped)
            return
        if echo:
            self.print(stripped)
        expanded = self.expand(stripped)
        split = split_iocsh_line(expanded)
        if split.error:
            raise ShellError(self._where(split.error))
        argv = list(split.argv)
        for fd, redir in split.redirects.items():
            if fd == 0 and redir.mode == "r":
                if argv:
                    raise ShellError(self._where("input redirection with a command is not supported"))
                self.run_file(redir.name, strict=True)
                return
            raise ShellError(self._where("output redirection is not supported"))
        if not argv:
            return
        name, args = argv[0], argv[1:]
        if name == "exit":
            raise ExitShell()
        cmd = COMMANDS.get(name)
        if cmd is None:
            raise ShellError(self._where(f"command {name!r} not found"))
        try:
            cmd.call(self, args)
        except ShellError as exc:
            raise ShellError(self._where(f"{name}: {exc}")) from None
        except DbLoadError as exc:
            # The database error carries its own file:line; prefix where it was loaded from.
            raise ShellError(self._where(f"{name}: {exc}")) from None
        except (ExitShell, KeyboardInterrupt):
            raise
        except Exception as exc:  # a command bug must not kill the shell
            raise ShellError(self._where(f"{name}: {type(exc).__name__}: {exc}")) from exc

    def _where(self, msg: str) -> str:
        fname, line = self.location
        return f"{fname}:{line}: {msg}"

    # ------------------------------------------------------------------ files
    def run_file(self, path: str, strict: bool = True) -> None:
        """Run a script; relative ``<`` includes resolve against the current directory, as in
        iocsh. ``strict``: stop at the first error (raise ShellError)."""
        if self._depth > 20:
            raise ShellError(self._where("scripts nested too deeply"))
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except OSError as exc:
            raise ShellError(self._where(f"can't open {path!r}: {exc.strerror}")) from None
        saved = self.location
        self._depth += 1
        try:
            for lineno, line in enumerate(lines, 1):
                self.location = (path, lineno)
                try:
                    self.execute(line, echo=True)
                except ShellError as exc:
                    if strict:
                        raise
                    self.print(str(exc))
        finally:
            self._depth -= 1
            self.location = saved

    def interact(self, stdin: TextIO | None = None) -> None:
        """Read commands until EOF or ``exit``. Prompts ``epics> `` when stdin is a terminal."""
        stdin = stdin or sys.stdin
        tty = stdin.isatty()
        lineno = 0
        while True:
            try:
                if tty:
                    line = input("epics> ")
                else:
                    line = stdin.readline()
                    if not line:
                        return
            except EOFError:
                if tty:
                    self.print()
                return
            lineno += 1
            self.location = ("<stdin>", lineno)
            try:
                self.execute(line)
            except ExitShell:
                return
            except ShellError as exc:
                self.print(str(exc))

