"""Access security at run time: the configuration in force, its clients and its inputs.

One :class:`AccessSecurity` per database (``db.access``), as base's asDbLib/asCa:

* ``asSetFilename``/``asSetSubstitutions``/``-a`` name the file; :meth:`AccessSecurity.start`
  (iocInit) loads it and a bad file stops the start (:class:`AcfLoadError`, ``file:line``);
  :meth:`AccessSecurity.reload` (``asInit`` at run time, the reload PV) keeps the rules in
  force when the new file is bad and says why.
* A client (:class:`AsClient`) is one CA channel: the record's ASG (DEFAULT when the record
  names no group that exists), the field's access level (dbd ``asl``), the user and host.
  Its rights are computed when it is made and again whenever they may have changed: a
  reload, a CALC input update, a change of the record's ASG, the control token; the
  client's callback runs only when they did change (rsrv then sends CA_PROTO_ACCESS_RIGHTS).
* The CALC inputs INPA..INPL are CA links of the database's link client (asCa): a record
  of this IOC in-process, any other PV over the network. An input starts bad; an INVALID
  value or a disconnect makes it bad (see :mod:`ioc.access.engine`).
* Without a file, access security is off: every client may read and write (the control
  token still applies).

All methods run on the IOC loop except :meth:`set_filename`/:meth:`set_substitutions`
(shell, before iocInit) and :meth:`reload`, which hands itself to the loop when it runs.
"""
from __future__ import annotations

import itertools
import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

from ..records.constants import Sevr
from ..records.links import as_float
from .acf import AccessConfig, AcfResult, Asg, AsgInput, ascii_lower, load_acf_file
from .engine import Access, compute_rights, set_input, set_input_disconnected

if TYPE_CHECKING:
    from ..records.base import Record

__all__ = ["AccessSecurity", "AsClient", "AcfLoadError", "FULL_ACCESS"]

log = logging.getLogger(__name__)

from . import token as _token

FULL_ACCESS = Access(2)

#: iocsh variable asCheckClientIP: match HAGs by the client's address, not the name it sends
CHECK_CLIENT_IP = 0


def _field_asl(record: "Record", field: str) -> int:
    """asDbGetAsl: the field's dbd ``asl()`` level (ASL1 when the field is not in the dbd)."""
    try:
        return record.field_spec(field).asl
    except (KeyError, AttributeError):
        return 1


class AcfLoadError(Exception):
    """The access security file cannot be used; the message names the file and line."""


class AsClient:
    """One channel's access (asAddClient): see the module docstring.

    ``access`` is kept current; ``callback(client)`` runs on the loop when it changes.
    """

    __slots__ = ("record", "asl", "user", "host", "access", "callback", "owner")

    def __init__(self, record: "Record", asl: int, user: str, host: str,
                 callback: Optional[Callable[["AsClient"], None]] = None, owner: Any = None):
        self.record = record
        self.asl = asl
        self.user = user
        self.host = ascii_lower(host)
        self.access: Access = FULL_ACCESS
        self.callback = callback
        self.owner = owner          # what the client stands for (the CA channel)

    @property
    def can_read(self) -> bool:
        return self.access.level >= 1

    @property
    def can_write(self) -> bool:
        return self.access.level >= 2

    @property
    def trapwrite(self) -> bool:
        return self.access.trapwrite


