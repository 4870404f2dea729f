"""Who is putting: the client a put comes from, for the control token and the put log.

The CA server (and any other write path: shell, autosave restore) wraps the put and the
record processing it causes in :func:`putting_as`; code that runs inside — a record's device
support, the put log — reads :func:`current_putter`.  Processing that goes on later
(asynchronous completion, a scan) runs without a putter (None).
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Iterator, Optional

__all__ = ["Putter", "current_putter", "putting_as"]


@dataclass(frozen=True)
class Putter:
    """A client as access security names it: CA user and host names (host lower-cased
    as asLib matches it), and the path the put came by ("CA", "shell", "autosave")."""
    user: str
    host: str
    via: str = "CA"

    @property
    def ident(self) -> str:
        """``user@host``, as CTL:OWNER shows the token holder."""
        return f"{self.user}@{self.host}"


_current: ContextVar[Optional[Putter]] = ContextVar("ioc_putter", default=None)


def current_putter() -> Optional[Putter]:
    """The client whose put is being handled now, or None."""
    return _current.get()


@contextmanager
def putting_as(putter: Optional[Putter]) -> Iterator[None]:
    """Run a put (and the processing it causes) on behalf of ``putter``."""
    token = _current.set(putter)
    try:
        yield
    finally:
        _current.reset(token)
