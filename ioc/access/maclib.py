"""A macLib emulation (EPICS base libCom macCore.c), as asInitFP uses it for an ACF.

:func:`parse_macro_defns` is macParseDefns + macInstallMacros; :class:`MacLib` expands a
string as macExpandString does, with macLib's warnings (undefined and recursive macros,
from definitions too) and its buffer limits (``MAC_SIZE``).
"""
from __future__ import annotations

from typing import Optional

__all__ = ["MAC_SIZE", "MacLib", "parse_macro_defns"]

def parse_macro_defns(defns: str) -> dict[str, str]:
    """macParseDefns + macInstallMacros: ``"a=1,b=2"`` -> the macros defined.

    Any string, even ``""`` or ``","``, gives a macro handle (asInitFP expands every
    line then, so ``$(x)`` is an undefined macro rather than an invalid character).
    Whitespace around names, values and separators is dropped; quotes and backslash
    escapes protect ``=``/``,``/space and are removed from names only.  A name without
    ``=`` undefines that macro (``"a=1,a"`` leaves ``a`` undefined); an empty name is
    kept as base does (``$()`` refers to it).
    """
    items: list[tuple[str, Optional[str]]] = []
    state, quote, start, name = "preName", "", 0, ""
    i, n = 0, len(defns)

    def trimmed(a: int, b: int) -> str:
        while b > a and defns[b - 1] in _C_SPACE:
            b -= 1
        return defns[a:b]

    while i < n:
        c = defns[i]
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"":
            quote = c
        escape = c == "\\" and i + 1 < n
        plain = not quote and not escape
        if state == "preName":
            if plain and (c in _C_SPACE or c == ","):
                i += 1
                continue
            start, state = i, "inName"
        if state == "inName":
            if plain and c in "=,":
                name = trimmed(start, i)
                if c == ",":
                    items.append((name, None))
                    state = "preName"
                else:
                    state = "preValue"
                i += 1
                continue
        elif state == "preValue":
            if plain and c in _C_SPACE:
                i += 1
                continue
            start, state = i, "inValue"
        if state == "inValue" and plain and c == ",":
            items.append((name, trimmed(start, i)))
            state = "preName"
        i += 2 if escape else 1
    if state == "inName":
        items.append((trimmed(start, n), None))
    elif state == "preValue":
        items.append((name, ""))
    elif state == "inValue":
        items.append((name, trimmed(start, n)))
    macros: dict[str, str] = {}
    for raw, value in items:
        key = _unquote_name(raw)
        if value is None:
            macros.pop(key, None)
        else:
            macros[key] = value
    return macros


_C_SPACE = " \t\n\v\f\r"


def _unquote_name(raw: str) -> str:
    """macParseDefns: quotes and escapes are removed from a macro's name."""
    out, quote, i = [], "", 0
    while i < len(raw):
        c = raw[i]
        if quote and c == quote:
            quote = ""
        elif not quote and c in "'\"":
            quote = c
        else:
            if c == "\\" and i + 1 < len(raw):
                i += 1
                c = raw[i]
            out.append(c)
        i += 1
    return "".join(out)


MAC_SIZE = 256                            # macLib.h: longest macro value or name


class _MacEntry:
    __slots__ = ("name", "type", "raw", "value", "error", "visited", "level")

    def __init__(self, name: str, raw: Optional[str], level: int = 0,
                 type_: str = "macro") -> None:
        self.name, self.type, self.raw, self.level = name, type_, raw, level
        self.value, self.error, self.visited = "", False, False


