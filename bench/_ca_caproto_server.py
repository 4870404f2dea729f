"""Bare caproto server for bench/ca.py (a subprocess: ``python _ca_caproto_server.py PREFIX``).

The same PVs as the IOC's bench database, with no record layer:

* ``AO`` (double, PREC 3): its putter writes the value to ``AI`` before the put completes
  (the caproto equivalent of ``ao`` FLNK -> ``ai`` INP=ao), so a put-callback on AO returns
  once AI has been posted;
* ``AI`` (double, PREC 3, read-only);
* ``N`` / ``CNT``: the bounded flat-out producer. A put to ``N`` starts (if not running) a task
  that writes ``CNT = CNT + 1`` while ``CNT < N``, one ``await CNT.write()`` per post followed by
  ``await asyncio.sleep(0)`` so caproto's sender tasks can run between posts (the IOC's calc does
  one scanOnce per post in the same way). The put itself completes at once.

Port and interface come from the environment (EPICS_CA_SERVER_PORT, EPICS_CAS_INTF_ADDR_LIST).
No alarm limits are set.
"""
from __future__ import annotations

import asyncio
import os
import sys

from caproto.server import PVGroup, pvproperty, run


class BenchGroup(PVGroup):
    AO = pvproperty(value=0.0, precision=3, name="AO")
    AI = pvproperty(value=0.0, precision=3, read_only=True, name="AI")
    N = pvproperty(value=0.0, precision=0, name="N")
    CNT = pvproperty(value=0.0, precision=0, read_only=True, name="CNT")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._target = 0.0
        self._task: asyncio.Task | None = None

    @AO.putter
    async def AO(self, instance, value):
        await self.AI.write(value)
        return value

    @N.putter
    async def N(self, instance, value):
        self._target = float(value)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._produce())
        return value

    async def _produce(self):
        cnt = self.CNT
        while cnt.value < self._target:
            await cnt.write(cnt.value + 1.0)
            await asyncio.sleep(0)


def main() -> None:
    prefix = sys.argv[1] if len(sys.argv) > 1 else "C:"
    group = BenchGroup(prefix=prefix)
    intf = os.environ.get("EPICS_CAS_INTF_ADDR_LIST", "127.0.0.1").split() or ["127.0.0.1"]
    print(f"caproto bench server: prefix {prefix}, port "
          f"{os.environ.get('EPICS_CA_SERVER_PORT')}, interfaces {intf}", flush=True)
    try:
        run(group.pvdb, interfaces=intf, log_pv_names=False)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    import signal

    def _term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, _term)
    main()
