"""The access security side of bench/ca.py (``ours_as``): an ACF of realistic size, the .db
with the benchmarked records in one of its groups, the check that the bench client may write
under it, the A/B phase (``ours`` and ``ours_as`` alone, in alternation) and its figures.

The ACF (base asLib syntax) has 10 UAGs of a few users each, 10 HAGs of a few hosts each and
20 ASGs of several rules each, some with UAG/HAG conditions, some with CALC rules on INPx
inputs that are records of the .db (``$(P)GATE`` = 1, ``$(P)MODE`` = 3, never changed during
the run). The bench client's user (getpass.getuser(), and the login name of the uid if that
differs) is in two UAGs; this host's name, ``localhost`` and 127.0.0.1 are in one HAG.
AO and AI are in ASG ``BENCH``, whose WRITE comes from its last rule (UAG, HAG and
CALC("A=1") all true) after READ and three WRITE rules that do not match the client: one
with a UAG it is not in, one with a HAG it is not on, one with a CALC that is false.
"""
from __future__ import annotations

import getpass
import os
import socket
import time

from bench._common import percentile

ASG_BENCH = "BENCH"
N_UAG, N_HAG, N_ASG = 10, 10, 20
CLIENT_UAGS = (3, 7)            # the UAGs the bench client's user is in
CLIENT_HAG = 6                  # the HAG with this host, localhost and 127.0.0.1

SUMMARY = (f"{N_UAG} UAGs, {N_HAG} HAGs, {N_ASG} ASGs, CALC rules on INPx = local records; "
           f"AO/AI in ASG {ASG_BENCH}: WRITE by its 5th rule (UAG+HAG+CALC) after 4 that "
           f"do not give it")


def client_users() -> list[str]:
    """The names the bench client's CA library may send as its user name."""
    names = [getpass.getuser()]
    try:
        import pwd
        login = pwd.getpwuid(os.getuid()).pw_name
        if login not in names:
            names.append(login)
    except (ImportError, KeyError):
        pass
    return names


