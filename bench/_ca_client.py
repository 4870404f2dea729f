"""Monitor-rate client for bench/ca.py (one subprocess per client, fresh pyepics each).

    python _ca_client.py PV TARGET DEADLINE_S

Subscribes to PV (DBR_DOUBLE, DBE_VALUE|DBE_ALARM), waits for the initial update, prints
``READY``, then counts every further update until one carries TARGET, or the bench writes
``stop`` to stdin (or closes it), or DEADLINE_S passes. Prints one JSON line:
``{"n": updates, "first_t":, "last_t": time.monotonic() of the first/last update, "last_v":,
"out_of_order": updates not greater than the one before, "init_v":}``. CA settings come from
the environment the bench sets (EPICS_CA_ADDR_LIST, EPICS_CA_REPEATER_PORT, ...).
time.monotonic() is CLOCK_MONOTONIC, shared by all processes on the machine, so the bench
can compare it with its own trigger time.
"""
from __future__ import annotations

import json
import sys
import threading
import time


def main() -> int:
    pv = sys.argv[1]
    target, deadline_s = float(sys.argv[2]), float(sys.argv[3])
    t_end = time.monotonic() + deadline_s
    from epics import ca

    out: dict = {"n": 0, "first_t": None, "last_t": None, "last_v": None, "out_of_order": 0,
                 "init_v": None}
    got_init = threading.Event()
    done = threading.Event()

    def on_update(value=None, **_kw):
        t = time.monotonic()
        if not got_init.is_set():
            out["init_v"] = value
            got_init.set()
            return
        if out["first_t"] is None:
            out["first_t"] = t
        prev = out["last_v"]
        if prev is not None and not value > prev:
            out["out_of_order"] += 1
        out["n"] += 1
        out["last_t"] = t
        out["last_v"] = value
        if value >= target:
            done.set()

    chid = ca.create_channel(pv, connect=False, auto_cb=False)
    if not ca.connect_channel(chid, timeout=min(10.0, deadline_s)):
        print(json.dumps({"error": f"{pv}: not connected"}), flush=True)
        return 1
    sub = ca.create_subscription(chid, callback=on_update)  # noqa: F841 (keep the refs alive)
    if not got_init.wait(min(10.0, deadline_s)):
        print(json.dumps({"error": f"{pv}: no initial monitor update"}), flush=True)
        return 1
    stop = threading.Event()

    def watch_stdin():
        for line in sys.stdin:
            if line.strip() == "stop":
                break
        stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("READY", flush=True)
    while not done.wait(0.02):
        if stop.is_set() or time.monotonic() > t_end:
            break
    out["reached_target"] = done.is_set()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
