"""SIP transactions: RFC 3261 section 17, with RFC 6026 (Accepted states) and RFC 4320.

Four state machines, each written as one table ``(State, Input) -> (next State, Actions)``:
INVITE client, non-INVITE client, INVITE server, non-INVITE server. :class:`TransactionLayer`
holds the live transactions, matches messages to them (RFC 3261 sections 17.1.3 and 17.2.3),
feeds them inputs and carries out the actions their tables name. It does no I/O and reads no
clock: every input takes ``now``, bytes to send are drained with
:meth:`TransactionLayer.datagrams_to_send`, events with :meth:`TransactionLayer.next_event`, and
:meth:`TransactionLayer.get_timer` gives the earliest absolute deadline.

Inputs are of three kinds. Remote inputs (a response, a retransmitted request, an ACK) have an
entry in every state of every table that accepts them, if only to drop them: the network can send
anything at any time. Local inputs (the TU sends a response or a CANCEL) that a state has no entry
for raise LocalProtocolError. Timer inputs are armed only by the tables' own actions; a timer with
no entry in the current state would be a bug in the tables, and raises LocalProtocolError too.
:func:`table_problems` checks all of this on the tables at import time. A few commands are refused
before the table is asked, because the refusal depends on data rather than state: a second CANCEL
of one INVITE, a response whose CSeq is not the request's, and what RFC 4320 forbids.

Where the RFCs leave a choice, this module takes these:

- An INVITE server transaction sends 100 (Trying) by itself 200 ms after the INVITE when the TU
  has not answered by then (RFC 3261 section 17.2.1). A non-INVITE server transaction sends it
  when the client's timer E reaches T2 (RFC 4320 section 4.1), and refuses other provisional
  responses, 408, and an earlier 100 over UDP.
- In Accepted (RFC 6026) a retransmitted INVITE is absorbed without an answer: the TU, not the
  transaction, retransmits the 2xx. In Confirmed it is absorbed too: the ACK showed the client
  has the final response.
- An INVITE client transaction passes up a 2xx that comes after a non-2xx final response (a
  proxy forwards one when its timer C raced with the answer, RFC 3261 section 16.7): the TU must
  ACK and BYE it.
- After a CANCEL was sent, an INVITE client transaction waits 64*T1 for the final response, then
  reports a timeout and ends (RFC 3261 section 9.1).
"""

import heapq
import ipaddress
import itertools
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from .errors import LocalProtocolError, RemoteProtocolError
from .fields import CSeq, Via
from .grammar import split_outside_quotes
from .headers import Headers, header_key
from .ids import BRANCH_COOKIE, IdFactory
from .message import Request, Response
from .target import Target
from .timers import DEFAULT_TIMERS, TimerConfig

# -- states, inputs, actions -----------------------------------------------------------------------


class State(Enum):
    """A transaction state (the union of the four machines' states)."""

    #: Members are singletons: hash by identity, in C (Enum's own __hash__ is Python code, and
    #: the transition tables are looked up several times per message).
    __hash__ = object.__hash__

    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    TERMINATED = "Terminated"


class InputKind(Enum):
    """Where an input comes from."""

    REMOTE = "remote"
    TIMER = "timer"
    LOCAL = "local"


class Input(Enum):
    """Something that happens to a transaction."""

    #: Members are singletons: hash by identity, in C (Enum's own __hash__ is Python code, and
    #: the transition tables are looked up several times per message).
    __hash__ = object.__hash__

    # From the network.
    RECV_1XX = "provisional response received"
    RECV_2XX = "2xx response received"
    RECV_3XX_6XX = "3xx-6xx response received"
    RECV_REQUEST = "request retransmission received"
    RECV_ACK = "ACK received"
    # Timers.
    TIMER_A = "timer A"
    TIMER_B = "timer B"
    TIMER_D = "timer D"
    TIMER_E = "timer E"
    TIMER_F = "timer F"
    TIMER_G = "timer G"
    TIMER_H = "timer H"
    TIMER_I = "timer I"
    TIMER_J = "timer J"
    TIMER_K = "timer K"
    TIMER_L = "timer L"
    TIMER_M = "timer M"
    TIMER_TRYING = "time to send 100 (Trying)"
    TIMER_CANCEL = "no final response 64*T1 after the CANCEL"
    # Commands from the TU.
    SEND_1XX = "TU sends a provisional response"
    SEND_2XX = "TU sends a 2xx response"
    SEND_3XX_6XX = "TU sends a 3xx-6xx response"
    CANCEL = "TU cancels the INVITE"

    @property
    def kind(self) -> InputKind:
        """Remote, timer or local."""
        if self.name.startswith("RECV_"):
            return InputKind.REMOTE
        if self.name.startswith("TIMER_"):
            return InputKind.TIMER
        return InputKind.LOCAL


class Action(Enum):
    """What a transition does, in the order its table lists them."""

    #: Members are singletons: hash by identity, in C (Enum's own __hash__ is Python code, and
    #: the transition tables are looked up several times per message).
    __hash__ = object.__hash__

    SEND_REQUEST = "send the request (again)"
    PASS_RESPONSE = "pass the response to the TU"
    SEND_ACK = "send the ACK of the non-2xx final response (built once, from the first one)"
    HOLD_CANCEL = "keep the TU's CANCEL until it may be sent"
    SEND_CANCEL = "send the CANCEL held, if any, and start the timer for the final response"
    DROP_CANCEL = "forget the CANCEL held, if any: it ends without being sent"
    SEND_RESPONSE = "send the TU's response and keep it as the last response"
    RESEND_RESPONSE = "send the last response again, if there is one"
    SEND_TRYING = "send 100 (Trying) and keep it as the last response"
    PASS_ACK = "pass the ACK to the TU"
    REPORT_TIMEOUT = "tell the TU the transaction timed out"
    STOP_TIMERS = "stop every timer of the transaction"
    START_A = "start timer A at T1 (unreliable transports only)"
    BACKOFF_A = "restart timer A at twice its interval"
    START_B = "start timer B"
    START_D = "start timer D"
    START_E = "start timer E at T1 (unreliable transports only)"
    BACKOFF_E = "restart timer E at twice its interval, at most T2"
    SLOW_E = "restart timer E at T2"
    START_F = "start timer F"
    START_G = "start timer G at T1 (unreliable transports only)"
    BACKOFF_G = "restart timer G at twice its interval, at most T2"
    START_H = "start timer H"
    START_I = "start timer I"
    START_J = "start timer J"
    START_K = "start timer K"
    START_L = "start timer L"
    START_M = "start timer M"
    START_TRYING = "start the timer that sends 100 (Trying)"


