"""Channel Access wire protocol: command numbers, status codes, DBR ids, headers.

Numbers are EPICS base's (caProto.h, caerr.h, db_access.h); the header layout is the CA
protocol's: 16 bytes big-endian ``command, payload size, data type, count, p1, p2`` and, from
minor version 9 on, an extended form (payload size 0xFFFF, count 0, then 32-bit size and count)
for payloads or counts that do not fit in 16 bits. Every payload is padded to 8 bytes.
"""
from __future__ import annotations

import logging
import os
import struct

MINOR_VERSION = 13                 # CA_MINOR_PROTOCOL_REVISION of EPICS 7
MINIMUM_SUPPORTED_VERSION = 4      # CA_MINIMUM_SUPPORTED_VERSION (V4.4)

# -- commands (caProto.h)
VERSION = 0
EVENT_ADD = 1
EVENT_CANCEL = 2
READ = 3
WRITE = 4
SNAPSHOT = 5
SEARCH = 6
BUILD = 7
EVENTS_OFF = 8
EVENTS_ON = 9
READ_SYNC = 10
ERROR = 11
CLEAR_CHANNEL = 12
RSRV_IS_UP = 13
NOT_FOUND = 14
READ_NOTIFY = 15
READ_BUILD = 16
REPEATER_CONFIRM = 17
CREATE_CHAN = 18
WRITE_NOTIFY = 19
CLIENT_NAME = 20
HOST_NAME = 21
ACCESS_RIGHTS = 22
ECHO = 23
REPEATER_REGISTER = 24
SIGNAL = 25
CREATE_CH_FAIL = 26
SERVER_DISCONN = 27

DOREPLY = 10                       # search: reply even when not found (TCP search)
ACCESS_READ = 1
ACCESS_WRITE = 2
PRIORITY_MAX = 99

# -- status codes (caerr.h), with severity bits: taken from caproto's table of them
from caproto import CAStatus as _CAStatus  # noqa: E402


def _eca(name: str) -> int:
    return getattr(_CAStatus, name).value.code_with_severity


ECA_NORMAL = _eca("ECA_NORMAL")
ECA_ALLOCMEM = _eca("ECA_ALLOCMEM")
ECA_TOLARGE = _eca("ECA_TOLARGE")
ECA_BADTYPE = _eca("ECA_BADTYPE")
ECA_INTERNAL = _eca("ECA_INTERNAL")
ECA_GETFAIL = _eca("ECA_GETFAIL")
ECA_PUTFAIL = _eca("ECA_PUTFAIL")
ECA_BADCOUNT = _eca("ECA_BADCOUNT")
ECA_BADSTR = _eca("ECA_BADSTR")
ECA_BADCHID = _eca("ECA_BADCHID")
ECA_NORDACCESS = _eca("ECA_NORDACCESS")
ECA_NOWTACCESS = _eca("ECA_NOWTACCESS")
ECA_BADMONID = _eca("ECA_BADMONID")
ECA_BADMASK = _eca("ECA_BADMASK")
ECA_PUTCBINPROG = _eca("ECA_PUTCBINPROG")
ECA_DEFUNCT = _eca("ECA_DEFUNCT")

# -- DBR types (db_access.h)
DBR_STRING, DBR_SHORT, DBR_FLOAT, DBR_ENUM, DBR_CHAR, DBR_LONG, DBR_DOUBLE = range(7)
DBR_STS_STRING = 7
DBR_TIME_STRING = 14
DBR_GR_STRING = 21
DBR_CTRL_STRING = 28
DBR_PUT_ACKT = 35
DBR_PUT_ACKS = 36
DBR_STSACK_STRING = 37
DBR_CLASS_NAME = 38
LAST_BUFFER_TYPE = DBR_CLASS_NAME
LAST_TYPE = DBR_DOUBLE + 28        # DBR_CTRL_DOUBLE

MAX_STRING_SIZE = 40
MAX_UNITS_SIZE = 8
MAX_ENUM_STRING_SIZE = 26
MAX_ENUM_STATES = 16

# DBE masks
DBE_VALUE, DBE_LOG, DBE_ALARM, DBE_PROPERTY = 1, 2, 4, 8

_HDR = struct.Struct(">HHHHII")
_EXT = struct.Struct(">HHHHIIII")
HEADER_SIZE = _HDR.size
EXT_HEADER_SIZE = _EXT.size
unpack_header = _HDR.unpack_from
unpack_ext = struct.Struct(">II").unpack_from
pack_header = _HDR.pack


def header(cmd: int, size: int, dtype: int, count: int, p1: int, p2: int) -> bytes:
    """A header for a payload of ``size`` bytes (already padded), extended when needed."""
    if size < 0xFFFF and count < 0xFFFF:
        return _HDR.pack(cmd, size, dtype, count, p1 & 0xFFFFFFFF, p2 & 0xFFFFFFFF)
    return _EXT.pack(cmd, 0xFFFF, dtype, 0, p1 & 0xFFFFFFFF, p2 & 0xFFFFFFFF, size, count)


def pad8(n: int) -> int:
    return (n + 7) & ~7


_PADS = [b"\0" * i for i in range(8)]


def padded(payload: bytes) -> bytes:
    """``payload`` with NULs up to a multiple of 8 bytes."""
    r = len(payload) & 7
    return payload + _PADS[8 - r] if r else payload


def message(cmd: int, dtype: int, count: int, p1: int, p2: int, payload: bytes = b"") -> bytes:
    """A whole message: header (extended when needed) and the payload padded to 8."""
    payload = padded(payload)
    return header(cmd, len(payload), dtype, count, p1, p2) + payload


def valid_dbr_request(dtype: int) -> bool:
    """INVALID_DB_REQ's complement: a type a client may read or subscribe to."""
    return 0 <= dtype <= LAST_BUFFER_TYPE


def env_param(names: tuple[str, ...], parse, default, what: str):
    """The first of the environment variables ``names`` that is set, parsed by ``parse``
    (which raises ValueError for a bad value); a bad value is reported and gives ``default``,
    as EPICS's envGet*ConfigParam do."""
    for name in names:
        text = os.environ.get(name, "").strip()
        if text:
            try:
                return parse(text)
            except ValueError:
                logging.getLogger("ioc.ca").warning("%s=%r is not %s; using %s", name, text,
                                                    what, default)
                return default
    return default


def parse_port(text: str) -> int:
    port = int(text)
    if not 0 < port < 65536:
        raise ValueError(text)
    return port


def parse_positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise ValueError(text)
    return v
