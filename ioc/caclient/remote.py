"""The channel of a CA link to another IOC: caproto's asyncio client on the IOC's own loop.

One caproto Context serves every remote link of the IOC (:class:`RemoteContext`); it searches
``EPICS_CA_ADDR_LIST``/``EPICS_CA_AUTO_ADDR_LIST`` as any CA client does, re-searches a name
whose server went away, and re-creates the channel and its monitors when one answers again.
Everything it calls back is a coroutine (caproto runs plain callbacks on executor threads, so
none is given): callbacks run on the loop, between record processing, never during it.

Per link (:class:`RemoteChannel`), as dbCa's task does per caLink: the channel at priority 20
(CA_PRIORITY_DB_LINKS), a DBR_TIME monitor of the native type (input links), a DBR_CTRL_DOUBLE
read at each connect (the link's units, precision, limits; not for a DBR_STRING channel), a
DBR_TIME_STRING monitor once an enumerated channel is read as a string; puts queued one at a
time, the newest replacing one not yet sent (dbcar's "writes prohibited"), a put-callback
completed by the server's reply or by the channel's disconnect (as libca's ECA_DISCONN).
"""
from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from typing import TYPE_CHECKING, Any, Callable

from caproto import AccessRights, ChannelType

from .types import CA_NATIVE, from_wire, to_wire

if TYPE_CHECKING:
    from ..records.calink import CaLink

log = logging.getLogger(__name__)

CA_PRIORITY_DB_LINKS = 20
_ATTRIBUTE_TIMEOUT_S = 5.0
_CLEANUP_TIMEOUT_S = 1.0

# circuits whose loss was reported (libca's exception handler prints it once per circuit)
_REPORTED: "weakref.WeakSet" = weakref.WeakSet()

_MD_KEYS = ("upper_disp_limit", "lower_disp_limit", "upper_alarm_limit", "upper_warning_limit",
            "lower_warning_limit", "lower_alarm_limit", "upper_ctrl_limit", "lower_ctrl_limit")


class RemoteContext:
    """The caproto Context of one IOC's CA links, created on first use on the running loop.

    ``spawn`` runs a coroutine as a task the context owns; ``close`` cancels them, closes the
    circuits and the search socket, and stops the per-circuit callback tasks caproto leaves
    behind for circuits that died (it stops only those of live circuits itself).
    """

    def __init__(self) -> None:
        self._ctx = None
        self._tasks: set[asyncio.Task] = set()
        self._circuits: set = set()          # live circuit managers links connected through
        self._cleanups: set[asyncio.Task] = set()

    def context(self):
        if self._ctx is None:
            from caproto.asyncio.client import Context
            self._ctx = Context()
        return self._ctx

    def spawn(self, coro) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def saw_circuit(self, cm) -> None:
        """Remember ``cm``, a circuit a link connected through."""
        if cm is not None:
            self._circuits.add(cm)

    def retire_circuit(self, cm) -> None:
        """``cm`` died: stop its callback task once it delivered what it had queued (the stop
        is queued behind those callbacks; caproto itself never stops it)."""
        if cm is None or cm not in self._circuits or not cm.dead.is_set():
            return
        self._circuits.discard(cm)
        ex = cm.user_callback_executor

        async def stop_after_queued() -> None:
            self.spawn(ex.shutdown())
        ex.submit(stop_after_queued)

    def spawn_cleanup(self, coro) -> None:
        """Run ``coro`` as a task that ``close`` lets finish (briefly) instead of cancelling."""
        self._cleanups.add(self.spawn(coro))

    async def close(self) -> None:
        cleanups = [t for t in self._cleanups if not t.done()]
        if cleanups:
            await asyncio.wait(cleanups, timeout=_CLEANUP_TIMEOUT_S)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._cleanups.clear()
        ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        try:
            await ctx.disconnect()
            await ctx.broadcaster.disconnect()
        except Exception:                      # noqa: BLE001 - shutdown goes on regardless
            log.exception("CA link client: disconnect failed")
        for cm in self._circuits:
            await cm.user_callback_executor.shutdown()
        self._circuits.clear()


