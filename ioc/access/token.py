"""A control token per device (SICS's token, the SPS RF reservation) on top of access security.

A device is the set of records whose names start with its prefix (``$(P)``). While a client
holds the device's token, every other client's write access to those records is taken away
(access security recomputes their rights: the client is sent CA_PROTO_ACCESS_RIGHTS, a put is
refused with ECA_NOWTACCESS, reads go on). The one exception is ``$(P)CTL:FORCE``: the ACF
decides who may write it (a manager group), and writing it frees the token whoever holds it.

The token is freed when its holder releases it, when the holder has had no CA circuit open
for longer than the grace time (a client that reconnects within it keeps the token), or by a
forced release. Each change is logged (logger ``ioc.access.token``) and reported to the
listeners (access security, the ``CTL:OWNER`` record).

A client is named ``user@host`` as access security matches it (CA user name, host name lower
case). One :class:`TokenRegistry` per database holds its tokens (:func:`registry`); all of
this runs on the IOC loop.
"""
from __future__ import annotations

import collections
import logging
from typing import Any, Callable, Optional

__all__ = ["ControlToken", "TokenError", "TokenRegistry", "registry", "ident",
           "FORCE_SUFFIX", "DEFAULT_GRACE_S"]

log = logging.getLogger(__name__)

FORCE_SUFFIX = "CTL:FORCE"
DEFAULT_GRACE_S = 30.0


def ident(user: str, host: str) -> str:
    """How a client is named: ``user@host``."""
    return f"{user}@{host}"


class TokenError(Exception):
    """A token operation that cannot be done (the message says why)."""


class ControlToken:
    """The token of one device (records named ``prefix...``).

    ``holder`` is ``user@host`` of the client holding it, "" when free.
    """

    def __init__(self, reg: "TokenRegistry", prefix: str, grace_s: float = DEFAULT_GRACE_S):
        self.registry = reg
        self.prefix = prefix
        self.grace_s = float(grace_s)
        self.holder = ""
        self._timer: Any = None           # the grace timer while the holder is away
        self.owner_scan: Any = None       # the CTL:OWNER records' I/O Intr list (devsup)
        self.history: collections.deque[str] = collections.deque(maxlen=50)

    # ---------------------------------------------------------------- queries
    def blocks(self, record_name: str, user: str, host: str) -> bool:
        """Whether the token takes write access to ``record_name`` away from ``user@host``."""
        return bool(self.holder) and self.holder != ident(user, host) and \
            record_name.startswith(self.prefix) and \
            record_name != self.prefix + FORCE_SUFFIX

    # ------------------------------------------------------------- operations
    def grab(self, who: str) -> None:
        """``who`` takes the token. Raises TokenError when another client holds it; grabbing
        a token one already holds changes nothing."""
        if not who:
            raise TokenError(f"{self.prefix}: a token is grabbed by a client (user@host)")
        if self.holder == who:
            self._note(f"{who} grabbed it again (already the holder)", changed=False)
            return
        if self.holder:
            raise TokenError(f"{self.prefix}: token held by {self.holder}")
        self.holder = who
        self._cancel_timer()
        self._note(f"grabbed by {who}")

    def release(self, who: str) -> None:
        """The holder gives the token back. Raises TokenError for anyone else."""
        if not self.holder:
            self._note(f"release by {who or '?'}: token was free", changed=False)
            return
        if who != self.holder:
            raise TokenError(f"{self.prefix}: token held by {self.holder}, not {who}")
        self._free(f"released by {who}")

    def force(self, who: str) -> None:
        """A forced release (the ACF restricts ``CTL:FORCE`` to its manager group)."""
        if not self.holder:
            self._note(f"forced release by {who or '?'}: token was free", changed=False)
            return
        self._free(f"forced release of {self.holder}'s token by {who or '?'}")

    # ------------------------------------------------------------ the holder
    def holder_left(self) -> None:
        """The holder's last circuit closed: the grace time starts."""
        if not self.holder or self._timer is not None:
            return
        loop = self.registry.loop()
        holder = self.holder
        if self.grace_s <= 0 or loop is None:
            self._free(f"{holder} disconnected")
            return
        self._note(f"{holder} disconnected; freed in {self.grace_s:g} s unless it comes back",
                   changed=False)
        self._timer = loop.call_later(self.grace_s, self._expire, holder)

    def holder_back(self) -> None:
        if self._timer is not None:
            self._cancel_timer()
            self._note(f"{self.holder} reconnected within the grace time", changed=False)

    def _expire(self, holder: str) -> None:
        self._timer = None
        if self.holder == holder and not self.registry.is_connected(holder):
            self._free(f"{holder} gone for more than {self.grace_s:g} s")

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _free(self, why: str) -> None:
        self.holder = ""
        self._cancel_timer()
        self._note(why)

    def _note(self, what: str, changed: bool = True) -> None:
        line = f"control token {self.prefix}: {what}"
        log.info("%s", line)
        self.history.append(line)
        if changed:
            self.registry.changed(self)

    def stop(self) -> None:
        self._cancel_timer()