#: The timer each timer action (re)starts.
TIMER_STARTED_BY: Mapping[Action, Input] = {
    Action.START_A: Input.TIMER_A,
    Action.BACKOFF_A: Input.TIMER_A,
    Action.START_B: Input.TIMER_B,
    Action.START_D: Input.TIMER_D,
    Action.START_E: Input.TIMER_E,
    Action.BACKOFF_E: Input.TIMER_E,
    Action.SLOW_E: Input.TIMER_E,
    Action.START_F: Input.TIMER_F,
    Action.START_G: Input.TIMER_G,
    Action.BACKOFF_G: Input.TIMER_G,
    Action.START_H: Input.TIMER_H,
    Action.START_I: Input.TIMER_I,
    Action.START_J: Input.TIMER_J,
    Action.START_K: Input.TIMER_K,
    Action.START_L: Input.TIMER_L,
    Action.START_M: Input.TIMER_M,
    Action.START_TRYING: Input.TIMER_TRYING,
}

Transition = tuple[State, tuple[Action, ...]]


@dataclass(frozen=True, eq=False)
class Machine:
    """One of the four transaction state machines."""

    name: str
    """``INVITE client``, ``non-INVITE client``, ``INVITE server`` or ``non-INVITE server``."""
    initial: State
    """The state a new transaction starts in."""
    start: tuple[Action, ...]
    """What a new transaction does as it starts."""
    states: tuple[State, ...]
    """Every state of the machine."""
    inputs: tuple[Input, ...]
    """Every input the machine knows."""
    table: Mapping[tuple[State, Input], Transition]
    """The transitions; a pair not in it is refused (local and timer inputs only)."""

    @property
    def is_client(self) -> bool:
        """True for the two client machines."""
        return self.name.endswith("client")


# Short names for the tables only.
_S, _I, _A = State, Input, Action
_FINAL_ACK = (_A.STOP_TIMERS, _A.PASS_RESPONSE, _A.SEND_ACK)

INVITE_CLIENT = Machine(
    name="INVITE client",
    initial=_S.CALLING,
    start=(_A.SEND_REQUEST, _A.START_A, _A.START_B),
    states=(_S.CALLING, _S.PROCEEDING, _S.ACCEPTED, _S.COMPLETED, _S.TERMINATED),
    inputs=(
        _I.RECV_1XX,
        _I.RECV_2XX,
        _I.RECV_3XX_6XX,
        _I.TIMER_A,
        _I.TIMER_B,
        _I.TIMER_D,
        _I.TIMER_M,
        _I.TIMER_CANCEL,
        _I.CANCEL,
    ),
    table={
        (_S.CALLING, _I.TIMER_A): (_S.CALLING, (_A.SEND_REQUEST, _A.BACKOFF_A)),
        (_S.CALLING, _I.TIMER_B): (_S.TERMINATED, (_A.REPORT_TIMEOUT, _A.DROP_CANCEL)),
        (_S.CALLING, _I.RECV_1XX): (
            _S.PROCEEDING,
            (_A.STOP_TIMERS, _A.PASS_RESPONSE, _A.SEND_CANCEL),
        ),
        (_S.CALLING, _I.RECV_2XX): (
            _S.ACCEPTED,
            (_A.STOP_TIMERS, _A.PASS_RESPONSE, _A.DROP_CANCEL, _A.START_M),
        ),
        (_S.CALLING, _I.RECV_3XX_6XX): (
            _S.COMPLETED,
            (*_FINAL_ACK, _A.DROP_CANCEL, _A.START_D),
        ),
        (_S.CALLING, _I.CANCEL): (_S.CALLING, (_A.HOLD_CANCEL,)),
        (_S.PROCEEDING, _I.RECV_1XX): (_S.PROCEEDING, (_A.PASS_RESPONSE,)),
        (_S.PROCEEDING, _I.RECV_2XX): (
            _S.ACCEPTED,
            (_A.STOP_TIMERS, _A.PASS_RESPONSE, _A.START_M),
        ),
        (_S.PROCEEDING, _I.RECV_3XX_6XX): (_S.COMPLETED, (*_FINAL_ACK, _A.START_D)),
        (_S.PROCEEDING, _I.CANCEL): (_S.PROCEEDING, (_A.HOLD_CANCEL, _A.SEND_CANCEL)),
        (_S.PROCEEDING, _I.TIMER_CANCEL): (_S.TERMINATED, (_A.REPORT_TIMEOUT,)),
        # RFC 6026: every 2xx is passed up (retransmissions and forked answers); the TU ACKs.
        (_S.ACCEPTED, _I.RECV_1XX): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.RECV_2XX): (_S.ACCEPTED, (_A.PASS_RESPONSE,)),
        (_S.ACCEPTED, _I.RECV_3XX_6XX): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.TIMER_M): (_S.TERMINATED, ()),
        # A retransmitted final response is ACKed again and not passed up.
        (_S.COMPLETED, _I.RECV_1XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.RECV_2XX): (_S.COMPLETED, (_A.PASS_RESPONSE,)),
        (_S.COMPLETED, _I.RECV_3XX_6XX): (_S.COMPLETED, (_A.SEND_ACK,)),
        (_S.COMPLETED, _I.TIMER_D): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_1XX): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_2XX): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_3XX_6XX): (_S.TERMINATED, ()),
    },
)

_NON_INVITE_FINAL = (_A.STOP_TIMERS, _A.PASS_RESPONSE, _A.START_K)

