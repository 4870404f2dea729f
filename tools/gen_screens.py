"""Generate the operator screens from one description: Phoebus (.bob) and PyDM (.ui).

    python tools/gen_screens.py             # rewrite opi/*.bob and opi/pydm/*.ui
    python tools/gen_screens.py --out DIR   # write DIR/*.bob and DIR/pydm/*.ui instead
    python tools/gen_screens.py --check     # exit 1 if a committed screen is out of date

``SCREENS`` below is the description. Each widget names its PV as the databases name the
record, macros kept (``$(P)CTL:OWNER``); every name is looked up in the screen's ``sources``
(db files), so a screen cannot point at a record that does not exist, and a control widget
(button, setpoint) must point at an output record. The record's DESC becomes the tooltip.

Phoebus files are written by phoebusgen (display format 2.0.0, the macros' defaults in the
display's <macros>). PyDM files are Qt Designer XML written here: PV ``$(P)X`` becomes channel
``ca://${P}X`` (PyDM macros have no defaults: ``pydm -m P=PSU1: opi/pydm/ctl_token.ui``).
The output depends only on this file and the db files (tests/unit/test_screens_generated.py
regenerates and compares byte for byte). phoebusgen reads site colour/font/widget-version
overrides from ~/.phoebusgen/; the committed files were made without any.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_RECORDS = {"ao", "bo", "mbbo", "longout", "int64out", "stringout", "lso", "mbboDirect"}


@dataclass(frozen=True)
class W:
    """One widget. kind: "label" (static text), "readback" (a PV's value), "button" (writes
    ``value`` to ``pv`` when pressed), "setpoint" (a text entry writing ``pv``)."""
    kind: str
    name: str                       # unique in its screen; PyDM makes it an attribute of the
                                    # Display, so no QWidget method name ("grab", "close")
    x: int
    y: int
    width: int
    height: int
    text: str = ""
    pv: str = ""
    value: int | float | str | None = None
    units: bool = False
    title: bool = False


@dataclass(frozen=True)
class Screen:
    name: str                       # file stem: opi/NAME.bob, opi/pydm/NAME.ui
    title: str
    width: int
    height: int
    macros: dict[str, str]          # macro defaults (Phoebus <macros>)
    sources: tuple[str, ...]        # db files (relative to the top) the PV names come from
    widgets: list[W] = field(default_factory=list)


def _row(y: int, caption: str, *widgets: W) -> list[W]:
    return [W("label", f"lbl_{widgets[0].name}", 10, y, 110, 25, text=caption), *widgets]


CTL_TOKEN = Screen(
    name="ctl_token",
    title="$(P) control token",
    width=450,
    height=290,
    macros={"P": "PSU1:"},
    sources=("db/ctlToken.template", "db/e3631a.db"),
    widgets=[
        W("label", "title", 10, 10, 430, 30, text="$(P) control token", title=True),
        *_row(50, "Owner", W("readback", "owner", 130, 50, 310, 25, pv="$(P)CTL:OWNER")),
        W("button", "btn_grab", 130, 85, 100, 30, text="Grab", pv="$(P)CTL:GRAB", value=1),
        W("button", "btn_release", 235, 85, 100, 30, text="Release", pv="$(P)CTL:RELEASE",
          value=1),
        W("button", "btn_force", 340, 85, 100, 30, text="Force", pv="$(P)CTL:FORCE", value=1),
        W("label", "rail_title", 10, 130, 430, 25,
          text="+6 V output: only the token's holder may set it"),
        *_row(165, "Setpoint",
              W("setpoint", "p6v_volt", 130, 165, 150, 25, pv="$(P)P6V:VOLT", units=True)),
        *_row(195, "Programmed",
              W("readback", "p6v_volt_rbv", 130, 195, 150, 25, pv="$(P)P6V:VOLT_RBV",
                units=True)),
        *_row(225, "Measured",
              W("readback", "p6v_volt_meas", 130, 225, 150, 25, pv="$(P)P6V:VOLT_MEAS",
                units=True)),
    ],
)

SCREENS = [CTL_TOKEN]

_RECORD = re.compile(r'record\(\s*"?(\w+)"?\s*,\s*"([^"]+)"\s*\)\s*\{(.*?)\n\}', re.S)
_DESC = re.compile(r'field\(\s*DESC\s*,\s*"([^"]*)"\s*\)')


def read_records(paths: tuple[str, ...]) -> dict[str, tuple[str, str]]:
    """Record name (macros as written) -> (record type, DESC) over the given db files."""
    out: dict[str, tuple[str, str]] = {}
    for p in paths:
        for rtype, name, body in _RECORD.findall((ROOT / p).read_text()):
            d = _DESC.search(body)
            out[name] = (rtype, d.group(1) if d else "")
    return out


def check(screen: Screen) -> dict[str, tuple[str, str]]:
    """The records the screen's PVs name; raises ValueError for an unknown or read-only one."""
    records = read_records(screen.sources)
    names = [w.name for w in screen.widgets]
    if len(set(names)) != len(names):
        raise ValueError(f"{screen.name}: widget names repeat: {sorted(names)}")
    used = {}
    for w in screen.widgets:
        if not w.pv:
            continue
        rec = w.pv.split(".", 1)[0]
        if rec not in records:
            raise ValueError(f"{screen.name}: {w.name}: no record {rec} in {screen.sources}")
        if w.kind in ("button", "setpoint") and records[rec][0] not in OUTPUT_RECORDS:
            raise ValueError(f"{screen.name}: {w.name}: {rec} is a {records[rec][0]}, "
                             "not an output")
        used[w.pv] = records[rec]
    return used


