"""The master PLL's loop and lock detector against a simulated oscillator (no threads, no clock):
the error moves as de/dt = trim + oscillator error, plus measurement noise."""
from __future__ import annotations

import random

from timing.evt.pll import Pll, PllConfig

T = 2.0


class Plant:
    """Event time minus reference, for a tick generator with ``ppm`` error trimmed by the PLL."""

    def __init__(self, ppm: float, e0_ns: float = 3_000, noise_ns: float = 5_000, seed: int = 1):
        self.ppm, self.e_ns, self.noise_ns = ppm, e0_ns, noise_ns
        self.rnd = random.Random(seed)
        self.t = 0.0
        self.trim = 0.0

    def sample(self) -> int:
        return int(self.e_ns + self.rnd.gauss(0, self.noise_ns))

    def run(self, pll: Pll, n: int, can_step=lambda: False) -> list:
        log = []
        for _ in range(n):
            d = pll.update(self.sample(), self.t, can_step())
            self.trim = d.trim
            self.e_ns += d.step_ns
            log.append((self.t, self.e_ns, d))
            self.e_ns += T * (self.trim + self.ppm * 1e-6) * 1e9
            self.t += T
        return log


def test_locks_a_50_ppm_oscillator_well_within_30_s_and_holds_it():
    for ppm in (50, -50, 37, 150):
        pll, plant = Pll(PllConfig(interval_s=T)), Plant(ppm)
        log = plant.run(pll, 60)
        t_lock = next(t for t, _, d in log if d.event == "locked")
        assert t_lock <= 30, (ppm, t_lock)
        assert pll.locked and pll.losses == 0
        assert abs(pll.trim * 1e6 + ppm) < 5, (ppm, pll.trim)     # the trim cancels the error
        tail = sorted(abs(e) for _, e, _ in log[-30:])
        assert tail[-1] < 50_000, (ppm, tail[-5:])                 # within 50 us, noise 5 us


def test_beyond_the_pull_range_it_loses_lock_restores_the_rate_and_never_relocks():
    pll, plant = Pll(PllConfig(interval_s=T)), Plant(50)
    plant.run(pll, 15)
    assert pll.locked
    plant.ppm = 2000                                  # fault: far beyond +-200 ppm
    log = plant.run(pll, 4)
    lost = [d for _, _, d in log if d.event == "lost"]
    assert lost and not pll.locked
    assert lost[0].trim == 0.0                        # initial rate restored
    # Invalid now: it may step, but cannot hold the phase with 2000 ppm.
    log = plant.run(pll, 20, can_step=lambda: True)
    assert not any(d.event == "locked" for _, _, d in log)
    assert sum(d.event == "step" for _, _, d in log) >= 5
    # The cause goes: it steps the phase away and locks again.
    plant.ppm = 50
    log = plant.run(pll, 20, can_step=lambda: not pll.locked)
    assert any(d.event == "locked" for _, _, d in log) and pll.locked
    assert abs(plant.e_ns) < 100_000


def test_a_valid_clock_is_never_stepped():
    pll, plant = Pll(PllConfig(interval_s=T)), Plant(0, e0_ns=800_000)
    log = plant.run(pll, 10, can_step=lambda: False)
    assert all(d.step_ns == 0 for _, _, d in log)
    assert abs(plant.e_ns) < 100_000                  # slewed out instead


def test_hysteresis_errors_between_the_thresholds_do_not_toggle_the_lock():
    pll = Pll(PllConfig(interval_s=T))
    t = 0.0
    for _ in range(5):
        pll.update(10_000, t, False)
        t += T
    assert pll.locked
    events = []
    for i in range(40):                               # 100 us .. 1 ms: neither lock nor unlock
        events.append(pll.update(900_000 if i % 2 else -500_000, t, False).event)
        t += T
    assert pll.locked and not any(events)
    assert pll.update(2_000_000, t, False).event is None          # one sample is not enough
    assert pll.update(2_000_000, t + T, False).event == "lost"


def test_a_reference_step_is_slewed_out_without_winding_up_the_frequency():
    pll, plant = Pll(PllConfig(interval_s=T)), Plant(50)
    plant.run(pll, 15)
    assert pll.locked
    plant.e_ns -= 1_000_000                          # NTP corrected itself by 1 ms
    log = plant.run(pll, 20)
    errs = [e for _, e, _ in log]
    assert pll.locked and pll.losses == 0            # 1 ms for one sample: no lock loss
    assert max(errs[1:]) < 100_000, errs             # overshoot well under the step
    assert max(abs(e) for e in errs[10:]) < 50_000, errs  # settled within 20 s
    plant.e_ns -= 3_000_000                          # 3 ms: slewed out at the pull rate
    log = plant.run(pll, 20)
    assert pll.losses == 0 and pll.locked and abs(log[-1][1]) < 50_000
