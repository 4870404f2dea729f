"""The committed screens (opi/*.bob, opi/pydm/*.ui) are what tools/gen_screens.py makes from its
description and the db files, byte for byte; the description names only existing records."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
TOOL = ROOT / "tools" / "gen_screens.py"

pytest.importorskip("phoebusgen")


def test_regenerated_screens_equal_the_committed_ones(tmp_path):
    # HOME elsewhere: phoebusgen would take site colours/fonts/versions from ~/.phoebusgen/
    env = {**os.environ, "HOME": str(tmp_path)}
    out = tmp_path / "opi"
    subprocess.run([sys.executable, str(TOOL), "--out", str(out)], check=True, env=env,
                   capture_output=True, text=True)
    made = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert made, "the tool wrote nothing"
    committed = sorted(p.relative_to(ROOT / "opi") for p in (ROOT / "opi").rglob("*")
                       if p.suffix in (".bob", ".ui"))
    assert made == committed
    for rel in made:
        assert (out / rel).read_bytes() == (ROOT / "opi" / rel).read_bytes(), \
            f"opi/{rel} is out of date: run python tools/gen_screens.py"


def test_description_names_records_of_the_databases():
    sys.path.insert(0, str(TOOL.parent))
    try:
        import gen_screens as g
    finally:
        sys.path.remove(str(TOOL.parent))
    for screen in g.SCREENS:
        used = g.check(screen)              # raises on an unknown record or a read-only control
        assert used
    records = g.read_records(("db/ctlToken.template",))
    assert set(records) == {"$(P)CTL:OWNER", "$(P)CTL:GRAB", "$(P)CTL:RELEASE", "$(P)CTL:FORCE"}
    bad = g.Screen("x", "x", 1, 1, {}, ("db/ctlToken.template",),
                   [g.W("button", "b", 0, 0, 1, 1, pv="$(P)CTL:OWNER", value=1)])
    with pytest.raises(ValueError, match="not an output"):
        g.check(bad)
    bad = g.Screen("x", "x", 1, 1, {}, ("db/ctlToken.template",),
                   [g.W("readback", "r", 0, 0, 1, 1, pv="$(P)CTL:NOPE")])
    with pytest.raises(ValueError, match="no record"):
        g.check(bad)
