"""Access Security Configuration File (ACF) parser, as EPICS base 7.0.8 asLib.

Accepts exactly the grammar of base's ``asLib.y``/``asLib_lex.l`` and reports errors with
the same text and line numbers as ``asInitialize()`` (what ``ascheck`` prints):

* lexical errors: ``Invalid character '@' at line 3``, ``Invalid character 0x01 at line 3``,
  ``Newline in quoted string, closing quote missing at line 3`` (that newline is swallowed
  without counting a line, as base does, so later line numbers are one low);
* ``syntax error at line N`` (bison; parsing stops there);
* semantic errors, printed by the asLib routine and followed by ``ERROR at line N``:
  duplicate UAG/HAG/ASG names, ``No User Access Group named 'x' defined``, bad CALC.
  ``Access rights must be NONE, READ or WRITE`` and ``Log options must be TRAPWRITE or
  NOTRAPWRITE`` carry the line themselves.  Parsing goes on after a semantic error.

A semantic action's line is that of the last token of its production (every such bison
reduction is a default reduction, taken without reading a lookahead).  After a
successful parse, users/hosts repeated inside one group are reported
(``Duplicated user 'x' in UAG 'a'``) without failing the load, as asInitialize does.

Input is read as asInitFP does: fgets() chunks of at most 199 characters, each cut at
its first NUL (a chunk left empty ends the input), expanded by a macLib emulation when
substitutions are given (undefined/recursive macro warnings as macLib prints them; a
failed chunk ends the input), and pulled lazily by the lexer as flex pulls them, so a
syntax error stops the reading and later lines are never expanded.  Every message is cut
as errlogPrintf cuts one of 256 characters or more (``...<<TRUNCATED>>``).

Base 7.0.8 has no ``RPC`` access right, no ``GENERIC`` blocks and no ``IP``/``METHOD``
rule items: those are syntax/access-right errors here as they are there.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from typing import Iterator, Optional

from ioc.records.calc_expr import CalcError, CalcExpr, compile_calc

from .maclib import MacLib, parse_macro_defns

__all__ = ["NONE", "READ", "WRITE", "ACCESS_NAMES", "Uag", "Hag", "AsgInput", "AsgRule",
           "Asg", "AccessConfig", "AcfResult", "parse_acf", "load_acf_file", "DEFAULT"]

NONE, READ, WRITE = 0, 1, 2              # asAccessRights: asNOACCESS, asREAD, asWRITE
ACCESS_NAMES = ("NONE", "READ", "WRITE")  # asLibRoutines.c asAccessName[]
DEFAULT = "DEFAULT"
NARGS = 12                                # CALCPERFORM_NARGS (INPA..INPL)
BUF_SIZE = 200                            # asLibRoutines.c: fgets() chunk and macro buffer


@dataclass
class Uag:
    """A user access group; ``users`` in file order (duplicates kept, as base)."""
    name: str
    users: list[str] = field(default_factory=list)


@dataclass
class Hag:
    """A host access group; ``hosts`` lower-cased, or dotted IPs with asCheckClientIP."""
    name: str
    hosts: list[str] = field(default_factory=list)


@dataclass
class AsgInput:
    """``INPx(pv)``: ``index`` 0..11 for A..L."""
    index: int
    pv: str


@dataclass
class AsgRule:
    """``RULE(level, access [, TRAPWRITE])`` with its UAG/HAG/CALC conditions.

    ``inp_used`` is calcArgUsage()'s bitmask of A..L read by ``calc``; ``result`` is
    the last CALC outcome (0 or 1; starts at 0, as asCalloc leaves it).
    """
    access: int
    level: int
    trapwrite: bool = False
    uags: list[Uag] = field(default_factory=list)
    hags: list[Hag] = field(default_factory=list)
    calc: Optional[str] = None
    expr: Optional[CalcExpr] = None
    inp_used: int = 0
    result: int = 0


@dataclass
class Asg:
    """An access security group with its inputs' state (asLib.h ``ASG``).

    ``values`` holds A..L (``pavalue``); ``inp_bad``/``inp_changed`` are bitmaps as in
    base.  See :mod:`ioc.access.engine` for how they are updated and used.
    """
    name: str
    inputs: list[AsgInput] = field(default_factory=list)
    rules: list[AsgRule] = field(default_factory=list)
    values: list[float] = field(default_factory=lambda: [0.0] * NARGS)
    inp_bad: int = 0
    inp_changed: int = 0


@dataclass
class AccessConfig:
    """A loaded configuration: groups in base's (strcmp-sorted) list order."""
    uags: list[Uag] = field(default_factory=list)
    hags: list[Hag] = field(default_factory=list)
    asgs: list[Asg] = field(default_factory=list)

    def find_asg(self, name: str) -> Asg:
        """The ASG called ``name``, else DEFAULT (asAddMemberPvt)."""
        for asg in self.asgs:
            if asg.name == name:
                return asg
        for asg in self.asgs:
            if asg.name == DEFAULT:
                return asg
        raise LookupError("no DEFAULT ASG")  # pragma: no cover - always added first

    def find_uag(self, name: str) -> Optional[Uag]:
        return next((u for u in self.uags if u.name == name), None)

    def find_hag(self, name: str) -> Optional[Hag]:
        return next((h for h in self.hags if h.name == name), None)


