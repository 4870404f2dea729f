"""The hostile-input cases of test_ca_hostile.py, as data: each :class:`Case` is a name (the pytest
id) and a function that runs it against one server (:class:`~.hostile_side.Side`) and returns
its normalised answers. The test runs every case against softIoc and against ours and compares.

Records are those of tests/data/hostile.db with P=HX:. The read matrix uses the read-only
records; the write and subscription cases use the W* records and first put a baseline value.
"""
from __future__ import annotations

import math
import random
import socket
import struct
from dataclasses import dataclass
from typing import Callable

from .. import ca_raw as ca
from .hostile_side import Side

P = "HX:"
BAD_SID = 0x7FFF1234          # no server assigns this (rsrv counts from 0, ours too)
GROUPS = {"plain_sts": range(0, 14), "time_gr": range(14, 28), "ctrl_ack": range(28, 39)}
STS_STRING, STS_DOUBLE, DOUBLE, STRING, LONG, CHAR, ENUM = 7, 13, 6, 0, 5, 4, 3


@dataclass(frozen=True)
class Case:
    """``compare=False``: softIoc's answer is not a specification here (it reads past the
    payload the request declared, so it depends on the bytes that happen to follow): only the
    health checks apply."""
    name: str
    run: Callable[[Side], list]
    compare: bool = True


CASES: list[Case] = []
# A step of a case: (circuit, sid of the case's channel) -> the requests to send.
Step = Callable[[ca.RawCircuit, int], list[bytes]]
# Waveform contents written through CA when a server starts (the same on both servers).
SETUP = [("WFD", 6, [1.5, -2.25, 3e10, 0.125]), ("WFL", 5, [1, -2, 2147483647]),
         ("WFS", 0, ["one", "two", "three"]), ("WFH", 1, [1, -1, 32767]),
         ("WFC2", 4, list(b"hello\0")), ("WFBIG", 6, [float(i) for i in range(100)])]


def add(name: str, fn: Callable[[Side], list], compare: bool = True) -> None:
    assert all(c.name != name for c in CASES), name
    CASES.append(Case(name, fn, compare))


def on_channel(pv: str | bytes, *build: Step, settle_s: float = 0.0) -> Callable[[Side], list]:
    """A case: open ``pv`` on a fresh circuit, then for each ``build(circuit, sid)`` send the
    requests it returns and collect the answers (one exchange per build step)."""
    def run(s: Side) -> list:
        c = s.circuit()
        ch, out = s.open(c, P + pv if isinstance(pv, str) else pv)
        for b in build:
            if ch is None or out[-1:] == [("CLOSED",)]:
                break
            out += [("step",)] + s.exchange(c, *b(c, ch.sid), settle_s=settle_s)
        return out
    return run


def value_payload(t: int, v: float | str) -> bytes:
    """A put payload of DBR type ``t`` holding ``v`` (strings for the string types)."""
    if t in (35, 36):
        return struct.pack(">H", int(v))
    if t == 37:
        return struct.pack(">HHHH40s", 0, 0, 0, 0, str(v).encode())
    if t == 38 or t % 7 == 0:
        return ca.encode_values(t if t < 35 else 0, [str(v)])
    return ca.encode_values(t, [v if t % 7 in (2, 6) else int(v)])


def baseline(value: str = "0") -> Step:
    return lambda c, sid: [ca.write_notify(sid, c.new_ioid(), STRING, 1, value_payload(0, value))]


# ---------------------------------------------------------------- every DBR type, every field
SCALAR_PVS = ["AO", "AO.DESC", "AO.EGU", "AO.HHSV", "AO.PREC", "AO.RTYP", "AO.NAME", "AO.FLNK",
              "AI", "AI.INP", "AI.FLNK", "AI.SCAN", "AI.STAT", "AI.SEVR", "AI_UDF",
              "AI_UDF.SEVR", "BI", "BI.ZNAM", "BI.INP", "BI.OSV", "BI.RVAL", "BO", "BO.ONAM",
              "CALC", "CALC.CALC", "CALC.INPA", "CALC.INPB", "CO", "CO.OUT", "CO.OOPT", "LI",
              "LI.INP", "LI.EGU", "LO", "LO.DRVH", "LO.OUT", "MBBI", "MBBI.ZRST", "MBBI.THST",
              "MBBI.TWSV", "MBBI.RVAL", "MBBI0", "MBBO", "MBBO.ONST", "SI", "SI.INP", "SO",
              "SO.OUT", "WFC.NORD", "WFC.FTVL", "WFD.NELM", "WFD.EGU", "SENT.DESC",
              "AO.DESC$", "SO.VAL$", "AI.INP$"]
