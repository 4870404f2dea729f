"""The JSON5 reader of channel names: what EPICS base's yajl (libcom, JSON5 mode) accepts.

dbChannelCreate hands everything from the ``{`` after the field name to yajl, configured for
JSON5 with comments, and treats the callbacks it gets as the filter specification. This module
reproduces that reader's *acceptance* and its *callback sequence* (so that the filter-option
rules in ``_chf`` see exactly what base's chfPlugin sees), not a general JSON5 library:

* keys: quoted strings ('...' or "...") or identifiers ``[$_A-Za-z][$_A-Za-z0-9]*``;
* values: strings, ``true``/``false``/``null``, numbers: decimal, ``+``, leading/trailing ``.``,
  hex integers ``0x..``, ``Infinity``/``NaN`` (``-NaN`` is refused, as yajl's number lexer only
  knows a signed ``Infinity``), maps and arrays with trailing commas;
* comments ``//...`` and ``/*...*/``; white space is only tab, LF, VT, FF, CR and space (the
  EPICS documentation also names U+00A0, but yajl's lexer refuses it: checked with softIoc);
* escapes: JSON's plus ``\\xHH`` (one raw byte), ``\\0``, ``\\v``, ``\\'``, any other character
  except 1-9 for itself, and a backslash before a line break (dropped);
* integers beyond the 64-bit range, and doubles that overflow, are errors (``1e-400`` is not).

Text is handled as one character per byte (latin-1, as the CA server decodes names), so UTF-8
inside strings is validated byte-wise like yajl does and ``\\uXXXX`` becomes UTF-8 bytes.

Like yajl fed the name and then ``yajl_complete_parse`` (which adds one space), the text after
the top-level value may hold only white space and comments; an unterminated ``/*`` there is
accepted, a lone ``/`` is not (both checked with softIoc 7.0.8).
"""
from __future__ import annotations

from typing import Any, Protocol

LLONG_MAX = (1 << 63) - 1

