"""Transactions (RFC 3261 section 17, RFC 6026, RFC 4320) on a manual clock: exact times, bytes."""

import pytest

from engine.sip import (
    AckReceived,
    Headers,
    LocalProtocolError,
    MessageDropped,
    Request,
    RequestReceived,
    ResponseReceived,
    StrayResponse,
    TimerConfig,
    TransactionLayer,
    TransactionTerminated,
    TransactionTimeout,
    parse_message,
)
from engine.sip.fields import parse_via
from engine.sip.ids import CountingIds
from engine.sip.target import Target
from engine.sip.transaction import Input, State, response_target
from tests.sip.helpers import (
    ALICE,
    ALICE_TCP,
    BOB,
    BOB_TCP,
    build_request,
    build_response,
    drain_events,
    reparse,
    run_clock,
)

ROUTE_LINES = (
    "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>",
    "Route: <sip:p3.example.com;lr>",
)


def new_layer() -> TransactionLayer:
    return TransactionLayer(CountingIds("transactions"))


def sent_bytes(layer: TransactionLayer) -> list[bytes]:
    return [out.data for out in layer.datagrams_to_send()]


def receive_new(layer: TransactionLayer, request: Request, source: Target, now: float) -> str:
    """Deliver a new request; return the key of the server transaction it made."""
    layer.receive(request, source, now)
    events = drain_events(layer)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    return events[0].key


# -- timers ----------------------------------------------------------------------------------------


def test_timer_values_of_rfc_3261_table_4_and_rfc_6026():
    config = TimerConfig()
    assert (config.t1, config.t2, config.t4) == (0.5, 4.0, 5.0)
    assert (config.a, config.next_a(0.5), config.next_a(16.0)) == (0.5, 1.0, 32.0)
    assert config.b == config.f == config.h == config.l == config.m == 32.0
    assert (config.d(False), config.d(True)) == (32.0, 0.0)
    assert (config.e, config.next_e(2.0), config.next_e(4.0), config.e_proceeding) == (
        0.5,
        4.0,
        4.0,
        4.0,
    )
    assert (config.g, config.next_g(1.0), config.next_g(4.0)) == (0.5, 2.0, 4.0)
    assert (config.i(False), config.i(True)) == (5.0, 0.0)
    assert (config.j(False), config.j(True)) == (32.0, 0.0)
    assert (config.k(False), config.k(True)) == (5.0, 0.0)
    assert config.invite_trying == 0.2
    assert config.non_invite_trying == 3.5  # 0.5 + 1 + 2: when timer E reaches T2
    assert config.cancel_wait == 32.0


def test_timer_values_follow_t1():
    config = TimerConfig(t1=1.0, t2=8.0, t4=10.0)
    assert config.b == 64.0
    assert config.d(False) == 64.0  # at least 32 s, and as long as the server may retransmit
    assert config.non_invite_trying == 7.0
    with pytest.raises(LocalProtocolError):
        TimerConfig(t1=5.0, t2=4.0)


# -- INVITE client ---------------------------------------------------------------------------------


def test_unanswered_invite_over_udp_is_retransmitted_with_timer_a_and_times_out_at_b():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    timeline = run_clock(layer, 0.0, 100.0)
    assert timeline.send_times() == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert {out.data for _, out in timeline.sent} == {invite.to_bytes()}
    assert {out.target for _, out in timeline.sent} == {BOB}
    assert timeline.events == [
        (32.0, TransactionTimeout(key, "INVITE")),
        (32.0, TransactionTerminated(key)),
    ]
    assert len(layer) == 0
    assert layer.get_timer() is None


def test_unanswered_invite_over_tcp_is_sent_once_and_times_out_at_32s():
    layer = new_layer()
    key = layer.send_request(build_request("INVITE"), BOB_TCP, 0.0)
    assert layer.get_timer() == 32.0
    timeline = run_clock(layer, 0.0, 100.0)
    assert timeline.send_times() == [0.0]
    assert timeline.events == [
        (32.0, TransactionTimeout(key, "INVITE")),
        (32.0, TransactionTerminated(key)),
    ]
    assert len(layer) == 0


def test_timers_are_absolute_deadlines_from_the_time_of_sending():
    layer = new_layer()
    key = layer.send_request(build_request("INVITE"), BOB, 100.0)
    assert layer.deadlines(key) == {Input.TIMER_A: 100.5, Input.TIMER_B: 132.0}
    timeline = run_clock(layer, 100.0, 200.0)
    assert timeline.send_times() == [100.0, 100.5, 101.5, 103.5, 107.5, 115.5, 131.5]


def test_a_provisional_response_stops_invite_retransmissions_and_a_2xx_ends_in_accepted():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    run_clock(layer, 0.0, 0.7)
    ringing = build_response(invite, 180)
    layer.receive(ringing, BOB, 0.7)
    assert drain_events(layer) == [ResponseReceived(key, ringing)]
    assert layer.state(key) is State.PROCEEDING
    assert layer.deadlines(key) == {}
    ok = build_response(invite, 200)
    layer.receive(ok, BOB, 40.0)
    assert drain_events(layer) == [ResponseReceived(key, ok)]
    assert layer.state(key) is State.ACCEPTED
    assert layer.deadlines(key) == {Input.TIMER_M: 72.0}
    assert sent_bytes(layer) == []  # the TU ACKs a 2xx, not the transaction


