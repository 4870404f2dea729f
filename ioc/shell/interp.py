"""The iocsh interpreter: st.cmd files, ``iocshLoad``/``iocshRun``/``iocshCmd``, ``epics>``.

A line is read as EPICS base 7's iocsh reads it (libcom/src/iocsh/iocsh.cpp):

* leading blanks are skipped; a line starting with ``#`` is a comment, echoed when it comes
  from a script unless it starts with ``#-``;
* macros are expanded by macLib (epicsmacrolib): the macros of the enclosing ``iocshLoad`` /
  ``iocshRun`` / ``<`` scopes, innermost first, then the environment. A reference to an
  undefined macro without a default is an error: the line is neither echoed nor run;
* a script echoes the *expanded* line (with its leading blanks), then runs it; a line that
  expanded to nothing or to a comment is not run;
* words are separated by blanks, commas and parentheses and may be quoted; ``< file`` alone
  runs ``file`` in a new scope with the current macros; ``> file``, ``>> file`` and
  ``2> file`` redirect the output of the command;
* ``exit`` ends the current script (or the interactive shell).

Errors (unknown command, bad argument, undefined macro, a command that fails) are printed to
the error stream as base prints them: ``ERROR st.cmd line 7: Command foo not found.`` in a
script, the bare message at the prompt. The script then goes on, as in base, unless ``on error
break`` (the script returns to its caller with an error) or ``on error halt`` (everything stops:
:class:`HaltShell`) is in effect; ``on error wait N`` waits N seconds and goes on. The error
state is cleared only by the next command that runs, so with ``wait`` every comment line after
an error waits again, as in base.

``strict`` (``psu-timing-ioc --strict``): the first error anywhere stops every script
(:class:`StrictStop`), whatever ``on error`` says; the interactive prompt is never strict.

Fatal errors (:class:`FatalShellError`, e.g. a failed iocInit) stop every script whatever
``on error`` and ``strict`` say.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Iterator, TextIO

from epicsmacrolib import MacroContext, split_iocsh_line

from ..database.errors import DbLoadError
from .registry import COMMANDS, ShellError

if TYPE_CHECKING:
    from ..app import Ioc

__all__ = ["Shell", "Scope", "ExitShell", "HaltShell", "StrictStop", "FatalShellError",
           "IocshError", "raw_argv", "ansi"]


class ExitShell(Exception):
    """``exit`` was typed (ends the current script or the prompt)."""


class HaltShell(Exception):
    """``on error halt`` fired: the shell is suspended; nothing more may run."""


class StrictStop(ShellError):
    """strict mode: the first error stopped the scripts. ``str()`` is ``path:line: message``."""


class FatalShellError(ShellError):
    """An error no ``on error`` setting may ignore (a failed iocInit): every script stops."""


class IocshError(ShellError):
    """A failure whose message is complete as it is (printed without the command's name)."""


def raw_argv(func):
    """Mark a command handler that takes the whole word list (iocshArgArgv): it is called as
    ``func(shell, argv)`` with ``argv[0]`` the command name."""
    func.raw_argv = True
    return func


_ANSI = {"red": "\x1b[31;1m", "bold": "\x1b[1m", "underline": "\x1b[4m"}


def ansi(text: str, style: str, stream: TextIO) -> str:
    """``text`` in an ANSI style when ``stream`` is a terminal (base always colours; a log file
    is easier to read without escape codes)."""
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return f"{_ANSI[style]}{text}\x1b[0m" if tty else text


@dataclass
class Scope:
    """One running iocshBody: a script, a command line or the prompt."""

    path: str | None                  # as given (None: a command line or the prompt)
    macros: dict[str, str]            # live: epicsEnvSet removes a name from every scope
    defs: dict[str, str]              # as given (a "<" include starts from these again)
    interactive: bool = False
    onerr: str = "continue"           # continue | break | halt (halt with timeout > 0: wait)
    timeout: float = 0.0
    errored: bool = False
    lineno: int = 0

    @property
    def filename(self) -> str | None:
        """The name base shows in messages: the script's file name without its directory."""
        return os.path.basename(self.path) if self.path else None


_MAX_DEPTH = 40
_UNDEF_RE = re.compile(r"\$[({]([^)}=,$]*)[)},]")


class Shell:
    """An IOC shell bound to one IOC. ``out``: echo and command output (stdout); ``err``:
    errors (stderr, or ``out`` when only ``out`` is given)."""

    def __init__(self, ioc: "Ioc", out: TextIO | None = None, err: TextIO | None = None,
                 strict: bool = False):
        self.ioc = ioc
        self.out = out or sys.stdout
        self.err = err or (out if out is not None else sys.stderr)
        self.strict = strict
        self.scopes: list[Scope] = []
        self.location: tuple[str, int] = ("<stdin>", 0)

    # ------------------------------------------------------------------ output
    def print(self, *args: Any, **kw: Any) -> None:
        """Print to the command output (stdout, or where ``>`` redirected it)."""
        print(*args, file=self.out, **kw)
        self.out.flush()

    def eprint(self, *args: Any, **kw: Any) -> None:
        """Print to the error stream (stderr, or where ``2>`` redirected it)."""
        print(*args, file=self.err, **kw)
        self.err.flush()

    @property
    def scope(self) -> Scope | None:
        """The innermost running scope (None outside any script or prompt)."""
        return self.scopes[-1] if self.scopes else None

    # ------------------------------------------------------------------ macros
    def env_clear(self, name: str) -> None:
        """An environment variable was set or removed: a macro of that name in any running
        scope no longer hides it (base's iocshEnvClear)."""
        for scope in self.scopes:
            scope.macros.pop(name, None)

    @staticmethod
    def parse_macros(text: str | None) -> dict[str, str]:
        """``"A=1,B=2"`` as macLib's macParseDefns reads it (values raw, as macLib stores them)."""
        if not text:
            return {}
        return MacroContext(use_environment=False, string_encoding="utf-8") \
            .definitions_to_dict(text)

    def expand(self, line: str) -> str:
        """``line`` with its macros expanded: the running scopes' macros, innermost first,
        then the environment (macLib does the expansion). Raises IocshError naming each
        undefined macro, as base's macLib warns."""
        if "$" not in line:
            return line
        ctx = MacroContext(use_environment=True, string_encoding="utf-8")
        cap = max(4096, 8 * len(line))
        with contextlib.ExitStack() as stack:
            for scope in self.scopes:
                if scope.macros:
                    stack.enter_context(ctx.scoped(**scope.macros))
            text = ctx.expand(line, max_length=cap)
            # macLib leaves an undefined reference in place and reports a failure; only the
            # failure tells it from a line that just looks like one
            if text and ctx.expand(line, empty_on_failure=True, max_length=cap) == "":
                names = [n for n in _UNDEF_RE.findall(line) if n not in ctx]
                msgs = [f"macLib: macro {n} is undefined (expanding string {line})"
                        for n in dict.fromkeys(names)]
                raise IocshError("\n".join(msgs) or f"macLib: can't expand string {line}")
        return text

    # ------------------------------------------------------------------ errors
    def _report(self, scope: Scope, exc: ShellError) -> None:
        """Print an error as base does; in strict mode (or if fatal) stop everything."""
        msg = str(exc)
        if msg:
            text = msg
            if scope.filename and not scope.interactive:
                text = (f"{ansi('ERROR', 'red', self.err)} {scope.filename} line "
                        f"{scope.lineno}: {msg}")
            self.eprint(text)
        if isinstance(exc, FatalShellError):
            exc.reported = True
            raise exc
        if self.strict and not scope.interactive:
            where = f"{scope.path}:{scope.lineno}" if scope.path else self._outer_where()
            first = msg.splitlines()[0] if msg else "a script it ran failed"
            stop = StrictStop(f"{where}: {first}")
            stop.reported = True
            raise stop

    def _outer_where(self) -> str:
        for s in reversed(self.scopes):
            if s.path:
                return f"{s.path}:{s.lineno}"
        return "<command>"

    # ------------------------------------------------------------------ running
    def _body(self, lines: Iterable[str], scope: Scope, echo: bool) -> int:
        """Run ``lines`` in ``scope`` (pushed for the duration). 0, or -1 after ``on error
        break``/``wait`` stopped it (base's iocshBody return value)."""
        if len(self.scopes) >= _MAX_DEPTH:
            raise IocshError("scripts nested too deeply")
        self.scopes.append(scope)
        it = iter(lines)
        try:
            while True:
                # as base: the error state is looked at before each line is read, so an
                # error on the last line of a script still breaks, halts or waits
                if not scope.interactive and scope.errored:
                    if scope.onerr == "break":
                        self.eprint("iocsh Error: Break")
                        return -1
                    if scope.onerr == "halt":
                        if scope.timeout <= 0 or scope.timeout == float("inf"):
                            self.eprint("iocsh Error: Halt")
                            raise HaltShell()
                        self.eprint(f"iocsh Error: Waiting {scope.timeout:.1f} sec ...")
                        time.sleep(scope.timeout)
                raw = next(it, None)
                if raw is None:
                    return 0
                scope.lineno += 1
                if scope.path:
                    self.location = (scope.path, scope.lineno)
                try:
                    self._line(raw.rstrip("\r\n"), scope, echo)
                except ExitShell:
                    return 0
                except ShellError as exc:
                    if getattr(exc, "reported", False):
                        raise               # printed where it happened; stops every script
                    scope.errored = True
                    self._report(scope, exc)
        finally:
            self.scopes.pop()

    def _line(self, raw: str, scope: Scope, echo: bool) -> None:
        body = raw.lstrip()
        if body.startswith("#"):
            if echo and not body.startswith("#-"):
                self.print(raw)
            return
        line = self.expand(raw)
        body = line.lstrip()
        if echo and line and not body.startswith("#-"):
            self.print(line)
        if not body or body.startswith("#"):
            return
        split = split_iocsh_line(body)
        if split.error:
            raise IocshError(split.error.split(" (")[0])
        argv = list(split.argv)
        redirects = dict(split.redirects)
        if not argv:
            inc = redirects.get(0)
            if inc is not None and inc.name:
                status = self.run_file(inc.name, scope.defs, _set_startup=False)
                if status:
                    raise IocshError("")
            return
        if argv[0] == "exit":
            raise ExitShell()
        self._dispatch(argv, redirects, scope)

    def _dispatch(self, argv: list[str], redirects: dict, scope: Scope) -> None:
        opened: list[tuple[int, TextIO]] = []
        try:
            for fd, redir in sorted(redirects.items()):
                if fd == 0 or not redir.name:
                    continue
                mode = {"w": "w", "a": "a"}.get(redir.mode, "w")
                try:
                    opened.append((fd, open(redir.name, mode, encoding="utf-8")))
                except OSError as exc:
                    raise IocshError(f"Can't open \"{redir.name}\": {exc.strerror}.") from None
            name = argv[0]
            cmd = COMMANDS.get(name)
            if cmd is None:
                raise IocshError(f"Command {name} not found.")
            if getattr(cmd.func, "raw_argv", False):
                call = lambda: cmd.func(self, argv)  # noqa: E731
            else:
                values = [a.convert(argv[i + 1] if i + 1 < len(argv) else None)
                          for i, a in enumerate(cmd.args)]
                call = lambda: cmd.func(self, *values)  # noqa: E731
            saved = self.out, self.err
            for fd, f in opened:
                if fd == 1:
                    self.out = f
                elif fd == 2:
                    self.err = f
            scope.errored = False           # a command runs: earlier errors are forgotten
            try:
                call()
            except (IocshError, FatalShellError, StrictStop):
                raise
            except ShellError as exc:
                msg = str(exc)
                raise ShellError(msg if not msg or name in msg else f"{name}: {msg}") from None
            except DbLoadError as exc:
                raise ShellError(f"{name}: {exc}") from None
            except (ExitShell, HaltShell, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a command bug must not kill the shell
                raise ShellError(f"{name}: {type(exc).__name__}: {exc}") from exc
            finally:
                self.out, self.err = saved
        finally:
            for _, f in opened:
                f.close()

    # ------------------------------------------------------------------ entry points
    def run_file(self, path: str, macros: str | dict[str, str] | None = None,
                 _set_startup: bool = True) -> int:
        """Run a script (``iocsh file``, ``iocshLoad file macros``): 0, or -1 if it could not
        be opened or ``on error break`` stopped it. Relative paths are relative to the current
        directory, as in base. Raises StrictStop, HaltShell or FatalShellError."""
        defs = macros if isinstance(macros, dict) else self.parse_macros(macros)
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                lines = f.readlines()
        except OSError as exc:
            # base prints this without a location; the line that asked for the file is named
            # here (the message of the caller's scope carries it)
            msg = f"Can't open {path}: {exc.strerror}"
            caller = self.scope
            if caller is None:
                self.eprint(msg)
                if self.strict:
                    raise StrictStop(f"{path}: {msg}") from None
                return -1
            raise IocshError(msg) from None
        if _set_startup:
            os.environ["IOCSH_STARTUP_SCRIPT"] = path
        return self._body(lines, Scope(path, dict(defs), dict(defs)), echo=True)

    def run_command(self, line: str, macros: str | None = None) -> int:
        """``iocshRun line macros`` / ``iocshCmd line``: one line, not echoed, in its own scope
        with ``on error break`` (as base). 0, or -1 if it failed."""
        defs = self.parse_macros(macros)
        return self._body([line], Scope(None, dict(defs), dict(defs), onerr="break"),
                          echo=False)

    def execute(self, line: str, echo: bool = False) -> None:
        """Run one line as typed at the prompt; raises ShellError if it failed."""
        scope = self.scope or Scope(None, {}, {}, interactive=True)
        pushed = scope is not self.scope
        if pushed:
            self.scopes.append(scope)
        try:
            self._line(line, scope, echo)
        finally:
            if pushed:
                self.scopes.pop()

    def interact(self, stdin: TextIO | None = None) -> None:
        """Read commands until EOF or ``exit``. Prompts ``epics> `` when stdin is a terminal.
        Errors are printed and forgotten; ``on error`` is ignored here (as base)."""
        stdin = stdin or sys.stdin
        self.location = ("<stdin>", 0)
        self._body(_prompt_lines(stdin, self), Scope(None, {}, {}, interactive=True),
                   echo=False)


def _prompt_lines(stdin: TextIO, shell: Shell) -> Iterator[str]:
    tty = stdin.isatty()
    prompt = os.environ.get("IOCSH_PS1", "epics> ")
    while True:
        try:
            line = input(prompt) if tty else stdin.readline()
        except EOFError:
            shell.print()
            return
        if not tty and not line:
            return
        yield line