class TokenRegistry:
    """The control tokens of one database, and which clients have circuits open."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.tokens: dict[str, ControlToken] = {}
        self._listeners: list[Callable[[ControlToken], None]] = []
        self._connected: collections.Counter[str] = collections.Counter()

    def loop(self):
        return getattr(self.db, "loop", None)

    def token(self, prefix: str, grace_s: Optional[float] = None) -> ControlToken:
        """The token of device ``prefix``, made on first use (``grace_s`` then sets it)."""
        tok = self.tokens.get(prefix)
        if tok is None:
            tok = self.tokens[prefix] = ControlToken(
                self, prefix, DEFAULT_GRACE_S if grace_s is None else grace_s)
        elif grace_s is not None:
            tok.grace_s = float(grace_s)
        return tok

    def find(self, record_name: str) -> Optional[ControlToken]:
        """The token of the device ``record_name`` belongs to (longest prefix), or None."""
        best = None
        for prefix, tok in self.tokens.items():
            if record_name.startswith(prefix) and (best is None or len(prefix) >
                                                   len(best.prefix)):
                best = tok
        return best

    def add_listener(self, fn: Callable[[ControlToken], None]) -> None:
        """``fn(token)`` after every change of a token's holder."""
        if fn not in self._listeners:
            self._listeners.append(fn)

    def changed(self, tok: ControlToken) -> None:
        for fn in list(self._listeners):
            try:
                fn(tok)
            except Exception:  # noqa: BLE001 - one listener must not stop the others
                log.exception("control token listener failed")

    # -- circuits
    def is_connected(self, who: str) -> bool:
        return self._connected[who] > 0

    def client_connected(self, user: str, host: str) -> None:
        who = ident(user, host)
        self._connected[who] += 1
        for tok in self.tokens.values():
            if tok.holder == who:
                tok.holder_back()

    def client_disconnected(self, user: str, host: str) -> None:
        who = ident(user, host)
        if self._connected[who] > 0:
            self._connected[who] -= 1
        if self._connected[who] == 0:
            del self._connected[who]
            for tok in self.tokens.values():
                if tok.holder == who:
                    tok.holder_left()

    def stop(self) -> None:
        for tok in self.tokens.values():
            tok.stop()

    def report(self) -> str:
        lines = []
        for prefix in sorted(self.tokens):
            tok = self.tokens[prefix]
            state = f"held by {tok.holder}" if tok.holder else "free"
            if tok._timer is not None:
                state += " (holder away, grace time running)"
            lines.append(f"{prefix}: {state}; grace {tok.grace_s:g} s")
        return "\n".join(lines) or "no control tokens"


def registry(db: Any) -> TokenRegistry:
    """The token registry of database ``db`` (made on first use)."""
    reg = getattr(db, "_control_tokens", None)
    if reg is None:
        reg = TokenRegistry(db)
        db._control_tokens = reg
    return reg
