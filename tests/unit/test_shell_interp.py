"""The iocsh interpreter (ioc.shell.interp): echo, macros and their scopes, errors, ``on error``,
strict mode, ``exit``, redirection. Facts checked against EPICS base 7.0.8's softIoc."""
from __future__ import annotations

import io
import types

import pytest

import ioc.main  # noqa: F401  (registers every command)
from ioc.database.db import Database
from ioc.shell.interp import HaltShell, Shell, StrictStop


def make_shell(strict: bool = False) -> tuple[Shell, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    fake_ioc = types.SimpleNamespace(db=Database(), initialized=False, server=None)
    return Shell(fake_ioc, out=out, err=err, strict=strict), out, err


def write(path, text: str):
    path.write_text(text)
    return str(path)


@pytest.fixture
def env(monkeypatch):
    """Environment names the scripts set, restored after the test."""
    for name in ("SH_A", "SH_B", "SH_P", "SH_E", "IOCSH_STARTUP_SCRIPT", "PWD"):
        monkeypatch.setenv(name, "x")
        monkeypatch.delenv(name)
    return monkeypatch


def test_echo_is_the_expanded_line_and_comments_follow_base(tmp_path, env):
    sh, out, err = make_shell()
    st = write(tmp_path / "st.cmd", '#!shebang\n#- hidden\nepicsEnvSet("SH_P", "Q:")\n'
               '   echo "p=$(SH_P) d=$(SH_NOPE=dflt)"\n$(SH_EMPTY=)\n$(SH_C=#)x\n'
               'echo "$(SH_UNDEF)"\n')
    assert sh.run_file(st) == 0
    assert out.getvalue().splitlines() == [
        "#!shebang", 'epicsEnvSet("SH_P", "Q:")', '   echo "p=Q: d=dflt"', "p=Q: d=dflt", "#x"]
    assert err.getvalue() == ('ERROR st.cmd line 7: macLib: macro SH_UNDEF is undefined '
                              '(expanding string echo "$(SH_UNDEF)")\n')


def test_iocshload_macros_are_scoped_and_epicsenvset_unhides_the_environment(tmp_path, env):
    sh, out, _ = make_shell()
    write(tmp_path / "m2.cmd", 'echo "m2 A=$(SH_A) B=$(SH_B=nob)"\n')
    write(tmp_path / "m1.cmd", 'echo "m1 A=$(SH_A) B=$(SH_B)"\nepicsEnvSet("SH_A", "set")\n'
          'echo "m1 A=$(SH_A)"\n< m2.cmd\niocshLoad("m2.cmd", "SH_B=inner")\n')
    env.chdir(tmp_path)
    st = write(tmp_path / "st.cmd", 'epicsEnvSet("SH_A", "env")\n'
               'iocshLoad("m1.cmd", "SH_A=mac,SH_B=bee")\necho "top A=$(SH_A) B=$(SH_B=nob)"\n')
    sh.run_file(st)
    lines = [ln for ln in out.getvalue().splitlines() if not ln.startswith(("echo", "<",
                                                                            "iocsh", "epics"))]
    # as softIoc: "<" starts again from the includer's macros; the set variable shows
    # through everywhere else; the macros are gone after iocshLoad
    assert lines == ["m1 A=mac B=bee", "m1 A=set", "m2 A=mac B=bee", "m2 A=set B=inner",
                     "top A=set B=nob"]


def test_unknown_command_goes_on_and_strict_stops_with_path_and_line(tmp_path, env):
    st = write(tmp_path / "st.cmd", 'noSuch 1\nepicsEnvSet("SH_E", "ran")\n')
    sh, out, err = make_shell()
    assert sh.run_file(st) == 0
    assert err.getvalue() == "ERROR st.cmd line 1: Command noSuch not found.\n"
    import os
    assert os.environ["SH_E"] == "ran"
    os.environ.pop("SH_E")
    sh, out, err = make_shell(strict=True)
    with pytest.raises(StrictStop) as exc:
        sh.run_file(st)
    assert str(exc.value) == f"{st}:1: Command noSuch not found."
    assert "SH_E" not in os.environ


def test_strict_reaches_into_iocshload_files(tmp_path, env):
    inner = write(tmp_path / "inner.cmd", "echo ok\nnoSuchInner\n")
    st = write(tmp_path / "st.cmd", f'iocshLoad("{inner}")\necho after\n')
    sh, out, err = make_shell(strict=True)
    with pytest.raises(StrictStop) as exc:
        sh.run_file(st)
    assert str(exc.value) == f"{inner}:2: Command noSuchInner not found."
    assert "after" not in out.getvalue().replace("echo after", "")


def test_on_error_break_returns_to_the_caller_with_an_error(tmp_path, env):
    inner = write(tmp_path / "inner.cmd", "on error break\nnoSuch\necho notreached\n")
    st = write(tmp_path / "st.cmd", f"iocshLoad {inner}\necho continues\non error break\n"
               f"iocshLoad {inner}\necho notreached2\n")
    sh, out, err = make_shell()
    assert sh.run_file(st) == -1
    assert "continues" in out.getvalue().splitlines()
    assert "notreached" not in out.getvalue()
    assert err.getvalue().count("iocsh Error: Break") == 3      # twice inside, once outside


def test_on_error_break_on_the_last_line_still_counts(tmp_path):
    st = write(tmp_path / "st.cmd", "on error break\nnoSuch")
    sh, _, err = make_shell()
    assert sh.run_file(st) == -1 and err.getvalue().endswith("iocsh Error: Break\n")


def test_on_error_halt_and_wait(tmp_path, monkeypatch):
    sh, out, err = make_shell()
    st = write(tmp_path / "halt.cmd", "on error halt\nnoSuch\necho never\n")
    with pytest.raises(HaltShell):
        sh.run_file(st)
    assert "never" not in out.getvalue().replace("echo never", "") and \
        "echo never" not in out.getvalue()
    assert err.getvalue().endswith("iocsh Error: Halt\n")
    sleeps: list[float] = []
    monkeypatch.setattr("ioc.shell.interp.time.sleep", sleeps.append)
    sh, out, err = make_shell()
    st = write(tmp_path / "wait.cmd", "on error wait 1.5\nnoSuch\n# c\n#- d\necho after\n"
               "echo again\n")
    assert sh.run_file(st) == 0
    # the error state lasts until a command runs: each comment line waits again (as base)
    assert sleeps == [1.5, 1.5, 1.5]
    assert err.getvalue().count("iocsh Error: Waiting 1.5 sec ...") == 3
    assert out.getvalue().splitlines()[-1] == "again"


def test_on_error_usage_and_interactive(tmp_path):
    sh, out, err = make_shell()
    st = write(tmp_path / "st.cmd", "on\non error\non error foo\non error wait abc\n")
    sh.run_file(st)
    usage = "Usage: on error [continue | break | halt | wait <delay>]"
    assert err.getvalue().splitlines() == [
        usage, usage, f"ERROR st.cmd line 3: {usage}", usage,
        "Unable to parse 'on error wait' time abc"]
    sh, out, err = make_shell()
    sh.interact(io.StringIO("on error break\nnoSuch\necho \"still here\"\n"))
    assert err.getvalue().splitlines() == ["Interactive shell ignores  on error ...",
                                           "Command noSuch not found."]
    assert out.getvalue() == "still here\n"


def test_exit_ends_the_current_script_only(tmp_path):
    inner = write(tmp_path / "inner.cmd", "echo in\nexit\necho not\n")
    st = write(tmp_path / "st.cmd", f"< {inner}\necho back\n")
    sh, out, _ = make_shell()
    assert sh.run_file(st) == 0
    printed = [ln for ln in out.getvalue().splitlines() if not ln.startswith(("echo", "<"))]
    assert printed == ["in", "exit", "back"]


def test_tokenizer_errors_and_redirection(tmp_path):
    sh, out, err = make_shell()
    target = tmp_path / "out.txt"
    st = write(tmp_path / "st.cmd", f'echo "unbalanced\necho a b\\\necho redirected > {target}\n'
               f'echo appended >> {target}\necho x > {tmp_path}/no/such/dir\n')
    sh.run_file(st)
    assert err.getvalue().splitlines() == [
        "ERROR st.cmd line 1: Unbalanced quote.", "ERROR st.cmd line 2: Trailing backslash.",
        f'ERROR st.cmd line 5: Can\'t open "{tmp_path}/no/such/dir": No such file or '
        'directory.']
    assert target.read_text() == "redirected\nappended\n"


def test_iocshrun_and_iocshcmd_break_on_their_own_error(tmp_path):
    sh, out, err = make_shell()
    st = write(tmp_path / "st.cmd", "iocshRun 'echo \"Z=$(SH_Z)\"' \"SH_Z=run\"\n"
               'iocshCmd("noSuchInCmd")\necho after\n')
    assert sh.run_file(st) == 0
    assert "Z=run" in out.getvalue().splitlines() and "after" in out.getvalue().splitlines()
    assert err.getvalue().splitlines() == ["Command noSuchInCmd not found.",
                                           "iocsh Error: Break"]


def test_missing_script_is_named(tmp_path):
    sh, _, err = make_shell()
    assert sh.run_file(str(tmp_path / "nope.cmd")) == -1
    assert err.getvalue().startswith(f"Can't open {tmp_path}/nope.cmd: No such file")
    sh, _, _ = make_shell(strict=True)
    with pytest.raises(StrictStop):
        sh.run_file(str(tmp_path / "nope.cmd"))


def test_execute_raises_for_the_api():
    sh, out, _ = make_shell()
    sh.execute("echo hi")
    assert out.getvalue() == "hi\n"
    from ioc.shell.registry import ShellError
    with pytest.raises(ShellError, match="Command noSuch not found."):
        sh.execute("noSuch")