class _AsInput:
    """One ASG input as a CA link of the link client (asCa's CAPVT): the link client calls
    ``connection``/``access``/``attributes``/``update`` on the loop."""

    in_native = True

    def __init__(self, owner: "AccessSecurity", asg: Asg, inp: AsgInput,
                 local: "Record | None"):
        self.owner, self.asg, self.inp, self.local = owner, asg, inp, local
        self.native, self.count, self.n_no_write = "", 0, 0
        self.channel = None
        self.connected = False
        self.dead = False

    def connection(self, up: bool, native: str = "", count: int = 0,
                   read: bool = False, write: bool = False) -> None:
        self.native, self.count = native, count
        self.connected = up
        if not up and not self.dead:
            set_input_disconnected(self.asg, self.inp.index)
            self.owner.recompute(self.asg)

    def access(self, read: bool, write: bool) -> None:
        if not read and not self.dead:
            set_input_disconnected(self.asg, self.inp.index)
            self.owner.recompute(self.asg)

    def attributes(self, md: dict) -> None:
        pass

    def uninstall(self) -> None:
        """The link client's shutdown (dbCaShutdown): drop the channel."""
        self.dead = True
        ch, self.channel = self.channel, None
        if ch is not None:
            self.owner.db.ca_links.remove(self, ch)

    def update(self, value: Any, stat: int, sevr: int, stamp: tuple[int, int],
               is_string: bool = False) -> None:
        if self.dead:
            return
        if isinstance(value, (list, tuple)):
            value = value[0] if value else 0
        try:
            number = float(as_float(value))
        except (TypeError, ValueError):
            number = 0.0
        set_input(self.asg, self.inp.index, number, invalid=int(sevr) == int(Sevr.INVALID))
        self.owner.recompute(self.asg)