def _q(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def acf_text(prefix: str) -> str:
    """The ACF; ``prefix`` is the IOC's $(P) (the CALC inputs name its records)."""
    out = ["# bench/ca.py ours_as: an access security file of realistic size (generated)"]
    for i in range(N_UAG):
        users = [f"op{i}_{j}" for j in range(3 + i % 3)]
        if i in CLIENT_UAGS:
            users[1:1] = client_users()
        out.append(f"UAG(uag{i}) {{{', '.join(_q(u) for u in users)}}}")
    for i in range(N_HAG):
        hosts = [f"ctl-{i}-{j}.example.org" for j in range(2 + i % 3)]
        if i == CLIENT_HAG:
            hosts += ["localhost", "127.0.0.1", socket.gethostname()]
        out.append(f"HAG(hag{i}) {{{', '.join(_q(h) for h in hosts)}}}")
    gate, mode = _q(f"{prefix}GATE"), _q(f"{prefix}MODE")
    u_in, u_out = f"uag{CLIENT_UAGS[0]}", "uag0"
    h_in, h_out = f"hag{CLIENT_HAG}", "hag1"
    out += ["ASG(DEFAULT) {", "    RULE(1, READ)",
            f"    RULE(1, WRITE, TRAPWRITE) {{ HAG({h_in}) }}", "}"]
    for k in range(1, N_ASG - 1):       # 18 plant-like groups, none of them used by a record
        u, h = f"uag{k % N_UAG}", f"hag{(k * 3) % N_HAG}"
        rules = ["    RULE(0, READ)" if k % 4 else "    RULE(1, READ)",
                 f"    RULE(1, WRITE) {{ UAG({u}) }}",
                 f"    RULE(1, WRITE, TRAPWRITE) {{ UAG({u}, uag{(k + 5) % N_UAG}) HAG({h}) }}"]
        inputs = []
        if k % 3 == 0:
            inputs = [f"    INPA({gate})", f"    INPB({mode})"]
            rules.append(f"    RULE(1, WRITE) {{ UAG({u}) CALC(\"A=1&&B>{k % 4}\") }}")
        if k % 5 == 0:
            rules.append(f"    RULE(2, WRITE) {{ HAG({h}, hag{(k + 1) % N_HAG}) }}")
        out += [f"ASG(plant{k}) {{"] + inputs + rules + ["}"]
    out += [f"ASG({ASG_BENCH}) {{", f"    INPA({gate})", f"    INPB({mode})",
            "    RULE(1, READ)",
            f"    RULE(1, WRITE) {{ UAG({u_out}, uag1) }}",
            f"    RULE(1, WRITE, TRAPWRITE) {{ UAG({u_in}) HAG({h_out}, hag2) }}",
            f"    RULE(1, WRITE) {{ HAG({h_in}) CALC(\"B=1\") }}",
            f"    RULE(1, WRITE, TRAPWRITE) {{ UAG({u_in}, uag{CLIENT_UAGS[1]}) HAG({h_in}) "
            f"CALC(\"A=1\") }}", "}"]
    return "\n".join(out) + "\n"


def as_db_text(db_text: str) -> str:
    """``db_text`` with AO and AI in ASG BENCH, and the CALC inputs' records added."""
    for rec in ("ao", "ai"):
        head = f'record({rec}, "$(P){rec.upper()}") {{\n'
        if head not in db_text:
            raise ValueError(f"bench .db has no {head!r}")
        db_text = db_text.replace(head, head + f'    field(ASG, "{ASG_BENCH}")\n')
    return db_text + ('# access security inputs (INPA, INPB of the ACF)\n'
                      'record(ao, "$(P)GATE") {\n    field(VAL, "1")\n    field(PINI, "YES")\n}\n'
                      'record(ao, "$(P)MODE") {\n    field(VAL, "3")\n    field(PINI, "YES")\n}\n')


def write_files(logdir: str, db_text: str, prefix: str) -> tuple[str, str]:
    """Write the .db and the ACF of ``ours_as`` into ``logdir``: (db path, acf path)."""
    paths = (os.path.join(logdir, "bench_ca_as.db"), os.path.join(logdir, "bench_ca.acf"))
    for path, text in zip(paths, (as_db_text(db_text), acf_text(prefix))):
        with open(path, "w") as f:
            f.write(text)
    return paths


def write_access_error(ca, chids: dict[str, int] | None, errors: dict[str, str],
                       timeout_s: float = 10.0) -> str | None:
    """None when this client may write AO of ``ours_as`` (``chids``) under the ACF: the server
    says so and a put-callback changes AO and, through FLNK, AI, read back. Else what is wrong
    (the figures of access security would be meaningless). CALC inputs connect after iocInit,
    so write access may come a little after the channel: wait for it."""
    if chids is None:
        return errors.get("ours_as", "not connected")
    ao, ai = chids["AO"], chids["AI"]
    deadline = time.monotonic() + timeout_s
    while not ca.write_access(ao) and time.monotonic() < deadline:
        ca.poll(0.05)
    if not ca.write_access(ao):
        return (f"no write access to AO after {timeout_s:.0f} s "
                f"(read access {bool(ca.read_access(ao))}; user {client_users()}, "
                f"host {socket.gethostname()})")
    value = 4242.0 + (time.time() % 1000.0)
    value = round(value, 3)
    try:
        ca.put(ao, value, wait=True, timeout=5)
    except Exception as exc:  # noqa: BLE001
        return f"put to AO failed: {exc}"
    got = {name: ca.get(ch, timeout=2) for name, ch in (("AO", ao), ("AI", ai))}
    if any(v is None or abs(float(v) - value) > 1e-3 for v in got.values()):
        return f"put {value} to AO did not take: read back {got}"
    return None


# ------------------------------------------------------------------ the A/B phase and figures
AB_ROUNDS, AB_GET, AB_PUT = 40, 100, 50      # per server and round
TARGET_AS_OVERHEAD = 1.05                    # ours_as / ours, get and put-callback p50, at most


def paired_latency(ca, chids: dict[str, dict[str, int]], res: dict[str, dict[str, float]],
                   keep_going=lambda: True) -> int:
    """The A/B phase: get and put-callback latencies of ``ours`` and ``ours_as`` measured in
    turn, AB_GET x ca.get(AI) then AB_PUT x ca.put(AO, wait=True) per server and round, the
    order reversed every round, so that the two see the same machine. Their p50s (us) go to
    ``res[col]["ab_get_p50"]``, ``["ab_put_cb_p50"]``; returns the rounds done."""
    pc = time.perf_counter
    cols = [c for c in ("ours", "ours_as") if c in chids]
    out = {c: {"get": [], "put_cb": []} for c in cols}
    value = 20000.0
    rounds = 0
    for rnd in range(AB_ROUNDS):
        if not keep_going():
            break
        rounds += 1
        for c in (cols if rnd % 2 == 0 else cols[::-1]):
            ai, ao = chids[c]["AI"], chids[c]["AO"]
            gets, puts = out[c]["get"], out[c]["put_cb"]
            for _ in range(AB_GET):
                t0 = pc()
                ca.get(ai)
                gets.append(pc() - t0)
            for _ in range(AB_PUT):
                value += 1.0
                t0 = pc()
                ca.put(ao, value, wait=True, timeout=5)
                puts.append(pc() - t0)
    for c in cols:
        for key, xs in out[c].items():
            res[c][f"ab_{key}_p50"] = percentile([x * 1e6 for x in xs], 50)
    return rounds


def figures(ours: dict, ours_as: dict, rounds: int, fmt, ratio) -> tuple[list[str], list]:
    """The report lines and RESULT keys of access security on (``ours_as``) against off
    (``ours``): the A/B phase's p50s (``ab_get_p50``, ``ab_put_cb_p50``) give the target
    ratios; the latency rounds' give the others."""
    nan = float("nan")
    r = {k: ratio(ours_as.get(k, nan), ours.get(k, nan))
         for k in ("ab_get_p50", "ab_put_cb_p50", "get_p50", "put_cb_p50", "put_cb_mon_p50",
                   "put_mon_p50", "sub_rate")}
    lines = [f"access security A/B ({rounds} rounds x {AB_GET} get + {AB_PUT} put_cb per "
             f"server, alternating): get_us p50 ours={fmt(ours.get('ab_get_p50', nan))} "
             f"ours_as={fmt(ours_as.get('ab_get_p50', nan))}; put_cb_us p50 "
             f"ours={fmt(ours.get('ab_put_cb_p50', nan))} "
             f"ours_as={fmt(ours_as.get('ab_put_cb_p50', nan))}"]
    for what, key in (("get", "ab_get_p50"), ("put_cb", "ab_put_cb_p50")):
        v = r[key]
        ok = "n/a" if v != v else ("met" if v <= TARGET_AS_OVERHEAD else "NOT met")
        lines.append(f"target access security on (ours_as) / off (ours), {what} p50 <= "
                     f"{TARGET_AS_OVERHEAD:.2f}x: {fmt(v, 3)} {ok}")
    keys = [("as_get_p50_ratio", fmt(r["ab_get_p50"], 3)),
            ("as_put_p50_ratio", fmt(r["ab_put_cb_p50"], 3)),
            ("as_get_us_p50", fmt(ours_as.get("ab_get_p50", nan))),
            ("as_put_cb_us_p50", fmt(ours_as.get("ab_put_cb_p50", nan))),
            ("as_rounds_get_p50_ratio", fmt(r["get_p50"], 3)),
            ("as_rounds_put_cb_p50_ratio", fmt(r["put_cb_p50"], 3)),
            ("as_put_cb_mon_p50_ratio", fmt(r["put_cb_mon_p50"], 3)),
            ("as_put_to_monitor_p50_ratio", fmt(r["put_mon_p50"], 3)),
            ("as_sub_rate_ratio", fmt(r["sub_rate"], 3))]
    return lines, keys
