"""The instrument's time line: one thread that receives bytes at the baud rate, runs program
messages unit by unit with the profile's processing and busy times, sends replies at the baud
rate, and acts on Ctrl-C at once.

Model of time (all on ``time.monotonic``):

* Receiving: a chunk written by the host at t is received character by character, 11 bits each
  (8N2) at the configured baud, after whatever is still being received. A line counts as
  received when its LF would have arrived; ``ideal`` has no wire time.
* Processing: messages are processed strictly in order; one that arrives while the instrument is
  busy waits in the input buffer (about 100 characters; beyond that characters are lost and error
  521 is queued). Each unit takes effect when it is processed, i.e. at the start of its time: a
  query then takes its processing time, a setting its busy time.
* Replies: the replies of one message are joined with ``;`` and end in one CR LF. The line is
  handed to the port (pty, socket, sim:// buffer) when its last character would have been sent,
  i.e. its wire time after the instrument starts sending it. The next message is processed after
  that (the unit holds DTR low while a reply is pending).
* Timed events are chained on a virtual clock, so a late wake-up of this thread never shortens a
  later delay: every nominal cost is a lower bound of what a client observes.

RS-232 device clear (Ctrl-C, 0x03; UG07 p.87, p.107) is acted on when its character arrives, like
a UART interrupt, even while a query is being processed: the query in progress is aborted (no
reply), the rest of its message is dropped, pending output and the unprocessed input received
before the Ctrl-C are discarded, and the instrument is ready ``clear_s`` (1 ms; ``ideal`` 0) later.
If a SETTING's busy time is in progress, the setting has already taken effect and stays; the
clear waits for the busy time to end (it neither undoes nor speeds up the hardware). This is what
the IOC's port thread relies on to preempt a slow poll (``MEAS?``, 230 ms) when a setpoint
arrives: write ``b"\\x03"``, then the setting, without waiting for the poll's reply.
"""
from __future__ import annotations

import math
import random
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from typing import Protocol

from .model import Instrument, Step
from .timing import Profile

IDLE, PROC, BUSY, TX, CLEAR, BOOT = "idle", "processing", "busy", "sending", "clearing", "booting"
INPUT_BUFFER_CHARS = 100
MAX_LINE_CHARS = 4096       # an idle parser consumes as it receives; this only caps memory
CTRL_C = 0x03
_GARBLE = b"#$%&@~^|\x7f\x80\xa5\xfe\xff"     # what a corrupted character turns into
LF = 0x0A


class Sink(Protocol):
    """Where replies go: the port the message came from."""

    def deliver(self, data: bytes) -> None: ...


@dataclass
class Faults:
    """Injected faults (see psu.md): they act on replies only."""
    no_reply: bool = False          # queries run, replies are dropped
    garble: bool = False            # some characters of each reply are corrupted
    partial: bool = False           # replies are cut in the middle, no CR LF
    delay_ms: float = 0.0           # extra time before each reply
    lost_first_query: bool = False  # the first query message after a setting gets no reply


@dataclass
class _Line:
    text: bytes
    sink: Sink
    framing_ok: bool
    t: float