_WS = "\t\n\v\f\r "
_DIGITS = "0123456789"
_HEX = "0123456789abcdefABCDEF"
_IDENT_START = set("$_ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_IDENT_CHARS = _IDENT_START | set("0123456789")


class JsonError(ValueError):
    """The text is not what yajl accepts; the message is yajl's (lexical or parse error)."""


class Handler(Protocol):
    """yajl's callbacks; each returns False to stop the parse (yajl 'client cancelled')."""

    def null(self) -> bool: ...
    def boolean(self, v: bool) -> bool: ...
    def integer(self, v: int) -> bool: ...
    def double(self, v: float) -> bool: ...
    def string(self, v: str) -> bool: ...
    def start_map(self) -> bool: ...
    def map_key(self, k: str) -> bool: ...
    def end_map(self) -> bool: ...
    def start_array(self) -> bool: ...
    def end_array(self) -> bool: ...


class Cancelled(Exception):
    """A callback returned False."""


# token kinds
EOF, ERR, LBRACE, RBRACE, LBRACK, RBRACK, COMMA, COLON, STR, BOOL, NULL, INT, DBL = range(13)


def _utf8(cp: int) -> str:
    """A code point as UTF-8 bytes, one latin-1 character per byte (yajl's Utf32toUtf8)."""
    if cp < 0x80:
        return chr(cp)
    if cp < 0x800:
        return chr(0xC0 | cp >> 6) + chr(0x80 | cp & 0x3F)
    if cp < 0x10000:
        return chr(0xE0 | cp >> 12) + chr(0x80 | cp >> 6 & 0x3F) + chr(0x80 | cp & 0x3F)
    if cp < 0x200000:
        return (chr(0xF0 | cp >> 18) + chr(0x80 | cp >> 12 & 0x3F) + chr(0x80 | cp >> 6 & 0x3F)
                + chr(0x80 | cp & 0x3F))
    return "?"


class _Lexer:
    def __init__(self, text: str):
        self.t = text
        self.n = len(text)
        self.i = 0
        self.error = ""

    def _err(self, msg: str) -> tuple[int, Any]:
        self.error = msg
        return ERR, None

    def _comment(self) -> int | None:
        """After '/': skip a comment. None = skipped, else EOF or ERR."""
        t = self.t
        if self.i >= self.n:
            return EOF
        c = t[self.i]
        self.i += 1
        if c == "/":
            j = t.find("\n", self.i)
            if j < 0:
                self.i = self.n
                return EOF
            self.i = j + 1
            return None
        if c == "*":
            j = t.find("*/", self.i)
            if j < 0:
                self.i = self.n
                return EOF
            self.i = j + 2
            return None
        self.error = "invalid char in json text."
        return ERR

    def lex(self) -> tuple[int, Any]:
        """One token where a value or punctuation may come (yajl_lex_lex)."""
        t = self.t
        while True:
            if self.i >= self.n:
                return EOF, None
            c = t[self.i]
            self.i += 1
            if c in _WS:
                continue
            if c in "{}[],:":
                return "{}[],:".index(c) + LBRACE, None
            if c in "tfnIN":
                word = {"t": "true", "f": "false", "n": "null", "I": "Infinity", "N": "NaN"}[c]
                for w in word[1:]:
                    if self.i >= self.n:
                        return EOF, None
                    if t[self.i] != w:
                        return self._err("invalid string in json text.")
                    self.i += 1
                if c in "tf":
                    return BOOL, c == "t"
                return (NULL, None) if c == "n" else (DBL, word)
            if c in "'\"":
                return self._string(c)
            if c in "+-.0123456789":
                self.i -= 1
                return self._number()
            if c == "/":
                r = self._comment()
                if r is None:
                    continue
                return r, None
            return self._err("invalid char in json text.")

    def lex_key(self) -> tuple[int, Any]:
        """One token where a map key or '}' may come (yajl_lex_key)."""
        t = self.t
        while True:
            if self.i >= self.n:
                return EOF, None
            c = t[self.i]
            self.i += 1
            if c in _WS:
                continue
            if c == "}":
                return RBRACE, None
            if c in "'\"":
                return self._string(c)
            if c == "/":
                r = self._comment()
                if r is None:
                    continue
                return r, None
            if c in _IDENT_START:
                j = self.i
                while j < self.n and t[j] in _IDENT_CHARS:
                    j += 1
                word = t[self.i - 1:j]
                self.i = j
                return STR, word
            return self._err("invalid char in json text.")

    def _string(self, quote: str) -> tuple[int, Any]:
        t, n = self.t, self.n
        out: list[str] = []
        while True:
            if self.i >= n:
                return EOF, None
            c = t[self.i]
            self.i += 1
            if c == quote:
                return STR, "".join(out)
            o = ord(c)
            if c == "\\":
                if self.i >= n:
                    return EOF, None
                c = t[self.i]
                self.i += 1
                if c in ("u", "x"):
                    k = 4 if c == "u" else 2
                    digits = t[self.i:self.i + k]
                    for d in digits:
                        if d not in _HEX:
                            return self._err(f"invalid (non-hex) character occurs after "
                                             f"'\\{c}' inside string.")
                    if len(digits) < k:
                        self.i = n
                        return EOF, None
                    self.i += k
                    if c == "x":
                        out.append(chr(int(digits, 16)))    # one raw byte, not UTF-8
                        continue
                    cp = int(digits, 16)
                    if (cp & 0xFC00) == 0xD800:
                        # a high surrogate combines with any following \uXXXX (as yajl does)
                        if t[self.i:self.i + 2] == "\\u" and all(
                                d in _HEX for d in t[self.i + 2:self.i + 6]) \
                                and len(t[self.i + 2:self.i + 6]) == 4:
                            lo = int(t[self.i + 2:self.i + 6], 16)
                            self.i += 6
                            cp = (((cp & 0x3F) << 10) | ((((cp >> 6) & 0xF) + 1) << 16)
                                  | (lo & 0x3FF))
                        else:
                            out.append("?")
                            continue
                    out.append("\0" if cp == 0 else _utf8(cp))
                elif "1" <= c <= "9":
                    self.i -= 1
                    return self._err("inside a string, '\\' occurs before a character "
                                     "which it may not.")
                elif c == "\n":
                    pass                                    # line continuation
                elif c == "\r":
                    if self.i >= n:
                        return EOF, None
                    if t[self.i] == "\n":
                        self.i += 1
                else:
                    out.append({"r": "\r", "n": "\n", "f": "\f", "b": "\b", "t": "\t",
                                "v": "\v", "0": "\0"}.get(c, c))
                continue
            if o < 0x20:
                self.i -= 1
                return self._err("invalid character inside string.")
            if o >= 0x80:
                # yajl_lex_utf8_char: lead byte, then continuation bytes 10xxxxxx
                more = 1 if o >> 5 == 0x6 else 2 if o >> 4 == 0xE else 3 if o >> 3 == 0x1E else -1
                if more < 0:
                    return self._err("invalid bytes in UTF8 string.")
                for _ in range(more):
                    if self.i >= n:
                        return EOF, None
                    b = ord(t[self.i])
                    self.i += 1
                    if b >> 6 != 0x2:
                        return self._err("invalid bytes in UTF8 string.")
                out.append(t[self.i - more - 1:self.i])
                continue
            out.append(c)

    def _number(self) -> tuple[int, Any]:
        """yajl_lex_number, JSON5 mode. Returns INT/DBL with the token text."""
        t, n = self.t, self.n
        start = self.i

        def peek() -> str | None:
            return t[self.i] if self.i < n else None

        c = peek()
        if c in ("-", "+"):
            self.i += 1
            c = peek()
        if c is None:
            return EOF, None
        if c == "I":
            self.i += 1
            for w in "nfinity":
                if self.i >= n:
                    return EOF, None
                if t[self.i] != w:
                    return self._err("invalid string in json text.")
                self.i += 1
            return DBL, t[start:self.i]
        kind = INT
        digits = 0
        if c == "0":
            self.i += 1
            digits = 1
            if peek() in ("x", "X"):
                self.i += 1
                j = self.i
                while self.i < n and t[self.i] in _HEX:
                    self.i += 1
                if self.i == j:
                    return self._err("malformed number, a hex digit is required after the 0x/0X.")
                return INT, t[start:self.i]
        elif c in _DIGITS:
            while self.i < n and t[self.i] in _DIGITS:
                self.i += 1
                digits += 1
        elif c != ".":
            return self._err("malformed number, a digit is required after the plus/minus sign.")
        if peek() == ".":
            self.i += 1
            while self.i < n and t[self.i] in _DIGITS:
                self.i += 1
                digits += 1
            if not digits:
                return self._err("malformed number, a digit is required after the decimal point.")
            kind = DBL
        if peek() in ("e", "E"):
            self.i += 1
            if peek() in ("+", "-"):
                self.i += 1
            j = self.i
            while self.i < n and t[self.i] in _DIGITS:
                self.i += 1
            if self.i == j:
                return self._err("malformed number, a digit is required after the exponent.")
            kind = DBL
        return kind, t[start:self.i]


def _integer(text: str) -> int:
    neg = text.startswith("-")
    body = text.lstrip("+-")
    v = int(body, 16) if body[:2] in ("0x", "0X") else int(body)
    if v > LLONG_MAX:
        raise JsonError("parse error: integer overflow")
    return -v if neg else v


def _double(text: str) -> float:
    v = float(text)
    if v in (float("inf"), float("-inf")) and "Infinity" not in text:
        raise JsonError("parse error: numeric (floating point) overflow")
    return v


def parse(text: str, h: Handler) -> None:
    """Parse ``text`` as yajl does, calling ``h``. Raises JsonError, or Cancelled when a
    callback returned False. The whole text must be one value (then white space/comments)."""
    lx = _Lexer(text + " ")       # the space yajl_complete_parse feeds
    stack = ["start"]

    def call(ok: bool) -> None:
        if not ok:
            raise Cancelled()

    def lexfail(tok: int) -> None:
        if tok == EOF:
            raise JsonError("parse error: premature EOF")
        raise JsonError("lexical error: " + lx.error)

    while True:
        state = stack[-1]
        if state == "complete":
            tok, _ = lx.lex()
            if tok == EOF:
                return
            raise JsonError("parse error: trailing garbage")   # also for a lexical error
        if state in ("start", "map_need_val", "array_need_val", "array_start"):
            tok, val = lx.lex()
            if tok in (EOF, ERR):
                lexfail(tok)
            push = None
            if tok == RBRACK and state in ("array_start", "array_need_val"):
                call(h.end_array())
                stack.pop()
                continue
            if tok in (COLON, COMMA, RBRACE, RBRACK):
                raise JsonError("parse error: unallowed token at this point in JSON text")
            if tok == STR:
                call(h.string(val))
            elif tok == BOOL:
                call(h.boolean(val))
            elif tok == NULL:
                call(h.null())
            elif tok == LBRACE:
                call(h.start_map())
                push = "map_start"
            elif tok == LBRACK:
                call(h.start_array())
                push = "array_start"
            elif tok == INT:
                call(h.integer(_integer(val)))
            else:
                call(h.double(_double(val)))
            stack[-1] = {"start": "complete", "map_need_val": "map_got_val"}.get(
                state, "array_got_val")
            if push:
                stack.append(push)
        elif state in ("map_start", "map_need_key"):
            tok, val = lx.lex_key()
            if tok in (EOF, ERR):
                lexfail(tok)
            if tok == STR:
                call(h.map_key(val))
                stack[-1] = "map_sep"
            else:                     # '}': JSON5 also allows it after a trailing comma
                call(h.end_map())
                stack.pop()
        elif state == "map_sep":
            tok, _ = lx.lex()
            if tok in (EOF, ERR):
                lexfail(tok)
            if tok != COLON:
                raise JsonError("parse error: object key and value must be separated by a "
                                "colon (':')")
            stack[-1] = "map_need_val"
        else:   # map_got_val, array_got_val
            tok, _ = lx.lex()
            if tok in (EOF, ERR):
                lexfail(tok)
            close = RBRACE if state == "map_got_val" else RBRACK
            if tok == close:
                call(h.end_map() if close == RBRACE else h.end_array())
                stack.pop()
            elif tok == COMMA:
                stack[-1] = "map_need_key" if state == "map_got_val" else "array_need_val"
            elif state == "map_got_val":
                raise JsonError("parse error: after key and value, inside map, I expect ',' "
                                "or '}'")
            else:
                raise JsonError("parse error: after array element, I expect ',' or ']'")


class _ValueBuilder:
    """yajl callbacks -> Python values (maps as dicts in key order, arrays as lists)."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.keys: list[str | None] = []
        self.result: Any = None

    def _add(self, v: Any) -> bool:
        if not self.stack:
            self.result = v
        elif isinstance(self.stack[-1], list):
            self.stack[-1].append(v)
        else:
            self.stack[-1][self.keys[-1]] = v
        return True

    def null(self) -> bool:
        return self._add(None)

    def boolean(self, v: bool) -> bool:
        return self._add(v)

    def integer(self, v: int) -> bool:
        return self._add(v)

    def double(self, v: float) -> bool:
        return self._add(v)

    def string(self, v: str) -> bool:
        return self._add(v)

    def start_map(self) -> bool:
        self.stack.append({})
        self.keys.append(None)
        return True

    def map_key(self, k: str) -> bool:
        self.keys[-1] = k
        return True

    def end_map(self) -> bool:
        self.keys.pop()
        return self._add(self.stack.pop())

    def start_array(self) -> bool:
        self.stack.append([])
        self.keys.append(None)
        return True

    def end_array(self) -> bool:
        self.keys.pop()
        return self._add(self.stack.pop())


def parse_value(text: str) -> Any:
    """The Python value of ``text`` (maps as dicts in key order, arrays as lists), read as
    :func:`parse` reads it. Raises JsonError."""
    b = _ValueBuilder()
    parse(text, b)
    return b.result
