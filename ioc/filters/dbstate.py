"""Named boolean states for the ``sync`` filter (EPICS base dbState.c) and their iocsh commands.

A state is created once by name (``dbStateCreate``; creating it again returns the same one),
never deleted, and is global to the IOC process. Set/clear/get take the state object
(dbStateId); ``find`` returns None for an unknown name. The iocsh commands ignore unknown
names and a missing name silently, as base's do, and print as base 7.0.8 prints::

    epics> dbStateShow red            epics> dbStateShow red 1
    FALSE                             id 0x1eb95610 'red' : FALSE
    epics> dbStateShowAll             (every state, in creation order, as level 1)
"""
from __future__ import annotations

import threading

from ..shell.registry import Arg, command

__all__ = ["DbState", "create", "find", "set", "clear", "get", "show", "show_all", "reset"]


class DbState:
    """One named state (dbStateId)."""

    __slots__ = ("name", "status", "_lock")

    def __init__(self, name: str):
        self.name = name
        self.status = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DbState({self.name!r}, {self.status})"


_STATES: list[DbState] = []
_LOCK = threading.Lock()


def find(name: str | None) -> DbState | None:
    """dbStateFind: the state of that exact name, or None."""
    if name is None:
        return None
    with _LOCK:
        return next((s for s in _STATES if s.name == name), None)


def create(name: str | None) -> DbState | None:
    """dbStateCreate: the state of that name, created (false) if new; None for no name."""
    if name is None:
        return None
    with _LOCK:
        for s in _STATES:
            if s.name == name:
                return s
        s = DbState(name)
        _STATES.append(s)
        return s


def set(state: DbState | None) -> None:  # noqa: A001 (base's name)
    """dbStateSet."""
    if state is not None:
        with state._lock:
            state.status = True


def clear(state: DbState | None) -> None:
    """dbStateClear."""
    if state is not None:
        with state._lock:
            state.status = False


def get(state: DbState | None) -> bool:
    """dbStateGet: False for None."""
    if state is None:
        return False
    with state._lock:
        return state.status


def show(state: DbState, level: int = 0) -> str:
    """dbStateShow's line (without the newline)."""
    prefix = f"id {id(state):#x} '{state.name}' : " if level >= 1 else ""
    return prefix + ("TRUE" if get(state) else "FALSE")


def show_all(level: int = 0) -> list[str]:
    """dbStateShowAll: every state at ``level + 1``, in creation order."""
    with _LOCK:
        states = list(_STATES)
    return [show(s, level + 1) for s in states]


def reset() -> None:
    """Forget every state (tests only: base has no way to delete one)."""
    with _LOCK:
        _STATES.clear()


# ------------------------------------------------------------------------ iocsh
@command("dbStateCreate", Arg("name"), help='Allocate new state name for "state" filter.\n')
def db_state_create(shell, name: str | None) -> None:
    create(name)


@command("dbStateSet", Arg("name"), help='Change state to set for "state" filter.\n')
def db_state_set(shell, name: str | None) -> None:
    set(find(name))


@command("dbStateClear", Arg("name"), help='Change state to clear for "state" filter.\n')
def db_state_clear(shell, name: str | None) -> None:
    clear(find(name))


@command("dbStateShow", Arg("name"), Arg("level", int),
         help='Show set/clear status of named state. (cf. "state" filter)\n')
def db_state_show(shell, name: str | None, level: int) -> None:
    state = find(name)
    if state is not None:
        shell.print(show(state, level))


@command("dbStateShowAll", Arg("level", int),
         help='Show set/clear status of all named states. (cf. "state" filter)\n')
def db_state_show_all(shell, level: int) -> None:
    for line in show_all(level):
        shell.print(line)