NON_INVITE_CLIENT = Machine(
    name="non-INVITE client",
    initial=_S.TRYING,
    start=(_A.SEND_REQUEST, _A.START_E, _A.START_F),
    states=(_S.TRYING, _S.PROCEEDING, _S.COMPLETED, _S.TERMINATED),
    inputs=(
        _I.RECV_1XX,
        _I.RECV_2XX,
        _I.RECV_3XX_6XX,
        _I.TIMER_E,
        _I.TIMER_F,
        _I.TIMER_K,
    ),
    table={
        (_S.TRYING, _I.TIMER_E): (_S.TRYING, (_A.SEND_REQUEST, _A.BACKOFF_E)),
        (_S.TRYING, _I.TIMER_F): (_S.TERMINATED, (_A.REPORT_TIMEOUT,)),
        (_S.TRYING, _I.RECV_1XX): (_S.PROCEEDING, (_A.PASS_RESPONSE,)),
        (_S.TRYING, _I.RECV_2XX): (_S.COMPLETED, _NON_INVITE_FINAL),
        (_S.TRYING, _I.RECV_3XX_6XX): (_S.COMPLETED, _NON_INVITE_FINAL),
        (_S.PROCEEDING, _I.TIMER_E): (_S.PROCEEDING, (_A.SEND_REQUEST, _A.SLOW_E)),
        (_S.PROCEEDING, _I.TIMER_F): (_S.TERMINATED, (_A.REPORT_TIMEOUT,)),
        (_S.PROCEEDING, _I.RECV_1XX): (_S.PROCEEDING, (_A.PASS_RESPONSE,)),
        (_S.PROCEEDING, _I.RECV_2XX): (_S.COMPLETED, _NON_INVITE_FINAL),
        (_S.PROCEEDING, _I.RECV_3XX_6XX): (_S.COMPLETED, _NON_INVITE_FINAL),
        (_S.COMPLETED, _I.RECV_1XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.RECV_2XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.RECV_3XX_6XX): (_S.COMPLETED, ()),
        (_S.COMPLETED, _I.TIMER_K): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_1XX): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_2XX): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_3XX_6XX): (_S.TERMINATED, ()),
    },
)

INVITE_SERVER = Machine(
    name="INVITE server",
    initial=_S.PROCEEDING,
    start=(_A.START_TRYING,),
    states=(_S.PROCEEDING, _S.ACCEPTED, _S.COMPLETED, _S.CONFIRMED, _S.TERMINATED),
    inputs=(
        _I.RECV_REQUEST,
        _I.RECV_ACK,
        _I.TIMER_TRYING,
        _I.TIMER_G,
        _I.TIMER_H,
        _I.TIMER_I,
        _I.TIMER_L,
        _I.SEND_1XX,
        _I.SEND_2XX,
        _I.SEND_3XX_6XX,
    ),
    table={
        (_S.PROCEEDING, _I.RECV_REQUEST): (_S.PROCEEDING, (_A.RESEND_RESPONSE,)),
        (_S.PROCEEDING, _I.RECV_ACK): (_S.PROCEEDING, ()),
        (_S.PROCEEDING, _I.TIMER_TRYING): (_S.PROCEEDING, (_A.SEND_TRYING,)),
        (_S.PROCEEDING, _I.SEND_1XX): (_S.PROCEEDING, (_A.STOP_TIMERS, _A.SEND_RESPONSE)),
        (_S.PROCEEDING, _I.SEND_2XX): (
            _S.ACCEPTED,
            (_A.STOP_TIMERS, _A.SEND_RESPONSE, _A.START_L),
        ),
        (_S.PROCEEDING, _I.SEND_3XX_6XX): (
            _S.COMPLETED,
            (_A.STOP_TIMERS, _A.SEND_RESPONSE, _A.START_G, _A.START_H),
        ),
        # RFC 6026: the TU retransmits the 2xx through the transaction and gets every ACK.
        (_S.ACCEPTED, _I.RECV_REQUEST): (_S.ACCEPTED, ()),
        (_S.ACCEPTED, _I.RECV_ACK): (_S.ACCEPTED, (_A.PASS_ACK,)),
        (_S.ACCEPTED, _I.SEND_2XX): (_S.ACCEPTED, (_A.SEND_RESPONSE,)),
        (_S.ACCEPTED, _I.TIMER_L): (_S.TERMINATED, ()),
        (_S.COMPLETED, _I.RECV_REQUEST): (_S.COMPLETED, (_A.RESEND_RESPONSE,)),
        (_S.COMPLETED, _I.RECV_ACK): (_S.CONFIRMED, (_A.STOP_TIMERS, _A.START_I)),
        (_S.COMPLETED, _I.TIMER_G): (_S.COMPLETED, (_A.RESEND_RESPONSE, _A.BACKOFF_G)),
        (_S.COMPLETED, _I.TIMER_H): (_S.TERMINATED, (_A.REPORT_TIMEOUT,)),
        (_S.CONFIRMED, _I.RECV_REQUEST): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, _I.RECV_ACK): (_S.CONFIRMED, ()),
        (_S.CONFIRMED, _I.TIMER_I): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_REQUEST): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_ACK): (_S.TERMINATED, ()),
    },
)

_NON_INVITE_ANSWER = (_A.STOP_TIMERS, _A.SEND_RESPONSE, _A.START_J)

NON_INVITE_SERVER = Machine(
    name="non-INVITE server",
    initial=_S.TRYING,
    start=(_A.START_TRYING,),
    states=(_S.TRYING, _S.PROCEEDING, _S.COMPLETED, _S.TERMINATED),
    inputs=(
        _I.RECV_REQUEST,
        _I.TIMER_TRYING,
        _I.TIMER_J,
        _I.SEND_1XX,
        _I.SEND_2XX,
        _I.SEND_3XX_6XX,
    ),
    table={
        (_S.TRYING, _I.RECV_REQUEST): (_S.TRYING, ()),
        (_S.TRYING, _I.TIMER_TRYING): (_S.PROCEEDING, (_A.SEND_TRYING,)),
        (_S.TRYING, _I.SEND_1XX): (_S.PROCEEDING, (_A.STOP_TIMERS, _A.SEND_RESPONSE)),
        (_S.TRYING, _I.SEND_2XX): (_S.COMPLETED, _NON_INVITE_ANSWER),
        (_S.TRYING, _I.SEND_3XX_6XX): (_S.COMPLETED, _NON_INVITE_ANSWER),
        (_S.PROCEEDING, _I.RECV_REQUEST): (_S.PROCEEDING, (_A.RESEND_RESPONSE,)),
        (_S.PROCEEDING, _I.SEND_1XX): (_S.PROCEEDING, (_A.SEND_RESPONSE,)),
        (_S.PROCEEDING, _I.SEND_2XX): (_S.COMPLETED, _NON_INVITE_ANSWER),
        (_S.PROCEEDING, _I.SEND_3XX_6XX): (_S.COMPLETED, _NON_INVITE_ANSWER),
        (_S.COMPLETED, _I.RECV_REQUEST): (_S.COMPLETED, (_A.RESEND_RESPONSE,)),
        (_S.COMPLETED, _I.TIMER_J): (_S.TERMINATED, ()),
        (_S.TERMINATED, _I.RECV_REQUEST): (_S.TERMINATED, ()),
    },
)

