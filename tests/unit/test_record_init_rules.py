"""Constant links read as JSON5 and the record-name rules of dbRecordNameValidate."""
from __future__ import annotations

import pytest

from ioc.database.db import _validate_name
from ioc.database.errors import DbLoadError
from ioc.records.links import ConstantLink


def test_constant_array_json5_keeps_int64():
    assert ConstantLink("[1234567890123456789,]").load_value() == [1234567890123456789]
    assert ConstantLink("{const:1234567890123456789,}").load_value() == 1234567890123456789


@pytest.mark.parametrize("name", ["LN:{}Mode", "{a}", "-x", "a[1]<b>"])
def test_names_base_accepts(name):
    _validate_name(name, "x.db", 1)


@pytest.mark.parametrize("name", ["", "a b", "a.b", "a$b", "a'b", 'a"b', "a\tb"])
def test_names_base_refuses(name):
    with pytest.raises(DbLoadError):
        _validate_name(name, "x.db", 1)
