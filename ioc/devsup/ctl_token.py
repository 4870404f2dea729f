"""DTYP "Control Token": the records of a device's control token (db/ctlToken.template).

INP/OUT ``@PREFIX OP [grace=SECONDS]``, PREFIX being the device's record-name prefix:

* stringin/lsi, OP ``owner``: who holds the token (``user@host``, "" when free); SCAN
  "I/O Intr" processes it on every change. ``grace=`` sets the token's grace time.
* bo, OP ``grab`` / ``release`` / ``force``: writing 1 grabs, releases or force-releases the
  token on behalf of the client whose put it is (the CA user and host names); writing 0 does
  nothing. A put that cannot be done (releasing a token one does not hold, a grab with no
  client) is refused before anything is stored: the client gets ECA_PUTFAIL.

Who may write which record is access security's business: while the token is held, only its
holder may write the device's records (GRAB and RELEASE included); ``CTL:FORCE`` is exempt from
the token and is meant to carry an ASG that only a manager group may write.
"""
from __future__ import annotations

import logging

from ..access.context import current_putter
from ..access.token import ControlToken, TokenError, registry
from ..records.base import PutError
from ..records.constants import NO_CONVERT
from ..scan import IoScanList
from .registry import DeviceSupport, DevSupError, register

log = logging.getLogger(__name__)

_OPS = ("grab", "release", "force")
SHELL_CLIENT = "iocsh"        # who a put from the IOC shell (dbpf) acts as


def _parse(record, field: str) -> tuple[str, str, dict[str, str]]:
    link = record.links.get(field)
    parm = getattr(link, "parm", None)
    words = (parm or "").split()
    if len(words) < 2:
        raise DevSupError(f"Control Token: {field} must be \"@PREFIX OP\" (got {parm!r})")
    opts = {}
    for w in words[2:]:
        key, eq, value = w.partition("=")
        if not eq:
            raise DevSupError(f"Control Token: option {w!r} is not NAME=VALUE")
        opts[key.lower()] = value
    return words[0], words[1].lower(), opts


class _TokenDevice(DeviceSupport):
    link_type = "INST_IO"
    FIELD = "INP"

    def init_record(self) -> None:
        prefix, self.op, opts = _parse(self.record, self.FIELD)
        grace = None
        if "grace" in opts:
            try:
                grace = float(opts["grace"])
            except ValueError:
                raise DevSupError(f"Control Token: grace={opts['grace']!r} is not a "
                                  "number of seconds") from None
        self.token: ControlToken = registry(self.record.db).token(prefix, grace)


class OwnerDevice(_TokenDevice):
    """stringin/lsi ``owner``."""

    def init_record(self) -> None:
        super().init_record()
        if self.op != "owner":
            raise DevSupError(f"Control Token: input records show 'owner', not {self.op!r}")
        tok = self.token
        lst = getattr(tok, "owner_scan", None)
        if lst is None:
            # one I/O Intr list per token, processed (on the loop) when its holder changes
            lst = tok.owner_scan = IoScanList(f"token {tok.prefix}")
            tok.registry.add_listener(lambda t, tok=tok, lst=lst:
                                      lst.scan_now() if t is tok else None)
        self.scan = lst

    def get_ioint_info(self) -> IoScanList:
        return self.scan

    def read(self) -> int:
        rec = self.record
        if rec.rtype == "lsi":
            rec.set_value(self.token.holder)
        else:
            rec.f["VAL"] = self.token.holder[:39]
        rec.f["UDF"] = 0
        return NO_CONVERT


class CommandDevice(_TokenDevice):
    """bo ``grab`` / ``release`` / ``force``."""

    FIELD = "OUT"

    def init_record(self) -> None:
        super().init_record()
        if self.op not in _OPS:
            raise DevSupError(f"Control Token: bo OP must be one of {', '.join(_OPS)} "
                              f"(got {self.op!r})")
        self.record.f["MASK"] = 0

    @staticmethod
    def _who() -> str:
        p = current_putter()
        return p.ident if p is not None else SHELL_CLIENT

    def check_put(self, fname: str, value) -> None:
        if fname != "VAL" or not value:
            return
        tok, who = self.token, self._who()
        if self.op == "grab" and tok.holder and tok.holder != who:
            raise PutError(f"{tok.prefix}: token held by {tok.holder}")
        if self.op == "release" and tok.holder and tok.holder != who:
            raise PutError(f"{tok.prefix}: token held by {tok.holder}, not {who}")

    def write(self) -> None:
        if not self.record.f["VAL"]:
            return
        who = self._who()
        try:
            getattr(self.token, self.op)(who)
        except TokenError as exc:      # (check_put has refused what it could foresee)
            log.warning("%s: %s", self.record.name, exc)

    def report(self) -> str:
        return self.token.registry.report()


register(("stringin", "lsi"), "Control Token", OwnerDevice, link_type="INST_IO")
register("bo", "Control Token", CommandDevice, link_type="INST_IO")
