"""The access rule engine of EPICS base 7.0.8 asLib (asLibRoutines.c, asCa.c).

Facts carried over:

* A record's ASG name that is not defined selects ``DEFAULT`` (asAddMemberPvt).
* The client's host is lower-cased before matching (asAddClient/asChangeClient); UAG
  users match case-sensitively.
* Rules are scanned in file order and the best access wins (asComputePvt): a rule is
  skipped if it cannot raise the access found so far, if the client's level (the
  record's ASL) is above the rule's level, if it lists UAGs none of which holds the user,
  or HAGs none of which holds the host.  A rule with CALC grants only if none of the
  inputs the expression reads is bad and its last result is 1.  The trapwrite flag is
  that of the rule that granted.  Scanning stops at WRITE.
* A CALC is re-evaluated (asComputeAsgPvt) only when an input it reads has changed; its
  result is 1 iff the value is in (0.99, 1.01), 0 if calcPerform fails.  A CALC reading
  no input is therefore never evaluated and stays false.
* Inputs (asCa.c): each INPx starts bad when the CA links are made; a value with
  INVALID severity marks it bad and is not stored; a good value clears the bit and is
  stored; a disconnect or lost read access marks it bad.  Every update marks it changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional, Union

from .acf import NONE, READ, WRITE, AccessConfig, Asg, CalcError, ascii_lower

__all__ = ["Access", "start_inputs", "set_input", "set_input_disconnected", "compute_asg",
           "compute_access", "compute_rights", "check_get", "check_put"]


@dataclass(frozen=True)
class Access:
    """A client's rights: ``level`` is NONE/READ/WRITE (0/1/2)."""
    level: int
    trapwrite: bool = False

    @property
    def can_read(self) -> bool:
        return self.level >= READ

    @property
    def can_write(self) -> bool:
        return self.level >= WRITE


def start_inputs(config: AccessConfig) -> None:
    """asCaStart: every declared input of every ASG becomes bad until a value arrives."""
    for asg in config.asgs:
        for inp in asg.inputs:
            asg.inp_bad |= 1 << inp.index


def set_input(asg: Asg, index: int, value: float, *, invalid: bool = False) -> None:
    """asCa eventCallback for INP<index>: store a value (or mark bad) and recompute."""
    bit = 1 << index
    if invalid:
        asg.inp_bad |= bit
    else:
        asg.inp_bad &= ~bit
        asg.values[index] = float(value)
    asg.inp_changed |= bit
    compute_asg(asg)


def set_input_disconnected(asg: Asg, index: int) -> None:
    """asCa connectCallback on disconnect: the input becomes bad (no 'changed')."""
    bit = 1 << index
    if not asg.inp_bad & bit:
        asg.inp_bad |= bit
        compute_asg(asg)


def compute_asg(asg: Asg) -> None:
    """asComputeAsgPvt: re-evaluate the CALC rules whose inputs changed."""
    for rule in asg.rules:
        if rule.expr is not None and asg.inp_changed & rule.inp_used:
            try:
                result = rule.expr.evaluate(list(asg.values), float(rule.result))
            except CalcError:
                rule.result = 0
            else:
                rule.result = 1 if 0.99 < result < 1.01 else 0
    asg.inp_changed = 0


def compute_rights(asg: Asg, asl: int, user: str, host: str) -> Access:
    """asComputePvt for one client of ``asg`` (``host`` already lower-cased)."""
    access, trap = NONE, False
    for rule in asg.rules:
        if access == WRITE:
            break
        if access >= rule.access or asl > rule.level:
            continue
        if rule.uags and not any(user in uag.users for uag in rule.uags):
            continue
        if rule.hags and not any(host in hag.hosts for hag in rule.hags):
            continue
        if rule.expr is None or (not asg.inp_bad & rule.inp_used and rule.result == 1):
            access, trap = rule.access, rule.trapwrite
    return Access(access, trap)


InputValue = Union[float, None]


def compute_access(config: Optional[AccessConfig], asg_name: str, asl: int, user: str,
                   host: str, inputs: Optional[Mapping[Union[str, int], InputValue]] = None
                   ) -> Access:
    """The access a client (user, host) gets to a record in ``asg_name`` with ASL ``asl``.

    Args:
        config: the loaded configuration; None means access security is not active,
            which grants everything (asCheckGet/asCheckPut with !asActive).
        inputs: optional new input values, keyed ``"A"``..``"L"`` or 0..11; None marks
            the input bad (INVALID alarm / disconnected).  They are applied to the ASG
            state first, as asCa would on monitor updates.
    """
    if config is None:
        return Access(WRITE)
    asg = config.find_asg(asg_name)
    if inputs:
        for key, value in inputs.items():
            index = ord(key.upper()) - ord("A") if isinstance(key, str) else int(key)
            if not 0 <= index < 12:
                raise ValueError(f"no input {key!r} (INPA..INPL)")
            if value is None:
                set_input(asg, index, 0.0, invalid=True)
            else:
                set_input(asg, index, value)
    return compute_rights(asg, asl, user, ascii_lower(host))


def check_get(access: Access) -> bool:
    """asCheckGet."""
    return access.level >= READ


def check_put(access: Access) -> bool:
    """asCheckPut."""
    return access.level >= WRITE
