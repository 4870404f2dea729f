"""The IOC process: database, CA server thread, hooks, and clean shutdown.

Threads: the main thread runs the shell (st.cmd, then the prompt or a wait); ``iocInit`` starts
the "cas" thread, which owns the asyncio loop: record processing, scans, and the CA server
(``ioc.ca``).
Other subsystems (serial ports, timing) register ``at_init``/``at_exit`` hooks and run their own
threads; ``stop()`` runs the exit hooks in reverse order, stops the loop and joins its thread.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
from typing import Callable

from timing import general_time

from .database.db import Database
from .ca.server import CaServer

log = logging.getLogger(__name__)


class IocStartError(Exception):
    pass


class Ioc:
    def __init__(self):
        self.db = Database(time_source=general_time())
        self.server: CaServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self.exit_requested = threading.Event()
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._init_hooks: list[Callable[["Ioc"], None]] = []
        self._exit_hooks: list[Callable[[], None]] = []
        self.interfaces: list[str] | None = None
        self.port: int | None = None
        self.failed = False            # the CA server died after start-up

    # ------------------------------------------------------------------ hooks
    def at_init(self, fn: Callable[["Ioc"], None]) -> None:
        """Run ``fn(ioc)`` after records are initialised, before the server starts."""
        self._init_hooks.append(fn)

    def at_exit(self, fn: Callable[[], None]) -> None:
        """Run ``fn()`` at shutdown (reverse order of registration)."""
        self._exit_hooks.append(fn)

    @property
    def initialized(self) -> bool:
        return self.db.initialized

    # ---------------------------------------------------------------- iocInit
    def ioc_init(self, timeout_s: float = 15.0) -> None:
        if self.db.initialized:
            raise IocStartError("iocInit: already initialised")
        self.db.ioc_init()
        for hook in self._init_hooks:
            hook(self)
        self.thread = threading.Thread(target=self._run_loop, name="cas", daemon=True)
        self.db.loop_thread = self.thread
        self.thread.start()
        if not self._ready.wait(timeout_s):
            raise IocStartError("iocInit: CA server did not start")
        if self._start_error is not None:
            raise IocStartError(f"iocInit: CA server failed: {self._start_error}")
        prefixes = sorted({name.split(":", 1)[0] + ":" for name in self.db.records if ":" in name})
        log.debug("CA server on port %s", self.port)
        print(f"iocRun: All initialization complete; {len(self.db.records)} records, "
              f"PV prefixes: {', '.join(prefixes) or '(none)'}", flush=True)

    def _run_loop(self) -> None:
        loop = asyncio.new_event_loop()
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._start_error = exc
            log.exception("CA server stopped")
            if self._ready.is_set():
                # The server died after start-up: an IOC that serves nothing must not linger.
                self.failed = True
                self.request_exit()
        finally:
            self._ready.set()
            try:
                # Cancel whatever is left running, so no coroutine outlives the loop.
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        await self.db.start()
        self.server = CaServer(self.db, self.interfaces, self.port)
        await self.server.start()           # raises the bind error
        self.port = self.server.port
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await self.db.stop()
            await self.server.stop()
            await self.db.close()

    # --------------------------------------------------------------- shutdown
    def request_exit(self) -> None:
        """Ask the main thread to shut the IOC down (thread-safe; e.g. from the exit PV)."""
        self.exit_requested.set()
        import signal
        os.kill(os.getpid(), signal.SIGTERM)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop everything this IOC started: exit hooks, scans, CA server, loop thread."""
        for hook in reversed(self._exit_hooks):
            try:
                hook()
            except Exception:
                log.exception("exit hook %r failed", hook)
        self._exit_hooks.clear()
        loop, thread = self.loop, self.thread
        if loop is not None and thread is not None and thread.is_alive():
            if self._stop_event is not None:
                loop.call_soon_threadsafe(self._stop_event.set)
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("CA server thread did not stop within %.1f s", timeout_s)
