"""The transaction timers of RFC 3261 section 17 (table 4 of appendix A), RFC 6026 and RFC 4320.

Every value is a duration in seconds, derived from T1, T2 and T4. The transaction layer adds it to
the ``now`` it was given, so every timer is an absolute deadline. A duration of zero means "fire at
once" (reliable transports need no time to absorb retransmissions).
"""

from dataclasses import dataclass

from .errors import LocalProtocolError

#: RFC 3261 section 17.2.1: an INVITE server transaction sends 100 (Trying) itself unless the TU
#: answers within 200 ms.
INVITE_TRYING_DELAY = 0.2
#: RFC 3261 section 17.1.1.2: timer D is at least 32 seconds on unreliable transports.
MIN_TIMER_D = 32.0


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """T1 (round-trip estimate), T2 (longest non-INVITE retransmit interval), T4 (how long the
    network holds a message), in seconds. The defaults are RFC 3261's."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.t1 <= self.t2:
            raise LocalProtocolError(f"timers need 0 < T1 <= T2, got T1={self.t1} T2={self.t2}")
        if self.t4 < 0:
            raise LocalProtocolError(f"T4 cannot be negative, got {self.t4}")

    # -- INVITE client -------------------------------------------------------------------------

    @property
    def a(self) -> float:
        """Timer A's first interval (INVITE retransmission, unreliable only): T1."""
        return self.t1

    def next_a(self, interval: float) -> float:
        """Timer A's next interval: it doubles every time, with no cap."""
        return 2 * interval

    @property
    def b(self) -> float:
        """Timer B (INVITE transaction timeout): 64*T1."""
        return 64 * self.t1

    def d(self, reliable: bool) -> float:
        """Timer D (wait for response retransmissions): 0 on reliable transports, else at least
        32 s, and never shorter than the 64*T1 the server may go on retransmitting."""
        return 0.0 if reliable else max(MIN_TIMER_D, 64 * self.t1)

    @property
    def m(self) -> float:
        """Timer M (RFC 6026: wait for 2xx retransmissions and forked 2xx): 64*T1."""
        return 64 * self.t1

    # -- non-INVITE client ---------------------------------------------------------------------

    @property
    def e(self) -> float:
        """Timer E's first interval (request retransmission, unreliable only): T1."""
        return self.t1

    def next_e(self, interval: float) -> float:
        """Timer E's next interval in Trying: doubled, capped at T2."""
        return min(2 * interval, self.t2)

    @property
    def e_proceeding(self) -> float:
        """Timer E's interval once a provisional response came: T2."""
        return self.t2

    @property
    def f(self) -> float:
        """Timer F (non-INVITE transaction timeout): 64*T1."""
        return 64 * self.t1

    def k(self, reliable: bool) -> float:
        """Timer K (wait for response retransmissions): T4, or 0 on reliable transports."""
        return 0.0 if reliable else self.t4

    # -- INVITE server -------------------------------------------------------------------------

    @property
    def g(self) -> float:
        """Timer G's first interval (final response retransmission, unreliable only): T1."""
        return self.t1

    def next_g(self, interval: float) -> float:
        """Timer G's next interval: doubled, capped at T2."""
        return min(2 * interval, self.t2)

    @property
    def h(self) -> float:
        """Timer H (wait for the ACK of a non-2xx final response): 64*T1."""
        return 64 * self.t1

    def i(self, reliable: bool) -> float:
        """Timer I (absorb ACK retransmissions): T4, or 0 on reliable transports."""
        return 0.0 if reliable else self.t4

    @property
    def l(self) -> float:  # noqa: E743 - the RFC's name for it
        """Timer L (RFC 6026: absorb INVITE retransmissions after a 2xx): 64*T1."""
        return 64 * self.t1

    @property
    def invite_trying(self) -> float:
        """When an INVITE server transaction sends 100 (Trying) if the TU has not answered."""
        return INVITE_TRYING_DELAY

    # -- non-INVITE server ---------------------------------------------------------------------

    def j(self, reliable: bool) -> float:
        """Timer J (absorb request retransmissions): 64*T1, or 0 on reliable transports."""
        return 0.0 if reliable else 64 * self.t1

    @property
    def non_invite_trying(self) -> float:
        """RFC 4320 section 4.1: how long a client's timer E takes to reach T2.

        A non-INVITE server must not send 100 (Trying) over UDP earlier, and must send it then if
        the TU has not answered yet. With the default timers: 0.5 + 1 + 2 = 3.5 s.
        """
        elapsed, interval = 0.0, self.t1
        while interval < self.t2:
            elapsed += interval
            interval *= 2
        return elapsed

    # -- the UAC core (RFC 3261 section 9.1) ---------------------------------------------------

    @property
    def cancel_wait(self) -> float:
        """How long an INVITE client transaction waits for a final response after its CANCEL
        was sent before it gives up (RFC 3261 section 9.1): 64*T1."""
        return 64 * self.t1


#: RFC 3261's defaults: T1 = 500 ms, T2 = 4 s, T4 = 5 s.
DEFAULT_TIMERS = TimerConfig()
