"""Text of base's access security dumps (asLibRoutines.c asDumpFP, asDumpUagFP,
asDumpHagFP, asDumpRulesFP), for the iocsh commands asdbdump, aspuag, asphag, asprules.

Each function returns the text base writes (newline-terminated lines); an inactive
configuration (None) prints nothing, as base does when !asActive.  Member lists
(``MEMBERLIST`` in verbose asDump) need the record wiring and are not produced here.
"""

from __future__ import annotations

from typing import Callable, Optional

from .acf import ACCESS_NAMES, AccessConfig, Asg, AsgRule, Hag, Uag

__all__ = ["dump", "dump_uag", "dump_hag", "dump_rules"]

_TRAP = ("NOTRAPWRITE", "TRAPWRITE")


def _group(kind: str, group: Uag | Hag, members: list[str]) -> str:
    if not members:
        return f"{kind}({group.name})\n"
    return f"{kind}({group.name}) {{{','.join(members)}}}\n"


def _uags(config: AccessConfig, name: Optional[str]) -> str:
    if not config.uags:
        return "No UAGs\n"
    return "".join(_group("UAG", u, u.users) for u in config.uags
                   if name is None or u.name == name)


def _hags(config: AccessConfig, name: Optional[str]) -> str:
    if not config.hags:
        return "No HAGs\n"
    return "".join(_group("HAG", h, h.hosts) for h in config.hags
                   if name is None or h.name == name)


def _rule(rule: AsgRule, show_result: bool) -> str:
    out = [f"\tRULE({rule.level},{ACCESS_NAMES[rule.access]},{_TRAP[rule.trapwrite]})"]
    if not (rule.uags or rule.hags or rule.calc is not None):
        return out[0] + "\n"
    out[0] += " {\n"
    if rule.uags:
        out.append(f"\t\tUAG({','.join(u.name for u in rule.uags)})\n")
    if rule.hags:
        out.append(f"\t\tHAG({','.join(h.name for h in rule.hags)})\n")
    if rule.calc is not None:
        line = f'\t\tCALC("{rule.calc}")'
        if show_result:
            line += f" result={'TRUE' if rule.result == 1 else 'FALSE'}"
        out.append(line + "\n")
    out.append("\t}\n")
    return "".join(out)


def _asg(asg: Asg, verbose: bool, rules_format: bool,
         members: Optional[Callable[[Asg], str]] = None) -> str:
    """One ASG; ``rules_format`` selects asDumpRulesFP's input lines, ``members`` gives the
    MEMBERLIST block (asDumpFP verbose with a member callback)."""
    member_text = members(asg) if members is not None and verbose else ""
    if not (asg.inputs or asg.rules):
        return f"ASG({asg.name})\n{member_text}"
    out = [f"ASG({asg.name}) {{\n"]
    for inp in asg.inputs:
        line = f"\tINP{chr(ord('A') + inp.index)}({inp.pv})"
        bad = asg.inp_bad & (1 << inp.index)
        if rules_format:
            line += (" INVALID" if bad else "") + f" value={asg.values[inp.index]:f}"
        elif verbose:
            line += (" INVALID" if bad else "   VALID") + f" value={asg.values[inp.index]:f}"
        out.append(line + "\n")
    out.extend(_rule(rule, verbose or rules_format) for rule in asg.rules)
    out.append(member_text)
    out.append("}\n")
    return "".join(out)


def dump(config: Optional[AccessConfig], verbose: bool = False,
         members: Optional[Callable[[Asg], str]] = None) -> str:
    """asDumpFP(fp, members, NULL, verbose): UAGs, HAGs, then ASGs (with their members when
    verbose and ``members`` gives them, as asdbdump)."""
    if config is None:
        return ""
    asgs = "".join(_asg(a, verbose, False, members) for a in config.asgs) or "No ASGs\n"
    return _uags(config, None) + _hags(config, None) + asgs


def dump_uag(config: Optional[AccessConfig], name: Optional[str] = None) -> str:
    """asDumpUagFP (iocsh ``aspuag``): all UAGs, or only ``name``."""
    return "" if config is None else _uags(config, name)


def dump_hag(config: Optional[AccessConfig], name: Optional[str] = None) -> str:
    """asDumpHagFP (iocsh ``asphag``)."""
    return "" if config is None else _hags(config, name)


def dump_rules(config: Optional[AccessConfig], name: Optional[str] = None) -> str:
    """asDumpRulesFP (iocsh ``asprules``): inputs always show value=, CALC its result."""
    if config is None:
        return ""
    if not config.asgs:  # pragma: no cover - DEFAULT always exists
        return "No ASGs\n"
    return "".join(_asg(a, False, True) for a in config.asgs if name is None or a.name == name)