MACHINES = (INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER)


def table_problems(machine: Machine) -> list[str]:
    """What is wrong with a machine's table; empty when it is sound.

    Checked: every remote input has an entry in every state; entries name only the machine's
    states and inputs; and every timer that can be running in a state (worked out by following
    the transitions from the start) has an entry there, so a timer never fires into a hole.
    """
    problems = []
    for state in machine.states:
        for input_ in machine.inputs:
            if input_.kind is InputKind.REMOTE and (state, input_) not in machine.table:
                problems.append(f"{machine.name}: {input_.name} missing in {state.name}")
    for (state, input_), (next_state, _) in machine.table.items():
        if state not in machine.states or next_state not in machine.states:
            problems.append(f"{machine.name}: ({state.name}, {input_.name}) has a foreign state")
        if input_ not in machine.inputs:
            problems.append(f"{machine.name}: {input_.name} is not an input of the machine")
    running = _running_timers(machine)
    for state, timers in running.items():
        if state is State.TERMINATED:
            continue  # a terminated transaction is forgotten with its timers
        for timer in sorted(timers, key=lambda t: t.name):
            if (state, timer) not in machine.table:
                problems.append(f"{machine.name}: {timer.name} may fire in {state.name}")
    return problems


def _timers_after(actions: tuple[Action, ...], running: frozenset[Input]) -> frozenset[Input]:
    timers = set(running)
    for action in actions:
        if action is Action.STOP_TIMERS:
            timers.clear()
        elif action in TIMER_STARTED_BY:
            timers.add(TIMER_STARTED_BY[action])
        elif action is Action.SEND_CANCEL:
            timers.add(Input.TIMER_CANCEL)
    return frozenset(timers)


def _running_timers(machine: Machine) -> dict[State, frozenset[Input]]:
    """For each reachable state, the timers that may be running in it."""
    running = {machine.initial: _timers_after(machine.start, frozenset())}
    changed = True
    while changed:
        changed = False
        for (state, input_), (next_state, actions) in machine.table.items():
            if state not in running:
                continue
            before = running[state] - {input_}  # a timer that fired is no longer running
            after = _timers_after(actions, before) | running.get(next_state, frozenset())
            if after != running.get(next_state):
                running[next_state] = after
                changed = True
    return running


for _machine in MACHINES:
    if table_problems(_machine):  # pragma: no cover - caught by the tests
        raise RuntimeError("; ".join(table_problems(_machine)))


# -- events and output -----------------------------------------------------------------------------


class TransactionEvent:
    """Base class of the events :meth:`TransactionLayer.next_event` hands out."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RequestReceived(TransactionEvent):
    """A new request arrived; a server transaction was made for it.

    Answer it with :meth:`TransactionLayer.respond`. Retransmissions of it are absorbed by the
    transaction and never reported again.
    """

    key: str
    """The key of the new server transaction."""
    request: Request
    """The request, its top Via already stamped with ``received`` and ``rport``."""
    source: Target
    """Where the request came from."""
    invite_key: str | None = None
    """For a CANCEL: the INVITE server transaction it matches, None when there is none. Always
    None for other methods."""


@dataclass(frozen=True, slots=True)
class ResponseReceived(TransactionEvent):
    """A response for one of our client transactions, to act on.

    Retransmitted provisional and non-2xx final responses are absorbed; 2xx responses to an
    INVITE are all passed up (RFC 6026), so that the TU ACKs each one.
    """

    key: str
    """The client transaction's key."""
    response: Response
    """The response."""


@dataclass(frozen=True, slots=True)
class AckReceived(TransactionEvent):
    """An ACK no transaction absorbed: the ACK of a 2xx, for the UA core."""

    request: Request
    """The ACK, its top Via stamped with ``received`` and ``rport``."""
    source: Target
    """Where it came from."""


@dataclass(frozen=True, slots=True)
class StrayResponse(TransactionEvent):
    """A response that matches no client transaction (RFC 6026 section 7.2).

    The UA core needs these: a 2xx retransmitted after the INVITE transaction ended still has
    to be ACKed.
    """

    response: Response
    """The response."""
    source: Target
    """Where it came from."""


@dataclass(frozen=True, slots=True)
class TransactionTimeout(TransactionEvent):
    """A transaction timed out. ``TransactionTerminated`` for the same key follows.

    Client: no final response within timer B or F (report 408 to the user), or none within
    64*T1 of a CANCEL. INVITE server: no ACK for a non-2xx final response before timer H.
    """

    key: str
    """The transaction's key."""
    method: str
    """The method of the transaction's request."""


@dataclass(frozen=True, slots=True)
class TransactionTerminated(TransactionEvent):
    """A transaction ended and was forgotten; its key is no longer valid."""

    key: str
    """The transaction's key."""


@dataclass(frozen=True, slots=True)
class MessageDropped(TransactionEvent):
    """A message from the network that could not be used, and was dropped (for the log)."""

    message: Request | Response
    """The message."""
    source: Target
    """Where it came from."""
    reason: str
    """Why it was dropped."""


@dataclass(frozen=True, slots=True)
class Outgoing:
    """Bytes to send, and where to."""

    data: bytes
    """One whole SIP message."""
    target: Target
    """The destination (on a reliable transport: the connection to use)."""


# -- transactions ----------------------------------------------------------------------------------