WAVEFORMS = {"WFC": 16, "WFC2": 32, "WFD": 8, "WFL": 8, "WFS": 4, "WFH": 8, "WFBIG": 4096}


def reads(types, count: int, first_ioid: int = 100) -> Step:
    """READ_NOTIFY of each DBR type in ``types`` (ioid = first_ioid + type)."""
    return lambda c, sid: [ca.read_notify(sid, first_ioid + t, t, count) for t in types]


# Not compared: a state-string field of bi/bo/mbbi/mbbo read as an ENUM type. Base converts
# the string with the record's put_enum_str, which *sets the record's VAL* to the matching state
# (a get that writes; softIoc 7.0.8 reading HX:MBBI.THST as DBR_ENUM turns HX:MBBI to 3). We do
# not copy that side effect, so those reads are left out here (ours answers them like base, 0).
_ENUM_TYPES = {3, 10, 17, 24, 31}
_STATE_STRING_FIELDS = {"BI.ZNAM", "BO.ONAM", "MBBI.ZRST", "MBBI.THST", "MBBO.ONST"}
for _pv in SCALAR_PVS:
    for _g, _types in GROUPS.items():
        if _pv in _STATE_STRING_FIELDS:
            _types = [t for t in _types if t not in _ENUM_TYPES]
        add(f"read-{_pv}-{_g}", on_channel(_pv, reads(_types, 1)))
for _pv in ("AO", "AO.DESC", "SI", "MBBI"):      # count 0 (autosize) and 2 (> NELM) on scalars
    for _n in (0, 2):
        add(f"read-{_pv}-n{_n}-plain_sts", on_channel(_pv, reads(GROUPS["plain_sts"], _n)))
for _pv, _nelm in WAVEFORMS.items():
    for _n in (0, 1, _nelm, _nelm + 1):
        for _g, _types in GROUPS.items():
            add(f"read-{_pv}-n{_n}-{_g}", on_channel(_pv, reads(_types, _n)))
# The old (pre-notify) READ: its DBR_STRING reply is shortened to the string; bad type closes.
add("READ-old-AO", on_channel("AO", lambda c, sid: [ca.read(sid, 1, t, 1) for t in range(35)]))
add("READ-old-WFD-n0", on_channel("WFD", lambda c, sid: [ca.read(sid, 1, DOUBLE, 0)]))
add("READ-old-badtype", on_channel("AO", lambda c, sid: [ca.read(sid, 1, 39, 1)]))
for _t in (39, 100, 0xFFFF):
    add(f"read-badtype-{_t}", on_channel("AO", reads([_t], 1)))
add("read-count-60000", on_channel("AO", reads([DOUBLE], 60000)))
add("read-count-100000-ext", on_channel("WFD", reads([DOUBLE], 100000)))
add("read-ext-header-small", on_channel("AO", lambda c, sid: [
    ca.message(ca.READ_NOTIFY, b"", DOUBLE, 1, sid, 7, extended=True)]))

# ---------------------------------------------------------------- writes
WRITE_PVS = ["WAO", "WAI", "WBO", "WBI", "WCALC", "WCO", "WLI", "WLO", "WMBBI", "WMBBO", "WSI",
             "WSO", "WWFD", "WWFC", "WWFS", "WAO.DESC", "WAO.HHSV", "WCO.OUT"]


