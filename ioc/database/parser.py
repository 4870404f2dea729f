"""Reader for EPICS database files (.db/.template), mirroring EPICS base's dbStatic.

Grammar, lexical rules and load-time checks follow ``dbLex.l``, ``dbYacc.y`` and
``dbLexRoutines.c`` (EPICS 7.0.8; the oracle tests compare with the real ``softIoc``):

* Macros are expanded line by line *before* lexing, as ``dbReadCOM`` does with macLib (here
  ``epicsmacrolib``), even when no macros are given, so ``$(A=default)`` always works.  An
  undefined macro is left as ``$(NAME,undefined)``.  Environment variables are not macros in
  dbLoadRecords (``macCreateHandle(&h, NULL)``), hence ``use_environment=False`` by default.
* File names (``include`` and :func:`parse_db_file`) get environment expansion only
  (``macEnvExpand``).  Names containing ``/`` are opened as given, others are searched along
  the path - not relative to the including file.  The path starts as ``search_path``, else
  ``$EPICS_DB_INCLUDE_PATH``, else ``"."``; ``path "a:b"`` replaces and ``addpath "c"``
  extends it for the rest of the load.  An included file's tokens are spliced in where the
  ``include`` stood (EPICS switches its input stream), at top level or inside a body.
* Field and info values are JSON-mode tokens: a quoted value (``"..."`` or ``'...'``) loses
  its quotes and gets C escapes translated (``epicsStrnRawFromEscaped``); a bare word or
  number is taken as written; ``{...}``/``[...]`` become the compact JSON text EPICS builds.
  Record types, names, aliases and field/info names: quotes removed, escapes kept as written.
* dbd statements (menu, recordtype, device, driver, link, registrar, function, variable,
  breaktable) are checked for syntax and dropped.

:class:`DbLoadError` names the file and line of the offending token (in an included file,
that file): invalid character, unterminated string, bad JSON string, syntax error, file or
include file not found, empty or bad record/alias name, a macro left unexpanded in a
record/alias name or in a field value (EPICS refuses both; info values may keep one), and
one record name given two types within one load.

Duplicate records of one type are returned as separate :class:`RecordDef` entries in file
order; the caller merges them (later fields win) as EPICS does.  ``record("*", NAME)``
(EPICS 7: modify an existing record of any type) comes back with ``rtype == "*"``, and
``record("#", NAME)`` (delete it; EPICS after 7.0.8) with ``rtype == "#"``; whether the
record exists, and type clashes with earlier loads, is for the caller to check.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import epicsmacrolib

from .errors import DbLoadError

__all__ = ["FieldDef", "RecordDef", "AliasDef", "parse_db_file", "parse_db_text",
           "split_path_list", "read_text", "expand_lines", "env_expand"]


@dataclass
class FieldDef:
    """``field(NAME, value)`` or ``info(NAME, value)``; ``value`` as EPICS passes it on."""
    name: str
    value: str
    filename: str
    lineno: int


@dataclass
class RecordDef:
    """One ``record``/``grecord`` statement (a duplicate name yields another RecordDef)."""
    rtype: str
    name: str
    filename: str
    lineno: int
    fields: list[FieldDef] = field(default_factory=list)
    infos: list[FieldDef] = field(default_factory=list)
    aliases: list[tuple[str, int]] = field(default_factory=list)   # alias(name) in the body


@dataclass
class AliasDef:
    """Top-level ``alias(record, alias)``."""
    record: str
    alias: str
    filename: str
    lineno: int


# ----------------------------------------------------------------------------- helpers
MAX_INCLUDE_DEPTH = 64      # EPICS has no limit (it recurses until it runs out of files)


def read_text(path: str) -> str:
    """Read a file as text: UTF-8, or Latin-1 when it is not valid UTF-8 (EPICS is 8-bit)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _expand(ctx: epicsmacrolib.MacroContext, text: str) -> str:
    # macLib truncates at the buffer size; grow it rather than silently lose text.
    size = 1024 + 4 * len(text)
    while True:
        out = ctx.expand(text, max_length=size)
        if len(out) < size - 1 or size > 1 << 24:
            return out
        size *= 4