def write_bob(screen: Screen, path: Path) -> None:
    import phoebusgen
    from phoebusgen import widget as pw

    records = check(screen)
    s = phoebusgen.screen.Screen(screen.title)
    for k, v in screen.macros.items():
        s.macro(k, v)
    s.width(screen.width)
    s.height(screen.height)
    for w in screen.widgets:
        geo = (w.x, w.y, w.width, w.height)
        if w.kind == "label":
            x = pw.Label(w.name, w.text, *geo)
            if w.title:
                x.predefined_font(phoebusgen.fonts.Header2)
        elif w.kind == "readback":
            x = pw.TextUpdate(w.name, w.pv, *geo)
            x.show_units(w.units)
        elif w.kind == "setpoint":
            x = pw.TextEntry(w.name, w.pv, *geo)
            x.show_units(w.units)
        elif w.kind == "button":
            x = pw.ActionButton(w.name, w.text, w.pv, *geo)
            x.action_write_pv(w.pv, w.value, f"{w.text}: write {w.value} to {w.pv}")
        else:
            raise ValueError(f"{screen.name}: {w.name}: unknown kind {w.kind!r}")
        if w.pv and records[w.pv][1]:
            x.tool_tip(f"{records[w.pv][1]}\n$(pv_name): $(pv_value)")
        s.add_widget(x)
    path.parent.mkdir(parents=True, exist_ok=True)
    s.write_screen(str(path))


_PYDM_CLASSES = {  # kind -> (class, Qt base class, module)
    "label": ("QLabel", None, None),
    "readback": ("PyDMLabel", "QLabel", "pydm.widgets.label"),
    "setpoint": ("PyDMLineEdit", "QLineEdit", "pydm.widgets.line_edit"),
    "button": ("PyDMPushButton", "QPushButton", "pydm.widgets.pushbutton"),
}


def pydm_text(s: str) -> str:
    """$(P) (EPICS/Phoebus macro) -> ${P} (PyDM macro)."""
    return re.sub(r"\$\((\w+)\)", r"${\1}", s)


def _prop(parent: ET.Element, name: str, kind: str, value, stdset: bool = True) -> None:
    p = ET.SubElement(parent, "property", {"name": name} if stdset else
                      {"name": name, "stdset": "0"})
    if kind == "rect":
        r = ET.SubElement(p, "rect")
        for k, v in zip(("x", "y", "width", "height"), value):
            ET.SubElement(r, k).text = str(v)
    else:
        ET.SubElement(p, kind).text = value


def write_ui(screen: Screen, path: Path) -> None:
    records = check(screen)
    ui = ET.Element("ui", version="4.0")
    ET.SubElement(ui, "class").text = "Form"
    form = ET.SubElement(ui, "widget", {"class": "QWidget", "name": "Form"})
    _prop(form, "geometry", "rect", (0, 0, screen.width, screen.height))
    _prop(form, "windowTitle", "string", pydm_text(screen.title))
    used = []
    for w in screen.widgets:
        cls, base, module = _PYDM_CLASSES[w.kind]
        if base and cls not in used:
            used.append(cls)
        x = ET.SubElement(form, "widget", {"class": cls, "name": w.name})
        _prop(x, "geometry", "rect", (w.x, w.y, w.width, w.height))
        if w.pv and records[w.pv][1]:
            _prop(x, "toolTip", "string", records[w.pv][1])
        if w.kind == "label":
            _prop(x, "text", "string", pydm_text(w.text))
            if w.title:
                font = ET.SubElement(ET.SubElement(x, "property", name="font"), "font")
                ET.SubElement(font, "pointsize").text = "14"
                ET.SubElement(font, "bold").text = "true"
            continue
        if w.kind == "button":
            _prop(x, "text", "string", w.text)
        _prop(x, "channel", "string", "ca://" + pydm_text(w.pv), stdset=False)
        if w.kind in ("readback", "setpoint"):
            _prop(x, "showUnits", "bool", "true" if w.units else "false", stdset=False)
        if w.kind == "button":
            _prop(x, "pressValue", "string", str(w.value), stdset=False)
    custom = ET.SubElement(ui, "customwidgets")
    for cls in used:
        _, base, module = next(v for v in _PYDM_CLASSES.values() if v[0] == cls)
        c = ET.SubElement(custom, "customwidget")
        ET.SubElement(c, "class").text = cls
        ET.SubElement(c, "extends").text = base
        ET.SubElement(c, "header").text = module
    ET.SubElement(ui, "resources")
    ET.SubElement(ui, "connections")
    ET.indent(ui, " ")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n'
                    + ET.tostring(ui, encoding="unicode") + "\n")


def generate(out: Path) -> list[Path]:
    """Write every screen under ``out``; the paths written, relative to ``out``."""
    written = []
    for screen in SCREENS:
        write_bob(screen, out / f"{screen.name}.bob")
        write_ui(screen, out / "pydm" / f"{screen.name}.ui")
        written += [Path(f"{screen.name}.bob"), Path("pydm") / f"{screen.name}.ui"]
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--out", type=Path, default=ROOT / "opi", help="output folder (default opi/)")
    ap.add_argument("--check", action="store_true",
                    help="compare with the files in --out instead of writing; "
                    "exit 1 on a difference")
    a = ap.parse_args(argv)
    if not a.check:
        for p in generate(a.out):
            print(a.out / p)
        return 0
    with tempfile.TemporaryDirectory() as d:
        stale = [p for p in generate(Path(d)) if not (a.out / p).is_file()
                 or (a.out / p).read_bytes() != (Path(d) / p).read_bytes()]
    for p in stale:
        print(f"out of date: {a.out / p} (run python tools/gen_screens.py)")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