@dataclass
class AcfResult:
    """Outcome of a load: ``config`` is None when base's asInitialize would fail.

    ``messages`` are the errlog lines base prints, in order, without newlines.
    """
    config: Optional[AccessConfig]
    messages: list[str]

    @property
    def ok(self) -> bool:
        return self.config is not None


# ----------------------------------------------------------------------------- lexer
_NAME = re.compile(r"[a-zA-Z0-9_\-+:.\[\]<>;]+")
_GOOD_STRING = re.compile(r'"(?:[^"\n\\]|\\.)*"')
_BAD_STRING = re.compile(r'"(?:[^"\n\\]|\\.)*\n')
_OPEN_STRING = re.compile(r'"(?:[^"\n\\]|\\.)*\\?')  # what more input could complete
_KEYWORDS = {"UAG", "HAG", "ASG", "RULE", "CALC"}
_EOF = "$end"


@dataclass
class _Tok:
    kind: str        # keyword, "INP", "INTEGER", "STRING", a punctuation char, or _EOF
    value: object
    line: int


class _Lexer:
    """asLib_lex.l: longest match, earliest rule on ties; errors go to ``log``.

    Input is pulled from ``source`` (asLib's input function, one fgets() chunk at a time)
    only when the scanner needs it, as flex does: at the end of the buffer, or when a
    token that could still grow (a name, a comment, an open quoted string) reaches it.
    A single-character token, a closed string or a newline never reads ahead.  This
    matters with macros: a chunk that fails to expand is reported when it is read, so
    after a syntax error the rest of the file is never expanded.
    """

    def __init__(self, source: Iterator[str], parser: "_Parser") -> None:
        self.source, self.parser = source, parser
        self.text, self.pos, self.line, self.eof = "", 0, 1, False

    def _more(self) -> bool:
        """Append the next chunk (dropping what was consumed); False at end of input."""
        if self.eof:
            return False
        chunk = next(self.source, None)
        if chunk is None:
            self.eof = True
            return False
        self.text, self.pos = self.text[self.pos:] + chunk, 0
        return True

    def next(self) -> _Tok:
        while True:
            if self.pos >= len(self.text):
                if not self._more():
                    return _Tok(_EOF, None, self.line)
                continue
            text, pos = self.text, self.pos
            c = text[pos]
            m = _NAME.match(text, pos)
            if m:
                if m.end() == len(text) and self._more():
                    continue  # the name may go on in the next chunk
                word = m.group()
                self.pos = m.end()
                if word in _KEYWORDS:
                    return _Tok(word, None, self.line)
                if len(word) == 4 and word.startswith("INP") and "A" <= word[3] <= "L":
                    return _Tok("INP", ord(word[3]) - ord("A"), self.line)
                if word.isdigit() and word.isascii():
                    return _Tok("INTEGER", int(word), self.line)
                return _Tok("STRING", word, self.line)
            if c == '"':
                m = _GOOD_STRING.match(text, pos)
                if m:
                    self.pos = m.end()
                    return _Tok("STRING", m.group()[1:-1], self.line)  # escapes kept raw
                m = _BAD_STRING.match(text, pos)
                if m:  # base eats the newline without counting it
                    self.pos = m.end()
                    self.parser.error("Newline in quoted string, closing quote missing")
                    continue
                if _OPEN_STRING.match(text, pos).end() == len(text) and self._more():
                    continue
            self.pos += 1
            if c in "(){},":
                return _Tok(c, None, self.line)
            if c == "\n":
                self.line += 1
            elif c == "#":
                while True:
                    end = self.text.find("\n", self.pos)
                    if end >= 0:
                        self.pos = end
                        break
                    self.pos = len(self.text)
                    if not self._more():
                        break
            elif c not in " \t\r":
                code = ord(c)
                if 0x20 <= code < 0x7f:
                    self.parser.error(f"Invalid character '{c}'")
                else:  # not isprint() in the C locale, bytes >= 0x80 included
                    self.parser.error(f"Invalid character 0x{code:02x}")


