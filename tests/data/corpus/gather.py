"""How the corpus was gathered (kept to redo it at newer commits): for each source repository,
every .db/.template/.vdb/.substitutions file whose records (and those of the files it includes or
substitutes) are all of EPICS base's record types, stored unmodified with those files, when
softIoc loads it after the test's rewrites; undefined macros get values by how the file uses
them (DTYP: Soft Channel, a menu field: its first choice, a number field: 1, 16 for sizes,
3 for PREC, else NAME:).  Writes <source>/macros.txt, SOURCES.md and LICENSE, and lists what
it left out (and why) in excluded.txt beside this file.

    python tests/data/corpus/gather.py MIRRORS   # MIRRORS/<owner>+<name>/repo: bare git clones
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from tests.integration import test_db_corpus as C  # noqa: E402

MIRROR = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/.mirror")
SOURCES = {
    # source dir: (mirror, github repo, licence name, path filter)
    "epics-base": ("epics-base+epics-base", "epics-base/epics-base", "EPICS Open License", r"^modules/database/(test|src/template|src/std/softIoc)/"),
    "autosave": ("epics-modules+autosave", "epics-modules/autosave", "EPICS Open License (synApps)", ""),
    "iocStats": ("epics-modules+iocStats", "epics-modules/iocStats", "EPICS Open License", ""),
    "calc": ("epics-modules+calc", "epics-modules/calc", "EPICS Open License (synApps)", ""),
    "std": ("epics-modules+std", "epics-modules/std", "EPICS Open License (synApps)", ""),
    "optics": ("epics-modules+optics", "epics-modules/optics", "EPICS Open License (synApps)", ""),
    "sscan": ("epics-modules+sscan", "epics-modules/sscan", "EPICS Open License (synApps)", ""),
    "alive": ("epics-modules+alive", "epics-modules/alive", "EPICS Open License (synApps)", ""),
    "asyn": ("epics-modules+asyn", "epics-modules/asyn", "EPICS Open License (asyn)", ""),
    "ip": ("epics-modules+ip", "epics-modules/ip", "EPICS Open License (synApps)", ""),
    "modbus": ("epics-modules+modbus", "epics-modules/modbus", "MIT", ""),
    "mrfioc2": ("epics-modules+mrfioc2", "epics-modules/mrfioc2", "EPICS Open License (mrfioc2)", ""),
    "ADCore": ("areaDetector+ADCore", "areaDetector/ADCore", "MIT (areaDetector)", ""),
    "pva2pva": ("epics-base+pva2pva", "epics-base/pva2pva", "MIT (pva2pva)", ""),
    "pyepics": ("pyepics+pyepics", "pyepics/pyepics", "EPICS Open License (pyepics)", r"^tests/Setup/"),
}
# Files kept beside the entries (not loaded): pyepics's test IOC start-up, which the test mirrors.
EXTRA = {"pyepics": ["tests/Setup/st.cmd"]}
KEEP = {"pyepics": {"tests/Setup/pydebug.db": "P=PyTest:", "tests/Setup/pyclearcache.db": "P=PyTestClearCache:"}}
DBD = C.base_dbd()
BASE_TYPES = set(DBD.fields)
OUT = HERE

menus = {}
_dbdtext = C.base_dbd_path().read_text()
for m in re.finditer(r"^menu\((\w+)\)\s*\{(.*?)^\}", _dbdtext, re.M | re.S):
    menus[m.group(1)] = re.findall(r'choice\(\w+,\s*"([^"]*)"\)', m.group(2))
field_menu = {}
for m in re.finditer(r"^recordtype\((\w+)\)\s*\{(.*?)^\}", _dbdtext, re.M | re.S):
    for fm in re.finditer(r"field\((\w+),\s*DBF_MENU\)\s*\{[^}]*?menu\((\w+)\)", m.group(2)):
        field_menu.setdefault(fm.group(1), fm.group(2))
field_dbf = {}
for rt, fs in DBD.fields.items():
    for f, dbf in fs.items():
        field_dbf.setdefault(f, dbf)
NUMERIC = {"DBF_CHAR", "DBF_UCHAR", "DBF_SHORT", "DBF_USHORT", "DBF_LONG", "DBF_ULONG",
           "DBF_INT64", "DBF_UINT64", "DBF_FLOAT", "DBF_DOUBLE"}


def git(mirror, *args):
    return subprocess.run(["git", "-C", str(MIRROR / mirror / "repo"), *args], capture_output=True,
                          text=True, errors="replace").stdout


def macro_value(name, text):
    """A value for an undefined macro, from how the file uses it."""
    for m in re.finditer(r'field\(\s*"?(\w+)"?\s*,\s*"([^"]*)"', text):
        f, v = m.group(1), m.group(2)
        if f"$({name})" not in v and f"${{{name}}}" not in v:
            continue
        whole = v.strip() in (f"$({name})", f"${{{name}}}")
        if f == "DTYP" and whole:
            return "Soft Channel"
        if f in field_menu and whole:
            return menus[field_menu[f]][0]
        if field_dbf.get(f) in NUMERIC and whole:
            if f in ("NELM", "NOBT") or name.upper() in ("NELM", "N", "NPTS", "SIZE", "LEN", "NELEMENTS"):
                return "16"
            if f == "PREC":
                return "3"
            return "1"
    return f"{name}:"


def deps(text, suffix):
    out = set(re.findall(r'^\s*include\s+"([^"]+)"', text, re.M))
    if suffix == ".substitutions":
        out |= set(re.findall(r'^\s*file\s+"?([^"\s{]+)"?', text, re.M))
    return out


def candidates(mirror, filt):
    files = git(mirror, "ls-tree", "-r", "--name-only", "HEAD").split()
    return [f for f in files if re.search(r"\.(db|template|vdb|substitutions)$", f)
            and re.search(filt, f)]


def try_entry(src, path, macros, tmp):
    e = C.Entry(src, path, macros)
    d = Path(tempfile.mkdtemp(dir=tmp))
    cwd, notes = C.prepare(e, d)
    recs, errs = C.oracle_records(e, cwd)
    return recs, errs


def main():
    report = []
    tmp = tempfile.mkdtemp()
    for src, (mirror, repo, lic, filt) in SOURCES.items():
        commit = git(mirror, "rev-parse", "HEAD").strip()
        cand = candidates(mirror, filt)
        sdir = OUT / src
        if sdir.exists():
            shutil.rmtree(sdir)
        kept = []
        for path in cand:
            text = git(mirror, "show", f"HEAD:{path}")
            types = set(re.findall(r'^\s*g?record\s*\(\s*"?([\w$()]+)', text, re.M))
            if any(t not in BASE_TYPES and "$" not in t for t in types):
                report.append((src, path, "other module's record types: " + " ".join(sorted(t for t in types if t not in BASE_TYPES))))
                continue
            # copy the file and its dependencies (same directory) into the corpus
            todo, files = [path], {}
            missing = []
            while todo:
                p = todo.pop()
                if p in files:
                    continue
                t = git(mirror, "show", f"HEAD:{p}")
                if not t and p != path:
                    missing.append(p)
                    continue
                files[p] = t
                for dep in deps(t, os.path.splitext(p)[1]):
                    todo.append(str(Path(os.path.dirname(p)) / os.path.basename(dep)))
            if missing:
                report.append((src, path, "needs files not in the repository: " + " ".join(missing)))
                continue
            alltext = "\n".join(files.values())
            dtypes = set()
            for t in files.values():
                dtypes |= set(re.findall(r'^\s*g?record\s*\(\s*"?(\w+)', t, re.M))
            if any(t not in BASE_TYPES for t in dtypes):
                report.append((src, path, "included file has other record types"))
                continue
            stage = Path(tmp) / src
            for p, t in files.items():
                (stage / p).parent.mkdir(parents=True, exist_ok=True)
                (stage / p).write_text(t)
            # macros: the ones softIoc reports undefined, given values by their use
            macros = KEEP.get(src, {}).get(path, "")
            old = C.CORPUS
            C.CORPUS = Path(tmp)
            try:
                for _ in range(4):
                    recs, errs = try_entry(src, path, macros, tmp)
                    undef = sorted(set(re.findall(r"macro (\w+) is undefined", errs)))
                    if not undef:
                        break
                    have = C.parse_macros(macros)
                    for n in undef:
                        have[n] = macro_value(n, alltext)
                    macros = ",".join(f"{k}={v}" for k, v in have.items())
            finally:
                C.CORPUS = old
            if errs or not recs:
                report.append((src, path, "softIoc refuses it: " + (errs.splitlines() or ["no records"])[0][:150]))
                continue
            for p, t in files.items():
                (sdir / p).parent.mkdir(parents=True, exist_ok=True)
                (sdir / p).write_text(t)
            kept.append((path, macros, sorted(set(files) - {path}), len(recs)))
        if not kept:
            continue
        for p in EXTRA.get(src, []):
            (sdir / p).parent.mkdir(parents=True, exist_ok=True)
            (sdir / p).write_text(git(mirror, "show", f"HEAD:{p}"))
        lictext = git(mirror, "show", "HEAD:LICENSE")
        (sdir / "LICENSE").write_text(lictext)
        with open(sdir / "macros.txt", "w") as f:
            f.write(f"# Corpus index for {repo}: one entry per line, `path  macros` ('-': none).\n"
                    "# Macro values were chosen for the macros the file leaves undefined.\n")
            for path, macros, _, _ in kept:
                f.write(f"{path}  {macros or '-'}\n")
        with open(sdir / "SOURCES.md", "w") as f:
            f.write(f"# {src}\n\n* Repository: https://github.com/{repo}\n* Commit: {commit}\n"
                    f"* Licence: {lic}; its text is in `LICENSE` beside this file (the "
                    "repository's LICENSE at that commit).\n"
                    "* Files are stored unmodified, at their path in the repository. The test "
                    "rewrites device support to soft support on a copy (see "
                    "tests/integration/test_db_corpus.py); `macros.txt` lists the entries and the "
                    "macro values used.\n\n| path in the repository | records | also needs |\n|---|---|---|\n")
            for path, macros, dep, n in kept:
                f.write(f"| {path} | {n} | {' '.join(dep)} |\n")
        print(f"{src}: kept {len(kept)} of {len(cand)}", flush=True)
    with open(OUT / "excluded.txt", "w") as f:
        for r in report:
            f.write(" | ".join(r) + "\n")
    shutil.rmtree(tmp, ignore_errors=True)


main()
