"""Every database and template we ship is real EPICS: it loads into EPICS base's softIoc without an error."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from ..conftest import ROOT, epics_bin, free_port

pytestmark = pytest.mark.oracle

# Macros that satisfy every shipped db (each file documents the ones it needs).
MACROS = "P=T:,R=X:,IOC=T:,PORT=p1,CH=P6V,VMIN=0,VMAX=6.18,IMAX=5.15"


def _softioc_load(db: str) -> subprocess.CompletedProcess:
    base_dbd = epics_bin().parent.parent / "dbd" / "softIoc.dbd"
    script = (f'dbLoadDatabase("{base_dbd}")\n'
              "softIoc_registerRecordDeviceDriver(pdbbase)\n"
              f'dbLoadDatabase("{ROOT / "db" / "psuTiming.dbd"}")\n'
              f'dbLoadRecords("{db}", "{MACROS}")\n'
              "dbl\nexit\n")
    env = dict(os.environ, EPICS_CA_SERVER_PORT=str(free_port()))
    return subprocess.run([str(epics_bin() / "softIoc")], input=script, capture_output=True,
                          text=True, env=env, timeout=30)


SHIPPED = sorted([*(ROOT / "db").glob("*.db"), *(ROOT / "db").glob("*.template")])


@pytest.mark.parametrize("db", [str(p.relative_to(ROOT)) for p in SHIPPED])
def test_shipped_db_loads_in_softioc(db):
    r = _softioc_load(str(ROOT / db))
    text = r.stdout + r.stderr
    errors = [ln for ln in text.splitlines()
              if not ln.startswith("T:")
              and re.search(r"error|Error|ERROR|not found|Can.t|undefined|Illegal", ln)]
    assert not errors, f"{db} rejected by EPICS base softIoc:\n" + "\n".join(errors)
    assert "T:" in r.stdout, f"{db}: softIoc listed no records:\n{text}"


def test_our_dbd_declares_every_custom_dtyp():
    """DTYPs used in db/*.db and db/*.template but unknown to softIoc.dbd must be in db/psuTiming.dbd, and every
    device() line there must be provided by our device support registry."""
    import ioc.main  # noqa: F401  (imports every package that registers device support)
    from ioc.devsup.registry import all_devices
    ours = open(ROOT / "db" / "psuTiming.dbd").read()
    declared = set(re.findall(r'device\((\w+),\s*\w+,\s*\w+,\s*"([^"]+)"\)', ours))
    registered = {(rt, d) for rt, devs in all_devices().items() for d in devs}
    assert declared <= registered, declared - registered
    base = open(epics_bin().parent.parent / "dbd" / "softIoc.dbd").read()
    base_dtyps = set(re.findall(r'device\((\w+),\s*\w+,\s*\w+,\s*"([^"]+)"\)', base))
    for db in SHIPPED:
        text = open(db).read()
        for rtype, body in re.findall(r'record\((\w+),\s*"[^"]*"\)\s*\{(.*?)\n\}', text, re.S):
            m = re.search(r'field\(DTYP,\s*"([^"]+)"\)', body)
            if m and (rtype, m.group(1)) not in base_dtyps:
                assert (rtype, m.group(1)) in declared, f"{db.name}: {rtype} DTYP {m.group(1)!r}"
