"""A deliberately slow CA client for robustness tests, built on caproto's sans-I/O protocol layer
and a plain socket: it subscribes N times to one PV, stops reading (so the server's send queue
fills up), cancels one subscription, then drains. Usage: python stalled_client.py HOST PORT PV N"""
from __future__ import annotations

import socket
import sys
import time

import caproto as ca


def main(host: str, port: int, pvname: str, nsubs: int, stall_s: float = 3.0) -> int:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, port))
    circ = ca.VirtualCircuit(our_role=ca.CLIENT, address=(host, port), priority=0)

    def send(*cmds):
        sock.sendall(b"".join(circ.send(*cmds)))

    def pump(until, timeout_s=5.0):
        deadline = time.monotonic() + timeout_s
        while not until() and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            cmds, _ = circ.recv(data)
            for c in cmds:
                circ.process_command(c)

    send(ca.VersionRequest(priority=0, version=13), ca.HostNameRequest("stalled"),
         ca.ClientNameRequest("tester"))
    chan = ca.ClientChannel(pvname, circ)
    send(chan.create())
    pump(lambda: chan.states[ca.CLIENT] is ca.CONNECTED)
    subs = []
    for _ in range(nsubs):
        req = chan.subscribe(data_type=ca.ChannelType.DOUBLE)
        subs.append(req.subscriptionid)
        send(req)
    time.sleep(stall_s)                       # not reading: the server's queues fill up
    send(chan.unsubscribe(subs[len(subs) // 2]))
    end = time.monotonic() + 3.0              # now drain, letting the server iterate again
    sock.settimeout(0.2)
    got = 0
    while time.monotonic() < end:
        try:
            data = sock.recv(1 << 20)
        except socket.timeout:
            continue
        if not data:
            break
        got += len(data)
    sock.close()
    print(f"drained {got} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
