"""The shipped access security (iocBoot/iocsim/psu.acf) and the control token, end to end:
``psu-timing-ioc`` with the simulator on a real pty, CA clients whose user and host names the
test sets (raw CA, tests/ca_raw.py), and the simulator's own count of the settings that
reached it (so "refused" means nothing was sent)."""
from __future__ import annotations

import socket
import struct
import subprocess
import time

import pytest

from tests import ca_raw as R
from ..conftest import ROOT, run_ioc_to_exit, wait_for

LOCAL = socket.gethostname()
FAR = "far.example.org"
ECA_NORMAL, ECA_NOWTACCESS = 1, 376
GRACE_S = 1.0


@pytest.fixture
def ioc(start_ioc, sim, tmp_path):
    st = tmp_path / "st.cmd"
    st.write_text(f'cd "{ROOT}"\n'
                  f'E3631AConfigure("psu1", "{sim.link}", "timeout_ms=300")\n'
                  'dbLoadRecords("db/e3631a.db", "P=PSU1:,PORT=psu1")\n'
                  f'dbLoadRecords("db/ctlToken.template", "P=PSU1:,GRACE={GRACE_S}")\n'
                  'dbLoadRecords("db/putlog.template", "IOC=T:,N=20")\n'
                  f'caPutLogFile("{tmp_path}/put.log")\n'
                  f'asSetSubstitutions("HOST={LOCAL},MANAGERS=carol")\n'
                  'asSetFilename("iocBoot/iocsim/psu.acf")\n'
                  "iocInit\n")
    p = start_ioc(str(st), ready_pv="PSU1:CTL:OWNER", stdin=subprocess.PIPE)
    p.putlog_path = tmp_path / "put.log"
    return p


def writes(sim) -> int:
    return sim.state()["counters"]["setting_writes"]["P6V"]


class Client:
    """One CA client (user@host) with its channels by PV name."""

    def __init__(self, port: int, user: str, host: str):
        self.c = R.RawCircuit("127.0.0.1", port, user=user, host_name=host)
        self.chans: dict[str, R.Created] = {}
        self.rights: dict[str, int] = {}

    def chan(self, pv: str) -> R.Created:
        ch = self.chans.get(pv)
        if ch is None:
            ch = self.c.create(pv)
            assert isinstance(ch, R.Created), (pv, ch)
            self.chans[pv] = ch
            self._note(self.c.last_create)
        return ch

    def _note(self, msgs) -> None:
        by_cid = {ch.cid: pv for pv, ch in self.chans.items()}
        for m in msgs:
            if m.command == R.ACCESS_RIGHTS and m.p1 in by_cid:
                self.rights[by_cid[m.p1]] = m.p2

    def put(self, pv: str, value) -> int:
        """Put-callback; the ECA status it completes with."""
        ch = self.chan(pv)
        if isinstance(value, str):
            dtype, payload = 0, R.pad8(value.encode() + b"\0")
        elif isinstance(value, int):
            dtype, payload = 5, R.pad8(struct.pack(">i", value))
        else:
            dtype, payload = 6, struct.pack(">d", value)
        self.c.send(R.write_notify(ch.sid, 7, dtype, 1, payload))
        msgs = self.c.recv_until(lambda ms: any(m.command == R.WRITE_NOTIFY for m in ms), 10.0)
        self._note(msgs)
        return [m.p1 for m in msgs if m.command == R.WRITE_NOTIFY][0]

    def get(self, pv: str) -> str:
        ch = self.chan(pv)
        msgs, ok = self.c.barrier(prefix=R.read_notify(ch.sid, 8, 0, 1))
        self._note(msgs)
        (m,) = [m for m in msgs if m.command == R.READ_NOTIFY]
        return m.payload.split(b"\0", 1)[0].decode()

    def sync(self) -> None:
        """Take in what the server sent (access rights changes)."""
        self._note(self.c.barrier()[0])

    def close(self) -> None:
        self.c.close()


def test_local_clients_set_remote_clients_read(ioc, sim):
    far = Client(ioc.port, "dave", FAR)
    near = Client(ioc.port, "alice", LOCAL)
    far.chan("PSU1:P6V:VOLT")
    near.chan("PSU1:P6V:VOLT")
    assert far.rights["PSU1:P6V:VOLT"] == 1 and near.rights["PSU1:P6V:VOLT"] == 3
    before = writes(sim)
    assert far.put("PSU1:P6V:VOLT", 1.5) == ECA_NOWTACCESS
    assert writes(sim) == before                    # nothing reached the supply
    assert float(far.get("PSU1:P6V:VOLT")) != 1.5   # reads go on
    assert near.put("PSU1:P6V:VOLT", 2.0) == ECA_NORMAL
    assert writes(sim) == before + 1
    far.close()
    near.close()