def readback(pv: str) -> Step:
    """The value as DBR_STS_STRING and DBR_STS_DOUBLE (waveforms: autosized)."""
    n = 0 if pv.startswith("WWF") else 1
    return lambda c, sid: [ca.read_notify(sid, c.new_ioid(), STS_STRING, n),
                           ca.read_notify(sid, c.new_ioid(), STS_DOUBLE, n)]


def write_each(types, notify: bool = True) -> Step:
    """A put of each DBR type in ``types`` (value 1 + type % 3), each followed by a read."""
    def build(c, sid):
        out = []
        for t in types:
            v = 1 + t % 3
            mk = ca.write_notify if notify else ca.write
            out += [mk(sid, c.new_ioid(), t, 1, value_payload(t, v)),
                    ca.read_notify(sid, c.new_ioid(), STS_STRING, 1)]
        return out
    return build


for _pv in WRITE_PVS:
    for _g, _types in GROUPS.items():
        add(f"write-{_pv}-{_g}", on_channel(_pv, baseline(), write_each(_types), readback(_pv)))
add("WRITE-plain-WAO-all", on_channel("WAO", baseline(), write_each(range(35), notify=False),
                                      readback("WAO")))

# (pv, case name, DBR type, values, count or None for len(values))
SPECIAL_WRITES = [
    ("WAO", "string-abc", STRING, ["abc"]), ("WAO", "string-empty", STRING, [""]),
    ("WAO", "string-padded", STRING, ["  12.5  "]), ("WAO", "string-hex", STRING, ["0x10"]),
    ("WAO", "string-trailing-junk", STRING, ["12abc"]),
    ("WAO", "double-nan", DOUBLE, [math.nan]), ("WAO", "double-inf", DOUBLE, [math.inf]),
    ("WAO", "double-1e300", DOUBLE, [1e300]), ("WAO", "double-count2", DOUBLE, [5.0, 6.0]),
    ("WAO", "double-count0", DOUBLE, [], 0),
    ("WLO", "double-1e300", DOUBLE, [1e300]), ("WLO", "double-nan", DOUBLE, [math.nan]),
    ("WLO", "string-abc", STRING, ["abc"]), ("WLO", "string-1.7", STRING, ["1.7"]),
    ("WLO", "long-min", LONG, [-2 ** 31]),
    ("WBO", "enum-5", ENUM, [5]), ("WBO", "string-On", STRING, ["On"]),
    ("WBO", "string-7", STRING, ["7"]), ("WBO", "double-2.5", DOUBLE, [2.5]),
    ("WMBBO", "enum-2", ENUM, [2]), ("WMBBO", "enum-20", ENUM, [20]),
    ("WMBBO", "enum-65535", ENUM, [65535]), ("WMBBO", "string-Two", STRING, ["Two"]),
    ("WMBBO", "string-Nope", STRING, ["Nope"]), ("WMBBO", "string-15", STRING, ["15"]),
    ("WMBBO", "short-neg", 1, [-1]), ("WMBBI", "enum-2", ENUM, [2]),
    ("WSI", "double-3.25", DOUBLE, [3.25]), ("WSI", "string-39", STRING, ["x" * 39]),
    ("WSI", "string-40-unterminated", STRING, ["y" * 40]),
    ("WWFD", "double-6-over-nelm", DOUBLE, [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
    ("WWFD", "string-abc", STRING, ["abc"]), ("WWFD", "double-count0", DOUBLE, [], 0),
    ("WWFC", "char-20-over-nelm", CHAR, list(range(65, 85))),
    ("WWFC", "string-long", STRING, ["a long string for a char wf"]),
    ("WWFS", "string-3-over-nelm", STRING, ["a", "b", "c"]),
    ("WCO.OUT", "string-link", STRING, ["HX:WLI PP"]),
    ("WCALC.CALC", "bad-expr", STRING, ["A+"]), ("WCALC.CALC", "good-expr", STRING, ["A*10"]),
    ("WAI.PROC", "proc", LONG, [1]), ("WAO.NAME", "readonly", STRING, ["x"]),
    ("WAO.RTYP", "readonly", STRING, ["x"]), ("WAO.PREC", "short-neg", 1, [-3]),
    ("WAO.DESC", "string-40-unterminated", STRING, ["z" * 40]),
]


def write_values(dtype: int, values: list, count: int | None, notify: bool = True) -> Step:
    def build(c, sid):
        n = len(values) if count is None else count
        mk = ca.write_notify if notify else ca.write
        return [mk(sid, c.new_ioid(), dtype, n, ca.encode_values(dtype, values))]
    return build


for _pv, _name, _t, _vals, *_n in SPECIAL_WRITES:
    add(f"write-{_pv}-{_name}", on_channel(_pv, baseline(), write_values(_t, _vals, *_n or [None]),
                                           readback(_pv.split(".")[0])))
for _pv, _name, _t, _vals in (("WAO", "string-abc", STRING, ["abc"]),
                              ("WAO", "double", DOUBLE, [7.5]),
                              ("WAO.NAME", "readonly", STRING, ["x"])):
    add(f"WRITE-plain-{_pv}-{_name}", on_channel(
        _pv, baseline(), write_values(_t, _vals, None, notify=False), readback("WAO")))
add("write-notify-badtype-39", on_channel("WAO", lambda c, sid: [
    ca.write_notify(sid, 5, 39, 1, bytes(8))]))
add("WRITE-plain-badtype-39", on_channel("WAO", lambda c, sid: [ca.write(sid, 5, 39, 1, bytes(8))]))
# Payload shorter than the count says: rsrv converts whatever bytes follow (not a spec).
add("write-empty-payload", on_channel("WAO", lambda c, sid: [
    ca.message(ca.WRITE_NOTIFY, b"", DOUBLE, 1, sid, 5)]), compare=False)
add("write-short-payload-count4", on_channel("WWFD", lambda c, sid: [
    ca.message(ca.WRITE_NOTIFY, struct.pack(">d", 1.0), DOUBLE, 4, sid, 5)]), compare=False)
add("WRITE-plain-empty-string", on_channel("WAO", lambda c, sid: [
    ca.message(ca.WRITE, b"", STRING, 1, sid, 5)]), compare=False)

# ---------------------------------------------------------------- subscriptions, filters
def sub(dtype: int = DOUBLE, count: int = 1, mask: int = ca.DBE_VALUE | ca.DBE_ALARM,
        subid: int = 1) -> Step:
    return lambda c, sid: [ca.event_add(sid, subid, dtype, count, mask)]


def puts(*values: float | str, dtype: int = DOUBLE) -> Step:
    return lambda c, sid: [ca.write_notify(sid, c.new_ioid(), dtype, 1, value_payload(dtype, v))
                           for v in values]


def cancel(subid: int = 1, sid: int | None = None) -> Step:
    return lambda c, s: [ca.event_cancel(s if sid is None else sid, subid, DOUBLE, 1)]


def subs_case(pv: str, *steps, settle_s: float = 0.15) -> Callable[[Side], list]:
    return on_channel(pv, baseline(), *steps, settle_s=settle_s)


add("sub-basic-cancel", subs_case("WAO", sub(20), puts(1, 2), cancel(), puts(3)))
add("sub-mask0", subs_case("WAO", sub(mask=0), puts(1)))
add("sub-mask-property", subs_case("WAO", sub(mask=ca.DBE_PROPERTY), puts(1)))
add("sub-mask-log", subs_case("WAO", sub(mask=ca.DBE_LOG), puts(1)))
add("sub-all-types", subs_case("WAO", lambda c, sid: [ca.event_add(sid, 10 + t, t, 1)
                                                      for t in range(39)], puts(4)))
# Array updates reference the record's array until sent (base too): one put per step.
add("sub-wf-autosize", subs_case("WWFD", sub(DOUBLE, 0), lambda c, sid: [
    ca.write_notify(sid, 50, DOUBLE, 2, ca.encode_values(DOUBLE, [1.0, 2.0]))], lambda c, sid: [
    ca.write_notify(sid, 51, DOUBLE, 3, ca.encode_values(DOUBLE, [1.0, 2.0, 3.0]))]))
add("sub-wf-count-over-nelm", subs_case("WWFD", sub(DOUBLE, 6)))
add("sub-count-100000", subs_case("WAO", sub(DOUBLE, 100000), puts(1)))
add("sub-badtype-39", subs_case("WAO", sub(39)))
add("sub-badtype-65535", subs_case("WAO", sub(0xFFFF)))
add("sub-cancel-unknown-subid", subs_case("WAO", sub(), cancel(99)))
add("sub-cancel-twice", subs_case("WAO", sub(), cancel(), cancel()))
add("sub-cancel-bad-sid", subs_case("WAO", sub(), cancel(1, BAD_SID)))
add("sub-empty-payload", subs_case("WAO", lambda c, sid: [
    ca.message(ca.EVENT_ADD, b"", DOUBLE, 1, sid, 1)]), compare=False)
add("sub-dbnd-raw", on_channel('WAO.{"dbnd":{"abs":0.1}}', sub(), puts(0.05, 0.5, 0.55, 1.0),
                               settle_s=0.15))
add("sub-events-off-on", subs_case("WAO", sub(), lambda c, sid: [ca.message(ca.EVENTS_OFF)],
                                   puts(1, 2, 3), lambda c, sid: [ca.message(ca.EVENTS_ON)]))
add("sub-clear-channel-then-put", subs_case("WAO", sub(), lambda c, sid: [
    ca.clear_channel(sid, 1)], lambda c, sid: []))
add("sub-100-on-one-channel", subs_case("WAO", lambda c, sid: [
    ca.event_add(sid, i, DOUBLE, 1) for i in range(1, 101)], puts(9)))
add("sub-string-field", subs_case("WAO.DESC", sub(STRING), puts("new desc", dtype=STRING)))
add("sub-long-string-field", on_channel("WAO.DESC$", sub(CHAR, 0), lambda c, sid: [
    ca.write_notify(sid, 60, CHAR, 4, b"abc\0")], settle_s=0.15))
for _name, _pv, _t, _n in (("arr-shorthand", "WFD.[1:2]", DOUBLE, 0),
                           ("arr-json-stride", 'WFD.{"arr":{"s":0,"e":-1,"i":2}}', DOUBLE, 0),
                           ("arr-last", "WFD.[-1]", DOUBLE, 0),
                           ("ts", 'AO.{"ts":{}}', 20, 1),
                           ("field-and-filter", 'AO.VAL{"ts":{}}', DOUBLE, 1),
                           ("arr-on-scalar", "AO.[0:1]", DOUBLE, 0)):
    add(f"filter-read-{_name}", on_channel(_pv, reads([_t, STS_STRING], _n)))
add("filter-sub-dec", on_channel('WAO.{"dec":{"n":2}}', sub(), puts(1, 2, 3, 4), settle_s=0.15))

# ---------------------------------------------------------------- names
NAMES = {"unknown": "HX:NOPE", "field-unknown": "HX:AO.BOGUS", "field-lowercase": "HX:AO.desc",
         "field-empty": "HX:AO.", "long-1000": "HX:" + "A" * 1000, "nul-only": b"",
         "desc-long-string": "HX:AO.DESC$", "val-long-string-numeric": "HX:AO.VAL$",
         "so-val-long-string": "HX:SO.VAL$", "ai-inp-long-string": "HX:AI.INP$",
         "filter-malformed": 'HX:AO.{"dbnd":', "filter-unknown": 'HX:AO.{"nosuch":{}}',
         "filter-bad-arg": 'HX:AO.{"dbnd":{"abs":"x"}}', "filter-empty-object": "HX:AO.{}",
         "filter-trailing-junk": 'HX:AO.{"ts":{}}junk', "dot-dot": "HX:AO..VAL",
         "utf8": "HX:\u00e4\u00f6", "space": "HX:AO VAL", "val-dollar-wf": "HX:WFC.VAL$"}


def create_raw(payload: bytes, p2: int = 13) -> Callable[[Side], list]:
    """CREATE_CHAN (cid 77, minor version ``p2``) with ``payload`` as the name, as is."""
    def run(s: Side) -> list:
        c = s.circuit()
        return s.exchange(c, ca.message(ca.CREATE_CHAN, payload, 0, 0, 77, p2))
    return run


for _name, _pv in NAMES.items():
    add(f"create-{_name}", create_raw(ca.cstr(_pv)))
add("create-empty-size0", create_raw(b""))
add("create-unterminated", create_raw(b"HX:SENTx"))     # 8 bytes, no NUL: rsrv cuts the last
add("create-garbage-after-nul", create_raw(b"HX:SENT\0garbage!"))
add("create-minor-version-0", create_raw(ca.cstr("HX:SENT"), p2=0))
add("create-minor-version-3", create_raw(ca.cstr("HX:SENT"), p2=3))
add("create-name-20000-tolarge", create_raw(ca.cstr("HX:" + "B" * 20000)))
add("create-duplicate-cid", lambda s: s.exchange(
    s.circuit(), ca.create_chan("HX:SENT", 5), ca.create_chan("HX:AO", 5)))
add("create-500-channels", lambda s: [len(s.exchange(
    s.circuit(), *[ca.create_chan("HX:AO", i) for i in range(500)]))])
add("clear-then-read", on_channel("SENT", lambda c, sid: [ca.clear_channel(sid, 1)],
                                  reads([STRING], 1)))
add("clear-twice", on_channel("SENT", lambda c, sid: [ca.clear_channel(sid, 1)],
                              lambda c, sid: [ca.clear_channel(sid, 1)]))
add("clear-bad-sid", on_channel("SENT", lambda c, sid: [ca.clear_channel(BAD_SID, 1)]))
for _cmd in (ca.READ_NOTIFY, ca.WRITE_NOTIFY, ca.WRITE, ca.READ, ca.EVENT_ADD):
    add(f"bad-sid-{ca.CMD_NAMES[_cmd]}", on_channel("SENT", lambda c, sid, cmd=_cmd: [
        ca.message(cmd, bytes(16), DOUBLE, 1, BAD_SID, 3)]))
def read_1000(s: Side) -> list:
    """1000 pipelined reads: every one answered, in order (summarised to keep diffs short)."""
    out = on_channel("SENT", lambda c, sid: [ca.read_notify(sid, i, STRING, 1)
                                             for i in range(1000)])(s)
    reads = [x for x in out if x[0] == "READ_NOTIFY"]
    return [len(reads), [x[4] for x in reads] == list(range(1000)), reads[:1], out[-1]]


add("read-1000-pipelined", read_1000)


# ---------------------------------------------------------------- protocol
def raw_after_handshake(*data: bytes, **kw) -> Callable[[Side], list]:
    return lambda s: s.exchange(s.circuit(**kw), *data)


for _cmd in (5, 7, 11, 13, 14, 16, 17, 22, 24, 25, 26, 27, 28, 100, 65535):
    add(f"unknown-command-{_cmd}", raw_after_handshake(ca.message(_cmd, bytes(8), 1, 1, 2, 3)))
add("echo-ids", raw_after_handshake(ca.message(ca.ECHO, b"", 3, 4, 5, 6)))
add("echo-payload", raw_after_handshake(ca.message(ca.ECHO, b"0123456789abcdef", 3, 4, 5, 6)))
add("read-sync", raw_after_handshake(ca.message(ca.READ_SYNC, b"", 1, 2, 3, 4)))
add("events-off-on-alone", raw_after_handshake(ca.message(ca.EVENTS_OFF), ca.message(ca.EVENTS_ON)))
add("tcp-search-exists", raw_after_handshake(ca.search_msg("HX:SENT", 9, ca.DO_REPLY)))
add("tcp-search-missing-doreply", raw_after_handshake(ca.search_msg("HX:NOPE", 9, ca.DO_REPLY)))
add("tcp-search-missing-noreply", raw_after_handshake(ca.search_msg("HX:NOPE", 9, ca.NO_REPLY)))
add("version-again-minor-11", raw_after_handshake(ca.version(0, 11)))
add("version-minor-3", raw_after_handshake(ca.version(0, 3)))
add("version-priority-99", raw_after_handshake(ca.version(99, 13)))
add("version-priority-100", raw_after_handshake(ca.version(100, 13)))
add("no-version-create", raw_after_handshake(ca.create_chan("HX:SENT", 1), handshake=False))
add("no-version-hostname", raw_after_handshake(ca.host_name("x"), handshake=False))
add("misaligned-size-4", raw_after_handshake(ca.message(ca.ECHO, b"abcd", pad=False)))
add("misaligned-size-12", raw_after_handshake(ca.message(ca.READ_SYNC, b"abcdefghijkl", pad=False)))
add("tolarge-16bit-size-drained", raw_after_handshake(ca.message(ca.ECHO, bytes(0xFFF0), 0, 0, 1,
                                                                 1, extended=False)))
add("tolarge-ext-size-drained", on_channel("WAO", lambda c, sid: [
    ca.message(ca.WRITE_NOTIFY, bytes(100000), DOUBLE, 12500, sid, 4)]))
add("WRITE-plain-count-100000-drained", on_channel("WAO", lambda c, sid: [
    ca.write(sid, 4, DOUBLE, 100000, bytes(800000))]))
add("tolarge-ext-size-never-sent", raw_after_handshake(
    ca.HDR.pack(ca.ECHO, 0xFFFF, 0, 0, 0, 0) + ca.EXT.pack(0xFFFFFFF0, 0)))
add("ext-header-echo", raw_after_handshake(ca.message(ca.ECHO, b"12345678", extended=True)))
add("ext-header-size-0xffff-count-1", raw_after_handshake(
    ca.HDR.pack(ca.ECHO, 0xFFFF, 0, 1, 0, 0) + ca.EXT.pack(8, 1) + b"abcdefgh"))
for _what, _mk in (("host", ca.host_name), ("client", ca.client_name)):
    add(f"{_what}-name-1000", raw_after_handshake(_mk("h" * 1000)))
    add(f"{_what}-name-511", raw_after_handshake(_mk("h" * 511)))
    add(f"{_what}-name-size0", raw_after_handshake(ca.message(ca.HOST_NAME if _what == "host"
                                                              else ca.CLIENT_NAME)))
    add(f"{_what}-name-unterminated", raw_after_handshake(ca.message(
        ca.HOST_NAME if _what == "host" else ca.CLIENT_NAME, b"abcdefgh", pad=False)))
    add(f"{_what}-name-after-channel", on_channel("SENT", lambda c, sid, mk=_mk: [mk("late")]))


def truncated_then_close(data: bytes) -> Callable[[Side], list]:
    def run(s: Side) -> list:
        c = s.circuit()
        c.send(data)
        c.close()
        return []
    return run


add("truncated-header-close", truncated_then_close(ca.version()[:10]))
add("truncated-payload-close", truncated_then_close(ca.create_chan("HX:SENT", 1)[:20]))
add("truncated-ext-header-close", truncated_then_close(ca.HDR.pack(ca.ECHO, 0xFFFF, 0, 0, 0, 0)))
for _seed in range(6):
    _rnd = random.Random(_seed)
    add(f"random-bytes-seed{_seed}", raw_after_handshake(
        bytes(_rnd.randrange(256) for _ in range(_rnd.randrange(16, 200)))))


def many_connections(s: Side) -> list:
    """200 circuits opened and closed quickly, half of them mid-handshake."""
    ok = 0
    for i in range(200):
        try:
            with socket.create_connection(("127.0.0.1", s.port), timeout=2) as so:
                ok += 1
                if i % 2:
                    so.sendall(ca.version() + ca.create_chan("HX:SENT", 1))
        except OSError:
            pass
    return [("connected", ok)]


add("200-connections", many_connections)


# ---------------------------------------------------------------- UDP
def udp_then_search(*datagrams: bytes, names=("HX:SENT",), **kw) -> Callable[[Side], list]:
    """Send ``datagrams`` (answers are compared too), then a normal search must be answered."""
    def run(s: Side) -> list:
        out = []
        for d in datagrams:
            for reply in ca.udp_send("127.0.0.1", s.port, d, wait_s=0.1):
                out.append([(ca.CMD_NAMES.get(m.command, m.command), m.count, m.p2)
                            for m in ca.parse(reply)[0]])
        res = ca.search("127.0.0.1", s.port, list(names), timeout_s=0.5, **kw)
        return out + [(n, ca.norm_search(r, s.port)) for n, r in res.items()]
    return run


add("udp-search-normal", udp_then_search(names=("HX:SENT", "HX:NOPE", "HX:AO.DESC$",
                                                'HX:AO.{"dbnd":', "HX:AO.BOGUS")))
add("udp-search-bad-version", udp_then_search(minor=3))
add("udp-search-without-version", udp_then_search(version_first=False))
add("udp-empty-datagram", udp_then_search(b""))
add("udp-short-datagram", udp_then_search(b"\x00\x06\x00"))
add("udp-unknown-command", udp_then_search(ca.version() + ca.message(100, bytes(8))))
add("udp-search-size-beyond-datagram", udp_then_search(
    ca.version() + ca.HDR.pack(ca.SEARCH, 4000, 5, 13, 1, 1) + b"HX:SENT\0"))
add("udp-search-empty-name", udp_then_search(ca.version()
                                             + ca.message(ca.SEARCH, b"", 5, 13, 1, 1)))
add("udp-search-doreply-missing", udp_then_search(ca.version() + ca.search_msg("HX:NOPE", 3,
                                                                               ca.DO_REPLY)))
add("udp-search-many-names", udp_then_search(names=tuple(f"HX:NOPE{i}" for i in range(40))
                                             + ("HX:SENT", "HX:AO")))
for _seed in range(4):
    _rnd = random.Random(100 + _seed)
    add(f"udp-random-seed{_seed}", udp_then_search(
        bytes(_rnd.randrange(256) for _ in range(_rnd.randrange(1, 300))),
        ca.version() + bytes(_rnd.randrange(256) for _ in range(64))))


# ---------------------------------------------------------------- real EPICS clients
def camonitor_dbnd(s: Side) -> list:
    """camonitor with a dbnd filter, then changes of value (the first kills caproto 1.3.0)."""
    return s.camonitor(P + 'WDBND.{"dbnd":{"abs":0.1}}', lambda: [
        s.put(P + "WDBND", DOUBLE, [v]) for v in (0.05, 0.5, 0.55, 1.0)], " 1")


add("camonitor-dbnd-filter", camonitor_dbnd)
for _pv in ("AO.DESC$", "SO.VAL$", "AI.INP$", "WFC", "WFC2", "SENT.DESC$"):
    add(f"caget-S-{_pv}", lambda s, pv=_pv: [s.client("caget", "-w", "1", "-S", P + pv)])
for _pv in ("AO.DESC$", "AI.INP$", "WFC"):
    add(f"caget-a-{_pv}", lambda s, pv=_pv: [s.client("caget", "-w", "1", "-a", "-#", "0",
                                                      P + pv)])
add("caget-ctrl-mbbi0", lambda s: [s.client("caget", "-w", "1", "-d", "DBR_CTRL_ENUM",
                                            P + "MBBI0")])
add("cainfo-wfc", lambda s: [s.client("cainfo", "-w", "1", P + "WFC")])
add("caput-S-long-string", lambda s: [s.client("caput", "-w", "1", "-S", P + "WWFC",
                                               "long string!"),
                                      s.client("caget", "-w", "1", "-S", P + "WWFC")])


def main(argv: list[str]) -> int:
    """``python -m tests.integration.hostile_cases PORT [NAME-PREFIX...]``: run the cases
    against a server already serving hostile.db on 127.0.0.1:PORT and print what it answered
    (to see what softIoc does for a case). Writes SETUP first."""
    s = Side("cli", int(argv[0]))
    for pv, dtype, values in SETUP:
        s.put(P + pv, dtype, values)
    s.close_all()
    for case in CASES:
        if argv[1:] and not any(case.name.startswith(p) for p in argv[1:]):
            continue
        print("##", case.name, "" if case.compare else "(not compared)")
        try:
            for item in case.run(s):
                print("   ", repr(item))
        finally:
            s.close_all()
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
