"""Python subroutines for the sub/aSub integration tests (registered by sub_demo.cmd)."""
from __future__ import annotations

import numpy as np

from ioc.records.sub import subroutine

INIT_CALLS: list[str] = []


def add(rec) -> int:
    """sub: VAL = A + B * C."""
    rec.f["VAL"] = rec.f["A"] + rec.f["B"] * rec.f["C"]
    return 0


def fail(rec) -> int:
    """sub/aSub: a failure status (SOFT alarm of severity BRSV)."""
    rec.f["VAL"] = 99.0 if rec.rtype == "sub" else rec.f["VAL"]
    return -1


def boom(rec) -> int:
    """Raises: the record goes SOFT/INVALID and the IOC keeps running."""
    raise RuntimeError("boom from a Python subroutine")


def init_mark(rec) -> None:
    """INAM: runs once at iocInit; D = 7 shows it ran."""
    INIT_CALLS.append(rec.name)
    if rec.rtype == "sub":
        rec.f["D"] = 7.0


@subroutine("asubScale")
def asub_scale(rec) -> int:
    """aSub: VALA = A[:NEA] * B[0]; VALB = sum of A[:NEA]."""
    n = rec.f["NEA"]
    a = rec.inputs["A"][:n]
    rec.set_output("VALA", a * rec.inputs["B"][0])
    rec.set_output("VALB", [np.sum(a)])
    return 0


def slow(rec) -> int:
    """sub, asynchronous: the first call starts the work and returns 1 with PACT set; the
    completion (0.3 s later, from another thread) calls it again to set VAL = A + 1."""
    import threading
    if not rec.f["PACT"]:
        rec.f["PACT"] = 1
        threading.Timer(0.3, rec.complete_async).start()
        return 1
    rec.f["VAL"] = rec.f["A"] + 1
    return 0