def expand_lines(text: str, ctx: epicsmacrolib.MacroContext) -> list[str]:
    """Split ``text`` into lines and macro-expand each one (dbReadCOM reads with fgets and
    expands every line on its own, so a macro can never span lines)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()     # the final newline does not start another line
    return [_expand(ctx, line) if "$" in line else line for line in lines]


def env_expand(name: str) -> str:
    """``macEnvExpand``: expand environment variables only (used for file names)."""
    if "$" not in name:
        return name
    return _expand(epicsmacrolib.MacroContext(use_environment=True, show_warnings=True,
                                              string_encoding="utf-8"), name)


def split_path_list(path: str) -> list[str]:
    """``dbAddPath``: split on ':', strip blanks; an empty entry anywhere means ``"."``
    (added once, at the end)."""
    parts = [part.strip() for part in path.split(":")]
    dirs = [part for part in parts if part]
    if path.strip() and len(dirs) < len(parts):
        dirs.append(".")
    return dirs


def _find_file(name: str, dirs: list[str]) -> str | None:
    """``dbOpenFile``: names with a directory part are opened as given, others are searched."""
    if not dirs or "/" in name or "\\" in name:
        return name if os.path.isfile(name) else None
    for d in dirs:
        cand = name if d == "." else os.path.join(d, name)
        if os.path.isfile(cand):
            return cand
    return None


def default_search_path() -> list[str]:
    """The path dbLoadRecords starts with: ``$EPICS_DB_INCLUDE_PATH`` or ``"."``."""
    return split_path_list(os.environ.get("EPICS_DB_INCLUDE_PATH", "")) or ["."]


_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
            "\\": "\\", "'": "'", '"': '"', "0": "\0"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|.?)", re.S)


def _unescape(m: re.Match) -> str:
    esc = m.group(1)
    if esc[:1] == "x":  # "\x" without hex digits drops the 'x'; what follows is read normally
        return chr(int(esc[1:], 16)) if len(esc) > 1 else ""
    return _ESCAPES.get(esc, esc)


def raw_from_escaped(s: str) -> str:
    """``epicsStrnRawFromEscaped``: translate C escapes (``\\xHH`` takes 1-2 hex digits, an
    unknown ``\\c`` gives ``c``); the result ends at the first NUL, as a C string would."""
    return _ESCAPE.sub(_unescape, s).split("\0", 1)[0]


_MACRO_REF = re.compile(r"\$[({]([^,)}=]*)")


def _unexpanded(value: str) -> str | None:
    """The name of the first macro reference left in ``value``, if any."""
    m = _MACRO_REF.search(value)
    return m.group(1) if m else None


# ----------------------------------------------------------------------------- lexer
KEYWORDS = frozenset({"include", "path", "addpath", "menu", "choice", "recordtype", "field",
                      "device", "driver", "link", "breaktable", "record", "grecord", "alias",
                      "info", "registrar", "function", "variable"})
_WS = re.compile(r"(?:[ \t\r\n]+|#.*)+")
_BAREWORD = re.compile(r"[a-zA-Z0-9_\-+:.\[\]<>;]+")
_QSTRING = re.compile(r'"(?:[^"\n\\]|\\.)*"')
_JBARE = re.compile(r"[a-zA-Z0-9_\-+.]+")
_NUMBER = re.compile(r"""[+-]?(?:0[xX][0-9a-fA-F]+
    | (?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?
    | (?:0|[1-9][0-9]*)\.(?:[eE][+-]?[0-9]+)?
    | \.[0-9]+(?:[eE][+-]?[0-9]+)?
    | Infinity) | NaN""", re.X)
_JESC = r"\\[^ux1-9]|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}"
_JSTRING = re.compile(rf""""(?:[^"'\\\x00-\x1f]|'|{_JESC})*"|'(?:[^"'\\\x00-\x1f]|"|{_JESC})*'""")
_BAD_JSTRING = re.compile(r""""(?:[^"\n\\]|\\.)*"|'(?:[^'\n\\]|\\.)*'""")

