"""compress record support (compressRecord.c): N-to-1 reductions and ring buffers of doubles,
on the array machinery of ``ioc/records/array.py``."""
from __future__ import annotations

import numpy as np

from .array import ArrayMixin
from .base import PutError
from .constants import DBE_LOG, DBE_VALUE, Sevr, Stat

_ALG_LOW, _ALG_HIGH, _ALG_N1_AVG, _ALG_AVERAGE, _ALG_CIRCULAR, _ALG_MEDIAN = range(6)
_BALG_FIFO = 0
_FTVL_DOUBLE = 10


class CompressRecord(ArrayMixin):
    """compress: a ring buffer of NSAM doubles (NUSE in use) fed from INP at each processing.

    ALG: N to 1 Low/High/Average/Median put one value per N input elements (a scalar input
    accumulates over N processings; PBUF YES puts partial results), Average averages N whole
    input arrays element by element, Circular Buffer stores every input element. BALG FIFO
    serves the oldest first, LIFO the newest first. ILIL < IHIL skips out-of-range leading
    elements of an array input. A processing that only accumulated posts nothing; an INP that
    cannot be read is a LINK/INVALID alarm. RES, ALG, PBUF, BALG and N reset the buffer."""

    rtype = "compress"
    io_link = ""
    capacity_field = "NSAM"

    def ftvl(self) -> int:
        return _FTVL_DOUBLE

    def init_record(self, pass_: int) -> None:
        if pass_ == 0:
            self.f["NSAM"] = max(1, self.f["NSAM"])
            self.init_buffer()
            self._sum = np.zeros(self.f["NSAM"])
            self.reset()

    def reset(self) -> None:
        f = self.f
        f["NUSE"] = f["OFF"] = f["INX"] = f["RES"] = 0
        f["CVB"] = 0.0
        f["VAL"][:] = 0.0
        self._mirror()

    def _mirror(self) -> None:
        # Not compress fields: the CA server sizes an array by f["NELM"] and its logs by
        # f["NORD"]; compress's are NSAM and NUSE.
        self.f["NELM"], self.f["NORD"] = self.f["NSAM"], self.f["NUSE"]

    def array(self):
        """NUSE elements in serving order (get_array_info's offset: FIFO oldest first)."""
        f = self.f
        nsam, nuse, off = f["NSAM"], f["NUSE"], f["OFF"]
        if f["BALG"] == _BALG_FIFO:
            off = (off + nsam - nuse) % nsam
        return np.roll(f["VAL"], -off)[:nuse]

    def put_values(self, values) -> None:
        f = self.f
        fifo = f["BALG"] == _BALG_FIFO
        nsam, off, val = f["NSAM"], f["OFF"], f["VAL"]
        f["NUSE"] = min(f["NUSE"] + len(values), nsam)
        for v in values:
            if not fifo:
                off = (off + nsam - 1) % nsam
            val[off] = v
            if fifo:
                off = (off + 1) % nsam
        f["OFF"] = off
        self._mirror()

    def _n(self) -> int:
        self.f["N"] = max(1, self.f["N"])
        return self.f["N"]

    def compress_array(self, src: np.ndarray) -> bool:
        """N to 1 over an array input; True if a value was put."""
        f = self.f
        if f["ILIL"] < f["IHIL"]:
            i = 0
            while i < len(src) and (src[i] < f["ILIL"] or src[i] > f["IHIL"]):
                i += 1
            src = src[i:]
        n = self._n()
        nnew = min(len(src), f["NSAM"] * n)
        pos, written = 0, 0
        reduce = {_ALG_LOW: np.min, _ALG_HIGH: np.max, _ALG_N1_AVG: np.mean,
                  _ALG_MEDIAN: lambda a: np.sort(a)[len(a) // 2]}[f["ALG"]]
        while nnew > 0:
            if nnew < n and f["PBUF"] != 1:
                break
            n = min(n, nnew)
            self.put_values([float(reduce(src[pos:pos + n]))])
            pos += n
            nnew -= n
            written += 1
        return written > 0

    def compress_scalar(self, value: float) -> bool:
        f = self.f
        inx, alg = f["INX"], f["ALG"]
        if alg == _ALG_LOW and (value < f["CVB"] or inx == 0) \
                or alg == _ALG_HIGH and (value > f["CVB"] or inx == 0):
            f["CVB"] = value
        elif alg in (_ALG_N1_AVG, _ALG_MEDIAN):
            f["CVB"] = (inx * f["CVB"] + value) / (inx + 1)
        inx += 1
        n = self._n()
        if inx >= n or f["PBUF"] == 1:
            self.put_values([f["CVB"]])
            f["INX"] = 0 if inx >= n else inx
            return True
        f["INX"] = inx
        return False

    def array_average(self, src: np.ndarray) -> bool:
        f = self.f
        nuse = min(f["NSAM"], len(src))
        if f["INX"] == 0:
            self._sum[:] = 0.0
            self._sum[:nuse] = src[:nuse]
        else:
            self._sum[:nuse] += src[:nuse]
        f["INX"] += 1
        n = self._n()
        if f["INX"] < n:
            return False
        if n > 1:
            self._sum[:nuse] *= 1.0 / n
        self.put_values(self._sum[:nuse])
        f["INX"] = 0
        return True

    def _input_count(self, link) -> int:
        """dbGetNelements: the linked field's element count (0: not connected)."""
        t = getattr(link, "target", None)
        if t is None:
            return 0
        if link.field == "VAL" and hasattr(t, "capacity"):
            return t.capacity()
        if link.field == "VAL" and hasattr(t, "array"):
            return t.f["NELM"]
        return 1

    def process(self) -> None:
        f = self.f
        f["PACT"] = 1
        link = self.links.get("INP")
        nel = self._input_count(link) if link is not None and not link.is_constant else 0
        posted = True
        if nel <= 0:
            self.set_sevr(Stat.LINK, Sevr.INVALID)
        else:
            if nel != f["INPN"]:
                if f["INPN"]:
                    self.reset()
                f["INPN"] = nel
            v = link.get_value(self)
            try:
                src = np.atleast_1d(np.asarray(v, dtype=float))[:nel] if v is not None else None
            except (TypeError, ValueError):
                src = None
            if src is None or len(src) == 0:
                self.set_sevr(Stat.LINK, Sevr.INVALID)
            elif f["ALG"] == _ALG_AVERAGE:
                posted = self.array_average(src)
            elif f["ALG"] == _ALG_CIRCULAR:
                self.put_values(src)
            elif len(src) > 1:
                posted = self.compress_array(src.copy())
            else:
                posted = self.compress_scalar(float(src[0]))
        if posted:
            f["UDF"] = 0
            self.get_timestamp()
            alarm = self.reset_alarms()
            mask = alarm | DBE_VALUE | DBE_LOG
            if alarm or f["NUSE"] != f["OUSE"]:
                self.post("NUSE", mask)
                f["OUSE"] = f["NUSE"]
            self.post("VAL", mask)
            self.fwd_link()
        f["PACT"] = 0

    def special(self, fname: str, after: bool) -> None:
        if after and self.spec.fields[fname].special == "SPC_RESET":
            self.reset()
            return
        super().special(fname, after)

    def put_field(self, fname: str, value, *, from_link: bool = False) -> None:
        if fname != "VAL":
            return super().put_field(fname, value, from_link=from_link)
        # put_array_info: the elements go in as by a put_value of the ring (not for LIFO)
        if self.f["BALG"] != _BALG_FIFO:
            raise PutError(f"{self.name}.VAL is read-only with a LIFO buffer")
        self.put_values(self.to_val(value))
        self.db.put_count += 1

    def rset_units(self, fname: str) -> str | None:
        return self.f["EGU"] if fname == "VAL" or self.dbd_type(fname) == "DBF_DOUBLE" else ""

    def array_limits(self, fname: str, control: bool) -> tuple[float, float] | None:
        if fname in ("VAL", "IHIL", "ILIL"):
            return self.f["HOPR"], self.f["LOPR"]
        return None
