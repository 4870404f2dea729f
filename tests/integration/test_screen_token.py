"""The control token from a screen: opi/pydm/ctl_token.ui opened in PyDM (Qt offscreen) against
``psu-timing-ioc`` (ctlToken.template, psu.acf, the in-process simulator) under a random prefix
given as the screen's macro P. Every channel connects; Grab shows this process's
``user@host`` in the owner label and lets the screen set the +6 V rail; another client (raw CA,
user bob on this host) is then refused with ECA_NOWTACCESS and loses its write access bit;
Release empties the label and gives bob his rights back.

PyDM's ca:// plugin is pyepics in this process: it reads EPICS_CA_ADDR_LIST when libca starts,
which the session's ``ca_ports`` fixture (tests/conftest.py) has set by then to the loopback
port pool this IOC is on.
"""
from __future__ import annotations

import os
import pwd
import socket
import struct
import subprocess
import sys
import uuid

import pytest

from tests import ca_raw as R
from ..conftest import ROOT

os.environ["QT_QPA_PLATFORM"] = "offscreen"
UI = ROOT / "opi" / "pydm" / "ctl_token.ui"
LOCAL = socket.gethostname()
ECA_NORMAL, ECA_NOWTACCESS = 1, 376
TIMEOUT_MS = 15000


def _qt_problem() -> str | None:
    """Why Qt (offscreen) cannot run here, or None. Probed in a child: a missing platform
    plugin or system library aborts the process that tries (qFatal), not only an import."""
    probe = ("from PyQt5.QtWidgets import QApplication; import pydm, pytestqt; "
             "a = QApplication([]); print(a.platformName())")
    try:
        p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    except subprocess.TimeoutExpired:
        return "PyQt5 offscreen probe did not finish in 60 s"
    if p.returncode != 0 or p.stdout.strip() != "offscreen":
        lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip()]
        return (f"PyQt5/pydm cannot start a Qt offscreen application here (exit {p.returncode}): "
                + (lines[-1] if lines else "no output")
                + " (.ci/run installs the system libraries Qt needs: libgl1, libglib2.0-0, "
                "libfontconfig1)")
    return None


_PROBLEM = _qt_problem()
pytestmark = pytest.mark.skipif(_PROBLEM is not None, reason=str(_PROBLEM))


@pytest.fixture
def ioc(start_ioc, tmp_path):
    prefix = "T" + uuid.uuid4().hex[:8].upper() + ":"
    st = tmp_path / "st.cmd"
    st.write_text(f'cd "{ROOT}"\n'
                  'E3631AConfigure("psu1", "sim://", "profile=spec")\n'
                  f'dbLoadRecords("db/e3631a.db", "P={prefix},PORT=psu1")\n'
                  f'dbLoadRecords("db/ctlToken.template", "P={prefix},GRACE=5")\n'
                  f'asSetSubstitutions("HOST={LOCAL},MANAGERS=carol")\n'
                  'asSetFilename("iocBoot/iocsim/psu.acf")\n'
                  "iocInit\n")
    p = start_ioc("-S", str(st), ready_pv=f"{prefix}CTL:OWNER")
    p.prefix = prefix
    return p


class Bob:
    """Another CA client on this host: user bob, raw CA (tests/ca_raw.py)."""

    def __init__(self, port: int, pv: str):
        self.c = R.RawCircuit("127.0.0.1", port, user="bob", host_name=LOCAL)
        self.ch = self.c.create(pv)
        assert isinstance(self.ch, R.Created), (pv, self.ch)
        self.rights = self._rights(self.c.last_create, None)

    def _rights(self, msgs, default):
        r = [m.p2 for m in msgs if m.command == R.ACCESS_RIGHTS and m.p1 == self.ch.cid]
        return r[-1] if r else default

    def sync(self) -> int:
        """The channel's access rights (1 read, 3 read+write) after what the server sent."""
        self.rights = self._rights(self.c.barrier()[0], self.rights)
        return self.rights

    def put(self, value: float) -> int:
        """Put-callback of a double; the ECA status it completes with."""
        self.c.send(R.write_notify(self.ch.sid, 7, 6, 1, struct.pack(">d", value)))
        msgs = self.c.recv_until(lambda ms: any(m.command == R.WRITE_NOTIFY for m in ms), 10.0)
        self.rights = self._rights(msgs, self.rights)
        return [m.p1 for m in msgs if m.command == R.WRITE_NOTIFY][0]


def test_token_from_the_screen(ioc, qtbot):
    from pydm import Display
    from pydm.widgets import PyDMLabel, PyDMLineEdit, PyDMPushButton
    from pydm.widgets.base import PyDMWidget
    from qtpy.QtCore import Qt

    P = ioc.prefix
    display = Display(macros={"P": P}, ui_filename=str(UI))
    qtbot.addWidget(display)
    display.show()
    widgets = display.findChildren(PyDMWidget)
    addresses = sorted(ch.address for w in widgets for ch in (w.channels() or []))
    assert addresses == sorted(f"ca://{P}{s}" for s in (
        "CTL:OWNER", "CTL:GRAB", "CTL:RELEASE", "CTL:FORCE",
        "P6V:VOLT", "P6V:VOLT_RBV", "P6V:VOLT_MEAS"))
    qtbot.waitUntil(lambda: all(w._connected and w.value is not None for w in widgets),
                    timeout=TIMEOUT_MS)

    owner = display.findChild(PyDMLabel, "owner")
    grab = display.findChild(PyDMPushButton, "btn_grab")
    release = display.findChild(PyDMPushButton, "btn_release")
    volt = display.findChild(PyDMLineEdit, "p6v_volt")
    rbv = display.findChild(PyDMLabel, "p6v_volt_rbv")
    assert owner.text() == ""
    bob = Bob(ioc.port, f"{P}P6V:VOLT")
    assert bob.rights == 3                      # this host may set while nobody holds the token

    qtbot.mouseClick(grab, Qt.LeftButton)
    me = f"{pwd.getpwuid(os.getuid()).pw_name}@{LOCAL.lower()}"
    qtbot.waitUntil(lambda: owner.text() == me, timeout=TIMEOUT_MS)
    # the holder sets the rail from the screen and sees it programmed
    qtbot.waitUntil(lambda: volt._write_access and volt.isEnabled(), timeout=TIMEOUT_MS)
    volt.setText("2.5")
    qtbot.keyClick(volt, Qt.Key_Return)
    qtbot.waitUntil(lambda: rbv.value == pytest.approx(2.5), timeout=TIMEOUT_MS)
    assert rbv.text() == "2.5000 V"
    # bob is told he lost write access, and refused
    qtbot.waitUntil(lambda: bob.sync() == 1, timeout=TIMEOUT_MS)
    assert bob.put(4.0) == ECA_NOWTACCESS
    assert rbv.value == pytest.approx(2.5)

    qtbot.mouseClick(release, Qt.LeftButton)
    qtbot.waitUntil(lambda: owner.text() == "", timeout=TIMEOUT_MS)
    qtbot.waitUntil(lambda: bob.sync() == 3, timeout=TIMEOUT_MS)
    assert bob.put(1.25) == ECA_NORMAL
    qtbot.waitUntil(lambda: rbv.value == pytest.approx(1.25), timeout=TIMEOUT_MS)
    bob.c.close()
    display.close()
