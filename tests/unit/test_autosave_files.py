"""Autosave's file formats (ioc/autosave): request files as readReqFile reads them, save files
as write_it writes and reboot_restore reads them, atomic saves with .savB and sequence files,
the restore-file choice of fopen_and_check, and saves killed with SIGKILL.

Golden texts are written by hand from synApps autosave's documented format
(docs/autoSaveRestore.md, "About save files") and its sources; the shipped request files are
in tests/data/autosave/ (SOURCE.txt says where from)."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ioc.autosave import files
from ioc.autosave.files import (RequestFilePath, SaveEntry, SequenceFiles, atomic_save,
                                check_restore_file, check_saved_file, choose_restore_file,
                                concatenate_paths, format_save_file, parse_save_text,
                                read_request_file, read_save_file, save_file_name)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data" / "autosave"


@pytest.fixture(autouse=True)
def _utc(monkeypatch):
    """fGetDateStr writes local time: pin it so the golden headers are fixed."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="latin-1", newline="")
    return path


# ----------------------------------------------------------------------------- .req files
def test_shipped_request_files_with_includes_and_macros():
    r = read_request_file("auto_settings.req", "P=as:", [str(DATA)])
    # file "sample_settings.req", P=as:, N=sample_positioner  (quotes and spaces cleaned)
    assert r.pvs == ["as:sample_positioner.DRVH", "as:sample_positioner.DRVL",
                     "as:sample_positioner.PREC", "as:scan1Menu:currName",
                     "as:scan1Menu:currDesc", "as:scan1Menu:enableSave"]
    assert r.ok and not r.status_fail and r.messages == []
    assert r.options == {"CONFIG": "scan1"} and r.do_backups
    assert [Path(f).name for f in r.files] == ["auto_settings.req", "sample_settings.req",
                                               "configMenu_settings.req"]
    r = read_request_file("SR_test_settings.req", "P=xxx:", [str(DATA)])
    assert len(r.pvs) == 20 and r.pvs[0] == "xxx:SR_aoDISP.DISP"
    assert "i_dont_exist.VAL" in r.pvs and not any(p.startswith("#") for p in r.pvs)


def test_without_macros_lines_are_taken_unexpanded():
    r = read_request_file("auto_positions.req", "", [str(DATA)])
    assert r.pvs == ["$(P)sample_positioner.VAL"]   # a name may start with '$'


def test_request_lines_comments_duplicates_and_quirks(tmp_path):
    write(tmp_path / "a.req",
          "# a comment\n"
          "\n"
          "   # indented comment\n"
          "$(P)m1.VAL\n"
          "$(P)m1.VAL\n"                       # duplicates are kept
          "  $(P)m2   trailing words\n"        # the first word only
          "\"quoted\n"                         # not a PV name: ignored (reported)
          " file x.req\n"                      # 'file' not at column 0: a PV named file
          "$(P)last")                          # no final newline: fgets cut drops it
    r = read_request_file("a.req", "P=xxx:", [str(tmp_path)])
    assert r.pvs == ["xxx:m1.VAL", "xxx:m1.VAL", "xxx:m2", "file"]
    assert any(":7: line ignored" in m for m in r.messages)


def test_long_request_line_is_cut_back_to_a_separator(tmp_path):
    long = "a:" + "b" * 100 + " " + "c" * 150 + "\n"
    write(tmp_path / "l.req", long + "next\n")
    r = read_request_file("l.req", "", [str(tmp_path)])
    assert r.pvs == ["a:" + "b" * 61, "next"]
    assert any("cut to 63" in m for m in r.messages)


def test_include_macros_are_not_inherited(tmp_path):
    write(tmp_path / "top.req", "file child.req P=$(P),R=x\n$(P)top\n")
    write(tmp_path / "child.req", "$(P)$(R)a\n$(P)$(Q)b\n")
    r = read_request_file("top.req", "P=ioc:,Q=q", [str(tmp_path)])
    assert r.pvs == ["ioc:xa", "ioc:$(Q,undefined)b", "ioc:top"]
    assert any(m.endswith("child.req:2: macLib: macro Q is undefined "
                          "(expanding string $(P)$(Q)b)") for m in r.messages)