INITIAL, JSON = 0, 1


@dataclass
class Token:
    """A lexer token: ``kind`` is a keyword, a punctuation char, ``STRING`` (INITIAL mode),
    ``JSTRING``/``JBARE``/``NUMBER``/``null``/``true``/``false`` (JSON mode), ``CDEFS`` or
    ``EOF``.  ``value`` is the string content (quotes removed for ``STRING``)."""
    kind: str
    value: str
    text: str
    filename: str
    lineno: int

    def describe(self) -> str:
        return "end of file" if self.kind == "EOF" else repr(self.text)


@dataclass
class _Source:
    """One open file: its macro-expanded lines and the read position."""
    filename: str
    lines: list[str]
    row: int = 0
    col: int = 0


class Lexer:
    """Tokenizer with a stack of sources (include files) and two modes (INITIAL and JSON)
    selected by the parser for each token, like the start conditions of ``dbLex.l``."""

    def __init__(self, filename: str, lines: list[str]):
        self.stack = [_Source(filename, lines)]
        self.top_filename = filename
        self.top_lines = len(lines)
        self._peeked: tuple[int, Token] | None = None

    def push(self, filename: str, lines: list[str]) -> None:
        """Continue reading from ``filename``; afterwards resume the current file."""
        assert self._peeked is None
        self.stack.append(_Source(filename, lines))

    def peek(self, mode: int = INITIAL) -> Token:
        if self._peeked is None:
            self._peeked = (mode, self._lex(mode))
        # The grammar never needs a look-ahead token across a mode switch.
        assert self._peeked[0] == mode, "look-ahead token lexed in the wrong mode"
        return self._peeked[1]

    def next(self, mode: int = INITIAL) -> Token:
        tok = self.peek(mode)
        self._peeked = None
        return tok

    def _lex(self, mode: int) -> Token:
        while self.stack:
            src = self.stack[-1]
            if src.row >= len(src.lines):
                self.stack.pop()
                continue
            line = src.lines[src.row]
            m = _WS.match(line, src.col)
            if m:
                src.col = m.end()
            if src.col >= len(line):
                src.row += 1
                src.col = 0
                continue
            return self._token(src, line, mode)
        return Token("EOF", "", "", self.top_filename, max(self.top_lines, 1))

    def _token(self, src: _Source, line: str, mode: int) -> Token:
        pos, c = src.col, line[src.col]
        lineno = src.row + 1

        def make(kind: str, end: int, value: str | None = None) -> Token:
            text = line[pos:end]
            src.col = end
            return Token(kind, text if value is None else value, text, src.filename, lineno)

        def fail(message: str) -> DbLoadError:
            return DbLoadError(src.filename, lineno, message)

        if mode == INITIAL:
            if c in "{}(),":
                return make(c, pos + 1)
            m = _BAREWORD.match(line, pos)
            if m:
                kind = m.group() if m.group() in KEYWORDS else "STRING"
                return make(kind, m.end())
            if c == '"':
                m = _QSTRING.match(line, pos)
                if not m:
                    raise fail("unterminated string: closing quote missing")
                return make("STRING", m.end(), m.group()[1:-1])
            if c == "%":    # C definition line in a recordtype body
                return make("CDEFS", len(line), line[pos + 1:])
        else:
            if c in ":,[]{}":
                return make(c, pos + 1)
            if c in "\"'":
                m = _JSTRING.match(line, pos)
                if m:
                    return make("JSTRING", m.end())
                if _BAD_JSTRING.match(line, pos):
                    raise fail("bad character in JSON string")
                raise fail("unterminated string: closing quote missing")
            m = _JBARE.match(line, pos)
            if m:
                word = m.group()
                if word in ("null", "true", "false"):
                    return make(word, m.end())
                # flex takes the longest match and the number rule wins a tie
                kind = "NUMBER" if _NUMBER.fullmatch(word) else "JBARE"
                return make(kind, m.end())
        shown = repr(c) if c.isprintable() else f"0x{ord(c):02x}"
        raise fail(f"invalid character {shown}")


