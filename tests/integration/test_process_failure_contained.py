"""A record whose processing raises an unexpected exception (here a Python subroutine that
leaves a string in a sub record's VAL, so the record's own alarm checks fail) must not take the
CA server or the IOC down: the put gets ECA_PUTFAIL, the record is left in SOFT/INVALID with
PACT cleared, the failure is logged once, and the IOC, its circuits and other records go on."""
from __future__ import annotations

from ..conftest import caget, caput

MODULE = '''
def bad(rec):
    rec.f["VAL"] = "not a number"      # breaks subRecord's alarm checks after the call
    return 0
'''

DB = r'''
record(sub, "T:BAD") { field(SNAM, "bad") field(FLNK, "T:AFTER") }
record(longin, "T:AFTER") { }
record(longout, "T:OK") { field(VAL, "5") }
record(longout, "T:TRIG") { field(OUT, "T:BAD.PROC PP") }
record(sub, "T:SCANNED") { field(SNAM, "bad") field(SCAN, ".1 second") }
'''


def test_processing_exception_is_contained(start_ioc, tmp_path):
    (tmp_path / "failmod.py").write_text(MODULE)
    (tmp_path / "t.db").write_text(DB)
    (tmp_path / "st.cmd").write_text(
        "registerSubroutine bad failmod:bad\n"
        f'dbLoadRecords("{tmp_path / "t.db"}")\niocInit\n')
    ioc = start_ioc("-S", str(tmp_path / "st.cmd"), ready_pv="T:OK", cwd=tmp_path,
                    extra_env={"PYTHONPATH": str(tmp_path)})
    port = ioc.port
    for _ in range(2):
        r = caput("T:BAD.PROC", "1", port=port)
        assert "write request failed" in r.stderr, r.stdout + r.stderr     # ECA_PUTFAIL
    # the failed record: alarmed, not busy
    assert caget("-t", "T:BAD.SEVR", "T:BAD.STAT", "T:BAD.PACT", port=port).split() == \
        ["INVALID", "SOFT", "0"]
    # a DB link processing it, and its scan task, go on as well
    assert caput("T:TRIG", "1", port=port).returncode == 0
    assert caget("-t", "T:SCANNED.SEVR", port=port).strip() == "INVALID"
    # the IOC still serves and processes other records
    assert caput("T:OK", "7", port=port).returncode == 0
    assert caget("-t", "T:OK", port=port).strip() == "7"
    assert ioc.proc.poll() is None
    out = ioc.output()
    assert out.count("T:BAD: processing failed") == 1, out
