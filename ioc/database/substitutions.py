"""Reader for EPICS substitutions files, mirroring ``dbLoadTemplate`` of EPICS base.

Syntax (``dbLoadTemplate.y``/``dbLoadTemplate_lex.l``)::

    global {X=1}                          # applies to every later set, until end of file
    file "name.template" {
        pattern {A, B}                    # commas between items are optional
            {1, "two"}
            global {Y=2}
            {3, 4}
    }
    file name.db { {A=1, B='q'} {A=3} }  # the regular form; {} loads with globals only

Behaviour copied from EPICS, checked against the real softIoc by the oracle tests:

* Each set becomes one :class:`TemplateInstance`; its macros are, in increasing priority:
  the macros passed in (the second argument of dbLoadTemplate), the globals seen so far,
  then the set's own definitions.  EPICS does *not* expand macros in the substitutions file
  itself, and ``$`` is an invalid character outside quotes; a quoted value such as
  ``"$(A)"`` is kept as a macro reference and expanded when the template is loaded.
* Macro values are macLib definitions: EPICS joins ``NAME=WORD`` and ``NAME="QUOTE"``
  pieces into a macro string for dbLoadRecords, and macParseDefns keeps the quotes, which
  macLib removes when it expands the value.  Here the value of a quoted item is given
  without its quotes whenever that expands identically (no quote or backslash inside),
  else the macLib form (``'"a \\"b\\""'``) is kept; pass the dict to ``parse_db_file``
  unchanged either way.
* The template name is returned as written; EPICS expands environment variables in it
  when it opens the file (``parse_db_file`` does the same).
* ``name {A=1}`` (a word before a set: deprecated) and values beyond the pattern's names are
  accepted with a logged warning, as EPICS does.  Only one ``pattern`` header is allowed per
  ``file`` block, and an empty file is a syntax error (both as in dbLoadTemplate; msi is
  more lenient).

Errors raise ``DbLoadError(filename, lineno, message)`` at the offending token: invalid
character, unterminated string, syntax errors, and a missing file (line 0).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import epicsmacrolib

from .errors import DbLoadError
from .parser import read_text

__all__ = ["TemplateInstance", "parse_substitutions_file", "parse_substitutions_text"]

log = logging.getLogger(__name__)


@dataclass
class TemplateInstance:
    """One set of a substitutions file: load ``template`` with ``macros``.

    ``filename``/``lineno`` locate the set's opening brace in the substitutions file."""
    template: str
    macros: dict[str, str]
    filename: str
    lineno: int


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r]+|\#[^\n]*)
  | (?P<nl>\n)
  | (?P<quote>"(?:[^"\n\\]|\\.)*"|'(?:[^'\n\\]|\\.)*')
  | (?P<word>[a-zA-Z0-9_\-+:./\\\[\]<>;]+)
  | (?P<punct>[={},])
  | (?P<bad>["'])
  | (?P<invalid>.)
""", re.X)
_KEYWORDS = {"pattern": "PATTERN", "file": "FILE", "global": "GLOBAL"}


@dataclass
class _Tok:
    kind: str       # PATTERN FILE GLOBAL WORD QUOTE = { } , EOF
    value: str      # content (quotes removed for QUOTE)
    lineno: int

    def describe(self) -> str:
        return "end of file" if self.kind == "EOF" else repr(self.value)


def _tokenize(text: str, filename: str) -> list[_Tok]:
    toks: list[_Tok] = []
    lineno = 1
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        s = m.group()
        if kind == "nl":
            lineno += 1
        elif kind == "quote":
            toks.append(_Tok("QUOTE", s[1:-1], lineno))
        elif kind == "word":
            toks.append(_Tok(_KEYWORDS.get(s, "WORD"), s, lineno))
        elif kind == "punct":
            toks.append(_Tok(s, s, lineno))
        elif kind == "bad":
            raise DbLoadError(filename, lineno, "unterminated string: closing quote missing")
        elif kind == "invalid":
            shown = repr(s) if s.isprintable() else f"0x{ord(s):02x}"
            raise DbLoadError(filename, lineno, f"invalid character {shown}")
    # EOF is reported on the last line that exists
    toks.append(_Tok("EOF", "", lineno - 1 if text.endswith("\n") and lineno > 1 else lineno))
    return toks


def _macro_value(raw: str) -> str:
    """Drop the double quotes dbLoadTemplate put around a quoted value when macLib would
    expand the unquoted text identically (nothing inside that macLib treats specially)."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"' and not any(c in raw[1:-1] for c in "\"'\\"):
        return raw[1:-1]
    return raw


class _Parser:
    """Recursive descent over the dbLoadTemplate grammar; collects the template instances."""

    def __init__(self, toks: list[_Tok], filename: str, macros: dict[str, str]):
        self.toks = toks
        self.pos = 0
        self.filename = filename
        self.base = dict(macros)
        self.globals: list[str] = []    # "NAME=value" pieces, kept until the end of the file
        self.out: list[TemplateInstance] = []

    # -- token helpers
    def peek(self, offset: int = 0) -> _Tok:
        return self.toks[min(self.pos + offset, len(self.toks) - 1)]

    def next(self) -> _Tok:
        tok = self.peek()
        self.pos += 1
        return tok

    def error(self, tok: _Tok, message: str) -> DbLoadError:
        return DbLoadError(self.filename, tok.lineno, message)

    def expect(self, kind: str, what: str) -> _Tok:
        tok = self.next()
        if tok.kind != kind:
            raise self.error(tok, f"syntax error: expected {what} but found {tok.describe()}")
        return tok

    def skip_commas(self) -> None:
        while self.peek().kind == ",":
            self.pos += 1

    # -- grammar
    def parse(self) -> list[TemplateInstance]:
        if self.peek().kind == "EOF":
            raise self.error(self.peek(), "syntax error: no file or global statement")
        while (tok := self.peek()).kind != "EOF":
            if tok.kind == "GLOBAL":
                self.global_definitions()
            elif tok.kind == "FILE":
                self.template_substitutions()
            else:
                raise self.error(tok, f"syntax error: expected 'file' or 'global' but found "
                                      f"{tok.describe()}")
        return self.out

    def global_definitions(self) -> None:
        self.expect("GLOBAL", "'global'")
        self.expect("{", "'{'")
        self.globals.extend(self.variable_definitions())

    def template_substitutions(self) -> None:
        self.expect("FILE", "'file'")
        name = self.next()
        if name.kind not in ("WORD", "QUOTE"):
            raise self.error(name, f"syntax error: expected a template file name but found "
                                   f"{name.describe()}")
        self.expect("{", "'{'")
        if self.peek().kind == "PATTERN":
            self.pattern_substitutions(name.value)
        elif self.peek().kind == "}":
            pass            # file x {}: nothing to load
        else:
            self.variable_substitutions(name.value)
        self.expect("}", "'}'")

    def set_start(self) -> _Tok | None:
        """The opening ``{`` of a set (after a deprecated WORD), or None at the block's end.
        ``global`` blocks in between are processed here."""
        while True:
            tok = self.peek()
            if tok.kind == "GLOBAL":
                self.global_definitions()
            elif tok.kind == "{":
                return self.next()
            elif tok.kind == "WORD" and self.peek(1).kind == "{":
                log.warning("%s:%d: deprecated syntax: the word %r before '{' is extraneous",
                            self.filename, tok.lineno, tok.value)
                self.pos += 1
                brace = self.next()
                if self.peek().kind == "}":     # the deprecated form needs values
                    raise self.error(self.peek(), "syntax error: empty set after "
                                                  f"{tok.value!r}")
                return brace
            elif tok.kind == "}":
                return None
            else:
                raise self.error(tok, f"syntax error: expected '{{' or '}}' but found "
                                      f"{tok.describe()}")

    def pattern_substitutions(self, template: str) -> None:
        self.expect("PATTERN", "'pattern'")
        self.expect("{", "'{'")
        names: list[str] = []
        while (tok := self.next()).kind != "}":
            if tok.kind == "WORD":
                names.append(tok.value)
            elif tok.kind != "," or not names:
                raise self.error(tok, f"syntax error: expected a macro name but found "
                                      f"{tok.describe()}")
        while (brace := self.set_start()) is not None:
            pieces: list[str] = []
            values = 0
            while (tok := self.next()).kind != "}":
                if tok.kind == ",":
                    if not values:  # a set may not start with a comma
                        raise self.error(tok, "syntax error: unexpected ','")
                    continue
                if tok.kind not in ("WORD", "QUOTE"):
                    raise self.error(tok, f"syntax error: expected a value but found "
                                          f"{tok.describe()}")
                if values < len(names):
                    pieces.append(self.piece(names[values], tok))
                else:
                    log.warning("%s:%d: too many values given", self.filename, tok.lineno)
                values += 1
            self.emit(template, brace, pieces)

    def variable_substitutions(self, template: str) -> None:
        while (brace := self.set_start()) is not None:
            self.emit(template, brace, self.variable_definitions())

    def variable_definitions(self) -> list[str]:
        """``NAME=value`` items up to and including the closing brace."""
        pieces: list[str] = []
        while (tok := self.next()).kind != "}":
            if tok.kind == "," and pieces:
                continue
            if tok.kind != "WORD":
                raise self.error(tok, f"syntax error: expected a macro name but found "
                                      f"{tok.describe()}")
            self.expect("=", "'='")
            value = self.next()
            if value.kind not in ("WORD", "QUOTE"):
                raise self.error(value, f"syntax error: expected a value for {tok.value} "
                                        f"but found {value.describe()}")
            pieces.append(self.piece(tok.value, value))
        return pieces

    @staticmethod
    def piece(name: str, value: _Tok) -> str:
        # The exact text dbLoadTemplate appends to the macro string for dbLoadRecords.
        return f'{name}="{value.value}"' if value.kind == "QUOTE" else f"{name}={value.value}"

    def emit(self, template: str, brace: _Tok, pieces: list[str]) -> None:
        macros = dict(self.base)
        text = ",".join(self.globals + pieces)
        if text:
            ctx = epicsmacrolib.MacroContext(use_environment=False, string_encoding="utf-8")
            for name, raw in ctx.definitions_to_dict(text).items():
                macros[name] = _macro_value(raw)
        self.out.append(TemplateInstance(template, macros, self.filename, brace.lineno))


def parse_substitutions_text(text: str, filename: str,
                             macros: dict[str, str] | None = None) -> list[TemplateInstance]:
    """Parse substitutions ``text`` (``filename`` is used in messages and instances).

    ``macros`` (dbLoadTemplate's macro argument) are defaults for every set.  Returns the
    template instances in file order; raises :class:`DbLoadError` on any error."""
    return _Parser(_tokenize(text, filename), filename, macros or {}).parse()


def parse_substitutions_file(path: str,
                             macros: dict[str, str] | None = None) -> list[TemplateInstance]:
    """dbLoadTemplate(path, macros): read and parse a substitutions file (opened as given,
    no search path, like EPICS).  A missing file raises ``DbLoadError(path, 0, ...)``."""
    try:
        text = read_text(path)
    except OSError as exc:
        raise DbLoadError(path, 0, f"can't open substitutions file: {exc.strerror}") from None
    return parse_substitutions_text(text, path, macros)