class MacLib:
    """The macLib behaviour asInitFP relies on (macCore.c), messages included.

    Facts kept: definitions are expanded together (in definition order, at "level 1",
    where quotes and escapes are dropped) the first time a string is expanded after a
    change, and their warnings are printed then (``macro Y is undefined (expanding macro
    X)``, ``macro X is recursive (expanding macro Y)``); afterwards a reference copies the
    stored value and its error.  In the string itself (level 0) quotes and backslashes
    are kept, ``$(..)``/``${..}`` is not expanded inside single quotes, a default value
    (``$(a=dflt)``) and scoped definitions (``$(a,b=1)``) are honoured with warnings
    suppressed while they are scanned, a bad reference is written back as
    ``$(name,undefined)``.  Output beyond the capacity is dropped silently (no error).
    """

    def __init__(self, macros: dict[str, str], messages: list[str]) -> None:
        self.entries = [_MacEntry(k, v) for k, v in macros.items()]
        self.dirty = bool(self.entries)
        self.level = 0
        self.quiet = False
        self.messages = messages

    def _lookup(self, name: str) -> Optional[_MacEntry]:
        for entry in reversed(self.entries):
            if entry.name == name:
                return entry
        return None

    def _put(self, name: str, value: str) -> None:
        entry = self._lookup(name)
        if entry is None or entry.level < self.level:
            self.entries.append(_MacEntry(name, value, self.level))
        else:
            entry.raw = value
        self.dirty = True

    def _refresh(self) -> None:
        if not self.dirty:
            return
        for entry in list(self.entries):
            entry.error = False
            out: list[str] = []
            self._trans(entry, 1, "", entry.raw or "", 0, out, MAC_SIZE)
            entry.value = "".join(out)
        self.dirty = False

    def expand_string(self, src: str, capacity: int) -> tuple[str, bool]:
        """macExpandString: (text, failed)."""
        self._refresh()
        entry = _MacEntry(src, src, type_="string")
        out: list[str] = []
        self._trans(entry, 0, "", src, 0, out, capacity - 1)
        return "".join(out), entry.error

    @staticmethod
    def _emit(out: list[str], text: str, limit: int) -> None:
        room = limit - len(out)
        if room > 0:
            out.extend(text[:room])

    def _trans(self, entry: _MacEntry, level: int, term: str, raw: str, pos: int,
               out: list[str], limit: int) -> int:
        """Copy ``raw[pos:]`` up to a ``term`` character (or the end) into ``out``;
        returns the index of that terminator."""
        discard = level > 0
        quote = ""
        n = len(raw)
        while pos < n and raw[pos] not in term:
            c = raw[pos]
            if quote:
                if c == quote:
                    quote = ""
                    if discard:
                        pos += 1
                        continue
            elif c in "\"'":
                quote = c
                if discard:
                    pos += 1
                    continue
            if c == "$" and pos + 1 < n and raw[pos + 1] in "({" and quote != "'":
                pos = self._refer(entry, level, raw, pos, out, limit) + 1
                continue
            if c == "\\" and pos + 1 < n:
                if not discard:
                    self._emit(out, "\\", limit)
                if len(out) < limit:  # with no room left the escaped character is
                    pos += 1          # not stepped over: it is scanned next (base)
                    self._emit(out, raw[pos], limit)
            else:
                self._emit(out, c, limit)
            pos += 1
        return pos

    def _refer(self, entry: _MacEntry, level: int, raw: str, pos: int,
               out: list[str], limit: int) -> int:
        """A ``$(...)`` at ``raw[pos]``; returns the index of its closing character
        (or of the last character when the string ends inside the reference)."""
        end = "=,)" if raw[pos + 1] == "(" else "=,}"
        name_out: list[str] = []
        pos = self._trans(entry, level + 1, end, raw, pos + 2, name_out, MAC_SIZE)
        name = "".join(name_out)
        n = len(raw)

        def at(i: int) -> str:
            return raw[i] if i < n else ""

        default_at = None
        if at(pos) == "=":
            default_at = pos + 1
            quiet, self.quiet = self.quiet, True
            scratch = _MacEntry(name, None, type_="default value")
            pos = self._trans(scratch, level + 1, end[1:], raw, pos + 1, [], 0)
            self.quiet = quiet
        pushed = False
        if at(pos) == ",":
            quiet, self.quiet = self.quiet, True
            self.level += 1
            pushed = True
            scope_mark = len(self.entries)
            while at(pos) == ",":
                sub = _MacEntry(name, None, type_="scoped macro")
                sub_out: list[str] = []
                pos = self._trans(sub, level + 1, end, raw, pos + 1, sub_out, MAC_SIZE)
                if at(pos) == "=":
                    sub.name = "".join(sub_out)
                    val_out: list[str] = []
                    pos = self._trans(sub, level + 1, end[1:], raw, pos + 1, val_out,
                                      MAC_SIZE)
                    self._put("".join(sub_out), "".join(val_out))
            self.quiet = quiet
        if pos >= n:
            pos = n - 1  # trans stops on the string's end: step back onto it
        try:
            ref = self._lookup(name)
            if ref is not None and not ref.visited:
                if not self.dirty:
                    self._emit(out, ref.value, limit)
                    entry.error = entry.error or ref.error
                else:
                    ref.visited = True
                    self._trans(entry, level + 1, "", ref.raw or "", 0, out, limit)
                    ref.visited = False
                return pos
            if ref is None and default_at is not None:
                self._trans(entry, level + 1, end[1:], raw, default_at, out, limit)
                return pos
            entry.error = True
            if ref is not None:
                note = ",recursive)"
                if not self.quiet:
                    self.messages.append(f"macLib: {entry.type} {entry.name} is recursive "
                                         f"(expanding {ref.type} {ref.name})")
            else:
                note = ",undefined)"
                if not self.quiet:
                    self.messages.append(f"macLib: macro {name} is undefined "
                                         f"(expanding {entry.type} {entry.name})")
            self._emit(out, "$(" + name + (")" if self.quiet else note), limit)
            return pos
        finally:
            if pushed:
                del self.entries[scope_mark:]
                self.level -= 1
                self.dirty = True