@pytest.mark.parametrize("line, name, macros", [
    ('file "inc.req" P=a:,R=b\n', "inc.req", "P=a:,R=b"),
    ("file inc.req P=a: R=b\n", "inc.req", "P=a:,R=b"),
    ("file   inc.req\n", "inc.req", ""),
    ('file "inc.req", "P=a:, R=b"\n', "inc.req", "P=a:,R=b"),
    ("file inc.req ab\n", "inc.req", ""),            # fewer than 3 characters: no macros
])
def test_file_line_cleaning(line, name, macros):
    from ioc.autosave.reqfile import _include_args
    assert _include_args(line) == (name, macros)


def test_search_path_order_and_cwd(tmp_path, monkeypatch):
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2" / "sub").mkdir(parents=True)
    write(tmp_path / "d2" / "sub" / "x.req", "from:d2\n")
    path = RequestFilePath()
    assert path.add(str(tmp_path / "d1")) and path.add(str(tmp_path / "d2"), "sub")
    assert not path.add("", "")
    assert path.dirs == [f"{tmp_path}/d1/", f"{tmp_path}/d2/sub/"]
    assert read_request_file("x.req", "", path).pvs == ["from:d2"]
    write(tmp_path / "d1" / "x.req", "from:d1\n")
    assert read_request_file("x.req", "", path).pvs == ["from:d1"]
    monkeypatch.chdir(tmp_path / "d2" / "sub")          # no path: opened as given
    assert read_request_file("x.req").pvs == ["from:d2"]


def test_missing_include_is_reported_and_skipped(tmp_path):
    write(tmp_path / "top.req", "a:1\nfile missing.req P=x\na:2\n")
    r = read_request_file("top.req", "", [str(tmp_path)])
    assert r.pvs == ["a:1", "a:2"] and r.ok and r.status_fail
    assert r.messages == [f"{tmp_path}/top.req:2: save_restore:readReqFile: unable to open "
                          "file missing.req. Exiting."]
    r = read_request_file("nothere.req", "", [str(tmp_path)])
    assert not r.ok and r.pvs == []


def test_include_loop_is_reported(tmp_path):
    write(tmp_path / "a.req", "a:1\nfile b.req\n")
    write(tmp_path / "b.req", "b:1\nfile a.req\nb:2\n")
    r = read_request_file("a.req", "", [str(tmp_path)])
    assert r.pvs == ["a:1", "b:1", "b:2"] and r.status_fail
    assert len(r.messages) == 1 and "b.req:2: include loop: a.req" in r.messages[0]


def test_backup_options_from_macros(tmp_path):
    write(tmp_path / "c.req", "x\n")
    r = read_request_file("c.req", "P=a,CONFIGMENU=1", [str(tmp_path)])
    assert r.options == {"CONFIGMENU": "1"} and not r.do_backups


def test_names_and_paths():
    assert save_file_name("auto_settings.req") == "auto_settings.sav"
    assert save_file_name("a.b.req") == "a.b.sav"
    assert save_file_name("noext") == ".sav"           # autosave's quirk
    assert concatenate_paths("/a", "b") == "/a/b"
    assert concatenate_paths("/a/", "/b") == "/a/b"
    assert concatenate_paths("", "b") == "b"
    assert concatenate_paths("/a", "") == "/a"


# ----------------------------------------------------------------------------- .sav format
DOC_SAMPLE = (  # docs/autoSaveRestore.md's sample, without its explanatory annotations
    "# save/restore V4.9\tAutomatically generated - DO NOT MODIFY - 060720-154526\n"
    "! 1 channel(s) not connected - or not all gets were successful\n"
    "xxx:SR_ao.DISP 0\n"
    "xxx:SR_ao.PREC 1\n"
    "xxx:SR_ao.SCAN 3\n"
    "xxx:SR_ao.VAL 4.1234567890123\n"
    "xxx:SR_scaler.RATE 1.234568\n"
    "xxx:SR_ao.DESC description\n"
    "xxx:myCalc.CALC$ 123456789+123456789+123456789+123456789+123456789\n"
    "xxx:SR_ao.OUT xxx:SR_bo.VAL NPP NMS\n"
    "#i_dont_exist.VAL Search Issued\n"
    "xxx:SR_char_array @array@ { \"1\" \"2\" \"3\" \"4\" \"5\" \"6\" \"7\" \"8\" \"9\" \"10\" }\n"
    "xxx:SR_string_array @array@ { \"1\" \"2\" \"3\" \"4\" \"5\" \"6\" \"7\" \"8\" \"9\" \"10\" }\n"
    "<END>\n")


