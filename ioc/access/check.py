"""``python -m ioc.access.check [-Smac=sub ...] [<] file``: base's ``ascheck``.

Mirrors database/src/ioc/as/ascheck.c: ``-Smac=sub`` or ``-S mac=sub`` options (only
before the file name; several are joined with ","), then one file name or nothing for
standard input.  Messages go to stderr; on failure ``ascheck: Access Security File
failed.`` follows and the exit status is 6 (S_asLib_badConfig & 0xff).  A wrong argument
count prints the usage on stdout and exits 255 (status -1).  ascheck has no ``-f``
option: ``-f file`` is a usage error there and here.
"""

from __future__ import annotations

import sys
from typing import Optional, Sequence

from .acf import AcfResult, load_acf_file, parse_acf

BAD_CONFIG_STATUS = 6


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the check; returns the process exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    subs: list[str] = []
    while args and args[0].startswith("-S"):
        if args[0] == "-S":
            if len(args) < 2:
                break
            subs.append(args[1])
            args = args[2:]
        else:
            subs.append(args[0][2:])
            args = args[1:]
    sub = ",".join(subs) if subs else None
    result: AcfResult
    if not args:
        data = sys.stdin.buffer.read().decode("latin-1")
        result = parse_acf(data, sub)
    elif len(args) == 1:
        result = load_acf_file(args[0], sub)
    else:
        print("usage: ascheck [-Smac=sub ...] [<] file")
        return 255
    for message in result.messages:
        print(message, file=sys.stderr)
    if not result.ok:
        print("ascheck: Access Security File failed.", file=sys.stderr)
        return BAD_CONFIG_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())