# ----------------------------------------------------------------------------- parser
class _SyntaxError(Exception):
    pass


class _Parser:
    """Recursive descent over asLib.y, with asLibRoutines.c's actions."""

    def __init__(self, source: Iterator[str], check_client_ip: bool) -> None:
        self.messages: list[str] = []
        self.failed = False
        self.check_client_ip = check_client_ip
        self.config = AccessConfig()
        self.lexer = _Lexer(source, self)
        self.tok: Optional[_Tok] = None
        self._asg_add(DEFAULT)

    # -- plumbing
    def log(self, message: str) -> None:
        self.messages.append(message)

    def error(self, message: str = "", line: Optional[int] = None) -> None:
        """yyerror(): an empty message prints ``ERROR at line N``."""
        line = self.lexer.line if line is None else line
        self.log(f"{message or 'ERROR'} at line {line}")
        self.failed = True

    def peek(self) -> _Tok:
        if self.tok is None:
            self.tok = self.lexer.next()
        return self.tok

    def take(self, *kinds: str) -> _Tok:
        tok = self.peek()
        if tok.kind not in kinds:
            self.error("syntax error", tok.line)
            raise _SyntaxError
        self.tok = None
        return tok

    # -- grammar
    def parse(self) -> None:
        items = 0
        while True:
            kind = self.peek().kind
            if kind == _EOF and items:
                return
            self.take("UAG", "HAG", "ASG")
            name = self._head()
            items += 1
            if kind == "UAG":
                uag = self._uag_add(name.value, name.line)
                if self.peek().kind == "{":
                    self._list("{", "}", lambda t: uag and uag.users.append(t.value))
            elif kind == "HAG":
                hag = self._hag_add(name.value, name.line)
                if self.peek().kind == "{":
                    self._list("{", "}", lambda t: hag and self._hag_add_host(hag, t.value))
            else:
                asg = self._asg_add(name.value, name.line)
                if self.peek().kind == "{":
                    self._asg_body(asg)

    def _head(self) -> _Tok:
        """``'(' STRING ')'``: returns the name token, its line set to that of ')'."""
        self.take("(")
        name = self.take("STRING")
        close = self.take(")")
        return _Tok("STRING", name.value, close.line)

    def _list(self, open_: str, close: str, action) -> None:
        self.take(open_)
        while True:
            action(self.take("STRING"))
            if self.take(",", close).kind == close:
                return

    def _asg_body(self, asg: Optional[Asg]) -> None:
        self.take("{")
        while True:
            tok = self.take("INP", "RULE")
            if tok.kind == "INP":
                pv = self._head()
                if asg is not None:
                    asg.inputs.append(AsgInput(tok.value, pv.value))
            else:
                self._rule(asg)
            if self.peek().kind == "}":
                self.take("}")
                return

    def _rule(self, asg: Optional[Asg]) -> None:
        self.take("(")
        level = self.take("INTEGER").value
        self.take(",")
        right = self.take("STRING")
        if right.value in ACCESS_NAMES:
            access = ACCESS_NAMES.index(right.value)
        else:
            self.error("Access rights must be NONE, READ or WRITE", right.line)
            access = NONE
        rule = None
        if asg is not None:
            rule = AsgRule(access, level)
            asg.rules.append(rule)
        if self.take(")", ",").kind == ",":
            option = self.take("STRING")
            close = self.take(")")
            if option.value == "TRAPWRITE":
                if rule is not None:
                    rule.trapwrite = True
            elif option.value != "NOTRAPWRITE":
                self.error("Log options must be TRAPWRITE or NOTRAPWRITE", close.line)
        if self.peek().kind != "{":
            return
        self.take("{")
        while True:
            kind = self.take("UAG", "HAG", "CALC").kind
            if kind == "CALC":
                calc = self._head()
                if rule is not None and not self._rule_calc(rule, calc.value):
                    self.error("", calc.line)
            else:
                add = self._rule_uag if kind == "UAG" else self._rule_hag
                self.take("(")
                while True:
                    name = self.take("STRING")
                    if rule is not None and not add(rule, name.value):
                        self.error("", name.line)
                    if self.take(",", ")").kind == ")":
                        break
            if self.peek().kind == "}":
                self.take("}")
                return

    # -- asLibRoutines.c actions
    def _group_add(self, groups: list, name: str, what: str, line: int, make):
        """Insert in strcmp order; a repeated name is an error (asUagAdd etc.)."""
        at = len(groups)
        for i, group in enumerate(groups):
            if name < group.name:
                at = i
                break
            if name == group.name:
                if what == "Access Security Group" and name == DEFAULT \
                        and not group.inputs and not group.rules:
                    return group  # the implicit DEFAULT may be given once (or again while empty)
                self.log(f"Duplicate {what} named '{name}'")
                self.error("", line)
                return None
        group = make(name)
        groups.insert(at, group)
        return group

    def _uag_add(self, name: str, line: int) -> Optional[Uag]:
        return self._group_add(self.config.uags, name, "User Access Group", line, Uag)

    def _hag_add(self, name: str, line: int) -> Optional[Hag]:
        return self._group_add(self.config.hags, name, "Host Access Group", line, Hag)

    def _asg_add(self, name: str, line: int = 0) -> Optional[Asg]:
        return self._group_add(self.config.asgs, name, "Access Security Group", line, Asg)

    def _hag_add_host(self, hag: Hag, host: str) -> None:
        """asHagAddHost: lower-case the name, or resolve it with asCheckClientIP."""
        if not self.check_client_ip:
            hag.hosts.append(ascii_lower(host))
            return
        address = resolve_host(host)
        if address is None:
            self.log(f"ACF: Unable to resolve host '{host}'")
            hag.hosts.append("unresolved:" + host)
        else:
            hag.hosts.append(address)

    def _rule_uag(self, rule: AsgRule, name: str) -> bool:
        uag = self.config.find_uag(name)
        if uag is None:
            self.log(f"No User Access Group named '{name}' defined")
            return False
        rule.uags.append(uag)
        return True

    def _rule_hag(self, rule: AsgRule, name: str) -> bool:
        hag = self.config.find_hag(name)
        if hag is None:
            self.log(f"No Host Access Group named '{name}' defined")
            return False
        rule.hags.append(hag)
        return True

    def _rule_calc(self, rule: AsgRule, calc: str) -> bool:
        """asAsgRuleCalc: compile; assignments (``:=``) are refused."""
        try:
            expr = compile_calc(calc)
        except CalcError as exc:
            reason = str(exc).split(" at character ")[0]
            self.log(f"{reason} in CALC expression '{calc}'")
            return False
        if expr.stores:
            self.log(f"Assignment operator used in CALC expression '{calc}'")
            return False
        rule.calc, rule.expr = calc, expr
        rule.inp_used = sum(1 << (ord(c) - ord("A")) for c in expr.uses)
        return True

    def finish(self) -> None:
        """asInitialize after the parse: report users/hosts repeated within a group."""
        for groups, what, attr in ((self.config.uags, "user", "users"),
                                   (self.config.hags, "host", "hosts")):
            for group in groups:
                seen: set[str] = set()
                for member in getattr(group, attr):
                    if member in seen:
                        kind = "UAG" if what == "user" else "HAG"
                        self.log(f"Duplicated {what} '{member}' in {kind} '{group.name}'")
                    seen.add(member)


