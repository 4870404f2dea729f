"""SCPI command handlers of the simulated E3631A, registered by command key (``"APPL"``,
``"SOUR:VOLT"``, ``"*RST"``) in ``SET`` (settings) and ``QUERY`` (queries).

A handler is ``handler(instrument, params: list[Tok], suffix: int)``; a query handler returns the
reply text. Every handler validates all its parameters before it changes anything, so a failing
command leaves the state as it was.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import scpi
from .scpi import ScpiError, Tok, fixed6, nr3
from .specs import IDN, MINMAX, RAILS, SPECS, VERSION

if TYPE_CHECKING:
    from .model import Instrument

SET: dict[str, Callable] = {}
QUERY: dict[str, Callable] = {}


def _handler(table: dict, keys: tuple[str, ...], params: tuple[int, int] | None):
    def deco(fn):
        def run(self, toks: list[Tok], suffix: int):
            if params is not None:
                scpi.count(toks, *params)
            return fn(self, toks, suffix)
        for k in keys:
            table[k] = run
        return fn
    return deco


def setting(*keys: str, params: tuple[int, int] | None = (0, 0)):
    return _handler(SET, keys, params)


def query(*keys: str, params: tuple[int, int] | None = (0, 0)):
    return _handler(QUERY, keys, params)


@setting("APPL", params=(1, 3))
def _appl(self: "Instrument", toks, _):
    rail = self._rail(toks[0])
    v = self._level(rail, "VOLT", toks[1], True) if len(toks) > 1 else None
    i = self._level(rail, "CURR", toks[2], True) if len(toks) > 2 else None
    self.selected = rail        # APPL works as INST:SEL + VOLT + CURR
    if v is not None:
        self._set_volt(rail, v)
    if i is not None:
        self._set_curr(rail, i)


@query("APPL", params=(0, 1))
def _appl_q(self: "Instrument", toks, _):
    r = self.rails[self._rail(toks[0]) if toks else self.selected]
    return f'"{fixed6(r.volt)},{fixed6(r.curr)}"'


@setting("INST:SEL", params=(1, 1))
def _inst(self: "Instrument", toks, _):
    self._select(self._rail(toks[0]))


@query("INST:SEL")
def _inst_q(self: "Instrument", toks, _):
    return self.selected


@setting("INST:NSEL", params=(1, 1))
def _nsel(self: "Instrument", toks, _):
    self._select(RAILS[scpi.integer(toks[0], 1, 3) - 1])


@query("INST:NSEL")
def _nsel_q(self: "Instrument", toks, _):
    return str(RAILS.index(self.selected) + 1)


@setting("INST:COUP", params=(1, 3))
def _coup(self: "Instrument", toks, _):
    if len(toks) == 1 and toks[0].kind == "char" and toks[0].text in ("ALL", "NONE"):
        chosen = set(RAILS) if toks[0].text == "ALL" else set()
    else:
        chosen = {self._rail(t) for t in toks}
    if self.tracking and {"P25V", "N25V"} <= chosen:
        raise ScpiError(800)
    self.couple = [r for r in RAILS if r in chosen]


@query("INST:COUP")
def _coup_q(self: "Instrument", toks, _):
    if len(self.couple) == 3:
        return "ALL"
    return ",".join(self.couple) if self.couple else "NONE"


def _meas_handler(what: str):
    def run(self: "Instrument", toks, _):
        scpi.count(toks, 0, 1)
        rail = self._rail(toks[0]) if toks else self.selected
        return nr3(self.measure(rail, what))
    return run


QUERY["MEAS:VOLT"] = _meas_handler("V")
QUERY["MEAS:CURR"] = _meas_handler("I")


@setting("OUTP:STAT", params=(1, 1))
def _outp(self: "Instrument", toks, _):
    self.output = scpi.boolean(toks[0])


@query("OUTP:STAT")
def _outp_q(self: "Instrument", toks, _):
    return "1" if self.output else "0"


@setting("OUTP:TRAC", params=(1, 1))
def _trac(self: "Instrument", toks, _):
    on = scpi.boolean(toks[0])
    if on and {"P25V", "N25V"} <= set(self.couple):
        raise ScpiError(801)
    if on and not self.tracking:
        # When first enabled, N25V is set to the +25 V level (UG07 p.77).
        self.rails["N25V"].volt = -self.rails["P25V"].volt
        self._touched.add("N25V")
    self.tracking = on


@query("OUTP:TRAC")
def _trac_q(self: "Instrument", toks, _):
    return "1" if self.tracking else "0"


def _level_handlers(what: str, triggered: bool):
    attr = ("volt" if what == "VOLT" else "curr") + ("_trig" if triggered else "")

    def set_(self: "Instrument", toks, _):
        scpi.count(toks, 1, 1)
        value = self._level(self.selected, what, toks[0])
        if triggered:
            setattr(self.rails[self.selected], attr, value)
            self._touched.add(self.selected)
        elif what == "VOLT":
            self._set_volt(self.selected, value)
        else:
            self._set_curr(self.selected, value)

    def query_(self: "Instrument", toks, _):
        scpi.count(toks, 0, 1)
        spec = SPECS[self.selected]
        if toks:
            which = scpi.choice(toks[0], MINMAX, numeric_error=-108)
            return nr3(0.0 if which == "MIN" else (spec.v_max if what == "VOLT" else spec.i_max))
        r = self.rails[self.selected]
        value = getattr(r, attr)
        if value is None:       # triggered level never programmed: the query shows IMMediate
            value = getattr(r, attr[:4])
        return nr3(value)
    return set_, query_


for _what in ("VOLT", "CURR"):
    for _trig in (False, True):
        _key = f"SOUR:{_what}" + (":TRIG" if _trig else "")
        SET[_key], QUERY[_key] = _level_handlers(_what, _trig)


@setting("INIT")
def _init(self: "Instrument", toks, _):
    if self.trig_source == "IMM":
        self._trigger(0.0)      # IMMediate: one whole trigger cycle at once, no delay
    else:
        self.armed = True


@setting("*TRG")
def _trg(self: "Instrument", toks, _):
    if not (self.armed and self.trig_source == "BUS"):
        raise ScpiError(-211)
    self.armed = False
    self._trigger(self.trig_delay)


@setting("TRIG:SOUR", params=(1, 1))
def _trig_sour(self: "Instrument", toks, _):
    self.trig_source = scpi.choice(toks[0], {"BUS": "BUS", "IMM": "IMM", "IMMEDIATE": "IMM"})


@query("TRIG:SOUR")
def _trig_sour_q(self: "Instrument", toks, _):
    return self.trig_source


@setting("TRIG:DEL", params=(1, 1))
def _trig_del(self: "Instrument", toks, _):
    value = scpi.number(toks[0], "S", {"MIN": 0.0, "MAX": 3600.0})
    if not 0.0 <= value <= 3600.0:
        raise ScpiError(-222)
    self.trig_delay = value


@query("TRIG:DEL", params=(0, 1))
def _trig_del_q(self: "Instrument", toks, _):
    if toks:
        return nr3(0.0 if scpi.choice(toks[0], MINMAX, -108) == "MIN" else 3600.0)
    return nr3(self.trig_delay)


@setting("DISP", params=(1, 1))
def _disp(self: "Instrument", toks, _):
    self.display_on = scpi.boolean(toks[0])


@query("DISP")
def _disp_q(self: "Instrument", toks, _):
    return "1" if self.display_on else "0"


@setting("DISP:TEXT", params=(1, 1))
def _disp_text(self: "Instrument", toks, _):
    text = scpi.string(toks[0])
    if '"' in text:
        raise ScpiError(-103)   # observed: an embedded double quote is "Invalid separator"
    if len(text) > scpi.MAX_STRING:
        raise ScpiError(-223)
    # 13..40 characters are accepted; the display shows the first 12 cells.
    self.display_text = text
    self.text_shown = True


@query("DISP:TEXT")
def _disp_text_q(self: "Instrument", toks, _):
    return f'"{self.display_text}"'


@setting("DISP:TEXT:CLE")
def _disp_clear(self: "Instrument", toks, _):
    self.text_shown = False     # DISP:TEXT? still returns the old string (TCN)


@setting("SYST:BEEP", "*WAI")
def _nothing(self: "Instrument", toks, _):
    pass


@query("SYST:ERR")
def _err_q(self: "Instrument", toks, _):
    return scpi.error_text(self.errors.popleft() if self.errors else 0)


@query("SYST:VERS")
def _vers_q(self: "Instrument", toks, _):
    return VERSION


@setting("SYST:REM")
def _rem(self: "Instrument", toks, _):
    self.remote, self.rwlock = True, False


@setting("SYST:RWL")
def _rwl(self: "Instrument", toks, _):
    self.remote, self.rwlock = True, True


@setting("SYST:LOC")
def _loc(self: "Instrument", toks, _):
    self.remote, self.rwlock = False, False
    self.display_on = True      # the display turns back on in local


def _status_handlers(kind: str):
    """EVEN? (read clears), COND?, ENAB <n>, ENAB? for QUES, QUES:INST and ISUM<n>."""
    def get(self: "Instrument", suffix: int, reg: str) -> int:
        if kind == "ISUM":
            k = suffix - 1
            if reg == "cond":
                return self.isum_cond(RAILS[k])
            return (self.isum_event if reg == "event" else self.isum_enab)[k]
        if reg == "cond":
            return self._inst_prev if kind == "INST" else self._ques_prev
        return getattr(self, f"{kind.lower()}_{reg}")

    def put(self: "Instrument", suffix: int, reg: str, value: int) -> None:
        if kind == "ISUM":
            (self.isum_event if reg == "event" else self.isum_enab)[suffix - 1] = value
        else:
            setattr(self, f"{kind.lower()}_{reg}", value)

    def event_q(self: "Instrument", toks, suffix):
        self._update_status()
        value = get(self, suffix, "event")
        put(self, suffix, "event", 0)
        return str(value)

    def cond_q(self: "Instrument", toks, suffix):
        self._update_status()
        return str(get(self, suffix, "cond"))

    def enab(self: "Instrument", toks, suffix):
        put(self, suffix, "enab", scpi.integer(toks[0], 0, 65535))

    def enab_q(self: "Instrument", toks, suffix):
        return str(get(self, suffix, "enab"))

    prefix = {"QUES": "STAT:QUES", "INST": "STAT:QUES:INST", "ISUM": "STAT:QUES:INST:ISUM"}[kind]
    query(prefix + ":EVEN")(event_q)
    query(prefix + ":COND")(cond_q)
    setting(prefix + ":ENAB", params=(1, 1))(enab)
    query(prefix + ":ENAB")(enab_q)


for _kind in ("QUES", "INST", "ISUM"):
    _status_handlers(_kind)


# ---------------------------------------------------------------- common commands

@query("*IDN")
def _idn(self: "Instrument", toks, _):
    return IDN


@setting("*RST")
def _rst(self: "Instrument", toks, _):
    self._reset()


@setting("*CLS")
def _cls(self: "Instrument", toks, _):
    self.errors.clear()
    self.esr = self.ques_event = self.inst_event = 0
    self.isum_event = [0, 0, 0]


@setting("*ESE", params=(1, 1))
def _ese(self: "Instrument", toks, _):
    self.ese = scpi.integer(toks[0], 0, 255)


@query("*ESE")
def _ese_q(self: "Instrument", toks, _):
    return str(self.ese)


@query("*ESR")
def _esr_q(self: "Instrument", toks, _):
    value, self.esr = self.esr, 0
    return str(value)


@setting("*SRE", params=(1, 1))
def _sre(self: "Instrument", toks, _):
    self.sre = scpi.integer(toks[0], 0, 255)


@query("*SRE")
def _sre_q(self: "Instrument", toks, _):
    return str(self.sre)


@query("*STB")
def _stb_q(self: "Instrument", toks, _):
    return str(self._stb())


@setting("*OPC")
def _opc(self: "Instrument", toks, _):
    self.esr |= 1


@query("*OPC")
def _opc_q(self: "Instrument", toks, _):
    return "1"


@setting("*PSC", params=(1, 1))
def _psc(self: "Instrument", toks, _):
    self.psc = scpi.boolean(toks[0])


@query("*PSC")
def _psc_q(self: "Instrument", toks, _):
    return "1" if self.psc else "0"


@query("*TST")
def _tst_q(self: "Instrument", toks, _):
    return "0"


@setting("*SAV", params=(1, 1))
def _sav(self: "Instrument", toks, _):
    # Saved: INST:SEL, VOLT/CURR of all outputs, OUTP, OUTP:TRAC, TRIG:SOUR, TRIG:DEL.
    self.slots[scpi.integer(toks[0], 1, 3)] = {
        "selected": self.selected, "levels": {r: (x.volt, x.curr) for r, x in self.rails.items()},
        "output": self.output, "tracking": self.tracking, "trig_source": self.trig_source,
        "trig_delay": self.trig_delay}


@setting("*RCL", params=(1, 1))
def _rcl(self: "Instrument", toks, _):
    slot = self.slots[scpi.integer(toks[0], 1, 3)]
    if slot is None:            # an unused location recalls the *RST values
        slot = {"selected": "P6V", "levels": {r: (0.0, SPECS[r].i_rst) for r in RAILS},
                "output": False, "tracking": False, "trig_source": "BUS", "trig_delay": 0.0}
    self.selected = slot["selected"]
    for r, (v, i) in slot["levels"].items():
        self.rails[r].volt, self.rails[r].curr = v, i
    self._touched.update(RAILS)
    self.output = slot["output"]
    self.tracking = slot["tracking"]
    self.trig_source = slot["trig_source"]
    self.trig_delay = float(int(slot["trig_delay"]))   # observed: the fraction is dropped

