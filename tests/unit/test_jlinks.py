"""JSON link text (ioc.records.jlinks): base's relaxed JSON and its refusals."""
from __future__ import annotations

import pytest

from ioc.filters import dbstate
from ioc.records.jlinks import CalcLink, JConstLink, StateLink, parse_json_link, parse_json_text
from ioc.records.links import LinkError, constant_value, parse_link, split_db_link


def test_relaxed_json():
    assert parse_json_text("{a:'x', \"b\":[1,2.5,],/*c*/}") == {"a": "x", "b": [1, 2.5]}


@pytest.mark.parametrize("text,value", [
    ("{const:3.14}", 3.14), ("{const:[1,2,3]}", [1.0, 2.0, 3.0]), ("{const:'str'}", "str"),
    ('{const:"s"}', "s"), ("{const:7}", 7.0),
])
def test_const_links(text, value):
    link = parse_link(text, lambda n: None, "DBF_INLINK")
    assert isinstance(link, JConstLink) and link.is_constant
    assert constant_value(link) == value


@pytest.mark.parametrize("text,msg", [
    ("{pva:'x'}", "Link type 'pva' not found"),
    ("{ca:'x'}", "Link type 'ca' not found"),
    ("{const:1, calc:{}}", "Illegal second link key 'calc'"),
    ("{const:", "premature EOF"),
    ("{calc:{args:[1]}}", "No expression ('expr' key)"),
    ("{calc:{expr:'A+'}}", "Error in calc expression"),
    ("{calc:{expr:'A', foo:1}}", 'Unknown key "foo"'),
    ("{calc:{expr:'A', time:'Z'}}", "Bad 'time' parameter"),
    ("{calc:{expr:'A', args:[1,2,3,4,5,6,7,8,9,10,11,12,13]}}", "Too many input args"),
    ("{state:1}", "lnkState"),
])
def test_refused(text, msg):
    with pytest.raises(LinkError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        parse_json_link(text, None, "DBF_INLINK")


def test_calc_output_needs_out():
    with pytest.raises(LinkError, match="No output link"):
        parse_json_link("{calc:{expr:'A'}}", None, "DBF_OUTLINK")


class _Rec:
    name = "R"

    def __init__(self):
        self.alarms = []

    def set_sevr(self, stat, sevr, msg=""):
        self.alarms.append((int(stat), int(sevr), msg))
        return True


def test_calc_get_and_alarm():
    link = parse_json_link("{calc:{expr:'A+B*2',args:[5,{const:1.5}],major:'A>4',"
                           "units:'mm',prec:3}}")
    assert isinstance(link, CalcLink)
    r = _Rec()
    assert link.get_value(r) == 8.0
    assert r.alarms and r.alarms[0][2] == "post_major error"
    assert link.target_metadata() == {"units": "mm", "precision": 3}


def test_state_link_put_and_get():
    on = parse_json_link("{state:'jl_unit'}")
    off = parse_json_link("{state:'!jl_unit'}")
    assert isinstance(on, StateLink)
    on.put_value(None, 1)
    assert dbstate.get(dbstate.find("jl_unit")) is True
    assert (on.get_value(None), off.get_value(None)) == (1.0, 0.0)
    off.put_value(None, 1)
    assert on.get_value(None) == 0.0


def test_filtered_db_link_names():
    assert split_db_link("W.{arr:{s:1,i:2}} PP MS") == ("W", "VAL", "PP", "MS")
    assert split_db_link("W.[2:4],CP") == ("W", "VAL", "CP", "NMS")
    # a malformed filter leaves the field unresolvable (base: a CA link that never connects)
    assert split_db_link("W.{zork:{}}")[1] == "{zork:{}}"
