"""Autosave end to end: ``psu-timing-ioc`` with an st.cmd (set_savefile_path,
set_requestfile_path, set_pass0/1_restoreFile, create_monitor_set, create_periodic_set,
create_manual_set + manual_save), CA puts, the .sav files on disk, a restart that restores
the values, the last save at the IOC's stop, and a truncated .sav that falls back to the
.savB."""
from __future__ import annotations

from pathlib import Path

from ioc.autosave.files import SaveEntry, format_save_file, read_save_file
from ..conftest import caget_value, caput, wait_for

DB = '''
record(ao, "AS:AO") { field(PREC, "3") field(VAL, "1.5") }
record(stringout, "AS:SO") { field(VAL, "initial") }
record(waveform, "AS:WF") { field(FTVL, "DOUBLE") field(NELM, "8") }
record(bo, "AS:BO") { field(ZNAM, "Off") field(ONAM, "On") }
'''
STCMD = '''dbLoadRecords("t.db")
set_savefile_path("{tmp}", "sav")
set_requestfile_path("{tmp}", "req")
set_pass0_restoreFile("settings.sav")
set_pass1_restoreFile("arrays.sav")
create_monitor_set("settings.req", 1, "P=AS:")
create_monitor_set("arrays.req", 1)
create_periodic_set("periodic.req", 1)
create_manual_set("manual.req", "")
iocInit
manual_save("manual.req")
'''


def _setup(tmp: Path) -> Path:
    (tmp / "t.db").write_text(DB)
    (tmp / "sav").mkdir()
    req = tmp / "req"
    req.mkdir()
    (req / "settings.req").write_text("$(P)AO\n$(P)SO\n$(P)BO\n")
    (req / "arrays.req").write_text("AS:WF\n")
    (req / "periodic.req").write_text("AS:BO\nAS:AO.PREC\n")
    (req / "manual.req").write_text("AS:SO\nAS:GONE\n")
    st = tmp / "st.cmd"
    st.write_text(STCMD.format(tmp=tmp))
    return st


def _saved(path: Path) -> dict:
    c = read_save_file(str(path))
    return c.values() if c.trusted else {}


def _put(pv: str, *value: str, port: int) -> None:
    r = caput(*(("-a",) if len(value) > 1 else ()), pv, *value, port=port)
    assert r.returncode == 0, r.stdout + r.stderr


def test_values_saved_then_restored_after_a_restart(start_ioc, tmp_path):
    st = _setup(tmp_path)
    sav = tmp_path / "sav"
    ioc = start_ioc("-S", str(st), cwd=tmp_path, ready_pv="AS:BO")
    out = ioc.output()
    assert "autosave: pass 0: no file to restore" in out and "settings.sav" in out
    # manual_save in the st.cmd wrote its set at once (the unknown PV as a #comment line)
    manual = (sav / "manual.sav").read_text()
    assert "AS:SO initial\n" in manual and "#AS:GONE Not Connected\n" in manual
    assert manual.endswith("<END>\n")
    _put("AS:AO", "3.25", port=ioc.port)
    _put("AS:SO", "hello there", port=ioc.port)
    _put("AS:BO", "On", port=ioc.port)
    _put("AS:WF", "3", "1.5", "2.5", "-7", port=ioc.port)
    want = {"AS:AO": "3.25", "AS:SO": "hello there", "AS:BO": "1"}
    wait_for(lambda: _saved(sav / "settings.sav") == want, timeout_s=20,
             what="settings.sav to hold the new values")
    wait_for(lambda: _saved(sav / "arrays.sav") == {"AS:WF": ["1.5", "2.5", "-7"]},
             timeout_s=20, what="arrays.sav to hold the array")
    wait_for(lambda: _saved(sav / "periodic.sav") == {"AS:BO": "1", "AS:AO.PREC": "3"},
             timeout_s=20, what="the periodic set's save")
    assert (sav / "settings.savB").exists()
    wf_before = caget_value("AS:WF", port=ioc.port)
    assert ioc.stop() == 0

    ioc2 = start_ioc("-S", str(st), cwd=tmp_path, ready_pv="AS:BO")
    out = ioc2.output()
    assert f"autosave: pass 0: restoring from '{sav}/settings.sav' (ends with <END>)" in out
    assert f"autosave: pass 1: restoring from '{sav}/arrays.sav'" in out
    assert caget_value("AS:AO", port=ioc2.port) == "3.25"
    assert caget_value("AS:SO", port=ioc2.port) == "hello there"
    assert caget_value("AS:BO", port=ioc2.port) == "On"
    wf = caget_value("AS:WF", port=ioc2.port)
    assert wf == wf_before and wf.split()[1:4] == ["1.5", "2.5", "-7"]
    # a change just before the stop is saved by the stop (the set's period has not passed)
    _put("AS:AO", "7.125", port=ioc2.port)
    assert ioc2.stop() == 0
    assert _saved(sav / "settings.sav")["AS:AO"] == "7.125"


def test_truncated_sav_falls_back_to_savB_and_unknown_pvs_are_skipped(start_ioc, tmp_path):
    st = _setup(tmp_path)
    sav = tmp_path / "sav"
    good = format_save_file([SaveEntry("AS:AO", "5.5"), SaveEntry("AS:GONE", "1"),
                             SaveEntry("AS:SO", "from backup"), SaveEntry("AS:BO", "1")])
    (sav / "settings.savB").write_text(good)
    cut = good.replace("5.5", "99").replace("from backup", "from the cut file")
    (sav / "settings.sav").write_text(cut[:cut.index("<END>")])      # no <END>: not trusted
    ioc = start_ioc("-S", str(st), cwd=tmp_path, ready_pv="AS:BO")
    out = ioc.output()
    assert f"restoring from backup '{sav}/settings.savB'" in out
    assert "'settings.sav' does not end with <END>" in out
    assert "AS:GONE: no such record; skipped" in out
    assert caget_value("AS:AO", port=ioc.port) == "5.5"
    assert caget_value("AS:SO", port=ioc.port) == "from backup"
    assert caget_value("AS:BO", port=ioc.port) == "On"
    assert ioc.stop() == 0
