"""The iocsh command registry (``iocshRegister``): typed arguments and help text.

Other packages add their commands at import time::

    @command("E3631AConfigure", Arg("port name"), Arg("device"), Arg("options", default=""),
             help="Create a PSU port ...")
    def e3631a_configure(shell, port, device, options): ...

Arguments arrive as the declared types (str, int, float); a value that does not convert is a
ShellError naming the argument. Missing trailing arguments take their defaults (None, 0 or ""
as iocsh passes them when no default is given).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

__all__ = ["Arg", "Command", "ShellError", "command", "COMMANDS"]


class ShellError(Exception):
    """A command failed; the shell reports ``file:line: message``."""


@dataclass
class Arg:
    name: str
    type: type = str
    default: Any = None
    help: str = ""

    def convert(self, text: str | None) -> Any:
        if text is None or (text == "" and self.type is not str):
            if self.default is not None:
                return self.default
            return 0 if self.type in (int, float) else None
        if self.type is int:
            try:
                return int(text, 0)
            except ValueError:
                try:
                    return int(float(text))
                except ValueError:
                    raise ShellError(f"argument {self.name!r}: {text!r} is not an integer") from None
        if self.type is float:
            try:
                return float(text)
            except ValueError:
                raise ShellError(f"argument {self.name!r}: {text!r} is not a number") from None
        return text


@dataclass
class Command:
    name: str
    args: tuple[Arg, ...]
    func: Callable[..., Any]
    help: str = ""

    def usage(self) -> str:
        parts = [f"'{a.name}'" + ("" if a.type is str else f" ({a.type.__name__})")
                 for a in self.args]
        return f"{self.name} {' '.join(parts)}".rstrip()

    def call(self, shell, argv: list[str]) -> Any:
        values = [a.convert(argv[i] if i < len(argv) else None) for i, a in enumerate(self.args)]
        return self.func(shell, *values)


COMMANDS: dict[str, Command] = {}


def command(name: str, *args: Arg, help: str = "") -> Callable[[Callable], Callable]:
    """Register ``func(shell, *args)`` as iocsh command ``name``."""
    def deco(func: Callable) -> Callable:
        COMMANDS[name] = Command(name, tuple(args), func, help or inspect.getdoc(func) or "")
        return func
    return deco
