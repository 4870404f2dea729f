"""A put-callback (``caput -c``) to a busy (PACT) record waits and puts only when the record's
processing has finished (dbNotify.c processNotifyCommon: the restart list), so PROC reads 0
meanwhile, while a plain put (dbPutField) stores at once and sets RPRO. Compared with softIoc."""
from __future__ import annotations

import subprocess

from ..conftest import _client_env, caget, caput, epics_bin, wait_for
from ..differential import SENTINEL, write_db

DB = r'''
record(calcout, "$(P)CO") { field(CALC, "A+1") field(ODLY, "1.5") field(OUT, "$(P)S PP") }
record(longout, "$(P)S") { }
'''


def _observe(prefix: str, port: int) -> tuple:
    co = prefix + "CO"
    assert caput(co + ".A", "1", port=port).returncode == 0       # busy for ODLY
    wait_for(lambda: caget("-t", co + ".PACT", port=port).strip() == "1", 5, what="PACT")
    cb = subprocess.Popen([str(epics_bin() / "caput"), "-c", "-w", "10", co + ".PROC", "1"],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=_client_env(port))
    seen: list[tuple[str, ...]] = []     # the (PROC, PACT, RPRO) states seen, in order
    try:
        while cb.poll() is None:
            state = tuple(caget("-t", co + ".PROC", co + ".PACT", co + ".RPRO",
                                port=port).split())
            if not seen or seen[-1] != state:
                seen.append(state)
        out = cb.communicate(timeout=10)[0]
    finally:
        if cb.poll() is None:
            cb.kill()
            cb.wait()
    after = caget("-t", co + ".PROC", co + ".PACT", co + ".RPRO", port=port).split()
    return seen, cb.returncode, "New" in out, after


def test_put_callback_to_busy_record_waits_like_softioc(start_ioc, start_softioc, tmp_path):
    path = write_db(tmp_path, DB)
    got = {}
    for prefix, start in (("BASE:", start_softioc), ("OURS:", start_ioc)):
        ioc = start("-S", "-m", f"P={prefix}", "-d", str(path), ready_pv=prefix + SENTINEL)
        got[prefix] = _observe(prefix, ioc.port)
    assert got["OURS:"] == got["BASE:"], got
    # waiting with PROC 0 and no RPRO, then the put is done and processes the record again
    assert got["OURS:"][0][:2] == [("0", "1", "0"), ("1", "1", "0")], got
    assert got["OURS:"][1] == 0
