"""Call flows between two UA cores over an in-memory network, with a manual clock."""

from engine.ua.events import SessionState
from tests.ua.link import Network

SDP = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)


def call(net: Network, caller, callee, flags: str = "", **kw) -> str:
    return caller.ua.client_start(
        f"sip:bob@{callee.address.host}:5060",
        f"sip:bob@{callee.address.host}",
        f"Alice,sip:alice@{caller.address.host}",
        net.now,
        body=SDP,
        flags=flags,
        **kw,
    )


def test_auto_answered_call_then_caller_hangs_up() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add("b", "127.0.0.2", incoming="auto-answer")
    key = call(net, a, b)
    net.run(until=net.now + 1)
    assert a.kinds(key) == ["ANSWERED"]
    b_key = b.events[0].key
    assert b.kinds(b_key) == ["NEW"]
    assert net.methods()[:4] == ["INVITE", "100", "200", "ACK"] or net.methods()[:3] == [
        "INVITE",
        "200",
        "ACK",
    ]
    assert a.ua.session(key).state == SessionState.ESTABLISHED
    assert b.ua.session(b_key).state == SessionState.ESTABLISHED
    a.ua.terminate(key, net.now)
    net.run(until=net.now + 1)
    assert a.kinds(key) == ["ANSWERED", "TERMINATED"]
    assert b.kinds(b_key) == ["NEW", "TERMINATED"]
    assert b.events[-1].origin == "remote" and a.events[-1].origin == "local"
    net.run()
    assert len(a.ua) == len(b.ua) == 0
    assert len(a.ua.txn) == len(b.ua.txn) == 0
    assert not [n for n in a.notices + b.notices if n.startswith(("error", "warning"))]


def kinds_and_status(node, key):
    return [(e.event_type, e.status, e.method) for e in node.events if e.key == key]


def clean(*nodes) -> None:
    for node in nodes:
        assert len(node.ua) == 0, f"{node.name} still holds sessions"
        assert len(node.ua.txn) == 0, f"{node.name} still holds transactions"
        assert not [n for n in node.notices if n.startswith(("error", "warning"))], node.notices


def test_manual_answer_with_ack_reported() -> None:
    net = Network()
    a, b = net.add("a", "127.0.0.1"), net.add("b", "127.0.0.2")
    key = call(net, a, b, flags="b")
    net.advance(1)
    (new,) = b.events
    assert (new.event_type, new.method, new.entity_type, new.to_tag) == ("NEW", "INVITE", "UAS", "")
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE")]
    b.ua.update  # noqa: B018
    info = b.ua.session(new.key)
    assert info.state == SessionState.EARLY and info.entity_type == "UAS"
    b.ua.reply(new.key, "INVITE", 200, "OK", net.now, body=SDP)
    net.advance(1)
    assert kinds_and_status(a, key)[-1] == ("ANSWERED", 200, "INVITE")
    assert a.events[-1].body == SDP  # flag b
    assert b.ua.session(new.key).state == SessionState.ESTABLISHED
    b.ua.terminate(new.key, net.now)
    net.run()
    assert kinds_and_status(a, key)[-1] == ("TERMINATED", 0, "BYE")
    assert a.events[-1].origin == "remote"
    clean(a, b)


def test_rejected_call_ends_both_sides() -> None:
    net = Network()
    a, b = net.add("a", "127.0.0.1"), net.add("b", "127.0.0.2")
    key = call(net, a, b)
    net.advance(1)
    b_key = b.events[0].key
    b.ua.reply(b_key, "INVITE", 486, "Busy Here", net.now)
    net.advance(1)
    assert kinds_and_status(a, key) == [
        ("EARLY", 180, "INVITE"),
        ("REJECTED", 486, "INVITE"),
        ("TERMINATED", 0, "INVITE"),
    ]
    assert kinds_and_status(b, b_key) == [("NEW", 0, "INVITE"), ("TERMINATED", 0, "ACK")]
    net.run()
    clean(a, b)


def test_caller_cancels_after_ringing() -> None:
    net = Network()
    a, b = net.add("a", "127.0.0.1"), net.add("b", "127.0.0.2")
    key = call(net, a, b)
    net.advance(1)
    b_key = b.events[0].key
    a.ua.terminate(key, net.now)
    net.advance(1)
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE"), ("TERMINATED", 0, "BYE")]
    assert kinds_and_status(b, b_key) == [("NEW", 0, "INVITE"), ("TERMINATED", 0, "CANCEL")]
    assert [m for m in net.methods() if m in ("CANCEL", "200", "487", "ACK")] == [
        "CANCEL",
        "200",
        "487",
        "ACK",
    ]
    net.run()
    clean(a, b)


def test_update_cancel_reports_the_487() -> None:
    net = Network()
    a, b = net.add("a", "127.0.0.1"), net.add("b", "127.0.0.2")
    key = call(net, a, b)
    net.advance(1)
    a.ua.update(key, "CANCEL", net.now)
    net.advance(1)
    assert kinds_and_status(a, key)[-2:] == [
        ("REJECTED", 487, "INVITE"),
        ("TERMINATED", 0, "INVITE"),
    ]
    net.run()
    clean(a, b)


def established(net: Network, flags_a: str = "", flags_b: str = "b"):
    a = net.add("a", "127.0.0.1")
    b = net.add("b", "127.0.0.2", flags=flags_b)
    key = call(net, a, b, flags=flags_a)
    net.advance(1)
    b_key = b.events[0].key
    b.ua.reply(b_key, "INVITE", 200, "OK", net.now, body=SDP)
    net.advance(1)
    return a, b, key, b_key


