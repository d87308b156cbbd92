"""Builders of parsed test messages, and a manual clock that runs a transaction layer's timers."""

from dataclasses import dataclass, field

from engine.sip import (
    Outgoing,
    Request,
    Response,
    TransactionEvent,
    TransactionLayer,
    parse_message,
)
from engine.sip.target import Target

#: The two ends of the test calls: "alice" at .1 and "bob" at .2.
ALICE = Target("udp", "192.0.2.1", 5060)
BOB = Target("udp", "192.0.2.2", 5060)
ALICE_TCP = Target("tcp", "192.0.2.1", 50123)
BOB_TCP = Target("tcp", "192.0.2.2", 5060)


def build_request(
    method: str,
    *,
    uri: str = "sip:bob@192.0.2.2",
    via: str = "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-test-1",
    more_vias: tuple[str, ...] = (),
    from_: str = "Alice <sip:alice@example.com>;tag=alice-tag",
    to: str = "Bob <sip:bob@example.com>",
    call_id: str = "call-1@192.0.2.1",
    cseq: int = 1,
    cseq_method: str | None = None,
    extra: tuple[str, ...] = (),
) -> Request:
    """A request parsed from text, so that it is exactly what the wire would give."""
    lines = [f"{method} {uri} SIP/2.0", f"Via: {via}"]
    lines += [f"Via: {v}" for v in more_vias]
    lines += [
        "Max-Forwards: 70",
        f"From: {from_}",
        f"To: {to}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {cseq_method or method}",
        *extra,
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def build_response(
    request: Request, status: int, reason: str = "", *, to_tag: str | None = "bob-tag"
) -> Response:
    """A response to ``request`` (RFC 3261 section 8.2.6): its Via lines, From, To with
    ``to_tag`` added when it has none, Call-ID and CSeq; parsed from text."""
    reason = reason or {100: "Trying", 180: "Ringing", 200: "OK", 486: "Busy Here"}.get(status, "X")
    to = request.headers.get("to") or ""
    if to_tag is not None and ";tag=" not in to:
        to = f"{to};tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {v}" for v in request.headers.get_all("via")]
    lines += [
        f"From: {request.headers.get('from')}",
        f"To: {to}",
        f"Call-ID: {request.call_id}",
        f"CSeq: {request.cseq}",
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Response)
    return message


def reparse(message: Request | Response) -> Request | Response:
    """A fresh copy of a message, as if it came off the wire again (a retransmission)."""
    return parse_message(message.to_bytes())


def drain_events(layer: TransactionLayer) -> list[TransactionEvent]:
    """Every event the layer has queued, in order."""
    events = []
    while (event := layer.next_event()) is not None:
        events.append(event)
    return events


@dataclass
class Timeline:
    """What a layer sent and reported, each with the time it happened."""

    sent: list[tuple[float, Outgoing]] = field(default_factory=list)
    events: list[tuple[float, TransactionEvent]] = field(default_factory=list)

    def send_times(self) -> list[float]:
        return [t for t, _ in self.sent]

    def record(self, layer: TransactionLayer, now: float) -> None:
        self.sent += [(now, out) for out in layer.datagrams_to_send()]
        self.events += [(now, event) for event in drain_events(layer)]


def run_clock(layer: TransactionLayer, start: float, until: float) -> Timeline:
    """Record what is queued at ``start``, then fire every timer up to ``until`` exactly at its
    deadline (the manual clock of the tests), recording what each firing produced."""
    timeline = Timeline()
    timeline.record(layer, start)
    while (deadline := layer.get_timer()) is not None and deadline <= until:
        layer.handle_timer(deadline)
        timeline.record(layer, deadline)
    return timeline