def test_documented_sample_reads():
    r = parse_save_text(DOC_SAMPLE)
    assert r.version == "save/restore V4.9" and r.date == "060720-154526"
    assert r.not_connected == 1 and r.problems == ["line 2: 1 PV had no saved value"]
    v = r.values()
    assert v["xxx:SR_ao.VAL"] == "4.1234567890123"
    assert v["xxx:SR_ao.OUT"] == "xxx:SR_bo.VAL NPP NMS"
    assert v["xxx:myCalc.CALC$"].startswith("123456789+")
    assert v["xxx:SR_char_array"] == [str(i) for i in range(1, 11)]
    assert [(e.pv, e.value) for e in r.commented] == [("i_dont_exist.VAL", "Search Issued")]
    assert check_restore_file(DOC_SAMPLE.encode()) == (True, "ends with <END>")
    aborted = parse_save_text(DOC_SAMPLE, incomplete_sets_ok=False)
    assert aborted.aborted and aborted.entries == []


def test_written_file_is_byte_exact():
    entries = [SaveEntry("psu:VOLT", files.format_double(4.1234567890123456)),
               SaveEntry("psu:RATE", files.format_float(1.2345678)),
               SaveEntry("psu:SCAN", "3"),
               SaveEntry("psu:DESC", 'say "hi"\\now\t'),
               SaveEntry("psu:EMPTY", ""),
               SaveEntry("psu:gone", "Search Issued", valid=False),
               SaveEntry("psu:W", ["1", "2.5", 'a "b"']),
               SaveEntry("psu:ONE", ["7"])]                 # one element: a scalar
    text = format_save_file(entries, when=1_800_000_000, not_connected=1)
    assert text == (
        "# autosave R5.3\tAutomatically generated - DO NOT MODIFY - 270115-080000\n"
        "! 1 channel(s) not connected - or not all gets were successful\n"
        "psu:VOLT 4.1234567890123\n"
        "psu:RATE 1.234568\n"
        "psu:SCAN 3\n"
        'psu:DESC say \\"hi\\"\\\\now\\t\n'
        "psu:EMPTY \n"
        "#psu:gone Search Issued\n"
        'psu:W @array@ { "1" "2.5" "a \\"b\\"" }\n'
        "psu:ONE 7\n"
        "<END>\n")


@pytest.mark.parametrize("value", [
    "plain", "with spaces  inside", " leading and trailing ", 'q"u\'o"te', "back\\slash\\",
    "", "tab\tnew\nline\r", "ctl\x01\x7f", "$(P) not a macro here", "#hash", "{braces}"])
def test_scalar_round_trip(value):
    text = format_save_file([SaveEntry("a:S", value), SaveEntry("a:T", "after")])
    r = parse_save_text(text)
    assert r.values() == {"a:S": value, "a:T": "after"} and r.problems == []


def test_array_round_trip_and_autosave_limits():
    elements = ["a b", 'q"q', "", "}{", "x" * 39, "nl\nx", "  "]
    r = parse_save_text(format_save_file([SaveEntry("a:W", elements), SaveEntry("a:X", "1")]))
    assert r.values() == {"a:W": elements, "a:X": "1"}
    # autosave's limits, kept: 39 characters counted with the escapes, and a backslash
    # unescaped twice (SR_array_restore, then epicsStrnRawFromEscaped) so "c\d" comes back "cd"
    r = parse_save_text(format_save_file([SaveEntry("a:W", ["y" * 45, 'z' * 37 + '""', "c\\d"])]))
    assert r.values()["a:W"] == ["y" * 39, "z" * 37 + '"', "cd"]


def test_array_across_lines_and_truncated():
    r = parse_save_text('a:W @array@ { "1"\n  "2" "3\n" }\na:X 5\n<END>\n')
    assert r.values() == {"a:W": ["1", "2", "3"], "a:X": "5"}
    r = parse_save_text('a:W @array@ { "1" "2"\n')
    assert r.entries == [] and "end of file in the array of a:W" in r.problems[0]
    r = parse_save_text('#a:W @array@ { "1"\n "2" }\na:X 5\n')   # commented array swallowed
    assert r.values() == {"a:X": "5"} and r.commented[0].value == ["1", "2"]


def test_reader_rules():
    text = ("a:NOFIELD 1\n"
            "_bad 2\n"                          # must start with a letter or digit
            + "n" * 80 + " 3\n"                 # 80 characters: too long
            "a:CR 4\r\n"
            "a:MAC $(P)x\n"
            "<END>\n"
            "a:AFTER 5\n")
    r = parse_save_text(text, macros="P=ioc:")
    assert [(e.pv, e.value, e.line) for e in r.entries] == [
        ("a:NOFIELD", "1", 1), ("a:CR", "4", 4), ("a:MAC", "ioc:x", 5)]
    assert r.entries[0].restore_name == "a:NOFIELD.VAL"
    assert any("'_bad' ignored" in p for p in r.problems)
    assert any("too long to be a PV name" in p for p in r.problems)


