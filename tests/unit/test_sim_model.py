"""E3631A simulator: instrument state, load model, triggers, memory, counters, timing profiles.

Pure model (``Instrument``) and ``Profile`` numbers; nothing here sleeps or opens a port.
"""
from __future__ import annotations

import random

import pytest

from ioc.psu.sim import PROFILES, get_profile, wire_s
from ioc.psu.sim.model import Instrument
from ioc.psu.sim.specs import SPECS


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def inst() -> Instrument:
    i = Instrument(rng=random.Random(3))
    i.ask("SYST:REM")
    return i


def errs(i: Instrument) -> list[str]:
    out = []
    while not (e := i.ask("SYST:ERR?")).startswith("+0,"):
        out.append(e)
    return out


def volts(i: Instrument, rail: str) -> float:
    return i.snapshot()["rails"][rail]["volt"]


# ---------------------------------------------------------------- *RST, *SAV, *RCL

def test_rst_state(inst):
    inst.ask("APPL P25V,5,0.5;:OUTP ON;:OUTP:TRAC ON;:TRIG:SOUR IMM;DEL 2;:DISP OFF;"
             ":INST:COUP ALL")
    assert errs(inst) == ['+800,"P25V and N25V coupled by track system"']
    inst.ask("*RST")
    assert inst.ask("APPL? P6V;APPL? P25V;APPL? N25V") == \
        '"0.000000,5.000000";"0.000000,1.000000";"0.000000,1.000000"'
    assert inst.ask("INST?;:OUTP?;:OUTP:TRAC?;:TRIG:SOUR?;DEL?;:DISP?;:INST:COUP?") == \
        "P6V;0;0;BUS;+0.00000000E+00;1;NONE"
    assert inst.remote                               # *RST does not change remote/local


def test_sav_and_rcl(inst):
    inst.ask("APPL P6V,1,2;APPL N25V,-3,0.5;APPL P25V,4,0.6;:OUTP ON;:TRIG:DEL 2.5;"
             ":VOLT:TRIG 7")
    inst.ask("*SAV 2")
    inst.ask("*RST;:VOLT:TRIG 1")
    assert inst.ask("APPL? N25V") == '"0.000000,1.000000"'
    inst.ask("*RCL 2")
    assert inst.ask("APPL? P6V;APPL? P25V;APPL? N25V") == \
        '"1.000000,2.000000";"4.000000,0.600000";"-3.000000,0.500000"'
    assert inst.ask("INST?;:OUTP?;:TRIG:DEL?") == "P25V;1;+2.00000000E+00"   # fraction dropped
    inst.ask("*RCL 3")                               # never saved: *RST values
    assert inst.ask("APPL? P6V;:OUTP?;:INST?") == '"0.000000,5.000000";0;P6V'
    assert errs(inst) == []


# ---------------------------------------------------------------- tracking

def test_tracking_copies_the_25v_level(inst):
    inst.ask("APPL P25V,12,0.5;APPL N25V,-3,0.5")
    inst.ask("OUTP:TRAC ON")
    assert volts(inst, "N25V") == -12.0               # enabled: N25V takes the +25 V level
    inst.ask("INST P25V;:VOLT 10")
    assert volts(inst, "N25V") == -10.0
    inst.ask("APPL N25V,-7")
    assert volts(inst, "P25V") == 7.0
    inst.ask("APPL P6V,2")
    assert volts(inst, "N25V") == -7.0
    inst.ask("OUTP:TRAC OFF;:APPL P25V,1")
    assert volts(inst, "N25V") == -7.0


def test_tracking_and_trigger_coupling_exclude_each_other(inst):
    inst.ask("OUTP:TRAC ON")
    inst.ask("INST:COUP P25V,N25V")
    assert errs(inst) == ['+800,"P25V and N25V coupled by track system"']
    inst.ask("INST:COUP P6V,P25V")                      # one of the pair is fine
    assert inst.ask("INST:COUP?") == "P6V,P25V" and errs(inst) == []
    inst.ask("OUTP:TRAC OFF;:INST:COUP ALL")
    inst.ask("OUTP:TRAC ON")
    assert errs(inst) == ['+801,"P25V and N25V coupled by trigger subsystem"']
    assert inst.ask("OUTP:TRAC?") == "0"


# ---------------------------------------------------------------- load model