def test_2xx_retransmissions_in_accepted_are_passed_up_each_time_until_timer_m():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    layer.datagrams_to_send()
    ok = build_response(invite, 200)
    layer.receive(ok, BOB, 1.0)
    again = reparse(ok)
    layer.receive(again, BOB, 1.5)
    forked = build_response(invite, 200, to_tag="other-fork")
    layer.receive(forked, BOB, 2.0)
    assert drain_events(layer) == [
        ResponseReceived(key, ok),
        ResponseReceived(key, again),
        ResponseReceived(key, forked),
    ]
    assert sent_bytes(layer) == []
    timeline = run_clock(layer, 2.0, 100.0)
    assert timeline.events == [(33.0, TransactionTerminated(key))]
    # After timer M a 2xx matches nothing: the UA core still gets it, to ACK it.
    late = reparse(ok)
    layer.receive(late, BOB, 40.0)
    assert drain_events(layer) == [StrayResponse(late, BOB)]


def test_non_2xx_final_is_acked_exactly_as_rfc_3261_17_1_1_3_says():
    layer = new_layer()
    invite = build_request(
        "INVITE",
        more_vias=("SIP/2.0/UDP 10.9.9.9:5060;branch=z9hG4bK-lower",),
        cseq=7,
        extra=(*ROUTE_LINES, "Contact: <sip:alice@192.0.2.1>", "Subject: lunch"),
    )
    layer.send_request(invite, BOB, 0.0)
    layer.datagrams_to_send()
    busy = build_response(invite, 486)
    layer.receive(busy, BOB, 1.0)
    [out] = layer.datagrams_to_send()
    assert out.target == BOB
    assert out.data == (
        b"ACK sip:bob@192.0.2.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-test-1\r\n"
        b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        b"Route: <sip:p3.example.com;lr>\r\n"
        b"To: Bob <sip:bob@example.com>;tag=bob-tag\r\n"
        b"From: Alice <sip:alice@example.com>;tag=alice-tag\r\n"
        b"Max-Forwards: 70\r\n"
        b"Call-ID: call-1@192.0.2.1\r\n"
        b"CSeq: 7 ACK\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )


def test_retransmitted_final_in_completed_is_acked_again_and_not_passed_up():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    layer.datagrams_to_send()
    busy = build_response(invite, 486)
    layer.receive(busy, BOB, 1.0)
    assert drain_events(layer) == [ResponseReceived(key, busy)]
    [ack] = sent_bytes(layer)
    layer.receive(reparse(busy), BOB, 1.5)
    layer.receive(reparse(busy), BOB, 2.5)
    layer.receive(build_response(invite, 180), BOB, 2.6)
    assert drain_events(layer) == []
    assert sent_bytes(layer) == [ack, ack]
    assert layer.state(key) is State.COMPLETED
    timeline = run_clock(layer, 2.6, 100.0)
    assert timeline.events == [(33.0, TransactionTerminated(key))]  # timer D: 32 s
    assert timeline.sent == []


def test_non_2xx_final_over_tcp_ends_the_invite_transaction_at_once():
    layer = new_layer()
    invite = build_request("INVITE", via="SIP/2.0/TCP 192.0.2.1:50123;branch=z9hG4bK-t")
    key = layer.send_request(invite, BOB_TCP, 0.0)
    layer.datagrams_to_send()
    busy = build_response(invite, 486)
    layer.receive(busy, BOB_TCP, 1.0)
    assert drain_events(layer) == [ResponseReceived(key, busy), TransactionTerminated(key)]
    assert len(sent_bytes(layer)) == 1  # the ACK
    assert len(layer) == 0


def test_2xx_after_a_non_2xx_final_is_passed_up_for_the_tu_to_ack_and_bye():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    layer.receive(build_response(invite, 486), BOB, 1.0)
    drain_events(layer)
    late_ok = build_response(invite, 200, to_tag="late")
    layer.receive(late_ok, BOB, 2.0)
    assert drain_events(layer) == [ResponseReceived(key, late_ok)]
    assert layer.state(key) is State.COMPLETED


# -- non-INVITE client -----------------------------------------------------------------------------


def test_unanswered_non_invite_over_udp_backs_off_to_t2_and_is_sent_11_times():
    layer = new_layer()
    options = build_request("OPTIONS")
    key = layer.send_request(options, BOB, 0.0)
    timeline = run_clock(layer, 0.0, 100.0)
    assert timeline.send_times() == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5
    ]  # fmt: skip
    assert len(timeline.sent) == 11
    assert {out.data for _, out in timeline.sent} == {options.to_bytes()}
    assert timeline.events == [
        (32.0, TransactionTimeout(key, "OPTIONS")),
        (32.0, TransactionTerminated(key)),
    ]
    assert len(layer) == 0


def test_non_invite_retransmits_every_t2_after_a_provisional_response():
    layer = new_layer()
    options = build_request("OPTIONS")
    key = layer.send_request(options, BOB, 0.0)
    before = run_clock(layer, 0.0, 1.0)
    assert before.send_times() == [0.0, 0.5]
    trying = build_response(options, 100, to_tag=None)
    layer.receive(trying, BOB, 1.0)
    assert drain_events(layer) == [ResponseReceived(key, trying)]
    assert layer.state(key) is State.PROCEEDING
    after = run_clock(layer, 1.0, 100.0)
    # Timer E already ran to 1.5; from there it fires every T2 until timer F.
    assert after.send_times() == [1.5, 5.5, 9.5, 13.5, 17.5, 21.5, 25.5, 29.5]
    assert after.events == [
        (32.0, TransactionTimeout(key, "OPTIONS")),
        (32.0, TransactionTerminated(key)),
    ]


