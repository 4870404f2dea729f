"""Timing profiles of the simulated E3631A: processing time of each query, busy time after each
setting, device-clear recovery, and wire time on the serial line.

Nominal costs (seconds) per program message unit:

============================  =====  =====  =========
unit                          ideal  spec   realistic
============================  =====  =====  =========
``MEAS...?``                  0      0.100  0.230
``APPL?``, ``VOLT?``, ``CURR?``  0   0.050  0.060
``*TST?``                     0      0.050  1.200
any other query (``*OPC?``)   0      0.050  0.050
busy after ``APPL``           0      0.050  0.115
busy after ``VOLT``/``CURR``  0      0.050  0.060
busy after ``INST``           0      0.050  0.047
busy after ``OUTP ON``        0      0.050  0.130
busy after ``OUTP OFF``       0      0.050  0.052
busy after ``*RST``           0      0.050  0.300
busy after any other setting  0      0.050  0.050
device clear (Ctrl-C)         0      0.001  0.001
============================  =====  =====  =========

``spec`` is the manual (UG07 p.156: commands < 50 ms, MEAS < 100 ms); ``realistic`` is what a
real unit was seen to take (reference §8). ``realistic`` adds jitter in [0, 2 ms] on top of the
nominal value, never below it, so the nominal costs are hard lower bounds for every profile.
``ideal`` has no wire time either; the others take 11 bits per character (8N2) each way.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

from .scpi import classify

BITS_PER_CHAR = 11      # 1 start + 8 data + 2 stop bits


def wire_s(nchars: int, baud: int, bits_per_char: int = BITS_PER_CHAR) -> float:
    """Time on the wire for ``nchars`` characters at ``baud`` (9600 8N2: 1.1458 ms each)."""
    return nchars * bits_per_char / baud


_LEVEL_KEYS = ("APPL", "SOUR:VOLT", "SOUR:VOLT:TRIG", "SOUR:CURR", "SOUR:CURR:TRIG")


def _is_on(params: str) -> bool:
    word = params.strip().split(",")[0].strip().upper()
    if word == "ON":
        return True
    try:
        return float(word) != 0
    except ValueError:
        return False


@dataclass(frozen=True)
class Profile:
    """One timing profile; see the module docstring for the numbers."""
    name: str
    meas_s: float
    level_query_s: float
    selftest_s: float
    query_s: float
    appl_busy_s: float
    level_busy_s: float
    inst_busy_s: float
    outp_on_busy_s: float
    outp_off_busy_s: float
    rst_busy_s: float
    setting_busy_s: float
    clear_s: float
    wire: bool
    jitter_s: float = 0.0

    def cost_for(self, key: str, query: bool, params: str = "") -> float:
        """Nominal processing (query) or busy (setting) time of a resolved command key."""
        if query:
            if key.startswith("MEAS:"):
                return self.meas_s
            if key in _LEVEL_KEYS:
                return self.level_query_s
            if key == "*TST":
                return self.selftest_s
            return self.query_s
        if key == "APPL":
            return self.appl_busy_s
        if key in _LEVEL_KEYS:
            return self.level_busy_s
        if key in ("INST:SEL", "INST:NSEL"):
            return self.inst_busy_s
        if key == "OUTP:STAT":
            return self.outp_on_busy_s if _is_on(params) else self.outp_off_busy_s
        if key == "*RST":
            return self.rst_busy_s
        return self.setting_busy_s

    def cost_s(self, unit: str) -> float:
        """Nominal cost of ONE program message unit, e.g. ``"MEAS? P6V"``, ``"OUTP ON"``.

        The unit is resolved from the root path; a unit that does not parse costs like any
        other query (if its header ends in ``?``) or setting.
        """
        key, query, params = classify(unit)
        return self.cost_for(key, query, params)

    def sample_s(self, key: str, query: bool, params: str, rng: random.Random) -> float:
        """The time the simulator actually uses: nominal, plus jitter in [0, jitter_s]."""
        cost = self.cost_for(key, query, params)
        if self.jitter_s and cost:
            cost += rng.uniform(0.0, self.jitter_s)
        return cost

    def wire_s(self, nchars: int, baud: int, bits_per_char: int = BITS_PER_CHAR) -> float:
        """Wire time of ``nchars`` characters in this profile (0 for ``ideal``)."""
        return wire_s(nchars, baud, bits_per_char) if self.wire else 0.0


PROFILES: dict[str, Profile] = {
    "ideal": Profile("ideal", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0,
                     wire=False),
    "spec": Profile("spec", meas_s=0.100, level_query_s=0.050, selftest_s=0.050, query_s=0.050,
                    appl_busy_s=0.050, level_busy_s=0.050, inst_busy_s=0.050,
                    outp_on_busy_s=0.050, outp_off_busy_s=0.050, rst_busy_s=0.050,
                    setting_busy_s=0.050, clear_s=0.001, wire=True),
    "realistic": Profile("realistic", meas_s=0.230, level_query_s=0.060, selftest_s=1.200,
                         query_s=0.050, appl_busy_s=0.115, level_busy_s=0.060,
                         inst_busy_s=0.047, outp_on_busy_s=0.130, outp_off_busy_s=0.052,
                         rst_busy_s=0.300, setting_busy_s=0.050, clear_s=0.001, wire=True,
                         jitter_s=0.002),
}


def get_profile(name: str | Profile) -> Profile:
    """A profile by name (``ideal``, ``spec``, ``realistic``); ValueError for others."""
    if isinstance(name, Profile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown timing profile {name!r} (ideal, spec, realistic)") from None