def test_cv_cc_crossover_and_status(inst):
    inst.ask("APPL P6V,5,1")                           # 10 ohm: 0.5 A < 1 A -> CV
    assert inst.ask("STAT:QUES:INST:ISUM1:COND?") == "0"   # output off
    inst.ask("OUTP ON")
    v, i, mode = inst.terminal("P6V")
    assert (mode, v, i) == ("CV", 5.0, 0.5)
    assert inst.ask("STAT:QUES:INST:ISUM1:COND?") == "2"
    inst.ask("CURR 0.2")                                # 0.5 A wanted, 0.2 A allowed -> CC
    v, i, mode = inst.terminal("P6V")
    assert mode == "CC" and i == 0.2 and v == pytest.approx(2.0)
    assert inst.ask("STAT:QUES:INST:ISUM1:COND?") == "1"
    inst.set_load("P6V", 100.0)
    assert inst.terminal("P6V")[2] == "CV"
    inst.ask("APPL N25V,-20,0.1")                       # 100 ohm: 0.2 A wanted -> CC
    v, i, mode = inst.terminal("N25V")
    assert mode == "CC" and v == pytest.approx(-10.0) and i == 0.1     # N25V: V < 0, I > 0
    assert inst.ask("STAT:QUES:INST:ISUM3:COND?") == "1"


def test_measurements_follow_setting_with_noise_within_resolution(inst):
    inst.ask("APPL P25V,12.5,0.5;:OUTP ON")
    spec = SPECS["P25V"]
    vs = [float(inst.ask("MEAS? P25V")) for _ in range(50)]
    cs = [float(inst.ask("MEAS:CURR? P25V")) for _ in range(50)]
    assert all(abs(v - 12.5) <= spec.v_res for v in vs)
    assert all(abs(c - 0.125) <= spec.i_res for c in cs)
    assert len(set(vs)) > 10                            # the readings move
    inst.ask("OUTP OFF")
    off_v = [float(inst.ask("MEAS? P25V")) for _ in range(30)]
    off_i = [float(inst.ask("MEAS:CURR? P25V")) for _ in range(30)]
    assert all(abs(v) < 0.01 for v in off_v) and all(abs(c) < 0.001 for c in off_i)
    assert min(off_v + off_i) < 0 < max(off_v)          # tiny, of either sign


def test_noise_is_repeatable_with_a_seed():
    def run(seed):
        i = Instrument(rng=random.Random(seed))
        i.ask("SYST:REM;:APPL P6V,3.3,1;:OUTP ON")
        return [i.ask("MEAS?") for _ in range(5)]
    assert run(11) == run(11) != run(12)


def test_panel_change_and_load(inst):
    inst.ask("APPL P6V,1,1")
    inst.panel("P6V", "VOLT", 4.0)
    assert inst.ask("VOLT?") == "+4.00000000E+00"
    assert inst.remote and errs(inst) == []
    with pytest.raises(ValueError):
        inst.panel("P6V", "VOLT", 7.0)
    with pytest.raises(ValueError):
        inst.set_load("P6V", 0.0)


# ---------------------------------------------------------------- trigger

def test_bus_trigger_cycle():
    clock = FakeClock()
    i = Instrument(rng=random.Random(1), clock=clock)
    i.ask("SYST:REM;:APPL P6V,1,1")
    assert i.ask("VOLT:TRIG?") == "+1.00000000E+00"     # not programmed: shows IMMediate
    i.ask("VOLT:TRIG 3;:CURR:TRIG 0.5")
    assert i.ask("VOLT?;VOLT:TRIG?") == "+1.00000000E+00;+3.00000000E+00"
    i.ask("*TRG")
    assert errs(i) == ['-211,"Trigger ignored"']        # not armed
    i.ask("INIT;*TRG")
    assert i.ask("APPL?") == '"3.000000,0.500000"'
    i.ask("VOLT:TRIG 4;:INIT;:INST P6V;*TRG")           # an INST write disarms silently
    assert errs(i) == ['-211,"Trigger ignored"']
    i.ask("TRIG:DEL 2;:INIT;*TRG")                      # BUS source honours the delay
    assert i.ask("VOLT?") == "+3.00000000E+00"
    clock.t += 2.0
    assert i.ask("VOLT?") == "+4.00000000E+00"


def test_immediate_trigger_and_coupling(inst):
    inst.ask("APPL P25V,1;APPL P6V,1;:VOLT:TRIG 2;:INST P25V;:VOLT:TRIG 5;:INST:COUP ALL")
    inst.ask("TRIG:SOUR IMM;:INIT")
    assert volts(inst, "P6V") == 2.0 and volts(inst, "P25V") == 5.0
    assert errs(inst) == []


# ---------------------------------------------------------------- counters, power cycle

def test_setting_writes_count_executed_level_changes(inst):
    base = dict(inst.setting_writes)

    def delta():
        return {r: inst.setting_writes[r] - base[r] for r in base}
    inst.ask("APPL P6V,1,1")
    inst.ask("VOLT?;:MEAS? P25V;:OUTP ON;:INST P25V")   # queries, OUTP, INST: not levels
    inst.ask("VOLT 99")                                  # refused: not executed
    assert delta() == {"P6V": 1, "P25V": 0, "N25V": 0}
    inst.ask("OUTP:TRAC ON;:VOLT 3")                     # tracking: both ±25 V rails change
    assert delta() == {"P6V": 1, "P25V": 1, "N25V": 2}
    inst.panel("P6V", "CURR", 0.1)                       # front panel: nothing was sent
    assert delta() == {"P6V": 1, "P25V": 1, "N25V": 2}
    inst.ask("*RST")
    assert delta() == {"P6V": 2, "P25V": 2, "N25V": 3}