def test_reinvite_both_ways_and_hold() -> None:
    net = Network()
    a, b, key, b_key = established(net)
    hold = SDP.replace("a=rtpmap:0 PCMU/8000\r\n", "a=rtpmap:0 PCMU/8000\r\na=sendonly\r\n")
    a.ua.update(key, "INVITE", net.now, body=hold)
    net.advance(1)
    assert a.ua.session(key).state == SessionState.MODIFIED
    assert kinds_and_status(b, b_key)[-1] == ("UPDATED", 0, "INVITE")
    assert b.events[-1].body == hold
    assert b.ua.session(b_key).state == SessionState.MODIFIED
    b.ua.reply(b_key, "INVITE", 200, "OK", net.now, body=SDP)
    net.advance(1)
    assert kinds_and_status(a, key)[-1] == ("ANSWERED", 200, "INVITE")
    assert a.ua.session(key).state == SessionState.ESTABLISHED
    assert b.ua.session(b_key).state == SessionState.ESTABLISHED
    b.ua.update(b_key, "INVITE", net.now, body=SDP)
    net.advance(1)
    assert kinds_and_status(a, key)[-1] == ("UPDATED", 0, "INVITE")
    a.ua.reply(key, "INVITE", 200, "OK", net.now, body=SDP)
    net.advance(1)
    assert kinds_and_status(b, b_key)[-1] == ("ANSWERED", 200, "INVITE")
    info = a.ua.session(key)
    assert info.cseq == {"caller": 2, "callee": 1}
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b)


def test_glare_gets_491_on_both_sides() -> None:
    net = Network()
    a, b, key, b_key = established(net)
    a.ua.update(key, "INVITE", net.now, body=SDP)
    b.ua.update(b_key, "INVITE", net.now, body=SDP)
    net.advance(1)
    assert kinds_and_status(a, key)[-1] == ("REJECTED", 491, "INVITE")
    assert kinds_and_status(b, b_key)[-1] == ("REJECTED", 491, "INVITE")
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b)


def test_second_incoming_request_while_one_is_unanswered_gets_500_retry_after() -> None:
    net = Network()
    a, b, key, b_key = established(net)
    a.ua.update(key, "INFO", net.now, body="Signal=1\r\n", content_type="application/dtmf-relay")
    net.advance(0.1)
    a.ua.update(key, "MESSAGE", net.now, body="hi", content_type="text/plain")
    net.advance(0.1)
    assert kinds_and_status(a, key)[-1] == ("REJECTED", 500, "MESSAGE")
    assert any(
        b"Retry-After:" in w.data for w in net.wire if w.first_line.startswith("SIP/2.0 500")
    )
    b.ua.reply(b_key, "INFO", 200, "OK", net.now)
    net.advance(0.1)
    assert kinds_and_status(a, key)[-1] == ("ANSWERED", 200, "INFO")
    b.ua.reply(b_key, "INFO", 200, "OK", net.now)  # a repeated reply is a harmless retry
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b)


def test_remote_bye_answers_pending_request_487() -> None:
    net = Network()
    a, b, key, b_key = established(net)
    a.ua.update(key, "INVITE", net.now, body=SDP)
    net.advance(0.1)
    b.ua.terminate(b_key, net.now)
    net.advance(1)
    assert kinds_and_status(a, key)[-2:] == [("REJECTED", 487, "INVITE"), ("TERMINATED", 0, "BYE")]
    net.run()
    clean(a, b)


def test_requests_for_unknown_dialogs_get_481() -> None:
    net = Network()
    a, b, _, b_key = established(net)
    b.ua.terminate(b_key, net.now)
    net.advance(1)
    b_gone = b.events[-1]
    assert b_gone.event_type == "TERMINATED"
    # a's session is gone too; a BYE for it from a third party gets 481
    raw = next(w.data for w in net.wire if w.first_line.startswith("BYE"))
    b.ua.receive(raw, a.address, net.now)
    net.advance(1)
    assert net.lines()[-1].startswith("SIP/2.0 481")
    net.run()
    clean(a, b)


def test_max_duration_flag_ends_each_kind_of_session() -> None:
    net = Network()
    a, b, key, _ = established(net, flags_a="t5")
    start = a.ua.session(key).created
    net.run(until=start + 4.9)
    assert kinds_and_status(a, key)[-1][0] == "ANSWERED"
    net.run(until=start + 6)
    assert a.events[-1].event_type == "TERMINATED" and a.events[-1].origin == "timeout"
    assert b.events[-1].event_type == "TERMINATED" and b.events[-1].origin == "remote"
    a.ua.terminate  # noqa: B018
    net.run()
    clean(a, b)


def test_max_duration_rejects_an_unanswered_call_408_and_cancels_an_early_one() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    c = net.add("c", "127.0.0.3", flags="t2")
    key = call(net, a, c, flags="t10")
    net.advance(1)
    c_key = c.events[0].key
    net.advance(1.5)
    assert kinds_and_status(c, c_key) == [("NEW", 0, "INVITE"), ("TERMINATED", 0, "BYE")]
    assert c.events[-1].origin == "timeout"
    assert kinds_and_status(a, key)[-2:] == [
        ("REJECTED", 408, "INVITE"),
        ("TERMINATED", 0, "INVITE"),
    ]
    # the caller's own limit CANCELs an early call
    d = net.add("d", "127.0.0.4")
    key = call(net, a, d, flags="t3")
    net.advance(5)
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE"), ("TERMINATED", 0, "BYE")]
    assert a.events[-1].origin == "timeout"
    assert d.events[-1].event_type == "TERMINATED" and d.events[-1].method == "CANCEL"
    net.run()
    clean(a, c, d)
