"""``psu-timing-ioc`` (``ioc.main:main``, as the console script runs it) with every Python thread
given its name at the OS level, so /proc/<pid>/task/<tid>/comm tells the port threads
(``psu:NAME``), the in-process simulators' engines (``e3631a-engine``) and the CA server apart
(bench/scale.py splits the IOC's CPU time that way). Python 3.11 does not name OS threads
itself; this adds one prctl(PR_SET_NAME) call per thread start and changes nothing else.

    python bench/_psu_ioc.py -S st.cmd
"""
from __future__ import annotations

import ctypes
import sys
import threading

PR_SET_NAME = 15


def name_os_threads() -> None:
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return
    bootstrap = threading.Thread._bootstrap_inner

    def named_bootstrap(self):
        try:
            prctl(PR_SET_NAME, ctypes.c_char_p(self.name.encode("utf-8", "replace")[:15]),
                  0, 0, 0)
        except Exception:  # noqa: BLE001 - a name is a nicety
            pass
        bootstrap(self)

    threading.Thread._bootstrap_inner = named_bootstrap


if __name__ == "__main__":
    name_os_threads()
    from ioc.main import main
    sys.exit(main(sys.argv[1:]))