class Engine:
    """Drives one ``Instrument`` in real time; see the module docstring for the model."""

    def __init__(self, inst: Instrument, profile: Profile, baud: int = 9600,
                 rng: random.Random | None = None, boot_s: float = 2.0):
        self.inst = inst
        self.profile = profile
        self.baud = baud
        self.boot_s = boot_s
        self.faults = Faults()
        self.rng = rng or random.Random()
        self.cv = threading.Condition()     # guards this object and the instrument
        self.rx_lines = 0
        self.rx_log: deque[str] = deque(maxlen=50)
        self.device_clears = 0
        self._inflight: deque[tuple[float, int, Sink, bool]] = deque()
        self._rx_free_at = 0.0
        self._partial = bytearray()
        self._partial_ok = True
        self._lines: deque[_Line] = deque()
        self._phase, self._phase_end = IDLE, 0.0
        self._vt = time.monotonic()
        self._in_advance = False
        self._msg = None
        self._msg_sink: Sink | None = None
        self._msg_has_query = False
        self._replies: list[str] = []
        self._step: Step | None = None
        self._clear_pending = False
        self._tx: tuple[bytes, Sink] | None = None
        self._lost_armed = False
        self._overflowed = False
        self._outbox: list[tuple[Sink, bytes]] = []
        self._stop = False
        inst.clock = self.vclock
        self._thread = threading.Thread(target=self._run, name="e3631a-engine", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public

    def feed(self, data: bytes, sink: Sink, framing_ok: bool = True) -> None:
        """Bytes written by the host now; ``framing_ok`` False if its baud/format is wrong."""
        with self.cv:
            t = time.monotonic()
            char_s = self.profile.wire_s(1, self.baud)
            start = max(t, self._rx_free_at)
            for k, b in enumerate(data):
                self._inflight.append((start + (k + 1) * char_s, b, sink, framing_ok))
            self._rx_free_at = start + len(data) * char_s
            self.cv.notify_all()

    def rx_done_at(self) -> float:
        """Monotonic time when everything fed so far has been received (for ``flush()``)."""
        with self.cv:
            return self._rx_free_at

    def vclock(self) -> float:
        """The instrument's clock: the virtual event time inside the engine, else now."""
        return self._vt if self._in_advance else time.monotonic()

    @property
    def phase(self) -> str:
        return self._phase

    def power_cycle(self, boot_s: float | None = None) -> None:
        """Power off/on: *RST state, LOCAL, queue cleared; input ignored while booting."""
        with self.cv:
            self._abort_message()
            self._tx = None
            self._lines.clear()
            self._partial.clear()
            self._clear_pending = self._lost_armed = False
            self.inst.power_cycle()
            self._phase = BOOT
            self._phase_end = time.monotonic() + (self.boot_s if boot_s is None else boot_s)
            self.cv.notify_all()

    def set_fault(self, name: str, value: bool | float) -> None:
        with self.cv:
            setattr(self.faults, name, value)

    def faults_dict(self) -> dict:
        return asdict(self.faults)

    def close(self) -> None:
        """Stop the thread (idempotent)."""
        with self.cv:
            self._stop = True
            self.cv.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(5.0)

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        while True:
            with self.cv:
                if self._stop:
                    return
                self._advance(time.monotonic())
                out, self._outbox = self._outbox, []
                if not out:
                    t = self._next_event()
                    self.cv.wait(None if t is None else max(0.0, t - time.monotonic()))
                    continue
            for sink, data in out:      # outside the lock: a sink may take its own lock
                try:
                    sink.deliver(data)
                except Exception:       # a port that went away: the reply is lost, as on a wire
                    pass

    def _next_event(self) -> float | None:
        # Wake for the next character that changes anything (LF ends a line, Ctrl-C clears),
        # not for every character: _advance() replays the ones before it in virtual time, so
        # the timing and the input-buffer accounting are the same, at a fraction of the CPU.
        times = []
        for t, b, _sink, _ok in self._inflight:
            if b in (LF, CTRL_C):
                times.append(t)
                break
        else:
            if self._inflight:
                times.append(self._inflight[-1][0])
        if self._phase != IDLE:
            times.append(self._phase_end)
        return min(times) if times else None

    def _advance(self, now: float) -> None:
        """Process, in time order, every arrival and phase end due by ``now``."""
        self._in_advance = True
        try:
            while True:
                if self._phase == IDLE and self._lines:
                    line = self._lines.popleft()
                    self._start_message(line, max(line.t, self._vt))
                    continue
                ta = self._inflight[0][0] if self._inflight else math.inf
                tp = self._phase_end if self._phase != IDLE else math.inf
                if min(ta, tp) > now:
                    return
                if tp <= ta:
                    self._vt = tp
                    self._end_phase(tp)
                else:
                    self._vt = ta
                    self._arrive(*self._inflight.popleft())
        finally:
            self._in_advance = False

    def _pending_chars(self) -> int:
        return len(self._partial) + sum(len(x.text) + 1 for x in self._lines)

    def _arrive(self, t: float, b: int, sink: Sink, ok: bool) -> None:
        if b == CTRL_C:
            self._device_clear(t)
            return
        if b == LF:
            text = bytes(self._partial)
            if text.endswith(b"\r"):
                text = text[:-1]
            ok = ok and self._partial_ok
            self._partial.clear()
            self._partial_ok = True
            self.rx_lines += 1
            self.rx_log.append(text.decode("latin-1"))
            if self._phase != BOOT:         # input is ignored while booting
                self._lines.append(_Line(text, sink, ok, t))
            return
        if self._phase not in (IDLE, BOOT) and self._pending_chars() >= INPUT_BUFFER_CHARS:
            if not self._overflowed:
                self.inst.push_error(521)
                self._overflowed = True
            return
        self._overflowed = False
        if len(self._partial) < MAX_LINE_CHARS:
            self._partial.append(b)
            self._partial_ok = self._partial_ok and ok

    def _device_clear(self, t: float) -> None:
        if self._phase == BOOT:
            return
        self.device_clears += 1
        self._partial.clear()
        self._partial_ok = True
        self._lines.clear()
        if self._phase == BUSY:
            self._clear_pending = True      # finish the setting's busy time first
            return
        self._abort_message()
        self._tx = None
        end = t + self.profile.clear_s
        if self._phase == CLEAR:
            end = max(end, self._phase_end)
        self._phase, self._phase_end = CLEAR, end

    def _abort_message(self) -> None:
        if self._msg is not None:
            self._msg.close()
        self._msg, self._step, self._replies = None, None, []

    def _end_phase(self, t: float) -> None:
        phase = self._phase
        if phase == PROC:
            if self._step.reply is not None:
                self._replies.append(self._step.reply)
            self._next_step(t)
        elif phase == BUSY:
            if self._clear_pending:
                self._clear_pending = False
                self._abort_message()
                self._tx = None
                self._phase, self._phase_end = CLEAR, t + self.profile.clear_s
            else:
                self._next_step(t)
        elif phase == TX:
            data, sink = self._tx
            self._tx = None
            self._outbox.append((sink, data))
            self._phase = IDLE
        else:
            self._phase = IDLE

    def _start_message(self, line: _Line, t: float) -> None:
        if not line.framing_ok:
            # Wrong baud or format: the unit sees noise. Queue a framing error, and let a query
            # be "answered" with noise so the host sees garbage rather than silence.
            self.inst.push_error(511)
            if b"?" in line.text:
                n = max(4, len(line.text))
                noise = bytes(self.rng.randrange(0x80, 0x100) for _ in range(n))
                self._send(noise, line.sink, t)
            return
        self._msg = self.inst.run(line.text.decode("latin-1"))
        self._msg_sink = line.sink
        self._msg_has_query = False
        self._replies = []
        self._next_step(t)

    def _next_step(self, t: float) -> None:
        self._vt = t
        try:
            step = next(self._msg)          # the unit executes now, at the start of its time
        except StopIteration:
            self._finish_message(t)
            return
        self._step = step
        if step.query:
            self._msg_has_query = True
        if step.setting and self.faults.lost_first_query:
            self._lost_armed = True
        self._phase = PROC if step.query else BUSY
        self._phase_end = t + self.profile.sample_s(step.key, step.query, step.params, self.rng)

    def _finish_message(self, t: float) -> None:
        replies, self._replies = self._replies, []
        self._msg, self._step = None, None
        lost = False
        if self._msg_has_query and self._lost_armed:
            self._lost_armed = False
            lost = self.faults.lost_first_query
        if not replies or lost or self.faults.no_reply:
            self._phase = IDLE
            return
        data = (";".join(replies) + "\r\n").encode("latin-1")
        if self.faults.garble:
            data = self._garble(data)
        if self.faults.partial:
            data = data[:max(1, (len(data) - 2) // 2)]
        self._send(data, self._msg_sink, t)

    def _send(self, data: bytes, sink: Sink, t: float) -> None:
        self._tx = (data, sink)
        self._phase = TX
        self._phase_end = t + self.faults.delay_ms / 1000.0 + self.profile.wire_s(len(data),
                                                                                   self.baud)

    def _garble(self, data: bytes) -> bytes:
        body = bytearray(data[:-2])
        for k in self.rng.sample(range(len(body)), max(1, len(body) // 4)):
            body[k] = self.rng.choice(_GARBLE.replace(bytes([body[k]]), b""))
        return bytes(body) + data[-2:]