def test_non_invite_final_over_udp_waits_timer_k_absorbing_retransmissions():
    layer = new_layer()
    bye = build_request("BYE", to="Bob <sip:bob@example.com>;tag=bob-tag")
    key = layer.send_request(bye, BOB, 0.0)
    layer.datagrams_to_send()
    ok = build_response(bye, 200)
    layer.receive(ok, BOB, 0.2)
    layer.receive(reparse(ok), BOB, 0.6)
    assert drain_events(layer) == [ResponseReceived(key, ok)]
    assert layer.deadlines(key) == {Input.TIMER_K: 5.2}
    timeline = run_clock(layer, 0.6, 100.0)
    assert timeline.sent == []
    assert timeline.events == [(5.2, TransactionTerminated(key))]


def test_non_invite_final_over_tcp_ends_at_once():
    layer = new_layer()
    bye = build_request("BYE", to="Bob <sip:bob@example.com>;tag=bob-tag")
    key = layer.send_request(bye, BOB_TCP, 0.0)
    assert layer.deadlines(key) == {Input.TIMER_F: 32.0}
    ok = build_response(bye, 200)
    layer.receive(ok, BOB_TCP, 0.2)
    assert drain_events(layer) == [ResponseReceived(key, ok), TransactionTerminated(key)]
    assert len(layer) == 0


# -- sending requests ------------------------------------------------------------------------------


def test_a_missing_branch_is_filled_from_the_id_factory():
    layer = TransactionLayer(CountingIds("seed"))
    expected = "z9hG4bK" + CountingIds("seed").token(8)
    options = build_request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1:5060;rport")
    layer.send_request(options, BOB, 0.0)
    assert options.headers.get("via") == f"SIP/2.0/UDP 192.0.2.1:5060;rport;branch={expected}"
    [out] = layer.datagrams_to_send()
    assert f"Via: SIP/2.0/UDP 192.0.2.1:5060;rport;branch={expected}\r\n".encode() in out.data


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (lambda: build_request("ACK"), "send_stateless"),
        (lambda: build_request("CANCEL"), "send_cancel"),
        (lambda: build_request("OPTIONS", via="SIP/2.0/UDP 192.0.2.1;branch=1234"), "cookie"),
        (lambda: build_request("OPTIONS", cseq_method="INFO"), "CSeq"),
        (lambda: Request("OPTIONS", "sip:b@h", Headers([("CSeq", "1 OPTIONS")])), "Via"),
    ],
)
def test_requests_the_layer_refuses_to_send(request_, reason):
    layer = new_layer()
    with pytest.raises(LocalProtocolError, match=reason):
        layer.send_request(request_(), BOB, 0.0)
    assert len(layer) == 0
    assert layer.datagrams_to_send() == []


def test_two_client_transactions_cannot_share_a_branch_and_method():
    layer = new_layer()
    layer.send_request(build_request("OPTIONS"), BOB, 0.0)
    with pytest.raises(LocalProtocolError, match="exists"):
        layer.send_request(build_request("OPTIONS"), BOB, 0.0)