# ----------------------------------------------------------------------------- parser
# dbd statements that are just a parenthesised list: (number of arguments, optional extra)
_DBD_ARGS = {"device": (4, 0), "link": (2, 0), "driver": (1, 0), "registrar": (1, 0),
             "function": (1, 0), "variable": (1, 1)}


class _Parser:
    """Recursive-descent parser over the token stream, one method per grammar rule."""

    def __init__(self, lexer: Lexer, ctx: epicsmacrolib.MacroContext, dirs: list[str]):
        self.lex = lexer
        self.ctx = ctx
        self.dirs = dirs
        self.out: list[RecordDef | AliasDef] = []
        self.types: dict[str, tuple[str, str, int]] = {}

    # -- token helpers
    def error(self, tok: Token, message: str) -> DbLoadError:
        return DbLoadError(tok.filename, tok.lineno, message)

    def unexpected(self, tok: Token, want: str) -> DbLoadError:
        return self.error(tok, f"syntax error: expected {want} but found {tok.describe()}")

    def expect(self, kind: str, mode: int = INITIAL) -> Token:
        tok = self.lex.next(mode)
        if tok.kind != kind:
            raise self.unexpected(tok, "a name or quoted string" if kind == "STRING"
                                  else f"'{kind}'")
        return tok

    def args(self, n: int, optional: int = 0) -> list[Token]:
        """``'(' STRING (',' STRING){n-1} [',' STRING]{0..optional} ')'``"""
        self.expect("(")
        toks = [self.expect("STRING")]
        for i in range(n - 1 + optional):
            if i >= n - 1 and self.lex.peek().kind != ",":
                break
            self.expect(",")
            toks.append(self.expect("STRING"))
        self.expect(")")
        return toks

    # -- grammar
    def database(self) -> None:
        while (tok := self.lex.next()).kind != "EOF":
            kind = tok.kind
            if kind in ("include", "path", "addpath"):
                self.directive(tok)
            elif kind in ("record", "grecord"):
                self.record()
            elif kind == "alias":
                rec, alias = self.args(2)
                self.check_name(alias, "alias")
                self.check_name(rec, "record")
                self.out.append(AliasDef(rec.value, alias.value, tok.filename, tok.lineno))
            elif kind in _DBD_ARGS:
                self.args(*_DBD_ARGS[kind])
            elif kind in ("menu", "recordtype", "breaktable"):
                self.args(1)
                self.dbd_body(kind)
            else:
                raise self.error(tok, f"syntax error: unexpected {tok.describe()}")

    def directive(self, tok: Token) -> None:
        """``include``/``path``/``addpath`` STRING."""
        arg = self.expect("STRING")
        if tok.kind == "path":
            self.dirs[:] = split_path_list(arg.value) or ["."]
        elif tok.kind == "addpath":
            self.dirs.extend(split_path_list(arg.value))
        else:
            if len(self.lex.stack) >= MAX_INCLUDE_DEPTH:
                raise self.error(arg, "include files nested too deeply")
            name = env_expand(arg.value)
            found = _find_file(name, self.dirs)
            if found is None:
                raise self.error(arg, f"can't open include file {name!r} "
                                      f"(search path {':'.join(self.dirs)!r})")
            try:
                text = read_text(found)
            except OSError as exc:
                raise self.error(arg, f"can't read include file {name!r}: {exc.strerror}")
            self.lex.push(found, expand_lines(text, self.ctx))

    def dbd_body(self, kind: str) -> None:
        """The braced body of menu, recordtype or breaktable; checked, then dropped."""
        self.expect("{")
        count = 0
        while (tok := self.lex.next()).kind != "}":
            count += 1
            if kind == "breaktable":        # numbers, commas optional between them
                if tok.kind == "," and count > 1:
                    tok = self.lex.next()
                if tok.kind != "STRING":
                    raise self.unexpected(tok, "a number")
            elif tok.kind == "include":
                self.directive(tok)
            elif kind == "menu":
                if tok.kind != "choice":
                    raise self.unexpected(tok, "choice")
                self.args(2)
            elif tok.kind == "field":       # recordtype field(NAME, TYPE) { attr(value)... }
                self.args(2)
                self.expect("{")
                while True:
                    attr = self.lex.next()
                    if attr.kind not in ("STRING", "menu"):
                        raise self.unexpected(attr, "a field attribute")
                    self.args(1)
                    if self.lex.peek().kind == "}":
                        self.lex.next()
                        break
            elif tok.kind != "CDEFS":
                raise self.unexpected(tok, "field")
        if count == 0 and kind != "recordtype":
            raise self.error(tok, f"syntax error: empty {kind} body")

    def record(self) -> None:
        rtype, name = self.args(2)
        self.check_name(name, "record")
        rec = RecordDef(rtype.value, name.value, name.filename, name.lineno)
        self.check_type(rec)
        self.out.append(rec)
        if self.lex.peek().kind != "{":
            return          # record(ai, "X") without a body
        self.lex.next()
        while (tok := self.lex.next()).kind != "}":
            if tok.kind in ("field", "info"):
                self.expect("(")
                key = self.expect("STRING")
                self.expect(",")
                value = self.json_value()
                if value[:1] in ("\"", "'"):   # dbRecordField: unquote, translate escapes
                    value = raw_from_escaped(value[1:-1])
                self.expect(")")
                fd = FieldDef(key.value, value, key.filename, key.lineno)
                if tok.kind == "info":
                    if not key.value:
                        raise self.error(key, "info item name can't be empty")
                    rec.infos.append(fd)
                    continue
                if (macro := _unexpanded(value)) is not None:   # dbPutString refuses it
                    raise self.error(key, f"record {rec.name!r} field {key.value}: "
                                          f"undefined macro $({macro}) in {value!r}")
                rec.fields.append(fd)
            elif tok.kind == "alias":
                (alias,) = self.args(1)
                self.check_name(alias, "alias")
                rec.aliases.append((alias.value, alias.lineno))
            elif tok.kind == "include":
                self.directive(tok)
            else:
                raise self.unexpected(tok, "field, info, alias or '}'")

    def json_value(self) -> str:
        """A JSON-mode value as the text dbYacc.y builds for it."""
        tok = self.lex.next(JSON)
        if tok.kind in ("null", "true", "false", "NUMBER", "JSTRING"):
            return tok.text
        if tok.kind == "JBARE":
            return f'"{tok.text}"'
        if tok.kind not in ("[", "{"):
            raise self.unexpected(tok, "a value")
        close = "]" if tok.kind == "[" else "}"
        parts: list[str] = []
        while self.lex.peek(JSON).kind != close:
            if close == "]":
                parts.append(self.json_value())
            else:
                key = self.lex.next(JSON)
                if key.kind == "JBARE" and any(ch in key.text for ch in "+-."):
                    parts.append(f'"{key.text}"')   # YAJL needs those keys quoted
                elif key.kind in ("JBARE", "JSTRING"):
                    parts.append(key.text)
                else:
                    raise self.unexpected(key, "a JSON key")
                self.expect(":", JSON)
                parts.append(":" + self.json_value())
            if self.lex.peek(JSON).kind != ",":
                break
            self.lex.next(JSON)
            parts.append(",")
        self.expect(close, JSON)
        if close == "}" and parts[-1:] == [","]:
            parts.pop()         # a trailing ',' is dropped in objects, kept in arrays
        return tok.kind + "".join(parts) + close

    # -- semantic checks done by dbLexRoutines.c while parsing
    def check_name(self, tok: Token, what: str) -> None:
        """``dbRecordNameValidate``."""
        name = tok.value
        if not name:
            raise self.error(tok, f"{what} name can't be empty")
        if (macro := _unexpanded(name)) is not None:
            raise self.error(tok, f"undefined macro $({macro}) in {what} name {name!r}")
        for ch in " \"'.$":
            if ch in name:
                raise self.error(tok, f"bad character {ch!r} in {what} name {name!r}")

    def check_type(self, rec: RecordDef) -> None:
        if rec.rtype in ("*", "#"):    # modify / delete (newer EPICS) an existing record
            if rec.rtype == "#":
                self.types.pop(rec.name, None)
            return
        prev = self.types.setdefault(rec.name, (rec.rtype, rec.filename, rec.lineno))
        if prev[0] != rec.rtype:
            raise DbLoadError(rec.filename, rec.lineno,
                              f"record {rec.name!r} of type {prev[0]!r} (defined at "
                              f"{prev[1]}:{prev[2]}) redefined with type {rec.rtype!r}")


