"""Record-layer failure handling: a bad CALC at iocInit is reported and the record initialises
on (calcRecord.c init_record: recGblRecordError, return 0); an exception out of a record's
process() is contained by db_process (alarm, PACT cleared, the caller goes on)."""
from __future__ import annotations

import pytest

import ioc.devsup  # noqa: F401  (registers Soft Channel)
from ioc.database.db import Database
from ioc.records.base import PutError
from ioc.records.constants import Sevr, Stat


def _load(tmp_path, text: str) -> Database:
    p = tmp_path / "t.db"
    p.write_text(text)
    db = Database()
    db.load_records(str(p), "")
    db.ioc_init()
    return db


def test_bad_calc_at_init_is_reported_and_the_record_alarms(tmp_path, capsys):
    db = _load(tmp_path, 'record(calc, "C") {\n field(CALC, "SIN(")\n field(INPA, "4")\n}\n')
    assert "t.db:1: record C: Illegal CALC field" in capsys.readouterr().err
    rec = db.lookup("C")
    assert rec.f["A"] == 4.0                  # pass 1 (constant inputs) still ran
    rec.db_process()
    assert (rec.f["STAT"], rec.f["SEVR"]) == (Stat.CALC, Sevr.INVALID)
    rec.put_field("CALC", "A+1")
    rec.db_process()
    assert rec.f["VAL"] == 5.0 and rec.f["SEVR"] == Sevr.NO_ALARM


def test_bad_ocal_is_reported_only_when_dopt_uses_it(tmp_path, capsys):
    _load(tmp_path, 'record(calcout, "N") { field(CALC, "1") field(OCAL, "1+") }\n'
                    'record(calcout, "U") { field(CALC, "1") field(OCAL, "1+")'
                    ' field(DOPT, "Use OCAL") }\n')
    err = capsys.readouterr().err
    assert "record U: Illegal OCAL field" in err and "record N" not in err


def test_exception_in_process_is_contained(tmp_path):
    db = _load(tmp_path, 'record(ao, "R") { }\nrecord(longout, "L") { field(OUT, "R.PROC") }\n')
    rec = db.lookup("R")

    def broken() -> None:
        rec.f["PACT"] = 1
        raise ZeroDivisionError("injected")
    rec.process = broken
    with pytest.raises(PutError, match="processing failed"):
        rec.put_and_process("PROC", 1)
    assert (rec.f["STAT"], rec.f["SEVR"], rec.f["PACT"]) == (Stat.SOFT, Sevr.INVALID, 0)
    link_writer = db.lookup("L")
    link_writer.db_process()                  # a link processing it goes on (no raise)
    assert link_writer.f["PACT"] == 0 and rec.f["PACT"] == 0
    assert rec.process_failure is not None