class AccessSecurity:
    """The access security of one database (see the module docstring)."""

    def __init__(self, db) -> None:
        self.db = db
        self.filename: Optional[str] = None
        self.substitutions: Optional[str] = None
        self.config: Optional[AccessConfig] = None
        #: the clients in the order they were added (asAddClient appends to the member's list)
        self.clients: dict[AsClient, int] = {}
        self._client_seq = itertools.count()
        #: each record's place in its ASG's member list (asAddMember appends; asChangeGroup
        #: moves a record to the end of its new group): callbacks and reports go in that order
        self._member_seq: dict["Record", int] = {}
        self._member_next = itertools.count()
        self._inputs: list[_AsInput] = []
        self._started = False
        self._token_listener_added = False
        self.messages: list[str] = []       # what the last load said
        #: the control tokens of this database's devices (ioc.access.token)
        self.tokens = _token.registry(db)

    # ------------------------------------------------------------ configuration
    @property
    def check_client_ip(self) -> bool:
        """asCheckClientIP (an iocsh variable, as base's global)."""
        return bool(CHECK_CLIENT_IP)

    @property
    def active(self) -> bool:
        """asActive: a configuration is in force."""
        return self.config is not None

    def set_filename(self, path: Optional[str]) -> None:
        """asSetFilename: the file iocInit (and asInit) load; None or "" turns it off."""
        self.filename = path or None

    def set_substitutions(self, subs: Optional[str]) -> None:
        """asSetSubstitutions: macros for the file (``"A=1,B=2"``). An empty string is kept,
        as base keeps it: the file is then read through macro expansion (``$(X)`` undefined
        warnings), while None reads it as it is."""
        self.substitutions = subs

    def _load(self) -> AcfResult:
        return load_acf_file(self.filename, self.substitutions,
                             check_client_ip=self.check_client_ip)

    def _describe(self, result: AcfResult) -> str:
        lines = [m.replace("\x1b[31;1m", "").replace("\x1b[0m", "") for m in result.messages]
        where = self.filename or "?"
        return "; ".join(f"{where}: {m}" if not m.startswith(where) else m for m in lines) \
            or f"{where}: access security file failed"

    def start(self) -> None:
        """iocInit (asInit in iocBuild): load the file; raise AcfLoadError when it is bad."""
        if not self._token_listener_added:
            self.tokens.add_listener(self._token_changed)
            self._token_listener_added = True
        if self.filename is None:
            return
        result = self._load()
        self.messages = list(result.messages)
        if not result.ok:
            raise AcfLoadError(f"access security: {self._describe(result)}")
        for m in result.messages:       # warnings of a good file (duplicated members)
            log.warning("%s: %s", self.filename, m)
        self._install(result.config)

    def reload(self) -> tuple[bool, str]:
        """asInit at run time: re-read the file; a bad one keeps the rules in force.

        Returns (loaded, what happened). Safe from any thread: the new rules are
        installed on the loop (it waits for that, up to 5 s)."""
        if self.filename is None:
            return False, "asInit: no access security file (asSetFilename) given"
        result = self._load()
        self.messages = list(result.messages)
        if not result.ok:
            why = self._describe(result)
            log.error("asInit: %s; the rules in force are kept", why)
            return False, f"asInit failed: {why}; the rules in force are kept"
        done = threading.Event()

        def install() -> None:
            try:
                self._install(result.config)
            finally:
                done.set()

        loop = getattr(self.db, "loop", None)
        on_loop = loop is None or not loop.is_running() or \
            threading.current_thread() is getattr(self.db, "loop_thread", None)
        if on_loop:
            install()
        else:
            self.db.call_soon_threadsafe(install)
            done.wait(5.0)
        log.info("asInit: %s loaded", self.filename)
        return True, f"asInit: {self.filename} loaded"

    def _install(self, config: Optional[AccessConfig]) -> None:
        """Put ``config`` in force: new inputs, every client's rights recomputed."""
        # the old walk order, taken under the old rules: the members move in that order
        old: Optional[dict] = None
        if self._started and self._member_seq:
            old = {r: self._member_key(r) for r in list(self._member_seq)}
            old_clients = self._ordered(self.clients)
        for inp in self._inputs:
            inp.uninstall()
        self._inputs = []
        self.config = config
        if config is not None:
            for asg in config.asgs:
                for inp in asg.inputs:
                    asg.inp_bad |= 1 << inp.index           # asCaStart: bad until a value
        if not self._member_seq:
            self._add_members()
        elif old is not None:
            # asInitialize moves each old group's members, in order, to their new groups
            for r in sorted(self._member_seq, key=lambda r: old.get(r, (0, 0))):
                self._member_seq[r] = next(self._member_next)
        self._started = True
        self._update(self._ordered(self.clients) if old is None else old_clients)
        if config is not None:          # asCaStart, after the rules are in force
            for asg in config.asgs:
                self._connect_inputs(asg)

    def _add_members(self) -> None:
        """asDbAddRecords: every record joins its group, record types in name order, the
        records of a type in load order (as dbFirstRecordType/dbFirstRecord walk them)."""
        recs = list(self.db.records.values())
        for rtype in sorted({r.rtype for r in recs}):
            for r in recs:
                if r.rtype == rtype and r not in self._member_seq:
                    self._member_seq[r] = next(self._member_next)

    def _asg_of(self, record: "Record") -> Optional[Asg]:
        """The group the record's ASG field selects (DEFAULT for an unknown name)."""
        config = self.config
        return None if config is None else config.find_asg(str(record.f.get("ASG", "") or ""))

    def _group_index(self, record: "Record") -> int:
        config = self.config
        if config is None:
            return 0
        try:
            return config.asgs.index(self._asg_of(record))
        except ValueError:
            return 0

    def _member_key(self, record: "Record") -> tuple[int, int]:
        seq = self._member_seq.get(record)
        if seq is None:                 # a record this list has not met yet: it joins at the end
            seq = self._member_seq[record] = next(self._member_next)
        return self._group_index(record), seq

    def _ordered(self, clients: Iterable[AsClient]) -> list[AsClient]:
        """``clients`` in base's walk order: groups in file order, each group's members,
        each member's clients in the order they were added."""
        chosen = list(clients)
        keys = {c.record: self._member_key(c.record) for c in chosen}
        return sorted(chosen, key=lambda c: (keys[c.record], self.clients.get(c, 0)))

    def member_records(self, asg: Asg) -> list["Record"]:
        """The records in ``asg``'s member list, in base's order."""
        config = self.config
        if config is None:
            return []
        if not self._member_seq:
            self._add_members()
        recs = [r for r in self.db.records.values() if self._asg_of(r) is asg]
        return sorted(recs, key=lambda r: self._member_key(r)[1])

    def _connect_inputs(self, asg: Asg) -> None:
        client = getattr(self.db, "ca_links", None)
        for inp in asg.inputs:
            local = self.db.lookup(inp.pv.partition(".")[0])
            link = _AsInput(self, asg, inp, local)
            self._inputs.append(link)
            if client is not None:
                link.channel = client.add(link, inp.pv)

    # ----------------------------------------------------------------- clients
    def add_client(self, record: "Record", field: str, user: str, host: str,
                   callback: Optional[Callable[[AsClient], None]] = None,
                   owner: Any = None) -> AsClient:
        """asAddClient for a channel on ``record.field``; rights computed now."""
        c = AsClient(record, _field_asl(record, field), user, host, callback, owner)
        c.access = self.rights(c)
        self.clients[c] = next(self._client_seq)
        return c

    def remove_client(self, client: AsClient) -> None:
        """asRemoveClient."""
        self.clients.pop(client, None)

    def rights(self, c: AsClient) -> Access:
        """What ``c`` may do now: the ACF's rules, then the control token."""
        access = self.config_rights(c)
        if access.level >= 2 and self.tokens.tokens:
            tok = self.tokens.find(c.record.name)
            if tok is not None and tok.blocks(c.record.name, c.user, c.host):
                access = Access(1, access.trapwrite)
        return access

    def _update(self, clients: Iterable[AsClient]) -> None:
        for c in list(clients):
            new = self.rights(c)
            if new != c.access:
                changed = new.level != c.access.level
                c.access = new      # a TRAPWRITE change alone is kept without a callback (asLib)
                if changed and c.callback is not None:
                    try:
                        c.callback(c)
                    except Exception:  # one client's failure must not stop the others
                        log.exception("access rights callback failed")

    def recompute_all(self) -> None:
        """asComputeAllAsg: every client, groups in file order, members in list order."""
        self._update(self._ordered(self.clients))

    def recompute(self, asg: Asg) -> None:
        """An input of ``asg`` changed: its clients (and those falling back to it)."""
        config = self.config
        if config is None:
            return
        self._update(self._ordered([c for c in self.clients if self._asg_of(c.record) is asg]))

    def record_changed(self, record: "Record") -> None:
        """asChangeGroup: the record's ASG field was written; it joins the end of its new
        group's member list."""
        self._member_seq[record] = next(self._member_next)
        self._update(c for c in self.clients if c.record is record)

    def refusal(self, c: Optional[AsClient]) -> str:
        """Why ``c`` may not write (for the put log): the control token or the rules."""
        if c is None:
            return "no write access"
        if self.config_rights(c).level >= 2:
            tok = self.tokens.find(c.record.name)
            if tok is not None and tok.blocks(c.record.name, c.user, c.host):
                return f"control token {tok.prefix} held by {tok.holder or '?'}"
        return "no write access"

    def config_rights(self, c: AsClient) -> Access:
        """What the rules alone (no token) give ``c``."""
        config = self.config
        if config is None:
            return FULL_ACCESS
        return compute_rights(self._asg_of(c.record),
                              c.asl, c.user, c.host)

    # ------------------------------------------------------- client circuits
    def circuit_opened(self, user: str, host: str) -> None:
        """A CA client named ``user`` at ``host`` is connected (its first channel)."""
        self.tokens.client_connected(user, ascii_lower(host))

    def circuit_closed(self, user: str, host: str) -> None:
        """A CA client's circuit closed (the token's grace time may start)."""
        self.tokens.client_disconnected(user, ascii_lower(host))

    def _token_changed(self, tok) -> None:
        prefix = tok.prefix
        self._update(c for c in self.clients if c.record.name.startswith(prefix))

    # ------------------------------------------------------------------ queries
    def stop(self) -> None:
        """IOC exit: inputs closed (the link client closes their channels)."""
        for inp in self._inputs:
            inp.dead = True
        self._inputs = []
        self.tokens.stop()