def test_long_string_field():
    value = "9" * 250
    text = format_save_file([SaveEntry("a:CALC$", value), SaveEntry("a:N", "1")])
    assert parse_save_text(text).values() == {"a:CALC$": "9" * 199, "a:N": "1"}


@pytest.mark.parametrize("tail, ok", [
    (b"<END>\n", True), (b"<END>\r\n", True), (b"<END>", False), (b"<END>\n\n\n", False),
    (b"a:X 1\n", False)])
def test_end_marker(tail, ok):
    data = b"# autosave R5.3\tAutomatically generated - DO NOT MODIFY - x\na:X 1\n" + tail
    assert check_restore_file(data)[0] is ok
    assert (check_saved_file(data) == "ok") is ok


def test_files_without_a_version_are_trusted_as_autosave_does():
    assert check_restore_file(b"a:x 1\n")[0]                    # no R or V: trusted
    assert check_restore_file(b"# save/restore V1.7\na:x 1\n")[0]
    assert not check_restore_file(b"# save/restore V2.0\na:x 1\n")[0]
    assert not check_restore_file(b"")[0]
    assert check_saved_file(None) == "none"


# ----------------------------------------------------------------------------- files on disk
def save_text(i: int, n: int = 20) -> str:
    return format_save_file([SaveEntry(f"psu:P{k}", str(i)) for k in range(n)]
                            + [SaveEntry("psu:W", [str(i)] * 10)])


def saved_generation(path: str, n: int = 20) -> int:
    """The one save a file holds: every value the same generation, nothing missing."""
    r = read_save_file(path)
    assert r.trusted and r.problems == [], r.problems
    assert len(r.entries) == n + 1
    gens = {e.value if isinstance(e.value, str) else tuple(e.value) for e in r.entries[:-1]}
    assert len(gens) == 1
    (gen,) = gens
    assert r.entries[-1].value == [gen] * 10
    return int(gen)


def test_atomic_save_keeps_previous_in_savB(tmp_path):
    sav = str(tmp_path / "auto_settings.sav")
    rep = atomic_save(sav, save_text(1))
    assert rep.ok and rep.backup == "new"
    assert saved_generation(sav) == 1 and saved_generation(sav + "B") == 1
    rep = atomic_save(sav, save_text(2))
    assert rep.ok and rep.backup == "previous"
    assert saved_generation(sav) == 2 and saved_generation(sav + "B") == 1
    assert oct(os.stat(sav).st_mode & 0o777) != "0o0"
    assert not os.path.exists(sav + ".tmp")
    assert atomic_save(sav, save_text(3), backups=False).ok
    assert saved_generation(sav + "B") == 1


def test_bad_savB_is_kept_aside_and_replaced(tmp_path):
    sav = str(tmp_path / "s.sav")
    write(tmp_path / "s.savB", "# autosave R5.3\ta:x 1\n")               # no <END>
    write(tmp_path / "s.sav", "# autosave R5.3\ta:x 1\n")                # bad .sav too
    rep = atomic_save(sav, save_text(5), when=0)
    assert rep.ok and rep.backup == "new"
    assert saved_generation(sav + "B") == 5
    assert (tmp_path / "s.savB_SBAD_700101-000000").exists()