# ----------------------------------------------------------------------------- API
def _context(macros: dict[str, str] | None, use_environment: bool) -> epicsmacrolib.MacroContext:
    # show_warnings=True makes macLib leave "$(NAME,undefined)" like dbLoadRecords does
    # (dbQuietMacroWarnings=0); macLib's warnings themselves are not printed by epicsmacrolib.
    ctx = epicsmacrolib.MacroContext(use_environment=use_environment, show_warnings=True,
                                     string_encoding="utf-8")
    if macros:
        ctx.define(**macros)
    return ctx


def parse_db_text(text: str, filename: str, macros: dict[str, str] | None = None,
                  search_path: list[str] | None = None,
                  use_environment: bool = False) -> list[RecordDef | AliasDef]:
    """Parse database text as if read from ``filename`` (used in messages only).

    ``macros`` are the dbLoadRecords macro definitions (raw macLib values: quotes and escapes
    in them are handled by macLib at expansion time).  ``search_path`` is the include path
    (default ``$EPICS_DB_INCLUDE_PATH`` or ``["."]``); it is not modified.  With
    ``use_environment`` environment variables also act as macros (EPICS: they don't).
    Returns records and top-level aliases in file order; raises :class:`DbLoadError`."""
    ctx = _context(macros, use_environment)
    dirs = list(search_path) if search_path is not None else default_search_path()
    parser = _Parser(Lexer(filename, expand_lines(text, ctx)), ctx, dirs)
    parser.database()
    return parser.out


def parse_db_file(path: str, macros: dict[str, str] | None = None,
                  search_path: list[str] | None = None,
                  use_environment: bool = False) -> list[RecordDef | AliasDef]:
    """dbLoadRecords(path, macros): read and parse one database file.

    ``path`` is expanded with environment variables and, when it has no directory part,
    searched along the search path like an include file.  A missing or unreadable file raises
    ``DbLoadError(path, 0, ...)``.  Everything else is as for :func:`parse_db_text`."""
    name = env_expand(path)
    dirs = list(search_path) if search_path is not None else default_search_path()
    found = _find_file(name, dirs)
    if found is None:
        raise DbLoadError(path, 0, f"can't open file {name!r}")
    try:
        text = read_text(found)
    except OSError as exc:
        raise DbLoadError(path, 0, f"can't read file {name!r}: {exc.strerror}") from None
    return parse_db_text(text, found, macros, dirs, use_environment)