class RemoteChannel:
    """A CA link's channel to ``name`` through the network (see the module docstring)."""

    def __init__(self, link: "CaLink", name: str, rc: RemoteContext):
        self.link = link
        self.name = name
        self.rc = rc
        self.pv = None
        self._subs: list[tuple[Any, int]] = []   # (subscription, callback token)
        self._conn_token: int | None = None
        self._access_token: int | None = None
        self._want_str = False
        self._closed = False
        self._put: tuple[list, ChannelType, Callable[[], None] | None] | None = None
        self._writer: asyncio.Task | None = None
        self._completions: set[asyncio.Task] = set()
        self._addr: tuple[str, int] | None = None
        self._cm = None                          # the circuit of the live connection

    # ------------------------------------------------------------- connect
    def open(self) -> None:
        self.rc.spawn(self._open())

    async def _open(self) -> None:
        (pv,) = await self.rc.context().get_pvs(self.name, priority=CA_PRIORITY_DB_LINKS)
        if self._closed:
            return
        self.pv = pv
        # caproto keeps weak references to callbacks: these bound methods live with self
        self._conn_token = pv.connection_state_callback.add_callback(self._on_conn, run=True)
        self._access_token = pv.access_rights_callback.add_callback(self._on_access)
        if self.link.in_native:
            self._subscribe("time")
        if self._want_str:
            self._subscribe(ChannelType.TIME_STRING)

    def _subscribe(self, data_type) -> None:
        sub = self.pv.subscribe(data_type=data_type)
        cb = self._on_string if data_type == ChannelType.TIME_STRING else self._on_event
        self._subs.append((sub, sub.add_callback(cb)))

    async def _on_conn(self, pv, state: str) -> None:
        if self._closed:
            return
        link = self.link
        if state != "connected":
            link.connection(False)
            for task in list(self._completions):
                task.cancel()              # their put-callbacks complete (ECA_DISCONN)
            cm, self._cm = self._cm, None
            if cm is not None and cm.dead.is_set() and cm not in _REPORTED:
                _REPORTED.add(cm)
                host, port = cm.circuit.address
                print(f'DB CA Link Exception: "Virtual circuit disconnect", context '
                      f'"{host}:{port}"', file=sys.stderr, flush=True)
            self.rc.retire_circuit(cm)
            return
        chan = pv.channel
        cm = self._cm = pv.circuit_manager
        self.rc.saw_circuit(cm)
        self._addr = tuple(cm.circuit.address) if cm is not None else None
        native = CA_NATIVE.get(ChannelType(chan.native_data_type), "DBF_STRING")
        rights = pv.access_rights or AccessRights(0)
        link.connection(True, native, chan.native_data_count,
                        bool(rights & AccessRights.READ), bool(rights & AccessRights.WRITE))
        if native != "DBF_STRING":
            self.rc.spawn(self._read_attributes(pv))

    async def _on_access(self, pv, rights) -> None:
        if not self._closed and pv.connected:
            self.link.access(bool(rights & AccessRights.READ),
                             bool(rights & AccessRights.WRITE))

    async def _read_attributes(self, pv) -> None:
        try:
            r = await pv.read(data_type=ChannelType.CTRL_DOUBLE, timeout=_ATTRIBUTE_TIMEOUT_S)
        except Exception as exc:               # noqa: BLE001 - as dbCa: reported, link goes on
            log.warning("dbCa: getAttribEventCallback %s: %s", self.name, exc)
            return
        if self._closed:
            return
        m = r.metadata
        md = {k: float(getattr(m, k)) for k in _MD_KEYS}
        md["precision"] = int(m.precision)
        md["units"] = bytes(m.units).split(b"\0", 1)[0].decode("latin-1")
        self.link.attributes(md)

    async def _on_event(self, sub, resp) -> None:
        self._deliver(resp, False)

    async def _on_string(self, sub, resp) -> None:
        self._deliver(resp, True)

    def _deliver(self, resp, as_string: bool) -> None:
        if self._closed:
            return
        link = self.link
        m = resp.metadata
        native = "DBF_STRING" if as_string else link.native
        value = from_wire(resp.data, native, 1 if as_string else link.count)
        link.update(value, int(m.status), int(m.severity),
                    (int(m.secondsSinceEpoch), int(m.nanoSeconds)), as_string)

    def want_string(self) -> None:
        if not self._want_str:
            self._want_str = True
            if self.pv is not None:
                self._subscribe(ChannelType.TIME_STRING)

    # ---------------------------------------------------------------- puts
    def put(self, value: Any, done: Callable[[], None] | None) -> bool:
        link = self.link
        wire = to_wire(value, link.native, link.count)
        if wire is None:
            return False
        if self._put is not None:
            link.n_no_write += 1              # replaced before it was sent
            _, _, old_done = self._put
            if old_done is not None:
                old_done()
        self._put = (wire[0], wire[1], done)
        if self._writer is None:
            self._writer = self.rc.spawn(self._write_loop())
        return True

    async def _write_loop(self) -> None:
        try:
            while self._put is not None and not self._closed:
                data, dtype, done = self._put
                self._put = None
                pv = self.pv
                if pv is None or not pv.connected:
                    # dbCa drops a put whose channel went before it was sent
                    if done is not None:
                        done()
                    continue
                try:
                    if done is None:
                        await pv.write(data, data_type=dtype, wait=False, notify=False)
                    else:
                        # the request goes now; its reply is awaited apart, so later puts
                        # are not held up behind a slow completion
                        sent = asyncio.Event()
                        task = self.rc.spawn(self._put_callback(pv, data, dtype, done, sent))
                        self._completions.add(task)
                        task.add_done_callback(self._completions.discard)
                        await sent.wait()
                except Exception as exc:       # noqa: BLE001 - as dbCaTask: printed, goes on
                    log.warning("dbCaTask ca_array_put %s: %s", self.name, exc)
        finally:
            self._writer = None

    async def _put_callback(self, pv, data: list, dtype: ChannelType,
                            done: Callable[[], None], sent: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        reply = loop.create_future()

        async def on_reply(response) -> None:
            if not reply.done():
                reply.set_result(response)
        try:
            await pv.write(data, data_type=dtype, wait=False, notify=True, callback=on_reply)
            sent.set()
            await reply
        except Exception as exc:               # noqa: BLE001 - completion is still due
            if not isinstance(exc, asyncio.CancelledError):
                log.warning("dbCaTask ca_array_put_callback %s: %s", self.name, exc)
        finally:
            sent.set()
            done()

    def host(self) -> str:
        """``ip:port`` of the server (the shell resolves the name, as ca_host_name shows)."""
        return f"{self._addr[0]}:{self._addr[1]}" if self._addr else "<disconnected>"

    # --------------------------------------------------------------- close
    def close(self) -> None:
        self._closed = True
        for task in list(self._completions):
            task.cancel()
        put, self._put = self._put, None
        if put is not None and put[2] is not None:
            put[2]()
        pv, self.pv = self.pv, None
        if pv is None:
            return
        if self._conn_token is not None:
            pv.connection_state_callback.remove_callback(self._conn_token)
        if self._access_token is not None:
            pv.access_rights_callback.remove_callback(self._access_token)
        subs, self._subs = self._subs, []
        try:
            self.rc.spawn_cleanup(self._unsubscribe(subs))
        except RuntimeError:               # no running loop: the context is closing anyway
            pass

    @staticmethod
    async def _unsubscribe(subs) -> None:
        for sub, token in subs:
            try:
                await sub.remove_callback(token)
            except Exception:                  # noqa: BLE001 - the circuit may be gone
                pass