def test_stateless_sending_makes_no_transaction():
    layer = new_layer()
    ack = build_request("ACK", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack2xx")
    layer.send_stateless(ack, BOB, 3.0)
    assert [(out.data, out.target) for out in layer.datagrams_to_send()] == [(ack.to_bytes(), BOB)]
    assert len(layer) == 0 and layer.get_timer() is None


def test_earliest_deadline_over_all_transactions():
    layer = new_layer()
    layer.send_request(build_request("INVITE"), BOB_TCP, 0.0)  # timer B at 32
    layer.send_request(build_request("OPTIONS", via="SIP/2.0/UDP h;branch=z9hG4bK-o"), BOB, 2.0)
    assert len(layer.datagrams_to_send()) == 2
    assert layer.get_timer() == 2.5
    layer.handle_timer(2.4)
    assert layer.datagrams_to_send() == []
    layer.handle_timer(2.5)
    assert len(layer.datagrams_to_send()) == 1
    assert layer.get_timer() == 3.5


# -- responses with no transaction -----------------------------------------------------------------


def test_responses_matching_no_transaction_are_stray():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    other_branch = build_response(
        build_request("INVITE", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-gone"), 200
    )
    other_method = build_response(build_request("INFO"), 200)  # same branch, CSeq INFO
    layer.receive(other_branch, BOB, 1.0)
    layer.receive(other_method, BOB, 1.0)
    assert drain_events(layer) == [
        StrayResponse(other_branch, BOB),
        StrayResponse(other_method, BOB),
    ]
    assert layer.state(key) is State.CALLING


# -- CANCEL (RFC 3261 section 9.1) -----------------------------------------------------------------


def test_cancel_is_built_as_rfc_3261_9_1_says_and_sent_at_once_in_proceeding():
    layer = new_layer()
    invite = build_request("INVITE", cseq=7, extra=(*ROUTE_LINES, "Contact: <sip:a@192.0.2.1>"))
    key = layer.send_request(invite, BOB, 0.0)
    layer.receive(build_response(invite, 180), BOB, 0.1)
    layer.datagrams_to_send()
    drain_events(layer)
    cancel_key = layer.send_cancel(key, 2.0)
    [out] = layer.datagrams_to_send()
    assert out.target == BOB
    assert out.data == (
        b"CANCEL sip:bob@192.0.2.2 SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-test-1\r\n"
        b"Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        b"Route: <sip:p3.example.com;lr>\r\n"
        b"To: Bob <sip:bob@example.com>\r\n"
        b"From: Alice <sip:alice@example.com>;tag=alice-tag\r\n"
        b"Max-Forwards: 70\r\n"
        b"Call-ID: call-1@192.0.2.1\r\n"
        b"CSeq: 7 CANCEL\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    assert cancel_key != key
    assert layer.state(cancel_key) is State.TRYING
    # The CANCEL and the INVITE share a branch, and each gets its own responses.
    cancel = parse_message(out.data)
    ok = build_response(cancel, 200)
    layer.receive(ok, BOB, 2.1)
    terminated = build_response(invite, 487)
    layer.receive(terminated, BOB, 2.2)
    assert drain_events(layer) == [
        ResponseReceived(cancel_key, ok),
        ResponseReceived(key, terminated),
    ]
    assert layer.state(key) is State.COMPLETED


def test_cancel_before_any_provisional_response_waits_for_the_first_one():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    layer.datagrams_to_send()
    cancel_key = layer.send_cancel(key, 0.2)
    assert layer.datagrams_to_send() == []
    assert layer.state(cancel_key) is None
    assert len(layer) == 1
    layer.receive(build_response(invite, 100, to_tag=None), BOB, 0.3)
    [cancel] = [parse_message(data) for data in sent_bytes(layer)]
    assert cancel.method == "CANCEL"
    assert layer.state(cancel_key) is State.TRYING
    assert len(layer) == 2


def test_a_held_cancel_is_dropped_when_a_final_response_comes_first():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    layer.datagrams_to_send()
    cancel_key = layer.send_cancel(key, 0.2)
    ok = build_response(invite, 200)
    layer.receive(ok, BOB, 0.3)
    assert drain_events(layer) == [ResponseReceived(key, ok), TransactionTerminated(cancel_key)]
    assert layer.datagrams_to_send() == []


def test_a_held_cancel_ends_with_its_invite_on_timer_b():
    layer = new_layer()
    key = layer.send_request(build_request("INVITE"), BOB_TCP, 0.0)
    cancel_key = layer.send_cancel(key, 1.0)
    timeline = run_clock(layer, 1.0, 100.0)
    assert timeline.events == [
        (32.0, TransactionTimeout(key, "INVITE")),
        (32.0, TransactionTerminated(cancel_key)),
        (32.0, TransactionTerminated(key)),
    ]


def test_invite_gives_up_64_t1_after_its_cancel_when_no_final_response_comes():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB_TCP, 0.0)
    layer.receive(build_response(invite, 180), BOB_TCP, 1.0)
    cancel_key = layer.send_cancel(key, 10.0)
    layer.receive(build_response(parse_message(sent_bytes(layer)[-1]), 200), BOB_TCP, 10.1)
    drain_events(layer)
    timeline = run_clock(layer, 10.1, 100.0)
    assert timeline.events == [
        (42.0, TransactionTimeout(key, "INVITE")),
        (42.0, TransactionTerminated(key)),
    ]
    assert layer.state(cancel_key) is None and len(layer) == 0


def test_cancel_is_refused_after_a_final_response_twice_and_for_non_invites():
    layer = new_layer()
    invite = build_request("INVITE")
    key = layer.send_request(invite, BOB, 0.0)
    layer.send_cancel(key, 0.1)
    with pytest.raises(LocalProtocolError, match="already cancelled"):
        layer.send_cancel(key, 0.2)
    other = build_request("INVITE", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-2")
    key2 = layer.send_request(other, BOB, 0.0)
    layer.receive(build_response(other, 486), BOB, 0.5)
    with pytest.raises(LocalProtocolError, match="Completed"):
        layer.send_cancel(key2, 0.6)
    options_key = layer.send_request(build_request("OPTIONS"), BOB, 0.0)
    with pytest.raises(LocalProtocolError, match="not an INVITE client"):
        layer.send_cancel(options_key, 0.1)
    with pytest.raises(LocalProtocolError, match="no transaction"):
        layer.send_cancel("nonexistent", 0.1)


# -- INVITE server ---------------------------------------------------------------------------------


def test_non_2xx_final_is_retransmitted_with_timer_g_until_timer_h():
    layer = new_layer()
    invite = build_request("INVITE")
    key = receive_new(layer, invite, ALICE, 0.0)
    busy = build_response(invite, 486)
    layer.respond(key, busy, 0.0)
    timeline = run_clock(layer, 0.0, 100.0)
    assert timeline.send_times() == [
        0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5
    ]  # fmt: skip
    assert {out.data for _, out in timeline.sent} == {busy.to_bytes()}
    assert {out.target for _, out in timeline.sent} == {ALICE}
    assert timeline.events == [
        (32.0, TransactionTimeout(key, "INVITE")),
        (32.0, TransactionTerminated(key)),
    ]
    assert len(layer) == 0


def test_ack_stops_timer_g_and_confirmed_absorbs_until_timer_i():
    layer = new_layer()
    invite = build_request("INVITE")
    key = receive_new(layer, invite, ALICE, 0.0)
    layer.respond(key, build_response(invite, 486), 0.0)
    before = run_clock(layer, 0.0, 2.0)
    assert before.send_times() == [0.0, 0.5, 1.5]
    ack = build_request("ACK", to="Bob <sip:bob@example.com>;tag=bob-tag")
    layer.receive(ack, ALICE, 2.0)
    assert layer.state(key) is State.CONFIRMED
    assert layer.deadlines(key) == {Input.TIMER_I: 7.0}
    layer.receive(reparse(ack), ALICE, 2.5)
    layer.receive(reparse(invite), ALICE, 3.0)
    assert drain_events(layer) == []
    after = run_clock(layer, 3.0, 100.0)
    assert after.sent == []
    assert after.events == [(7.0, TransactionTerminated(key))]


def test_non_2xx_final_over_tcp_is_sent_once_and_the_ack_ends_the_transaction():
    layer = new_layer()
    invite = build_request("INVITE", via="SIP/2.0/TCP 192.0.2.1:50123;branch=z9hG4bK-t")
    key = receive_new(layer, invite, ALICE_TCP, 0.0)
    layer.respond(key, build_response(invite, 486), 0.1)
    assert layer.deadlines(key) == {Input.TIMER_H: 32.1}
    [out] = layer.datagrams_to_send()
    assert out.target == ALICE_TCP
    ack = build_request(
        "ACK",
        via="SIP/2.0/TCP 192.0.2.1:50123;branch=z9hG4bK-t",
        to="Bob <sip:bob@example.com>;tag=bob-tag",
    )
    layer.receive(ack, ALICE_TCP, 0.3)
    assert drain_events(layer) == [TransactionTerminated(key)]
    assert len(layer) == 0


def test_invite_server_sends_100_trying_after_200_ms_when_the_tu_is_silent():
    layer = new_layer()
    invite = build_request("INVITE", extra=("Timestamp: 54",))
    key = receive_new(layer, invite, ALICE, 0.0)
    layer.receive(reparse(invite), ALICE, 0.1)  # nothing to answer with yet
    assert layer.datagrams_to_send() == []
    timeline = run_clock(layer, 0.1, 1.0)
    assert [(t, out.target) for t, out in timeline.sent] == [(0.2, ALICE)]
    assert timeline.sent[0][1].data == (
        b"SIP/2.0 100 Trying\r\n"
        b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-test-1\r\n"
        b"From: Alice <sip:alice@example.com>;tag=alice-tag\r\n"
        b"To: Bob <sip:bob@example.com>\r\n"
        b"Call-ID: call-1@192.0.2.1\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Timestamp: 54\r\n"
        b"Content-Length: 0\r\n"
        b"\r\n"
    )
    assert layer.state(key) is State.PROCEEDING


def test_invite_server_sends_no_100_when_the_tu_answers_within_200_ms():
    layer = new_layer()
    invite = build_request("INVITE")
    key = receive_new(layer, invite, ALICE, 0.0)
    ringing = build_response(invite, 180)
    layer.respond(key, ringing, 0.05)
    timeline = run_clock(layer, 0.05, 100.0)
    assert [out.data for _, out in timeline.sent] == [ringing.to_bytes()]
    assert layer.state(key) is State.PROCEEDING


def test_2xx_moves_the_invite_server_to_accepted_where_the_tu_retransmits():
    layer = new_layer()
    invite = build_request("INVITE")
    key = receive_new(layer, invite, ALICE, 0.0)
    ok = build_response(invite, 200)
    layer.respond(key, ok, 0.1)
    assert layer.state(key) is State.ACCEPTED
    assert layer.deadlines(key) == {Input.TIMER_L: 32.1}
    assert sent_bytes(layer) == [ok.to_bytes()]
    assert run_clock(layer, 0.1, 0.6).sent == []  # the transaction itself never retransmits
    layer.respond(key, ok, 0.6)  # the TU does, through it
    assert sent_bytes(layer) == [ok.to_bytes()]
    layer.receive(reparse(invite), ALICE, 0.7)  # absorbed, not answered (RFC 6026)
    assert sent_bytes(layer) == [] and drain_events(layer) == []
    ack = build_request(
        "ACK",
        via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-ack-of-2xx",
        to="Bob <sip:bob@example.com>;tag=bob-tag",
    )
    layer.receive(ack, ALICE, 0.8)
    assert drain_events(layer) == [AckReceived(ack, ALICE)]
    with pytest.raises(LocalProtocolError, match="Accepted"):
        layer.respond(key, build_response(invite, 486), 0.9)
    timeline = run_clock(layer, 0.9, 100.0)
    assert timeline.events == [(32.1, TransactionTerminated(key))]


def test_ack_reusing_the_invite_branch_in_accepted_is_passed_up():
    layer = new_layer()
    invite = build_request("INVITE")
    key = receive_new(layer, invite, ALICE, 0.0)
    layer.respond(key, build_response(invite, 200), 0.1)
    ack = build_request("ACK", to="Bob <sip:bob@example.com>;tag=bob-tag")
    layer.receive(ack, ALICE, 0.3)
    assert drain_events(layer) == [AckReceived(ack, ALICE)]
    assert layer.state(key) is State.ACCEPTED


# -- retransmitted requests in every server state --------------------------------------------------


def invite_server_in(state: str, layer: TransactionLayer, invite: Request) -> tuple[str, list]:
    """Drive an INVITE server transaction into ``state``; return its key and the bytes a
    retransmitted INVITE must be answered with there."""
    key = receive_new(layer, invite, ALICE, 0.0)
    expected: list[bytes] = []
    if state == "proceeding, after a 180":
        ringing = build_response(invite, 180)
        layer.respond(key, ringing, 0.0)
        expected = [ringing.to_bytes()]
    elif state == "proceeding, after the 100 it sent itself":
        layer.handle_timer(0.2)
        expected = [layer.datagrams_to_send()[0].data]
    elif state == "accepted":
        layer.respond(key, build_response(invite, 200), 0.0)
    elif state == "completed":
        busy = build_response(invite, 486)
        layer.respond(key, busy, 0.0)
        expected = [busy.to_bytes()]
    elif state == "confirmed":
        layer.respond(key, build_response(invite, 486), 0.0)
        layer.receive(build_request("ACK", to="Bob <sip:bob@example.com>;tag=bob-tag"), ALICE, 0.0)
    layer.datagrams_to_send()
    drain_events(layer)
    return key, expected


@pytest.mark.parametrize(
    "state",
    [
        "proceeding, nothing sent yet",
        "proceeding, after a 180",
        "proceeding, after the 100 it sent itself",
        "accepted",
        "completed",
        "confirmed",
    ],
)
def test_retransmitted_invite_is_absorbed_and_answered_with_the_last_response(state):
    layer = new_layer()
    invite = build_request("INVITE")
    key, expected = invite_server_in(state, layer, invite)
    before = layer.state(key)
    for _ in range(3):
        layer.receive(reparse(invite), ALICE, 0.25)
        assert sent_bytes(layer) == expected
    assert drain_events(layer) == []
    assert layer.state(key) is before
    assert len(layer) == 1


@pytest.mark.parametrize("state", ["trying", "proceeding", "completed"])
def test_retransmitted_non_invite_is_absorbed_and_answered_with_the_last_response(state):
    layer = new_layer()
    options = build_request("OPTIONS")
    key = receive_new(layer, options, ALICE, 0.0)
    expected: list[bytes] = []
    now = 0.0
    if state == "proceeding":
        now = 3.5
        layer.handle_timer(now)  # RFC 4320: the transaction's own 100 when E reaches T2
        expected = sent_bytes(layer)
        assert parse_message(expected[0]).status == 100
    elif state == "completed":
        ok = build_response(options, 200)
        layer.respond(key, ok, now)
        expected = sent_bytes(layer)
        assert expected == [ok.to_bytes()]
    assert layer.state(key) is State[state.upper()]
    for _ in range(3):
        layer.receive(reparse(options), ALICE, now)
        assert sent_bytes(layer) == expected
    assert drain_events(layer) == []


def test_non_invite_server_completed_waits_timer_j_over_udp_and_ends_at_once_over_tcp():
    layer = new_layer()
    options = build_request("OPTIONS")
    key = receive_new(layer, options, ALICE, 0.0)
    layer.respond(key, build_response(options, 200), 1.0)
    assert layer.deadlines(key) == {Input.TIMER_J: 33.0}
    assert run_clock(layer, 1.0, 100.0).events == [(33.0, TransactionTerminated(key))]
    tcp = build_request("OPTIONS", via="SIP/2.0/TCP 192.0.2.1:50123;branch=z9hG4bK-t")
    key = receive_new(layer, tcp, ALICE_TCP, 0.0)
    layer.respond(key, build_response(tcp, 200), 1.0)
    assert drain_events(layer) == [TransactionTerminated(key)]
    assert len(layer) == 0


# -- RFC 4320 --------------------------------------------------------------------------------------


def test_rfc_4320_limits_on_answers_to_non_invite_requests():
    layer = new_layer()
    options = build_request("OPTIONS")
    key = receive_new(layer, options, ALICE, 0.0)
    with pytest.raises(LocalProtocolError, match="180"):
        layer.respond(key, build_response(options, 180), 0.0)
    with pytest.raises(LocalProtocolError, match="408"):
        layer.respond(key, build_response(options, 408), 0.0)
    with pytest.raises(LocalProtocolError, match="early 100"):
        layer.respond(key, build_response(options, 100, to_tag=None), 3.4)
    assert layer.state(key) is State.TRYING and layer.datagrams_to_send() == []
    layer.respond(key, build_response(options, 100, to_tag=None), 3.5)
    assert layer.state(key) is State.PROCEEDING
    assert layer.get_timer() is None  # the TU's 100 replaces the transaction's


def test_rfc_4320_100_may_go_at_any_time_over_tcp_and_is_sent_when_due():
    layer = new_layer()
    tcp = build_request("OPTIONS", via="SIP/2.0/TCP 192.0.2.1:50123;branch=z9hG4bK-t")
    key = receive_new(layer, tcp, ALICE_TCP, 0.0)
    layer.respond(key, build_response(tcp, 100, to_tag=None), 0.0)
    assert layer.state(key) is State.PROCEEDING
    other = build_request("INFO", via="SIP/2.0/TCP 192.0.2.1:50123;branch=z9hG4bK-u")
    key = receive_new(layer, other, ALICE_TCP, 0.0)
    layer.datagrams_to_send()
    timeline = run_clock(layer, 0.0, 10.0)
    assert [(t, parse_message(out.data).status) for t, out in timeline.sent] == [(3.5, 100)]


def test_rfc_4320_100_goes_at_once_when_t1_equals_t2():
    layer = TransactionLayer(CountingIds("t"), TimerConfig(t1=4.0, t2=4.0))
    options = build_request("OPTIONS")
    key = receive_new(layer, options, ALICE, 0.0)
    [out] = layer.datagrams_to_send()
    assert parse_message(out.data).status == 100
    assert layer.state(key) is State.PROCEEDING


# -- respond() refusals ----------------------------------------------------------------------------


def test_respond_refuses_unknown_keys_client_keys_ended_transactions_and_foreign_cseq():
    layer = new_layer()
    options = build_request("OPTIONS")
    key = receive_new(layer, options, ALICE, 0.0)
    with pytest.raises(LocalProtocolError, match="CSeq"):
        layer.respond(key, build_response(build_request("OPTIONS", cseq=2), 200), 0.0)
    layer.respond(key, build_response(options, 200), 0.0)
    with pytest.raises(LocalProtocolError, match="Completed"):
        layer.respond(key, build_response(options, 500), 0.1)
    layer.handle_timer(40.0)
    with pytest.raises(LocalProtocolError, match="no transaction"):
        layer.respond(key, build_response(options, 200), 41.0)
    client = layer.send_request(build_request("INFO"), BOB, 41.0)
    with pytest.raises(LocalProtocolError, match="client transaction"):
        layer.respond(client, build_response(options, 200), 41.0)


# -- matching requests (RFC 3261 section 17.2.3) ---------------------------------------------------


def test_same_branch_from_another_sent_by_is_another_transaction():
    layer = new_layer()
    first = build_request("OPTIONS")
    second = build_request("OPTIONS", via="SIP/2.0/UDP 192.0.2.9:5060;branch=z9hG4bK-test-1")
    key1 = receive_new(layer, first, ALICE, 0.0)
    key2 = receive_new(layer, second, Target("udp", "192.0.2.9", 5060), 0.0)
    assert key1 != key2 and len(layer) == 2


def test_cancel_is_its_own_transaction_and_names_the_invite_it_matches():
    layer = new_layer()
    invite = build_request("INVITE")
    invite_key = receive_new(layer, invite, ALICE, 0.0)
    cancel = build_request("CANCEL")
    layer.receive(cancel, ALICE, 1.0)
    [event] = drain_events(layer)
    assert isinstance(event, RequestReceived)
    assert event.invite_key == invite_key and event.key != invite_key
    assert layer.state(event.key) is State.TRYING
    assert layer.state(invite_key) is State.PROCEEDING
    stray = build_request("CANCEL", via="SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK-nothing")
    layer.receive(stray, ALICE, 1.0)
    [event] = drain_events(layer)
    assert isinstance(event, RequestReceived) and event.invite_key is None


def test_ack_matching_no_transaction_is_passed_up():
    layer = new_layer()
    ack = build_request("ACK", to="Bob <sip:bob@example.com>;tag=bob-tag")
    layer.receive(ack, ALICE, 0.0)
    assert drain_events(layer) == [AckReceived(ack, ALICE)]
    assert len(layer) == 0


RFC_2543_VIA = "SIP/2.0/UDP 192.0.2.1:5060"


def test_rfc_2543_requests_without_the_cookie_match_by_their_identity():
    layer = new_layer()
    invite = build_request("INVITE", via=RFC_2543_VIA + ";branch=old-style-1")
    key = receive_new(layer, invite, ALICE, 0.0)
    busy = build_response(invite, 486)
    layer.respond(key, busy, 0.0)
    layer.datagrams_to_send()
    layer.receive(reparse(invite), ALICE, 0.1)
    assert drain_events(layer) == []
    assert sent_bytes(layer) == [busy.to_bytes()]
    # A CANCEL matches it with the same identity (method aside).
    layer.receive(build_request("CANCEL", via=RFC_2543_VIA + ";branch=old-style-1"), ALICE, 0.2)
    [event] = drain_events(layer)
    assert isinstance(event, RequestReceived) and event.invite_key == key
    # An ACK with another To tag is not for this transaction's response.
    foreign = build_request(
        "ACK", via=RFC_2543_VIA + ";branch=old-style-1", to="Bob <sip:bob@example.com>;tag=zzz"
    )
    layer.receive(foreign, ALICE, 0.3)
    assert drain_events(layer) == [AckReceived(foreign, ALICE)]
    assert layer.state(key) is State.COMPLETED
    # The ACK carrying our To tag confirms it.
    ack = build_request(
        "ACK", via=RFC_2543_VIA + ";branch=old-style-1", to="Bob <sip:bob@example.com>;tag=bob-tag"
    )
    layer.receive(ack, ALICE, 0.4)
    assert drain_events(layer) == []
    assert layer.state(key) is State.CONFIRMED


def test_rfc_2543_non_invite_without_branch_is_absorbed_when_retransmitted():
    layer = new_layer()
    options = build_request("OPTIONS", via=RFC_2543_VIA)
    key = receive_new(layer, options, ALICE, 0.0)
    layer.receive(reparse(options), ALICE, 0.5)
    assert drain_events(layer) == []
    another = build_request("OPTIONS", via=RFC_2543_VIA, cseq=2)
    assert receive_new(layer, another, ALICE, 0.6) != key


def test_a_request_the_layer_cannot_match_is_dropped_not_raised():
    layer = new_layer()
    broken = build_request("OPTIONS", via=RFC_2543_VIA, from_="<sip:alice@bad!host>;tag=1")
    layer.receive(broken, ALICE, 0.0)
    [event] = drain_events(layer)
    assert isinstance(event, MessageDropped) and event.message is broken
    mismatched = build_request("OPTIONS", cseq_method="INFO")
    layer.receive(mismatched, ALICE, 0.0)
    [event] = drain_events(layer)
    assert isinstance(event, MessageDropped) and "CSeq" in event.reason
    assert len(layer) == 0 and layer.datagrams_to_send() == []


# -- Via stamping and where responses go (RFC 3261 18.2, RFC 3581) ---------------------------------


@pytest.mark.parametrize(
    ("via", "source", "stamped", "reply_to"),
    [
        (
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            ALICE,
            "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1",
            ALICE,
        ),
        (
            "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1",
            Target("udp", "203.0.113.7", 6000),
            "SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.7",
            Target("udp", "203.0.113.7", 5060),
        ),
        (
            "SIP/2.0/UDP alice.example.com;branch=z9hG4bK1",
            ALICE,
            "SIP/2.0/UDP alice.example.com;branch=z9hG4bK1;received=192.0.2.1",
            ALICE,
        ),
        (
            "SIP/2.0/UDP 10.0.0.5:5062;rport;branch=z9hG4bK1",
            Target("udp", "203.0.113.7", 6000),
            "SIP/2.0/UDP 10.0.0.5:5062;rport=6000;branch=z9hG4bK1;received=203.0.113.7",
            Target("udp", "203.0.113.7", 6000),
        ),
        (
            "SIP/2.0/UDP 192.0.2.1:5070;rport;branch=z9hG4bK1",
            Target("udp", "192.0.2.1", 5070),
            "SIP/2.0/UDP 192.0.2.1:5070;rport=5070;branch=z9hG4bK1;received=192.0.2.1",
            Target("udp", "192.0.2.1", 5070),
        ),
        (
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1",
            Target("udp", "2001:db8:0::1", 5060),
            "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bK1",
            Target("udp", "2001:db8::1", 5060),
        ),
        (
            "SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK1",
            Target("tcp", "203.0.113.7", 40000),
            "SIP/2.0/TCP 10.0.0.5:5060;branch=z9hG4bK1;received=203.0.113.7",
            Target("tcp", "203.0.113.7", 40000),
        ),
    ],
)
def test_top_via_is_stamped_and_responses_go_where_rfc_3581_says(via, source, stamped, reply_to):
    layer = new_layer()
    options = build_request("OPTIONS", via=via, more_vias=("SIP/2.0/UDP proxy.example.com",))
    key = receive_new(layer, options, source, 0.0)
    assert options.headers.get_all("via") == [stamped, "SIP/2.0/UDP proxy.example.com"]
    layer.respond(key, build_response(options, 200), 0.0)
    [out] = layer.datagrams_to_send()
    assert out.target == reply_to
    assert f"Via: {stamped}\r\n".encode() in out.data


def test_only_the_first_value_of_a_comma_separated_via_line_is_stamped():
    layer = new_layer()
    options = build_request(
        "OPTIONS", via="SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1, SIP/2.0/UDP p.example.com"
    )
    receive_new(layer, options, ALICE, 0.0)
    assert options.headers.get_all("via") == [
        "SIP/2.0/UDP 10.0.0.5;branch=z9hG4bK1;received=192.0.2.1, SIP/2.0/UDP p.example.com"
    ]


def test_response_target_without_port_defaults_to_5060():
    via = parse_via("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1")
    assert response_target(via, Target("udp", "192.0.2.1", 41000)) == Target(
        "udp", "192.0.2.1", 5060
    )


# -- two layers joined -----------------------------------------------------------------------------


def test_two_layers_joined_by_a_lossless_link_complete_a_rejected_invite():
    alice, bob = TransactionLayer(CountingIds("alice")), TransactionLayer(CountingIds("bob"))
    invite = build_request("INVITE")
    client_key = alice.send_request(invite, BOB, 0.0)

    def carry(sender: TransactionLayer, receiver: TransactionLayer, source: Target, now: float):
        for out in sender.datagrams_to_send():
            receiver.receive(parse_message(out.data), source, now)

    carry(alice, bob, ALICE, 0.01)
    [request_event] = drain_events(bob)
    assert isinstance(request_event, RequestReceived)
    bob.respond(request_event.key, build_response(request_event.request, 486), 0.02)
    carry(bob, alice, BOB, 0.03)
    [response_event] = drain_events(alice)
    assert isinstance(response_event, ResponseReceived) and response_event.key == client_key
    assert response_event.response.status == 486
    carry(alice, bob, ALICE, 0.04)  # the ACK
    assert bob.state(request_event.key) is State.CONFIRMED
    assert alice.state(client_key) is State.COMPLETED
    for layer in (alice, bob):
        run_clock(layer, 0.04, 100.0)
        assert len(layer) == 0
