"""cvtBpt.c semantics of ioc.records.breaktable and the dbd ``breaktable`` statement."""
import pytest

from ioc.dbd import read_dbd
from ioc.records import breaktable as bpt

UP = bpt.make_table("up", [0, 0, 10, 100, 20, 300])
DOWN = bpt.make_table("down", [0, 300, 10, 100, 20, 0])


@pytest.mark.parametrize("raw, eng, status", [
    (-5, -50.0, 1), (0, 0.0, 0), (5, 50.0, 0), (10, 100.0, 0),
    (15, 200.0, 0), (20, 300.0, 0), (25, 400.0, 1)])
@pytest.mark.parametrize("lbrk", [0, 1, 5, -3])
def test_raw_to_eng_inside_edges_and_extrapolated(raw, eng, status, lbrk):
    got, _, st = bpt.raw_to_eng(UP, raw, lbrk)
    assert (got, st) == (pytest.approx(eng), status)


@pytest.mark.parametrize("eng, raw, status", [(-50, -5.0, 1), (150, 12.5, 0), (400, 25.0, 1)])
def test_eng_to_raw(eng, raw, status):
    got, _, st = bpt.eng_to_raw(UP, eng, 0)
    assert (got, st) == (pytest.approx(raw), status)


def test_decreasing_table_and_lbrk_kept():
    got, lbrk, st = bpt.raw_to_eng(DOWN, 15, 0)
    assert (got, lbrk, st) == (pytest.approx(50.0), 1, 0)


@pytest.mark.parametrize("values, msg", [
    ([0, 1, 2], "Raw value missing"), ([0, 1], "at least two"),
    ([0, 1, 1, 1], "zero"), ([0, 0, 1, 1, 2, 0], "changes sign")])
def test_bad_tables_rejected(values, msg):
    with pytest.raises(bpt.BreaktableError, match=msg):
        bpt.make_table("bad", values)


def test_dbd_breaktable_statement(tmp_path):
    p = tmp_path / "t.dbd"
    p.write_text('breaktable(typeEdegC) {\n 0 0\n "10", 100 20 300 }\n')
    assert read_dbd(str(p)).breaktables == {"typeEdegC": [0, 0, 10, 100, 20, 300]}
