"""Request files (``.req``) read as synApps autosave reads them.

Facts kept from autosave (``asApp/src/save_restore.c``):

* ``readReqFile``: lines are read with ``fgets`` into a 200-byte buffer (``BUF_SIZE``).  A
  line that does not end in a newline (too long, or the last line of a file without a
  final newline) is cut back to its last comma or white-space character, the rest of a
  long line is discarded — so a last line with no newline and no blank in it is lost.
* The line is macro-expanded (macLib, 400-byte buffer) only when the file was given a
  non-empty macro string; macros are *not* inherited by included files, which see only
  the (expanded) definitions on their ``file`` line.  Unexpanded, a ``$(P)name`` line is
  taken as a PV name (a name may start with ``$``).
* The first word decides: ``#...`` is a comment; a line *starting* with ``file`` (column
  0, so ``filename:PV`` is an include too) includes a file; a word starting with a letter,
  digit, one of ``_ - + : [ ] < > ;`` or ``$`` is a PV name (kept to 63 characters); any
  other line is ignored.  Duplicates are kept, in file order.
* ``file`` lines: one leading quote is dropped, the name ends at white space, a quote or
  ``#``; in the rest quotes are dropped and white space or commas become one comma (only
  after three characters); fewer than three characters mean no macros.
* A file that cannot be opened: ``unable to open file NAME. Exiting.``; for an include
  the reading goes on with the next line of the including file, but the set's status is
  failure ("Can't open .req file").  A top-level failure means no set at all.
* ``openReqFile``: with a request-file path (``set_requestfile_path``) each directory is
  tried in order with ``concatenate_paths`` (even for a name starting with ``/``);
  without one the name is opened as given.
* ``SAVEPATHPV``, ``SAVENAMEPV``, ``CONFIGMENU`` (and ``CONFIG``) in a file's macros
  switch the set's ``.savB``/sequence backups off.

Not in autosave: it has no include-loop or depth check (a loop recurses until ``fopen``
fails); here a file already being read, or a nesting deeper than :data:`MAX_DEPTH`, is
reported and skipped.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Optional, Sequence

from ioc.access.maclib import MacLib, parse_macro_defns

__all__ = ["BUF_SIZE", "EBUF_SIZE", "MAX_DEPTH", "MAX_PATH_LEN", "RequestFilePath",
           "RequestList", "concatenate_paths", "find_request_file", "read_request_file",
           "save_file_name"]

BUF_SIZE = 200            # save_restore.h: fgets buffer for .req and .sav lines
EBUF_SIZE = 2 * BUF_SIZE  # macro-expanded line
MAX_PATH_LEN = 255        # osdNfs.h NFS_PATH_LEN
NAME_LEN = 64             # struct channel name[64]
MAX_DEPTH = 32            # ours: autosave has no limit
_C_SPACE = " \t\n\v\f\r"
_PV_FIRST = set("_-+:[]<>;")
_WORD = re.compile(r"[ \t\n\v\f\r]*([^ \t\n\v\f\r]+)")


def concatenate_paths(s1: str, s2: str) -> str:
    """``concatenate_paths``: ``s1 + "/" + s2`` with exactly one ``/`` between them when
    both are non-empty (a leading ``/`` of ``s2`` is not an absolute path here)."""
    dest = s1
    if s2 and not s2.startswith("/") and dest and not dest.endswith("/"):
        dest += "/"
    if s2.startswith("/") and dest.endswith("/"):
        dest += s2[1:]
    else:
        dest += s2
    return dest[:MAX_PATH_LEN - 1]


class RequestFilePath:
    """The request-file search path as ``set_requestfile_path(path, pathsub)`` builds it:
    each call appends one directory (ending in ``/``); an empty result is refused."""

    def __init__(self) -> None:
        self.dirs: list[str] = []

    def add(self, path: str = "", pathsub: str = "") -> bool:
        """Append ``concatenate_paths(path, pathsub)``; False (nothing added) when that is
        empty or longer than autosave allows."""
        if len(path or "") + len(pathsub or "") > MAX_PATH_LEN - 1:
            return False
        full = concatenate_paths(path or "", pathsub or "")
        if not full:
            return False
        self.dirs.append(full if full.endswith("/") else full + "/")
        return True


def find_request_file(name: str, dirs: Sequence[str]) -> Optional[str]:
    """``openReqFile``: the first readable ``concatenate_paths(dir, name)``, or ``name``
    itself when there is no search path; None when nothing opens."""
    candidates = [concatenate_paths(d, name) for d in dirs] if dirs else [name]
    for cand in candidates:
        if os.path.isfile(cand) and os.access(cand, os.R_OK):
            return cand
    return None


def save_file_name(request_file: str) -> str:
    """``create_data_set``: the request-file name with its last ``.suffix`` replaced by
    ``.sav`` (autosave's quirk: a name with no dot after its first character gives
    ``.sav``)."""
    i = len(request_file) - 1
    while i > 0 and request_file[i] != ".":
        i -= 1
    return request_file[:max(i, 0)] + ".sav"


@dataclass
class RequestList:
    """What reading a request file gives.

    ``pvs``: PV names in order (duplicates kept); ``messages``: what autosave prints
    (with ``file:line:`` of the line concerned added) and our own loop/depth reports;
    ``ok``: False when the top-level file could not be opened (autosave makes no set);
    ``status_fail``: an included file could not be opened (the set's status is failure,
    ``Can't open .req file``); ``files``: the files read, in order; ``options``:
    ``SAVEPATHPV``/``SAVENAMEPV``/``CONFIG``/``CONFIGMENU`` found in macro strings;
    ``do_backups``: False when one of those turns backups off.
    """
    pvs: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    ok: bool = True
    status_fail: bool = False
    files: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)

    @property
    def do_backups(self) -> bool:
        return not any(k in self.options for k in ("SAVEPATHPV", "SAVENAMEPV", "CONFIGMENU"))


def read_request_file(name: str, macros: str = "",
                      path: Sequence[str] | RequestFilePath = ()) -> RequestList:
    """Read request file ``name`` (found on ``path``) with macro string ``macros`` (as
    given to ``create_*_set``) and its includes; never raises for bad content."""
    dirs = path.dirs if isinstance(path, RequestFilePath) else list(path)
    result = RequestList()
    _read(name, macros, dirs, result, chain=[], where="")
    return result


def _fgets_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) as ``readReqFile``'s ``fgets`` loop leaves them."""
    out = []
    for number, raw in enumerate(_c_lines(text), 1):
        line = raw if len(raw) < BUF_SIZE else raw[:BUF_SIZE - 1]
        if not line.endswith("\n"):
            c = len(line) - 1
            while c > 0 and line[c] != "," and line[c] not in _C_SPACE:
                c -= 1
            line = line[:max(c, 0)]
        out.append((number, line))
    return out


def _c_lines(text: str) -> list[str]:
    """``text`` cut after each ``\\n`` (and only there, as ``fgets`` does)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    return out + [lines[-1]] if lines[-1] else out


def first_word(text: str, limit: int = 0) -> str:
    """``sscanf(text, "%s")`` (``"%<limit>s"``): the first run of non-C-white-space."""
    m = _WORD.match(text)
    word = m.group(1) if m else ""
    return word[:limit] if limit else word


def _is_c_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


def _include_args(eline: str) -> tuple[str, str]:
    """(file name, macro string) of a ``file`` line, cleaned as ``readReqFile`` does."""
    t, n = 4, len(eline)
    while t < n and eline[t] in _C_SPACE:
        t += 1
    if t < n and eline[t] == '"':
        t += 1
    while t < n and eline[t] in _C_SPACE:
        t += 1
    start = t
    while (t < n and t - start < MAX_PATH_LEN and eline[t] not in _C_SPACE
           and eline[t] not in '"#'):
        t += 1
    filename = eline[start:t]
    mac: list[str] = []
    for c in eline[t:]:
        if len(mac) >= BUF_SIZE - 3:
            break
        if c in _C_SPACE or c == ",":
            if len(mac) >= 3 and mac[-1] != ",":
                mac.append(",")
        elif c != '"':
            mac.append(c)
    text = "".join(mac)
    if text.endswith(","):
        text = text[:-1]
    return filename, text if len(text) >= 3 else ""


def _read(name: str, macros: str, dirs: list[str], result: RequestList,
          chain: list[str], where: str) -> None:
    found = find_request_file(name, dirs)
    if found is None:
        result.messages.append(f"{where}save_restore:readReqFile: unable to open file "
                               f"{name}. Exiting.")
        if chain:
            result.status_fail = True
        else:
            result.ok = False
        return
    real = os.path.realpath(found)
    if real in chain:
        result.messages.append(f"{where}include loop: {name} is already being read "
                               f"({' -> '.join(os.path.basename(c) for c in chain)}); "
                               "skipped")
        result.status_fail = True
        return
    if len(chain) >= MAX_DEPTH:
        result.messages.append(f"{where}includes nested deeper than {MAX_DEPTH}: "
                               f"{name} skipped")
        result.status_fail = True
        return
    result.files.append(found)
    with open(found, encoding="latin-1", newline="") as f:
        text = f.read()
    maclib: Optional[MacLib] = None
    mac_messages: list[str] = []
    if macros:
        defns = parse_macro_defns(macros)
        maclib = MacLib(defns, mac_messages)
        for key in ("SAVEPATHPV", "SAVENAMEPV", "CONFIG", "CONFIGMENU"):
            if defns.get(key):
                result.options[key] = defns[key]
    for number, line in _fgets_lines(text):
        here = f"{found}:{number}: "
        if maclib is not None:
            eline, _ = maclib.expand_string(line, EBUF_SIZE)
            result.messages.extend(here + m.replace("\n", "") for m in mac_messages)
            mac_messages.clear()
        else:
            eline = line[:EBUF_SIZE - 1]
        word = first_word(eline)
        if word.startswith("#"):
            continue
        if eline.startswith("file"):
            inc, inc_macros = _include_args(eline)
            _read(inc, inc_macros, dirs, result, chain + [real], here)
        elif word and (_is_c_alnum(word[0]) or word[0] in _PV_FIRST or word[0] == "$"):
            if len(word) >= NAME_LEN:
                result.messages.append(f"{here}PV name {word!r} cut to {NAME_LEN - 1} "
                                       "characters")
            result.pvs.append(word[:NAME_LEN - 1])
        elif word:
            result.messages.append(f"{here}line ignored (not a PV name): {word!r}")
