"""``e3631a-sim``: serve a simulated E3631A on a pty and/or TCP, with a control channel.

    e3631a-sim [--pty] [--link PATH] [--tcp PORT] [--profile ideal|spec|realistic]
               [--baud 9600] [--control PORT] [--seed N]

Prints one line per endpoint on stdout as soon as it is ready (``PTY <slave>``, ``LINK <PATH>``,
``TCP 127.0.0.1:<port>``, ``CONTROL 127.0.0.1:<port>``; a pty that comes back after ``return``
is announced again), then runs until SIGTERM or SIGINT, removes the link and exits 0.
Without ``--pty``, ``--link`` or ``--tcp`` it serves a pty.
"""
from __future__ import annotations

import argparse
import signal
import sys
import termios
import threading

from .serve import ControlServer, PtyPort, SelectLoop, TcpPort
from .simulator import Simulator
from .timing import PROFILES

_print_lock = threading.Lock()


def _announce(line: str) -> None:
    with _print_lock:
        try:
            print(line, flush=True)
        except (BrokenPipeError, ValueError):
            pass        # nobody listens any more; keep serving


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="e3631a-sim", description=__doc__.split("\n\n")[0])
    p.add_argument("--pty", action="store_true", help="serve on a new pty (prints PTY <path>)")
    p.add_argument("--link", metavar="PATH",
                   help="keep a symlink PATH pointing at the current pty (implies --pty)")
    p.add_argument("--tcp", type=int, metavar="PORT", help="serve on TCP 127.0.0.1:PORT (0: any)")
    p.add_argument("--profile", choices=sorted(PROFILES), default="realistic",
                   help="timing profile (default: realistic)")
    p.add_argument("--baud", type=int, default=9600, help="instrument baud rate (8N2)")
    p.add_argument("--control", type=int, metavar="PORT",
                   help="control channel on TCP 127.0.0.1:PORT (0: any)")
    p.add_argument("--seed", type=int, help="seed for readback noise and timing jitter")
    return p


def main(argv: list[str] | None = None) -> int:
    """Console script entry point; returns the exit status."""
    args = _parser().parse_args(argv)
    if getattr(termios, f"B{args.baud}", None) is None:
        _parser().error(f"unsupported baud rate {args.baud}")
    if args.link:
        args.pty = True
    if not args.pty and args.tcp is None:
        args.pty = True
    # Block the stop signals before any thread starts (threads inherit the mask), then wait
    # for them synchronously: no handler runs in the middle of anything.
    stop_signals = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    sim = Simulator(args.profile, args.baud, args.seed)
    loop = SelectLoop()
    loop.start()
    servers: list = []
    status = 0
    try:
        if args.pty:
            servers.append(PtyPort(sim, loop, args.link, _announce))
        if args.tcp is not None:
            servers.append(TcpPort(sim, loop, args.tcp, _announce))
        if args.control is not None:
            servers.append(ControlServer(sim, loop, args.control, _announce))
        for s in servers:
            s.open()
        signal.sigwait(stop_signals)
    except OSError as e:
        print(f"e3631a-sim: error: {e}", file=sys.stderr, flush=True)
        status = 1
    finally:
        for s in reversed(servers):
            try:
                s.close()
            except OSError:
                pass
        loop.stop()
        sim.close()
    return status


if __name__ == "__main__":
    sys.exit(main())