@dataclass(eq=False, slots=True)
class _Transaction:
    key: str
    machine: Machine
    state: State
    #: The request, until the transaction only lingers to absorb retransmissions (see
    #: ``_LINGERING``): then None, so that thousands of ended calls do not keep theirs.
    request: Request | None
    #: Client: where the request goes. Server: where the request came from.
    peer: Target
    created: float
    #: Server: where responses go (RFC 3261 section 18.2.2, RFC 3581).
    reply_to: Target | None = None
    #: Client: the request as sent, for retransmissions.
    request_bytes: bytes = b""
    #: Server: the last response sent, for retransmissions.
    last_response: bytes | None = None
    #: INVITE server: the To tag of the final response (ACK matching for RFC 2543 peers).
    final_to_tag: str | None = None
    #: INVITE client: the ACK of the non-2xx final response.
    ack: bytes | None = None
    #: INVITE client: the key and request of a CANCEL waiting for a provisional response.
    held_cancel: tuple[str, Request] | None = None
    #: INVITE client: the key of the CANCEL, once the TU asked for one.
    cancel_key: str | None = None
    #: Running timers: deadline and the token of the heap entry that fires it.
    timers: dict[Input, tuple[float, int]] = field(default_factory=dict)
    #: Current intervals of the timers that back off (A, E, G), made when first needed.
    intervals: dict[Input, float] | None = None
    #: The keys under which the layer finds this transaction.
    index_keys: list[tuple[object, ...]] = field(default_factory=list)
    #: The request's method and CSeq, kept when the request is let go.
    method: str = ""
    cseq: CSeq | None = None

    def __post_init__(self) -> None:
        assert self.request is not None
        self.method = self.request.method
        self.cseq = self.request.cseq

    @property
    def live_request(self) -> Request:
        """The request, in a state that still needs it."""
        assert self.request is not None, f"transaction {self.key} no longer holds its request"
        return self.request

    @property
    def reliable(self) -> bool:
        return self.peer.reliable


#: The timers whose interval doubles each time (RFC 3261 17.1.1.2, 17.1.2.2, 17.2.1).
_BACKING_OFF = frozenset({Input.TIMER_A, Input.TIMER_E, Input.TIMER_G})

#: States after the final response, where a transaction only absorbs retransmissions (with the
#: bytes it keeps: the last response, the ACK) and waits for its timer: its request is not read.
_LINGERING = frozenset({State.COMPLETED, State.ACCEPTED, State.CONFIRMED, State.TERMINATED})


# -- the layer -------------------------------------------------------------------------------------


