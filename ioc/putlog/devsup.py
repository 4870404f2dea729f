"""DTYP "PutLog": records that show the put log (caPutLog's EPICS_AS_PUT_LOG_PV, as input records).

* ``stringin`` / ``lsi``: VAL is the latest line (a stringin keeps its first 39 characters; an
  lsi up to SIZV - 1).
* ``waveform`` FTVL CHAR/UCHAR: the latest lines that fit in NELM - 1 bytes, newline
  separated, oldest first, at most N of them with ``INP "@lines=N"`` (all that fit without);
  FTVL STRING: the last NELM lines, oldest first (each cut to 39 characters).

Use ``SCAN "I/O Intr"``: the record processes after each new line (several lines written
between two processings show up together: the history is complete, the latest-line record
shows the last one). A record with this DTYP turns the put log on (see PutLog.attach).
Registered by importing this module after ioc.devsup (ioc.putlog.shell does).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ..devsup.registry import DeviceSupport, DevSupError, register
from ..records.constants import NO_CONVERT

if TYPE_CHECKING:
    from ..scan import IoScanList
    from .core import PutLog

__all__ = ["PutLogDevSup"]

_FTVL_STRING, _FTVL_CHAR, _FTVL_UCHAR = 0, 1, 2


class PutLogDevSup(DeviceSupport):
    """Reads the put log of the record's database into VAL (see the module docstring)."""

    def init_record(self) -> None:
        rec = self.record
        pl: Optional["PutLog"] = getattr(rec.db, "putlog", None)
        if pl is None:
            raise DevSupError("PutLog: this database has no put log")
        if rec.rtype == "waveform" and rec.f["FTVL"] not in (_FTVL_STRING, _FTVL_CHAR,
                                                             _FTVL_UCHAR):
            raise DevSupError("PutLog: waveform FTVL must be STRING, CHAR or UCHAR")
        self.putlog = pl
        self.max_lines = _max_lines(str(rec.f.get(rec.io_link, "") or ""))
        if self.max_lines is not None:
            pl.resize_ring(self.max_lines)
        if rec.rtype == "waveform" and rec.f["FTVL"] == _FTVL_STRING:
            pl.resize_ring(rec.f["NELM"])
        self._scan = pl.attach()

    def get_ioint_info(self) -> "IoScanList | None":
        return self._scan

    def read(self) -> int:
        rec = self.record
        f = rec.f
        pl = self.putlog
        if rec.rtype == "waveform":
            nelm = f["NELM"]
            if f["FTVL"] == _FTVL_STRING:
                lines = pl.history(nelm)
                rec.store(rec.coerce_field("VAL", lines) if lines else [])
            else:
                text = _fit(pl.history(self.max_lines), nelm - 1)
                rec.store(rec.coerce_field("VAL", text.encode("latin-1", "replace")))
        elif rec.rtype == "lsi":
            rec.set_value(pl.latest)
        else:
            f["VAL"] = rec.coerce_field("VAL", pl.latest)
        f["UDF"] = 0
        return NO_CONVERT

    def report(self) -> str:
        return f"put log, {len(self.putlog.ring)} lines in memory"


def _max_lines(inp: str) -> Optional[int]:
    """``@lines=N`` of the INP link: N, or None when not given."""
    text = inp.strip().lstrip("@").strip()
    if not text:
        return None
    key, eq, value = text.partition("=")
    if key.strip() != "lines" or not eq:
        raise DevSupError(f"PutLog: INP must be \"@lines=N\" or empty, not {inp!r}")
    try:
        n = int(value)
    except ValueError:
        raise DevSupError(f"PutLog: INP {inp!r}: N must be a whole number") from None
    if n < 1:
        raise DevSupError(f"PutLog: INP {inp!r}: N must be at least 1")
    return n


def _fit(lines: list[str], room: int) -> str:
    """The newest lines whose text (newline separated) fits in ``room`` bytes, oldest first;
    the newest line alone is cut if even it does not fit."""
    out: list[str] = []
    used = 0
    for line in reversed(lines):
        n = len(line.encode("latin-1", "replace")) + (1 if out else 0)
        if used + n > room:
            if not out:
                out.append(line[:max(0, room)])
            break
        out.append(line)
        used += n
    return "\n".join(reversed(out))


register(("stringin", "lsi", "waveform"), "PutLog", PutLogDevSup, link_type="INST_IO")
