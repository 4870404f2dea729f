"""EventTime's wire format: drvTS's 52-byte message, our trailer (sequence, HMAC), and that no
datagram makes decode() do anything but return a message or raise BadMessage."""
from __future__ import annotations

import random
import struct

import pytest

from timing.evt import wire
from timing.evt.wire import BadMessage, TsMessage

KEY = b"shared secret"


def sync_msg(**kw) -> TsMessage:
    base = dict(type=wire.TYPE_SYNC_MSG, master_time=(1_100_000_000, 123_456_789),
                current_time=(1_100_000_000, 623_456_000), sync_rate=1, clock_hz=1_000_000,
                mask=wire.make_mask(True, 0), seq=77)
    base.update(kw)
    return TsMessage(**base)


def test_plain_drvts_layout_is_52_big_endian_words():
    data = wire.encode(sync_msg(seq=None))
    assert len(data) == 52
    words = struct.unpack("!13I", data)
    assert words[0] == 0x54536472 and data[:4] == b"TSdr"
    assert words[1:6] == (2, 1_100_000_000, 123_456_789, 1_100_000_000, 623_456_000)
    assert words[6:8] == (0, 0)                         # unix_time: unused, as in drvTS
    assert words[8:11] == (1, 1_000_000, 0)
    assert words[11:13] == (0, 10)                      # drvTS default thresholds
    m = wire.decode(data)
    assert m.seq is None and not m.authenticated
    assert m.master_ns == 1_100_000_000 * 10**9 + 123_456_789


def test_trailer_and_hmac_round_trip():
    msg = sync_msg(mask=wire.make_mask(False, 3, from_ref=True))
    data = wire.encode(msg)
    assert len(data) == 56
    m = wire.decode(data)
    assert m.seq == 77 and m.master_invalid and m.fault == 3 and m.mask & 1
    signed = wire.encode(msg, KEY)
    assert len(signed) == 88
    m = wire.decode(signed, KEY)
    assert m.authenticated and m.seq == 77 and m.master_time == msg.master_time
    # Without a key an 88-byte message is accepted, its HMAC not checked.
    assert not wire.decode(signed).authenticated


@pytest.mark.parametrize("mutate, reason", [
    (lambda d: d[:51], "short"),
    (lambda d: b"XSdr" + d[4:], "wrong magic"),
    (lambda d: d + b"\0" * 3, "bad length"),
    (lambda d: d[:4] + struct.pack("!I", 9) + d[8:], "unknown type"),
    (lambda d: d[:12] + struct.pack("!I", 10**9) + d[16:], "malformed time"),
])
def test_bad_messages_name_their_reason(mutate, reason):
    with pytest.raises(BadMessage, match=reason):
        wire.decode(mutate(wire.encode(sync_msg())))


def test_with_a_key_only_authentic_messages_pass():
    good = wire.encode(sync_msg(), KEY)
    for data in (wire.encode(sync_msg(seq=None)), wire.encode(sync_msg())):
        with pytest.raises(BadMessage, match="unauthenticated"):
            wire.decode(data, KEY)
    with pytest.raises(BadMessage, match="authentication failed"):
        wire.decode(wire.encode(sync_msg(), b"other key"), KEY)
    for i in (9, 53, 87):                               # any flipped bit
        bad = bytearray(good)
        bad[i] ^= 0x01
        with pytest.raises(BadMessage):
            wire.decode(bytes(bad), KEY)


def test_fuzz_decode_never_raises_anything_else():
    rnd = random.Random(5)
    good = [wire.encode(sync_msg()), wire.encode(sync_msg(), KEY), wire.encode(sync_msg(seq=None))]
    ok = bad = 0
    for i in range(20000):
        if i % 2:
            data = bytes(rnd.getrandbits(8) for _ in range(rnd.choice((0, 1, 40, 52, 56, 88, 300))))
        else:
            d = bytearray(rnd.choice(good))
            for _ in range(rnd.randint(1, 4)):
                d[rnd.randrange(len(d))] = rnd.getrandbits(8)
            data = bytes(d[:rnd.choice((len(d), rnd.randrange(len(d) + 1)))])
        for key in (None, KEY):
            try:
                wire.decode(data, key)
                ok += 1
            except BadMessage:
                bad += 1
    assert bad > 10000 and ok > 0


def test_sequence_numbers_compare_across_the_wrap():
    assert wire.seq_newer(5, 4) and not wire.seq_newer(4, 4) and not wire.seq_newer(3, 4)
    assert wire.seq_newer(2, 0xFFFFFFFE)
    assert not wire.seq_newer(0xFFFFFFFE, 2)


def test_address_lists():
    assert wire.parse_address_list("127.0.0.1 localhost:99,127.255.255.255", 18322) == [
        ("127.0.0.1", 18322), ("127.0.0.1", 99), ("127.255.255.255", 18322)]
    for bad in ("127.0.0.1:x", "127.0.0.1:0", "no.such.host.invalid"):
        with pytest.raises(wire.AddressError):
            wire.parse_address_list(bad, 1)
    assert wire.broadcast_addresses()                   # at least the loopback fallback