class TransactionLayer:
    """Every client and server transaction of one user agent.

    Inputs: :meth:`send_request`, :meth:`send_cancel`, :meth:`send_stateless`,
    :meth:`receive`, :meth:`respond`, :meth:`handle_timer`. Outputs: :meth:`datagrams_to_send`,
    :meth:`next_event`, :meth:`get_timer`. Keys of transactions come from ``ids``.
    """

    def __init__(self, ids: IdFactory, timers: TimerConfig = DEFAULT_TIMERS) -> None:
        self._ids = ids
        self._config = timers
        self._transactions: dict[str, _Transaction] = {}
        self._index: dict[tuple[object, ...], str] = {}
        self._heap: list[tuple[float, int, str, Input]] = []
        self._tokens = itertools.count()
        self._due_now: list[tuple[str, Input, int]] = []
        self._events: deque[TransactionEvent] = deque()
        self._outgoing: list[Outgoing] = []

    # -- looking at it -----------------------------------------------------------------------------

    def __len__(self) -> int:
        """How many transactions are alive."""
        return len(self._transactions)

    def awaiting_responses(self) -> int:
        """How many client transactions still wait for a final response (what a clean stop
        waits for; server transactions only linger to absorb retransmissions)."""
        waiting = (State.CALLING, State.TRYING, State.PROCEEDING)
        return sum(
            1 for tx in self._transactions.values() if tx.machine.is_client and tx.state in waiting
        )

    def state(self, key: str) -> State | None:
        """The state of a live transaction, None when there is no such transaction."""
        tx = self._transactions.get(key)
        return tx.state if tx is not None else None

    def deadlines(self, key: str) -> dict[Input, float]:
        """The running timers of a live transaction and when they fire (empty when unknown)."""
        tx = self._transactions.get(key)
        return {timer: deadline for timer, (deadline, _) in tx.timers.items()} if tx else {}

    # -- client side -------------------------------------------------------------------------------

    def send_request(self, request: Request, target: Target, now: float) -> str:
        """Start a client transaction for ``request``, sent to ``target``; return its key.

        The request must have a Via; when its top Via has no branch, one is added (so the
        request is changed in place). ACK is never sent in a transaction (use
        :meth:`send_stateless`), and a CANCEL is made by :meth:`send_cancel`.
        """
        method = request.method
        if method == "ACK":
            raise LocalProtocolError("ACK has no transaction: send it with send_stateless")
        if method == "CANCEL":
            raise LocalProtocolError("a CANCEL is built and sent by send_cancel")
        try:
            vias = request.vias
            cseq = request.cseq
        except RemoteProtocolError as error:
            raise LocalProtocolError(f"cannot send {request!r}: {error}") from None
        if cseq.method != method:
            raise LocalProtocolError(f"CSeq method {cseq.method} differs from {method}")
        if not vias:
            raise LocalProtocolError("the request needs a Via before it is sent")
        branch = vias[0].branch
        if branch is None:
            branch = self._ids.branch()
            _replace_top_via(request, vias[0].with_params(branch=branch))
        elif not branch.startswith(BRANCH_COOKIE):
            raise LocalProtocolError(f"branch {branch!r} lacks the {BRANCH_COOKIE} magic cookie")
        if ("client", branch, method) in self._index:
            raise LocalProtocolError(f"a {method} transaction with branch {branch} exists")
        key = self._new_key()
        self._start_client(key, request, branch, target, now)
        self._fire_due_now(now)
        return key

    def send_cancel(self, invite_key: str, now: float) -> str:
        """CANCEL the INVITE of a client transaction (RFC 3261 section 9.1); return the key of
        the CANCEL's own client transaction.

        Until a provisional response has come the CANCEL is held, and sent when the first one
        comes; if a final response or a timeout comes first, it is never sent and its key ends
        with ``TransactionTerminated``. LocalProtocolError once a final response came.
        """
        tx = self._get(invite_key)
        if tx.machine is not INVITE_CLIENT:
            raise LocalProtocolError(f"{invite_key} is not an INVITE client transaction")
        if tx.cancel_key is not None:
            raise LocalProtocolError(f"{invite_key} is already cancelled by {tx.cancel_key}")
        if (tx.state, Input.CANCEL) not in tx.machine.table:
            raise LocalProtocolError(f"cannot CANCEL an INVITE in {tx.state.value}")
        key = self._new_key()
        self._feed(tx, Input.CANCEL, now, (key, build_cancel(tx.live_request)))
        return key

    def send_stateless(self, message: Request | Response, target: Target, now: float) -> None:
        """Send a message outside any transaction: the ACK of a 2xx, a 2xx retransmitted after
        its transaction ended, a stateless answer."""
        self._outgoing.append(Outgoing(message.to_bytes(), target))

    # -- server side -------------------------------------------------------------------------------

    def respond(self, key: str, response: Response, now: float) -> None:
        """Send ``response`` through the server transaction ``key``.

        LocalProtocolError when the key is unknown or belongs to a client transaction, when the
        transaction's state does not take this response, when the response's CSeq is not the
        request's, or when RFC 4320 forbids it (a non-INVITE request gets no provisional
        response but 100, no 408, and over UDP no 100 before the client's timer E reaches T2:
        the transaction sends that 100 itself).
        """
        tx = self._get(key)
        if tx.machine.is_client:
            raise LocalProtocolError(f"{key} is a client transaction")
        try:
            cseq = response.cseq
            to_tag = response.to.tag
        except RemoteProtocolError as error:
            raise LocalProtocolError(f"cannot send {response!r}: {error}") from None
        request_cseq = tx.cseq
        if cseq != request_cseq:
            raise LocalProtocolError(f"response CSeq {cseq} does not match {request_cseq}")
        status = response.status
        if tx.machine is NON_INVITE_SERVER:
            if 100 < status < 200:
                raise LocalProtocolError(f"RFC 4320: no {status} to a non-INVITE request")
            if status == 408:
                raise LocalProtocolError("RFC 4320: no 408 to a non-INVITE request")
            early = now < tx.created + self._config.non_invite_trying
            if status == 100 and early and not tx.reliable:
                raise LocalProtocolError(
                    "RFC 4320: no early 100 to a non-INVITE request over UDP"
                    " (the transaction sends it when it is due)"
                )
        if status < 200:
            input_ = Input.SEND_1XX
        elif status < 300:
            input_ = Input.SEND_2XX
        else:
            input_ = Input.SEND_3XX_6XX
        self._feed(tx, input_, now, response)
        if status >= 200 and tx.machine is INVITE_SERVER:
            tx.final_to_tag = to_tag

    # -- from the network --------------------------------------------------------------------------

    def receive(self, message: Request | Response, source: Target, now: float) -> None:
        """Take a parsed message from ``source``. Never raises for anything the peer sent: what
        cannot be used is dropped and reported as ``MessageDropped``."""
        if isinstance(message, Response):
            self._receive_response(message, source, now)
        else:
            self._receive_request(message, source, now)

    def _receive_response(self, response: Response, source: Target, now: float) -> None:
        try:
            branch = response.top_via.branch
            method = response.cseq.method
        except RemoteProtocolError as error:
            self._events.append(MessageDropped(response, source, str(error)))
            return
        key = self._index.get(("client", branch, method)) if branch else None
        if key is None:
            self._events.append(StrayResponse(response, source))
            return
        status = response.status
        if status < 200:
            input_ = Input.RECV_1XX
        elif status < 300:
            input_ = Input.RECV_2XX
        else:
            input_ = Input.RECV_3XX_6XX
        self._feed(self._transactions[key], input_, now, response)

    def _receive_request(self, request: Request, source: Target, now: float) -> None:
        try:
            original_via = request.top_via
            if request.cseq.method != request.method:
                raise RemoteProtocolError("the CSeq method differs from the request method")
            _stamp_via(request, original_via, source)
            found, new_index_keys, invite_key = self._match_request(request, original_via)
        except RemoteProtocolError as error:
            self._events.append(MessageDropped(request, source, str(error)))
            return
        if found is not None:
            tx = self._transactions[found]
            input_ = Input.RECV_ACK if request.method == "ACK" else Input.RECV_REQUEST
            self._feed(tx, input_, now, (request, source))
        elif request.method == "ACK":
            self._events.append(AckReceived(request, source))
        else:
            self._start_server(request, source, new_index_keys, invite_key, now)

    def _match_request(
        self, request: Request, via: Via
    ) -> tuple[str | None, list[tuple[object, ...]], str | None]:
        """RFC 3261 section 17.2.3: the matching server transaction's key (or None), the index
        keys for a new one, and for a CANCEL the INVITE transaction it matches."""
        method = request.method
        branch = via.branch
        if branch is not None and branch.startswith(BRANCH_COOKIE):
            sent_by = (_bare_host(via.host).lower(), via.port)
            own: tuple[object, ...] = ("server", branch, *sent_by, method)
            if method == "ACK":
                return self._index.get(("server", branch, *sent_by, "INVITE")), [], None
            invite = ("server", branch, *sent_by, "INVITE") if method == "CANCEL" else None
            keys = [own]
        else:
            # RFC 2543 peers: no usable branch, so the transaction is the request's identity.
            to_tag, from_tag = request.to.tag, request.from_.tag
            cseq = request.cseq
            call_id = request.call_id
            identity = (request.uri_text, from_tag, call_id, cseq.seq, str(via))
            if method == "ACK":
                key = self._index.get(("2543-ack", *identity))
                tx = self._transactions.get(key) if key is not None else None
                if tx is not None and tx.final_to_tag is not None and tx.final_to_tag == to_tag:
                    return key, [], None
                return None, [], None
            own = ("2543", *identity, to_tag, method)
            invite = ("2543", *identity, to_tag, "INVITE") if method == "CANCEL" else None
            keys = [own]
            if method == "INVITE":
                keys.append(("2543-ack", *identity))
        found = self._index.get(own)
        invite_key = self._index.get(invite) if invite is not None else None
        return found, keys, invite_key

    # -- time --------------------------------------------------------------------------------------

    def get_timer(self) -> float | None:
        """The earliest deadline of any running timer, or None."""
        heap = self._heap
        while heap:
            deadline, token, key, timer = heap[0]
            tx = self._transactions.get(key)
            if tx is not None and tx.timers.get(timer) == (deadline, token):
                return deadline
            heapq.heappop(heap)
        return None

    def handle_timer(self, now: float) -> None:
        """Fire every timer whose deadline is ``now`` or earlier, in deadline order."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            deadline, token, key, timer = heapq.heappop(heap)
            tx = self._transactions.get(key)
            if tx is None or tx.timers.get(timer) != (deadline, token):
                continue
            del tx.timers[timer]
            self._feed(tx, timer, now)

    # -- output ------------------------------------------------------------------------------------

    def next_event(self) -> TransactionEvent | None:
        """The oldest event not yet taken, or None."""
        return self._events.popleft() if self._events else None

    def datagrams_to_send(self) -> list[Outgoing]:
        """Everything queued for sending since the last call, in order."""
        out, self._outgoing = self._outgoing, []
        return out

    # -- the machinery -----------------------------------------------------------------------------

    def _new_key(self) -> str:
        while True:
            key = self._ids.token(8)
            if key not in self._transactions:
                return key

    def _get(self, key: str) -> _Transaction:
        tx = self._transactions.get(key)
        if tx is None:
            raise LocalProtocolError(f"no transaction {key!r} (unknown, or already ended)")
        return tx

    def _register(self, tx: _Transaction, index_keys: list[tuple[object, ...]]) -> None:
        self._transactions[tx.key] = tx
        tx.index_keys = index_keys
        for index_key in index_keys:
            self._index[index_key] = tx.key

    def _start_client(
        self, key: str, request: Request, branch: str, target: Target, now: float
    ) -> None:
        machine = INVITE_CLIENT if request.method == "INVITE" else NON_INVITE_CLIENT
        tx = _Transaction(key, machine, machine.initial, request, target, now)
        tx.request_bytes = request.to_bytes()
        self._register(tx, [("client", branch, request.method)])
        self._run(tx, machine.start, now, None)

    def _start_server(
        self,
        request: Request,
        source: Target,
        index_keys: list[tuple[object, ...]],
        invite_key: str | None,
        now: float,
    ) -> None:
        machine = INVITE_SERVER if request.method == "INVITE" else NON_INVITE_SERVER
        key = self._new_key()
        tx = _Transaction(key, machine, machine.initial, request, source, now)
        tx.reply_to = response_target(request.top_via, source)
        self._register(tx, index_keys)
        self._events.append(RequestReceived(key, request, source, invite_key))
        self._run(tx, machine.start, now, None)
        self._fire_due_now(now)

    def _feed(self, tx: _Transaction, input_: Input, now: float, payload: object = None) -> None:
        """Apply one input, then every timer it armed with a zero duration."""
        self._step(tx, input_, now, payload)
        self._fire_due_now(now)

    def _fire_due_now(self, now: float) -> None:
        """Fire the timers armed with a zero duration (reliable transports), in order."""
        while self._due_now:
            key, timer, token = self._due_now.pop(0)
            due = self._transactions.get(key)
            if due is None or due.timers.get(timer, (0.0, -1))[1] != token:
                continue
            del due.timers[timer]
            self._step(due, timer, now, None)

    def _step(self, tx: _Transaction, input_: Input, now: float, payload: object) -> None:
        transition = tx.machine.table.get((tx.state, input_))
        if transition is None:
            raise LocalProtocolError(
                f"{tx.machine.name} transaction {tx.key} in {tx.state.value}:"
                f" {input_.value} is not allowed"
            )
        tx.state, actions = transition
        self._run(tx, actions, now, payload)
        if tx.state in _LINGERING:
            tx.request = None
            if tx.state is State.ACCEPTED and tx.machine is INVITE_SERVER:
                tx.last_response = None  # the TU resends the 2xx (RFC 6026), not the transaction
            if tx.state is State.TERMINATED:
                self._terminate(tx)

    def _terminate(self, tx: _Transaction) -> None:
        del self._transactions[tx.key]
        for index_key in tx.index_keys:
            if self._index.get(index_key) == tx.key:
                del self._index[index_key]
        tx.timers.clear()
        self._events.append(TransactionTerminated(tx.key))

    def _run(self, tx: _Transaction, actions: tuple[Action, ...], now: float, payload: object):
        for action in actions:
            timer = TIMER_STARTED_BY.get(action)
            if timer is not None:
                self._start_timer(tx, action, timer, now)
            elif action is Action.SEND_REQUEST:
                self._outgoing.append(Outgoing(tx.request_bytes, tx.peer))
            elif action is Action.PASS_RESPONSE:
                assert isinstance(payload, Response)
                self._events.append(ResponseReceived(tx.key, payload))
            elif action is Action.SEND_ACK:
                if tx.ack is None:
                    assert isinstance(payload, Response)
                    tx.ack = build_ack(tx.live_request, payload).to_bytes()
                self._outgoing.append(Outgoing(tx.ack, tx.peer))
            elif action is Action.HOLD_CANCEL:
                cancel_key, cancel = payload  # type: ignore[misc]
                tx.held_cancel = (cancel_key, cancel)
                tx.cancel_key = cancel_key
            elif action is Action.SEND_CANCEL:
                if tx.held_cancel is not None:
                    cancel_key, cancel = tx.held_cancel
                    tx.held_cancel = None
                    branch = cancel.top_via.branch or ""
                    self._start_client(cancel_key, cancel, branch, tx.peer, now)
                    self._arm(tx, Input.TIMER_CANCEL, self._config.cancel_wait, now)
            elif action is Action.DROP_CANCEL:
                if tx.held_cancel is not None:
                    self._events.append(TransactionTerminated(tx.held_cancel[0]))
                    tx.held_cancel = None
            elif action is Action.SEND_RESPONSE:
                assert isinstance(payload, Response) and tx.reply_to is not None
                tx.last_response = payload.to_bytes()
                self._outgoing.append(Outgoing(tx.last_response, tx.reply_to))
            elif action is Action.RESEND_RESPONSE:
                if tx.last_response is not None and tx.reply_to is not None:
                    self._outgoing.append(Outgoing(tx.last_response, tx.reply_to))
            elif action is Action.SEND_TRYING:
                assert tx.reply_to is not None
                tx.last_response = build_trying(tx.live_request).to_bytes()
                self._outgoing.append(Outgoing(tx.last_response, tx.reply_to))
            elif action is Action.PASS_ACK:
                ack, source = payload  # type: ignore[misc]
                self._events.append(AckReceived(ack, source))
            elif action is Action.REPORT_TIMEOUT:
                self._events.append(TransactionTimeout(tx.key, tx.method))
            elif action is Action.STOP_TIMERS:
                tx.timers.clear()
            else:  # pragma: no cover - every action is handled above
                raise AssertionError(action)

    def _start_timer(self, tx: _Transaction, action: Action, timer: Input, now: float) -> None:
        config, reliable = self._config, tx.reliable
        previous = tx.intervals.get(timer, 0.0) if tx.intervals else 0.0
        duration: float | None
        match action:
            case Action.START_A:
                duration = None if reliable else config.a
            case Action.BACKOFF_A:
                duration = config.next_a(previous)
            case Action.START_B:
                duration = config.b
            case Action.START_D:
                duration = config.d(reliable)
            case Action.START_E:
                duration = None if reliable else config.e
            case Action.BACKOFF_E:
                duration = config.next_e(previous)
            case Action.SLOW_E:
                duration = config.e_proceeding
            case Action.START_F:
                duration = config.f
            case Action.START_G:
                duration = None if reliable else config.g
            case Action.BACKOFF_G:
                duration = config.next_g(previous)
            case Action.START_H:
                duration = config.h
            case Action.START_I:
                duration = config.i(reliable)
            case Action.START_J:
                duration = config.j(reliable)
            case Action.START_K:
                duration = config.k(reliable)
            case Action.START_L:
                duration = config.l
            case Action.START_M:
                duration = config.m
            case Action.START_TRYING:
                invite = tx.machine is INVITE_SERVER
                duration = config.invite_trying if invite else config.non_invite_trying
            case _:  # pragma: no cover - TIMER_STARTED_BY lists no other
                raise AssertionError(action)
        if duration is not None:
            if timer in _BACKING_OFF:
                if tx.intervals is None:
                    tx.intervals = {}
                tx.intervals[timer] = duration
            self._arm(tx, timer, duration, now)

    def _arm(self, tx: _Transaction, timer: Input, duration: float, now: float) -> None:
        token = next(self._tokens)
        deadline = now + duration
        tx.timers[timer] = (deadline, token)
        if duration <= 0:
            self._due_now.append((tx.key, timer, token))
        else:
            heapq.heappush(self._heap, (deadline, token, tx.key, timer))


# -- addresses (RFC 3261 section 18, RFC 3581) -----------------------------------------------------


def response_target(via: Via, source: Target) -> Target:
    """Where the responses to a request go (RFC 3261 section 18.2.2, RFC 3581 section 4).

    On a reliable transport: back where the request came from (the same connection). Otherwise
    to ``received`` (else the sent-by host), at the ``rport`` value (else the sent-by port, else
    5060). ``maddr`` is not supported.
    """
    if source.reliable:
        return source
    host = via.received or _bare_host(via.host)
    port = via.rport or via.port or 5060
    return Target(source.transport, host, port)


def _stamp_via(request: Request, via: Via, source: Target) -> None:
    """Add ``received`` and fill ``rport`` in the top Via (RFC 3261 18.2.1, RFC 3581 4).

    ``received`` goes in when the sent-by host is a name or another address than the source's,
    and always when the client asked for ``rport``.
    """
    added: dict[str, str | None] = {}
    if "rport" in via.params and not via.params["rport"]:
        added["rport"] = str(source.port)
    if added or not _same_address(via.host, source.host):
        added["received"] = source.host
    if added:
        _replace_top_via(request, via.with_params(**added))


def _bare_host(host: str) -> str:
    return host[1:-1] if host.startswith("[") else host


def _same_address(via_host: str, source_host: str) -> bool:
    if via_host == source_host:
        return True
    try:
        return ipaddress.ip_address(_bare_host(via_host)) == ipaddress.ip_address(
            _bare_host(source_host)
        )
    except ValueError:
        return False  # a host name: RFC 3261 section 18.2.1 always adds received


def _replace_top_via(message: Request | Response, via: Via) -> None:
    """Put ``via`` in place of the first Via value, where it is, leaving every other line be."""
    items = message.headers.items()
    for i, (name, value) in enumerate(items):
        if header_key(name) == "via":
            rest = split_outside_quotes(value, ",")[1:]
            items[i] = (name, ",".join([str(via), *rest]))
            break
    message.headers = Headers(items)


def _top_via_text(message: Request | Response) -> str:
    """The first Via value, as written."""
    first_line = message.headers.get("via") or ""
    return split_outside_quotes(first_line, ",")[0].strip()


# -- messages the transactions make ----------------------------------------------------------------


def _same_hop_request(invite: Request, method: str, to: str) -> Request:
    """A request that follows the INVITE hop by hop: its top Via only, its Route set, Request-URI,
    From, Call-ID and CSeq number, with ``to`` and ``method``."""
    headers = Headers()
    headers.add("Via", _top_via_text(invite))
    for route in invite.headers.get_all("route"):
        headers.add("Route", route)
    headers.add("To", to)
    headers.add("From", invite.headers.get("from") or "")
    headers.add("Max-Forwards", "70")
    headers.add("Call-ID", invite.headers.get("call-id") or "")
    headers.add("CSeq", f"{invite.cseq.seq} {method}")
    headers.add("Content-Length", "0")
    return Request(method, invite.uri_text, headers)


def build_ack(invite: Request, response: Response) -> Request:
    """The ACK of a non-2xx final response (RFC 3261 section 17.1.1.3): the INVITE's
    Request-URI, Call-ID, From, CSeq number, top Via only and Route set; the response's To."""
    return _same_hop_request(invite, "ACK", response.headers.get("to") or "")


def build_cancel(invite: Request) -> Request:
    """The CANCEL of an INVITE (RFC 3261 section 9.1): the INVITE's Request-URI, Call-ID, To,
    From, CSeq number, top Via only and Route set."""
    return _same_hop_request(invite, "CANCEL", invite.headers.get("to") or "")


def build_trying(request: Request) -> Response:
    """A 100 (Trying) for ``request`` (RFC 3261 section 8.2.6): its Via lines, From, To (no tag
    is added), Call-ID, CSeq and Timestamp."""
    headers = Headers()
    for value in request.headers.get_all("via"):
        headers.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq", "Timestamp"):
        value = request.headers.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add("Content-Length", "0")
    return Response(100, "Trying", headers)
