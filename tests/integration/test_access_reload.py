"""Access security re-read at run time from a PV (``db/access.db``'s READACF, iocStats's
asSubProcess record) against EPICS base's softIoc: the ACF file is rewritten, a client puts
READACF 1, and the connected clients are sent their new rights; a bad file leaves READACF in
READ/INVALID alarm and every client's rights as they were. Raw CA clients with their own user
names (tests/ca_raw.py), answers compared message for message."""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from tests import ca_raw as R
from tests.conftest import ROOT, epics_bin

pytestmark = pytest.mark.oracle

ACF_ALICE = "UAG(ops) {alice}\nASG(DEFAULT) {\n  RULE(1, READ)\n  RULE(1, WRITE) { UAG(ops) }\n}\n" \
            "ASG(ADMIN) { RULE(1, WRITE) }\n"
ACF_DAVE = ACF_ALICE.replace("{alice}", "{dave}")
ACF_BAD = "UAG(ops) {alice}\nASG(DEFAULT) {\n  RULE(1, WRITE) { UAG(nobody) }\n}\n"
DB = 'record(ao, "$(P)SET") { field(VAL, "1") }\n'


def _files(tmp_path: Path, prefix: str) -> tuple[Path, Path]:
    d = tmp_path / prefix.rstrip(":")
    d.mkdir()
    acf = d / "live.acf"
    acf.write_text(ACF_ALICE)
    (d / "t.db").write_text(DB)
    st = d / "st.cmd"
    # READACF in ADMIN: anyone may ask for a reload (the test's third client)
    st.write_text(f'asSetFilename("{acf}")\n'
                  f'dbLoadRecords("{d / "t.db"}", "P={prefix}")\n'
                  f'dbLoadRecords("{ROOT / "db" / "access.db"}", "IOC={prefix}")\n'
                  "iocInit()\n"
                  f'dbpf("{prefix}READACF.ASG", "ADMIN")\n')
    return st, acf


def _put_done(c: R.RawCircuit, sid: int, value: float) -> list:
    c.send(R.write_notify(sid, 1, 6, 1, struct.pack(">d", value)))
    return c.recv_until(lambda ms: any(m.command == R.WRITE_NOTIFY for m in ms), 10.0)


def _session(port: int, prefix: str, acf: Path) -> list:
    out: list = []
    with R.RawCircuit("127.0.0.1", port, user="alice", host_name="h1") as alice, \
            R.RawCircuit("127.0.0.1", port, user="dave", host_name="h1") as dave, \
            R.RawCircuit("127.0.0.1", port, user="op", host_name="h2") as op:
        a, d = alice.create(prefix + "SET"), dave.create(prefix + "SET")
        out.append(("alice", alice.norm(alice.last_create)))
        out.append(("dave", dave.norm(dave.last_create)))
        reload_ = op.create(prefix + "READACF")
        st = op.create(prefix + "READACF")
        for step, text in (("to dave", ACF_DAVE), ("bad file", ACF_BAD), ("back", ACF_ALICE)):
            acf.write_text(text)
            done = _put_done(op, reload_.sid, 1.0)
            out.append((step, "put", sorted(op.norm(done), key=repr)))
            # the rights messages came before the reload completed: a barrier collects them
            out.append((step, "alice", sorted(alice.norm(alice.barrier()[0]), key=repr)))
            out.append((step, "dave", sorted(dave.norm(dave.barrier()[0]), key=repr)))
            sts, ok = op.barrier(prefix=R.read_notify(st.sid, 2, 13, 1))    # DBR_STS_DOUBLE
            assert ok, (step, out, sts)
            out.append((step, "READACF", op.norm(sts)))
            for who, c, ch in (("alice", alice, a), ("dave", dave, d)):
                out.append((step, who, "put", sorted(c.norm(_put_done(c, ch.sid, 5.0)),
                                                     key=repr)))
    return out


def test_reload_from_a_pv_as_softioc(start_ioc, start_softioc, tmp_path):
    if not (epics_bin() / "softIoc").exists():
        pytest.skip("EPICS base softIoc not available")
    st_b, acf_b = _files(tmp_path, "BASE:")
    st_o, acf_o = _files(tmp_path, "OURS:")
    base = start_softioc(str(st_b), ready_pv="BASE:READACF", stdin=subprocess.PIPE)
    ours = start_ioc(str(st_o), ready_pv="OURS:READACF", stdin=subprocess.PIPE)
    want = _session(base.port, "BASE:", acf_b)
    got = _session(ours.port, "OURS:", acf_o)
    assert got == want
    # not vacuous: rights moved from alice to dave and back; the bad file raised the alarm
    flat = {(s[0], s[1]): s[2:] for s in got if len(s) == 3}
    assert "ACCESS_RIGHTS" in repr(flat[("to dave", "alice")])
    assert "ACCESS_RIGHTS" not in repr(flat[("bad file", "dave")])
    assert "ACCESS_RIGHTS" in repr(flat[("back", "dave")])
    alarm = {s[0]: s[2] for s in got if s[1] == "READACF"}
    # DBR_STS_DOUBLE: status READ (1), severity INVALID (3) after the bad file only
    assert alarm["bad file"][0][6][:4] == struct.pack(">hh", 1, 3), alarm
    assert alarm["back"][0][6][:4] == struct.pack(">hh", 0, 0), alarm
