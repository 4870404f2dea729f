"""pythonSoftIOC server for bench/ca.py (subprocess: ``python _ca_softioc_server.py DBFILE [P]``).

One EPICS base IOC (pythonSoftIOC 4.7, PVA off) serving two PV sets:

* ``S:`` (or the prefix P given) - the very same .db file the IOC under test loads (ao FLNK
  ai, and the calc self-CP producer), processed by EPICS base's own record layer: the
  like-for-like reference;
* ``SP:`` - the same PVs made with ``softioc.builder`` and Python callbacks, the way a
  pythonSoftIOC user writes them: ``AO`` is an aOut whose ``on_update`` (asyncio dispatcher,
  ``blocking=True`` so a put-callback waits for it) calls ``AI.set(value)`` on an aIn;
  ``N``'s ``on_update`` starts an asyncio task that does ``CNT.set(CNT+1)`` while
  ``CNT < N``, with ``await asyncio.sleep(0)`` after each set (as the caproto server does).

Port and interfaces come from the environment (EPICS_CA_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST).
"""
from __future__ import annotations

import asyncio
import sys


def main() -> None:
    dbfile = sys.argv[1]
    prefix = sys.argv[2] if len(sys.argv) > 2 else "S:"
    from softioc import asyncio_dispatcher, builder, softioc

    dispatcher = asyncio_dispatcher.AsyncioDispatcher()
    builder.SetDeviceName("SP")
    ai = builder.aIn("AI", initial_value=0.0, PREC=3)

    async def on_ao(value):
        ai.set(value)

    builder.aOut("AO", initial_value=0.0, PREC=3, on_update=on_ao, blocking=True)

    cnt = builder.aIn("CNT", initial_value=0.0, PREC=0)
    state = {"target": 0.0, "task": None}

    async def produce():
        v = cnt.get()
        while v < state["target"]:
            v += 1.0
            cnt.set(v)
            await asyncio.sleep(0)

    async def on_n(value):
        state["target"] = float(value)
        task = state["task"]
        if task is None or task.done():
            state["task"] = asyncio.get_running_loop().create_task(produce())

    builder.aOut("N", initial_value=0.0, PREC=0, on_update=on_n)
    builder.LoadDatabase()
    softioc.dbLoadDatabase(dbfile, substitutions=f"P={prefix}")
    softioc.iocInit(dispatcher, enable_pva=False)
    print("softioc bench server: running", flush=True)
    softioc.non_interactive_ioc()


if __name__ == "__main__":
    main()
