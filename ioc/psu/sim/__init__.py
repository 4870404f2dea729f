"""Simulated Agilent/Keysight E3631A triple-output power supply (RS-232, SCPI).

A model of the instrument, not a canned-reply table: the SCPI parser and state machine
(``model``, ``scpi``), timing profiles (``timing``), a real-time engine with wire time, busy time,
Ctrl-C device clear and injected faults (``engine``), and three ways in:

* in process: ``Simulator(profile="realistic", baud=9600, seed=None)``;
* through pyserial: importing this package registers the ``sim://`` URL scheme, so
  ``serial.serial_for_url("sim://psu1?profile=spec&baud=9600&seed=1")`` opens the NAMED
  instance ``psu1`` (created on first use, shared in the process, one open port at a time;
  ``instance("psu1")`` returns it). ``sim://`` without a name opens a fresh private instance;
* out of process: the console script ``e3631a-sim`` (``cli``) serves a pty and/or TCP port and a
  control channel (``serve``).
"""
from __future__ import annotations

import atexit
import threading

import serial

from .simulator import Simulator
from .timing import PROFILES, Profile, get_profile, wire_s

__all__ = ["Simulator", "Profile", "PROFILES", "get_profile", "wire_s", "instance",
           "close_instance"]

_instances: dict[str, Simulator] = {}
_instances_lock = threading.Lock()


def instance(name: str, profile: str | None = None, baud: int | None = None,
             seed: int | None = None) -> Simulator:
    """The named simulator behind ``sim://NAME``, created on first use.

    ``profile``/``baud`` reconfigure an existing instance when given; ``seed`` only applies when
    the instance is created (default profile ``realistic``, 9600 baud).
    """
    with _instances_lock:
        sim = _instances.get(name)
        if sim is None or sim.closed:
            sim = Simulator(profile or "realistic", baud or 9600, seed)
            _instances[name] = sim
            return sim
    if profile is not None:
        sim.set_profile(profile)
    if baud is not None:
        sim.set_baud(baud)
    return sim


def close_instance(name: str) -> None:
    """Stop and forget a named instance (the next ``sim://NAME`` gets a fresh one)."""
    with _instances_lock:
        sim = _instances.pop(name, None)
    if sim is not None:
        sim.close()


@atexit.register
def _close_all() -> None:
    for name in list(_instances):
        close_instance(name)


if "ioc.psu.sim" not in serial.protocol_handler_packages:
    serial.protocol_handler_packages.append("ioc.psu.sim")