def test_power_cycle_state(inst):
    inst.ask("APPL P6V,2,1;:OUTP ON;*SAV 1;FOO;*ESR?")
    inst.power_cycle()
    s = inst.snapshot()
    assert s["power_cycles"] == 1 and not s["remote"] and not s["output"]
    assert s["error_queue"] == [] and s["rails"]["P6V"]["volt"] == 0.0
    assert inst.ask("*ESR?") == "128"                    # PON
    inst.ask("SYST:REM;*RCL 1")                           # *SAV slots are non-volatile
    assert inst.ask("APPL? P6V") == '"2.000000,1.000000"'


def test_status_byte(inst):
    inst.ask("*CLS;*ESE 32;*SRE 32")
    assert inst.ask("*STB?") == "0"
    inst.ask("FOO")                                      # command error sets CME (32)
    assert inst.ask("*STB?") == "96"                     # ESB + RQS
    assert inst.ask("*ESR?") == "32" and inst.ask("*ESR?") == "0"
    inst.ask("STAT:QUES:INST:ISUM2:ENAB 3;:STAT:QUES:INST:ENAB 4;:STAT:QUES:ENAB 8192")
    inst.ask("APPL P25V,5,1;:OUTP ON")
    assert inst.ask("STAT:QUES:INST:ISUM2:EVEN?") == "2"   # CV latched
    assert inst.ask("STAT:QUES:INST:ISUM2:EVEN?") == "0"   # read clears
    assert int(inst.ask("*STB?")) & 8                       # QUES summary


# ---------------------------------------------------------------- timing profiles

@pytest.mark.parametrize("unit, ideal, spec, realistic", [
    ("MEAS? P6V", 0, 0.100, 0.230), ("MEAS:CURR? N25V", 0, 0.100, 0.230),
    ("APPL? P25V", 0, 0.050, 0.060), ("VOLT?", 0, 0.050, 0.060), ("CURR?", 0, 0.050, 0.060),
    ("OUTP?", 0, 0.050, 0.050), ("SYST:ERR?", 0, 0.050, 0.050), ("*IDN?", 0, 0.050, 0.050),
    ("SYST:VERS?", 0, 0.050, 0.050), ("INST?", 0, 0.050, 0.050), ("*OPC?", 0, 0.050, 0.050),
    ("STAT:QUES:INST:ISUM1:COND?", 0, 0.050, 0.050), ("*TST?", 0, 0.050, 1.200),
    ("APPL P6V,3.3", 0, 0.050, 0.115), ("VOLT 5", 0, 0.050, 0.060),
    ("CURR 0.1", 0, 0.050, 0.060), ("INST P25V", 0, 0.050, 0.047),
    ("INST:NSEL 2", 0, 0.050, 0.047), ("OUTP ON", 0, 0.050, 0.130), ("OUTP 1", 0, 0.050, 0.130),
    ("OUTP OFF", 0, 0.050, 0.052), ("*RST", 0, 0.050, 0.300), ("SYST:REM", 0, 0.050, 0.050),
    ("OUTP:TRAC ON", 0, 0.050, 0.050), ("*CLS", 0, 0.050, 0.050), ("DISP OFF", 0, 0.050, 0.050),
])
def test_profile_nominal_costs(unit, ideal, spec, realistic):
    assert PROFILES["ideal"].cost_s(unit) == ideal
    assert PROFILES["spec"].cost_s(unit) == spec
    assert PROFILES["realistic"].cost_s(unit) == realistic


def test_realistic_jitter_never_below_nominal_nor_above_by_3ms():
    p = get_profile("realistic")
    rng = random.Random(5)
    samples = [p.sample_s("MEAS:VOLT", True, "", rng) for _ in range(500)]
    assert min(samples) >= 0.230 and max(samples) <= 0.233
    assert get_profile("spec").sample_s("MEAS:VOLT", True, "", rng) == 0.100


def test_wire_time():
    assert wire_s(17, 9600) == pytest.approx(0.019479, abs=1e-6)     # NR3 reply, 8N2
    assert wire_s(10, 9600, bits_per_char=10) == pytest.approx(10 / 960)
    assert PROFILES["spec"].wire_s(16, 9600) == pytest.approx(0.018333, abs=1e-6)
    assert PROFILES["ideal"].wire_s(16, 9600) == 0
    with pytest.raises(ValueError):
        get_profile("fast")