def test_token_holder_alone_may_set_the_device(ioc, sim):
    alice = Client(ioc.port, "alice", LOCAL)
    bob = Client(ioc.port, "bob", LOCAL)
    dave = Client(ioc.port, "dave", FAR)
    carol = Client(ioc.port, "carol", FAR)          # a manager, on another host
    bob.chan("PSU1:P6V:VOLT")
    assert bob.rights["PSU1:P6V:VOLT"] == 3
    assert alice.get("PSU1:CTL:OWNER") == ""

    assert alice.put("PSU1:CTL:GRAB", 1) == ECA_NORMAL
    me = f"alice@{LOCAL.lower()}"
    assert alice.get("PSU1:CTL:OWNER") == me
    wait_for(lambda: (bob.sync(), bob.rights["PSU1:P6V:VOLT"])[1] == 1, 5,
             what="bob is told he lost write access")
    before = writes(sim)
    assert bob.put("PSU1:P6V:VOLT", 4.0) == ECA_NOWTACCESS
    assert writes(sim) == before
    assert float(bob.get("PSU1:P6V:VOLT")) != 4.0   # bob still reads
    # a token grabbed twice: by another client refused, by its holder a no-op
    assert bob.put("PSU1:CTL:GRAB", 1) == ECA_NOWTACCESS
    assert bob.put("PSU1:CTL:RELEASE", 1) == ECA_NOWTACCESS
    assert alice.put("PSU1:CTL:GRAB", 1) == ECA_NORMAL
    assert alice.get("PSU1:CTL:OWNER") == me
    assert alice.put("PSU1:P6V:VOLT", 3.0) == ECA_NORMAL
    assert writes(sim) == before + 1
    # FORCE: a non-manager is refused, a manager (even on another host) frees it
    assert dave.put("PSU1:CTL:FORCE", 1) == ECA_NOWTACCESS
    assert alice.get("PSU1:CTL:OWNER") == me
    assert carol.put("PSU1:CTL:FORCE", 1) == ECA_NORMAL
    assert alice.get("PSU1:CTL:OWNER") == ""
    wait_for(lambda: (bob.sync(), bob.rights["PSU1:P6V:VOLT"])[1] == 3, 5,
             what="bob gets write access back")
    assert bob.put("PSU1:P6V:VOLT", 4.0) == ECA_NORMAL
    # releasing by the holder
    assert bob.put("PSU1:CTL:GRAB", 1) == ECA_NORMAL
    assert bob.get("PSU1:CTL:OWNER") == f"bob@{LOCAL.lower()}"
    assert bob.put("PSU1:CTL:RELEASE", 1) == ECA_NORMAL
    assert bob.get("PSU1:CTL:OWNER") == ""
    for c in (alice, bob, dave, carol):
        c.close()
    log = ioc.output()
    assert f"grabbed by {me}" in log and "forced release of" in log and "released by bob" in log
    # the put log (default config: changes only, bursts merged) has every step, refusals
    # with their reason, in order
    host = LOCAL.lower()
    held = f'refused="control token PSU1: held by {me}"'
    want = [f"{host} alice PSU1:CTL:GRAB new=1 old=0",
            f"{host} bob PSU1:P6V:VOLT {held}",
            f"{host} bob PSU1:CTL:GRAB {held}",
            f"{host} bob PSU1:CTL:RELEASE {held}",
            f"{host} alice PSU1:P6V:VOLT new=3 old=0",      # her second GRAB changed nothing
            f'{FAR} dave PSU1:CTL:FORCE refused="no write access"',
            f"{FAR} carol PSU1:CTL:FORCE new=1 old=0",
            f"{host} bob PSU1:P6V:VOLT new=4 old=3"]

    def logged() -> list[str]:
        text = ioc.putlog_path.read_text() if ioc.putlog_path.exists() else ""
        return [line.split(" ", 2)[2] for line in text.splitlines()]
    wait_for(lambda: len(logged()) >= len(want), 10, what="the put log lines")
    assert logged()[:len(want)] == want


def test_token_freed_after_the_holder_is_gone_for_the_grace_time(ioc, sim):
    watcher = Client(ioc.port, "bob", LOCAL)
    alice = Client(ioc.port, "alice", LOCAL)
    assert alice.put("PSU1:CTL:GRAB", 1) == ECA_NORMAL
    # back within the grace time: the token is kept
    alice.close()
    alice = Client(ioc.port, "alice", LOCAL)
    alice.chan("PSU1:P6V:VOLT")
    time.sleep(GRACE_S * 1.5)       # (the grace time itself is what is tested here)
    assert watcher.get("PSU1:CTL:OWNER") == f"alice@{LOCAL.lower()}"
    # gone for longer: freed, and not before the grace time
    t0 = time.monotonic()
    alice.close()
    wait_for(lambda: watcher.get("PSU1:CTL:OWNER") == "", 10, what="token freed")
    assert time.monotonic() - t0 >= GRACE_S * 0.9
    assert "gone for more than" in ioc.output()
    watcher.close()


def test_default_ioc_takes_its_managers_from_the_environment(monkeypatch):
    """iocBoot/iocsim/st.cmd: PSU_MANAGERS names the manager users, several with commas (the
    st.cmd quotes the value for asSetSubstitutions, so the commas stay in the UAG)."""
    monkeypatch.setenv("PSU_MANAGERS", "alice,bob")
    r = run_ioc_to_exit(stdin_text="aspuag\nastac PSU1:CTL:FORCE bob far.example.org\n"
                                   "astac PSU1:CTL:FORCE dave far.example.org\nexit\n",
                        timeout_s=30)
    assert r.returncode == 0, r.stderr
    assert "UAG(manager) {alice,bob}" in r.stdout, r.stdout
    assert "astac callback PSU1:CTL:FORCE: status=0 get Yes put Yes" in r.stdout
    assert "astac callback PSU1:CTL:FORCE: status=0 get Yes put No" in r.stdout