def ascii_lower(text: str) -> str:
    """C-locale tolower(): only A..Z change."""
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def resolve_host(host: str) -> Optional[str]:
    """aToIPAddr(host, 0): a dotted address or a resolvable name -> ``a.b.c.d``."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    try:
        return socket.gethostbyname(name)
    except (OSError, UnicodeError):
        return None


# ----------------------------------------------------------------------------- input
def _fgets_chunks(text: str):
    """What asInitFP's fgets(buf, 200) calls return: up to 199 characters, through a
    newline, each cut at its first NUL (strlen)."""
    pos, n = 0, len(text)
    while pos < n:
        nl = text.find("\n", pos, pos + BUF_SIZE - 1)
        end = nl + 1 if nl >= 0 else min(n, pos + BUF_SIZE - 1)
        yield text[pos:end].split("\0", 1)[0]
        pos = end


def _input_chunks(text: str, substitutions: Optional[str],
                  messages: list[str]) -> Iterator[str]:
    """asInitFP's input function: fgets()-sized chunks, each expanded with macros.

    With substitutions (any string, even empty) every chunk goes through macExpandString;
    a failure (undefined or recursive macro) is logged and ends the input (the parse
    sees only what came before).  A chunk that is empty (a line starting with NUL, or
    expanding to nothing) ends the input too: the input function then returns 0.
    """
    mac = None if substitutions is None else MacLib(parse_macro_defns(substitutions),
                                                       messages)
    for chunk in _fgets_chunks(text):
        if mac is not None and chunk:
            expanded, failed = mac.expand_string(chunk, BUF_SIZE)
            if failed:
                messages.append("access security: macExpandString failed")
                messages.append(f"input line: {chunk}")
                return
            chunk = expanded
        if not chunk:
            return
        yield chunk


def parse_acf(text: str, substitutions: Optional[str] = None, *,
              check_client_ip: bool = False) -> AcfResult:
    """Load ACF text like asInitFP()/asInitMem(): see the module docstring.

    Args:
        text: the file contents (decode bytes as latin-1 to keep every byte).
        substitutions: ``"A=1,B=2"`` as asSetSubstitutions/``ascheck -S``; None means
            no macro expansion at all (``$`` is then an invalid character, as in base);
            any string, even ``""``, expands every line (asInitFP creates its macro
            handle whenever it is given substitutions).
        check_client_ip: asCheckClientIP; HAG host names are resolved to addresses.
    """
    messages: list[str] = []
    parser = _Parser(_input_chunks(text, substitutions, messages), check_client_ip)
    parser.messages = messages
    config: Optional[AccessConfig] = None
    try:
        parser.parse()
    except _SyntaxError:
        pass
    else:
        if not parser.failed:
            parser.finish()
            config = parser.config
    return AcfResult(config, [errlog_truncate(m) for m in messages])


ERRLOG_MSG_SIZE = 256                     # errlog.c MIN_MESSAGE_SIZE (errlogInit(0))
_TRUNCATED = "<<TRUNCATED>>"


def errlog_truncate(message: str) -> str:
    """errlogPrintf: a message of 256 characters or more with its newline keeps its
    first 241 and ends ``<<TRUNCATED>>`` (255 characters with the newline)."""
    if len(message) + 1 < ERRLOG_MSG_SIZE:
        return message
    return message[:ERRLOG_MSG_SIZE - 2 - len(_TRUNCATED)] + _TRUNCATED


def load_acf_file(path: str, substitutions: Optional[str] = None, *,
                  check_client_ip: bool = False) -> AcfResult:
    """asInitFile(): an unreadable file gives base's ``Can't open file`` message."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return AcfResult(None, [f"\x1b[31;1mERROR\x1b[0m asInitFile: Can't open file '{path}'"])
    return parse_acf(data.decode("latin-1"), substitutions, check_client_ip=check_client_ip)
