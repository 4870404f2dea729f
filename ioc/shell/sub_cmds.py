"""iocsh command ``registerSubroutine NAME module:function``: a Python function as the sub/aSub
routine NAME (what a dbd ``function(NAME)`` line and registryFunctionAdd do for C in base).

The module is imported as Python imports it (PYTHONPATH, then the shell's current directory,
so ``cd`` in a st.cmd works as for dbLoadRecords). Importing a module also registers whatever
its ``@subroutine("...")`` decorators name. Register before ``iocInit``: that is when SNAM and
INAM are looked up.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from ..records.sub import SUBROUTINES, register_subroutine
from .registry import Arg, ShellError, command

if TYPE_CHECKING:
    from .interp import Shell


def _import(modname: str):
    try:
        return importlib.import_module(modname)
    except ModuleNotFoundError as exc:
        cwd = os.getcwd()
        if exc.name != modname.split(".")[0] or cwd in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(modname)


@command("registerSubroutine", Arg("subroutine name"), Arg("module:function"),
         help="Register the Python function module:function as sub/aSub routine NAME "
              "(for SNAM, INAM, SUBL).")
def register_subroutine_cmd(shell: "Shell", name: str | None, target: str | None) -> None:
    """Import ``module`` and register its ``function`` as ``name``; a ShellError (reported as
    ``file:line``) when an argument is missing, the import fails or the function is absent."""
    if not name or not target or ":" not in target:
        raise ShellError("usage: registerSubroutine NAME module:function")
    modname, _, funcname = target.partition(":")
    try:
        mod = _import(modname)
    except Exception as exc:     # any import-time error is the user's module's, not ours
        raise ShellError(f"registerSubroutine {name}: cannot import {modname!r}: "
                         f"{type(exc).__name__}: {exc}") from None
    func = getattr(mod, funcname, None)
    if func is None:
        # The decorator may have registered it under this name already.
        func = SUBROUTINES.get(funcname)
    if not callable(func):
        raise ShellError(f"registerSubroutine {name}: {modname!r} has no function {funcname!r}")
    register_subroutine(name, func)