def test_truncated_sav_falls_back_to_savB(tmp_path):
    sav = str(tmp_path / "s.sav")
    atomic_save(sav, save_text(1))
    atomic_save(sav, save_text(2))
    data = Path(sav).read_bytes()
    Path(sav).write_bytes(data[:len(data) // 2])                          # cut mid-line
    choice = choose_restore_file(sav, keep_bad=True, now=0)
    assert choice.path == sav + "B" and choice.kind == "savB" and not choice.warn
    assert choice.messages == [f"File '{sav}' is not trusted.",
                               f"Trying backup file '{sav}B'"]
    assert saved_generation(choice.path) == 1
    assert (tmp_path / "s.sav_RBAD_700101-000000").exists()
    assert not read_save_file(sav).trusted and read_save_file(sav).entries == []


def test_crash_mid_write_leaves_sav_untouched(tmp_path, monkeypatch):
    sav = str(tmp_path / "s.sav")
    atomic_save(sav, save_text(1))
    before = Path(sav).read_bytes()

    def dying_fsync(fd):
        raise OSError(5, "Input/output error")
    monkeypatch.setattr(files.os, "fsync", dying_fsync)
    rep = atomic_save(sav, save_text(2))
    assert not rep.ok and "Input/output error" in rep.messages[0]
    monkeypatch.undo()
    assert Path(sav).read_bytes() == before and Path(sav + ".tmp").exists()
    write(tmp_path / "s.sav.tmp", save_text(3)[:100])     # a half-written temporary file
    assert choose_restore_file(sav).path == sav and saved_generation(sav) == 1
    assert atomic_save(sav, save_text(4)).ok and saved_generation(sav) == 4


def test_sequence_files_schedule_and_rotation(tmp_path):
    sav = str(tmp_path / "s.sav")
    seq = SequenceFiles(sav, num=3, period=60, created=1000)
    assert not seq.due(1029)                 # checks only every half period
    assert not seq.due(1031)                 # checked, a period has not passed
    assert not seq.due(1061)                 # 30 s since the last check: not more
    assert not seq.due(1062, saved_ok=False)
    assert seq.due(1093)
    atomic_save(sav, save_text(1))
    for gen, now in zip((1, 2, 3, 4), (1100, 1200, 1300, 1400)):
        if gen > 1:
            atomic_save(sav, save_text(gen))
        assert seq.write(now)[0]
    assert [saved_generation(f"{sav}{i}") for i in range(3)] == [4, 2, 3]
    assert SequenceFiles(sav, num=20, period=1).num == 10
    assert SequenceFiles(sav, period=1).period == 10
    # a new set starts on the oldest file
    for i, mtime in enumerate((500, 100, 300)):
        os.utime(f"{sav}{i}", (mtime, mtime))
    fresh = SequenceFiles(sav, created=0)
    fresh.write(1000)
    assert saved_generation(f"{sav}1") == 4 and fresh.index == 2


def test_chooser_uses_the_newest_sequence_file_then_cycles(tmp_path):
    sav = str(tmp_path / "s.sav")
    for i, mtime in enumerate((100, 300, 200)):
        write(tmp_path / f"s.sav{i}", save_text(i))
        os.utime(tmp_path / f"s.sav{i}", (mtime, mtime))
    write(tmp_path / "s.sav", "# autosave R5.3\nbroken")
    choice = choose_restore_file(sav, 3, now=310)
    assert choice.path == sav + "1" and choice.kind == "seq" and choice.warn
    assert [Path(p).name for p, _ in choice.tried] == ["s.sav", "s.savB", "s.sav1"]
    write(tmp_path / "s.sav1", "# autosave R5.3\nbroken")   # newest bad: 1, 2, 0 order
    choice = choose_restore_file(sav, 3, now=310)
    assert choice.path == sav + "2"
    for i in range(3):
        os.unlink(tmp_path / f"s.sav{i}")
    choice = choose_restore_file(sav, 3, now=310)
    assert choice.path is None and choice.messages[-1].endswith("I give up.")
    assert f"so I'm just going to start with '{sav}0'." in choice.messages


CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from ioc.autosave.files import SaveEntry, atomic_save, format_save_file
path = sys.argv[1]
for i in range(1000):
    text = format_save_file([SaveEntry(f"psu:P{k}", str(i)) for k in range(20)]
                            + [SaveEntry("psu:W", [str(i)] * 10)])
    assert atomic_save(path, text).ok
    if i == 0:
        print("ready", flush=True)
print("done", flush=True)
"""


def test_kill_9_during_a_save_loop_leaves_a_usable_file(tmp_path):
    sav = str(tmp_path / "auto_settings.sav")
    rng = random.Random(13)
    start = time.monotonic()
    for _ in range(5):
        child = subprocess.Popen([sys.executable, "-c", CHILD, sav, str(ROOT)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0.0, 0.3))
            child.send_signal(signal.SIGKILL)
            assert child.wait(5) == -signal.SIGKILL
            assert child.stdout.read() == ""          # killed inside the loop, not after it
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            child.stdout.close()
        choice = choose_restore_file(sav)
        assert choice.kind in ("sav", "savB"), choice.messages
        saved_generation(choice.path)
        if os.path.exists(sav + "B"):
            saved_generation(sav + "B")
    assert time.monotonic() - start < 10
