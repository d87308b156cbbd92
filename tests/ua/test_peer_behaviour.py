"""The UA core against peers played by the test: digest, forking, PRACK, loss, strays, junk."""

from engine.sip import Request, Response, Target
from engine.sip.digest import parse_credential, verify_authorization
from engine.sip.responses import make_response
from tests.ua.link import Network
from tests.ua.test_call_flows import SDP, call, clean, kinds_and_status

CHALLENGE = 'Digest realm="pbx.test", nonce="n0nce", qop="auth", algorithm=MD5'


def ok_for(request: Request, tag: str, contact: str = "<sip:bob@127.0.0.2>", **kw) -> bytes:
    return make_response(request, 200, to_tag=tag, headers=[("Contact", contact)], **kw).to_bytes()


def test_digest_challenge_to_invite_and_bye_answered_once_each() -> None:
    seen: list[str] = []

    def pbx(message, source, now):
        if isinstance(message, Response) or message.method == "ACK":
            return []
        header = message.headers.get("authorization")
        seen.append(f"{message.method}:{'auth' if header else 'none'}:{message.cseq.seq}")
        if header is None:
            return [
                make_response(
                    message, 401, to_tag="t1", headers=[("WWW-Authenticate", CHALLENGE)]
                ).to_bytes()
            ]
        assert verify_authorization(
            header, message.method, lambda user, realm: "secret" if user == "alice" else None
        )
        return [ok_for(message, "t1")]

    net = Network()
    a = net.add("a", "127.0.0.1", credentials=(parse_credential("alice:pbx.test:secret"),))
    b = net.add_script("pbx", "127.0.0.2", pbx)
    key = call(net, a, b)
    net.advance(1)
    assert kinds_and_status(a, key) == [("ANSWERED", 200, "INVITE")]
    a.ua.update(key, "BYE", net.now)
    net.advance(1)
    assert kinds_and_status(a, key)[-2:] == [("ANSWERED", 200, "BYE"), ("TERMINATED", 0, "BYE")]
    assert seen == ["INVITE:none:1", "INVITE:auth:2", "BYE:none:3", "BYE:auth:4"]
    assert not any("secret" in n for n in a.notices)
    net.run()
    clean(a)


def test_challenge_for_another_realm_is_rejected() -> None:
    def pbx(message, source, now):
        if isinstance(message, Request) and message.method == "INVITE":
            return [
                make_response(
                    message,
                    407,
                    to_tag="t",
                    headers=[("Proxy-Authenticate", CHALLENGE.replace("pbx.test", "other"))],
                ).to_bytes()
            ]
        return []

    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add_script("pbx", "127.0.0.2", pbx)
    key = call(net, a, b)
    net.advance(1)
    assert kinds_and_status(a, key) == [("REJECTED", 407, "INVITE"), ("TERMINATED", 0, "INVITE")]
    net.run()
    clean(a)


def test_forked_call_one_early_leg_per_tag_and_second_2xx_acked_and_byed() -> None:
    invites: list[Request] = []

    def fork(message, source, now):
        if isinstance(message, Request) and message.method == "INVITE":
            invites.append(message)
            r1 = make_response(
                message, 180, to_tag="leg1", headers=[("Contact", "<sip:one@127.0.0.2>")]
            )
            r2 = make_response(
                message, 183, to_tag="leg2", headers=[("Contact", "<sip:two@127.0.0.2>")]
            )
            return [
                r1.to_bytes(),
                r2.to_bytes(),
                ok_for(message, "leg2", "<sip:two@127.0.0.2>"),
                ok_for(message, "leg1", "<sip:one@127.0.0.2>"),
            ]
        if isinstance(message, Request) and message.method == "BYE":
            return [make_response(message, 200).to_bytes()]
        return []

    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add_script("fork", "127.0.0.2", fork)
    key = call(net, a, b)
    net.advance(1)
    assert kinds_and_status(a, key) == [
        ("EARLY", 180, "INVITE"),
        ("EARLY", 183, "INVITE"),
        ("ANSWERED", 200, "INVITE"),
    ]
    assert a.events[-1].to_tag == "leg2"
    acks = [m for m in b.received if isinstance(m, Request) and m.method == "ACK"]
    byes = [m for m in b.received if isinstance(m, Request) and m.method == "BYE"]
    assert sorted(m.to.tag for m in acks) == ["leg1", "leg2"]
    assert [m.to.tag for m in byes] == ["leg1"] and byes[0].uri_text == "sip:one@127.0.0.2"
    assert a.ua.session(key).to_tag == "leg2"
    a.ua.terminate(key, net.now)
    net.run()
    clean(a)


def test_reliable_provisional_is_pracked_once() -> None:
    def uas(message, source, now):
        if isinstance(message, Request) and message.method == "INVITE":
            ring = make_response(
                message,
                180,
                to_tag="x",
                headers=[("Contact", "<sip:b@127.0.0.2>"), ("Require", "100rel"), ("RSeq", "7")],
            )
            return [ring.to_bytes(), ring.to_bytes()]
        if isinstance(message, Request) and message.method == "PRACK":
            return [make_response(message, 200).to_bytes()]
        return []

    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add_script("uas", "127.0.0.2", uas)
    key = call(net, a, b)
    net.advance(1)
    pracks = [m for m in b.received if isinstance(m, Request) and m.method == "PRACK"]
    assert len(pracks) == 1
    assert pracks[0].headers.get("rack") == "7 1 INVITE"
    assert pracks[0].cseq.seq == 2 and pracks[0].to.tag == "x"
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE")]
    a.ua.terminate(key, net.now)
    net.run()


def test_engine_as_uas_sends_reliable_180_until_prack() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add("b", "127.0.0.2", incoming="reject:500", flags="")
    b.ua.config.policy  # noqa: B018
    b2 = net.add("b2", "127.0.0.5", flags="n")  # manual, no NEW event: the controller polls
    key = a.ua.client_start(
        "sip:bob@127.0.0.5",
        "sip:bob@127.0.0.5",
        "sip:alice@127.0.0.1",
        net.now,
        body=SDP,
        extra_headers="Require: 100rel\r\n",
    )
    net.advance(0.1)
    assert "NEW" not in b2.kinds()  # flag n
    (info,) = b2.ua.sessions()
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE")]
    prack_seen = [w for w in net.wire if w.first_line.startswith("PRACK")]
    assert len(prack_seen) == 1
    ringing = [w for w in net.wire if w.first_line.startswith("SIP/2.0 180")]
    assert b"RSeq: 1" in ringing[0].data and b"Require: 100rel" in ringing[0].data
    b2.ua.reply(info.key, "PRACK", 200, "OK", net.now)
    b2.ua.reply(info.key, "INVITE", 200, "OK", net.now, body=SDP)
    net.advance(1)
    assert kinds_and_status(a, key)[-1] == ("ANSWERED", 200, "INVITE")
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b2)


def test_lost_invite_is_retransmitted_on_the_rfc_schedule() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add("b", "127.0.0.2", incoming="auto-answer")
    lost = {"n": 0}

    def lose_first_three(wire):
        if wire.first_line.startswith("INVITE") and lost["n"] < 3:
            lost["n"] += 1
            return False
        return True

    net.deliver_if = lose_first_three
    start = net.now
    key = call(net, a, b)
    net.advance(10)
    times = [round(w.time - start, 3) for w in net.wire if w.first_line.startswith("INVITE")]
    assert times == [0, 0.5, 1.5, 3.5]
    assert kinds_and_status(a, key) == [("ANSWERED", 200, "INVITE")]
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b)


def test_lost_acks_make_the_uas_retransmit_its_2xx_and_the_uac_re_ack() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add("b", "127.0.0.2", incoming="auto-answer", flags="a")
    dropped = {"n": 0}

    def lose_two_acks(wire):
        if wire.first_line.startswith("ACK") and dropped["n"] < 2:
            dropped["n"] += 1
            return False
        return True

    net.deliver_if = lose_two_acks
    start = net.now
    key = call(net, a, b)
    net.advance(5)
    oks = [round(w.time - start, 3) for w in net.wire if w.first_line.startswith("SIP/2.0 200")]
    acks = [round(w.time - start, 3) for w in net.wire if w.first_line.startswith("ACK")]
    assert oks == [0, 0.5, 1.5]
    assert acks == [0, 0.5, 1.5]
    assert kinds_and_status(a, key) == [("ANSWERED", 200, "INVITE")]
    b_key = b.events[0].key
    assert kinds_and_status(b, b_key)[-1] == ("UPDATED", 0, "ACK")
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b)


def test_late_offer_ack_sent_by_the_controller_with_flag_d() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add("b", "127.0.0.2", flags="ab")
    key = a.ua.client_start(
        "sip:bob@127.0.0.2", "sip:bob@127.0.0.2", "sip:alice@127.0.0.1", net.now, flags="d"
    )
    net.advance(0.1)
    b_key = b.events[0].key
    b.ua.reply(b_key, "INVITE", 200, "OK", net.now, body=SDP)
    net.advance(0.1)
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE"), ("ANSWERED", 200, "INVITE")]
    assert not [w for w in net.wire if w.first_line.startswith("ACK")]
    a.ua.update(key, "ACK", net.now, body=SDP)
    net.advance(0.1)
    assert kinds_and_status(b, b_key)[-1] == ("UPDATED", 0, "ACK")
    assert b.events[-1].body == SDP
    a.ua.terminate(key, net.now)
    net.run()
    clean(a, b)


def test_2xx_after_the_caller_gave_up_is_acked_and_byed() -> None:
    held: list[bytes] = []

    def slow(message, source, now):
        if isinstance(message, Request) and message.method == "INVITE":
            held.append(ok_for(message, "late"))
            return [make_response(message, 180, to_tag="late").to_bytes()]
        if isinstance(message, Request) and message.method in ("CANCEL", "BYE"):
            return [make_response(message, 200).to_bytes()]
        return []

    net = Network()
    a = net.add("a", "127.0.0.1")
    b = net.add_script("slow", "127.0.0.2", slow)
    key = call(net, a, b)
    net.advance(0.1)
    a.ua.terminate(key, net.now)
    net.advance(0.1)
    b.send(held[0], a.address)  # the 200 crossed the CANCEL
    net.advance(1)
    got = [m.method for m in b.received if isinstance(m, Request)]
    assert got == ["INVITE", "CANCEL", "ACK", "BYE"]
    assert kinds_and_status(a, key) == [("EARLY", 180, "INVITE"), ("TERMINATED", 0, "BYE")]
    net.run()
    clean(a)


def test_junk_from_the_network_never_raises_and_gets_400_when_answerable() -> None:
    net = Network()
    a = net.add("a", "127.0.0.1")
    stranger = Target("udp", "127.0.0.9", 5060)
    junk = [
        b"",
        b"\x00\xff" * 50,
        b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKx\r\n"
        b"CSeq: 99999999999 INVITE\r\n\r\n",
        b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.9;branch=z9hG4bKy\r\n"
        b"From: <sip:x@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKnone\r\n"
        b"From: <sip:x@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n",
    ]
    for data in junk:
        a.ua.receive(data, stranger, net.now)
    out = sorted(o.data.split(b"\r\n", 1)[0] for o in a.ua.datagrams_to_send())
    # the stray 2xx is for no call of ours: dropped, never ACKed nor BYEd
    assert out == [b"SIP/2.0 200 OK", b"SIP/2.0 400 CSeq number out of range: 99999999999"]
    assert any("dropped" in n.message for n in iter(a.ua.next_notice, None))


def test_in_dialog_requests_preload_the_outbound_proxy_when_nothing_record_routed() -> None:
    seen: list[Request] = []

    def proxy_and_callee(message, source, now):
        if isinstance(message, Request):
            seen.append(message)
            if message.method in ("INVITE", "BYE"):
                return [ok_for(message, "callee", "<sip:bob@127.0.0.8>")]
        return []

    net = Network()
    a = net.add("a", "127.0.0.1")
    net.add_script("proxy", "127.0.0.8", proxy_and_callee)
    key = a.ua.client_start(
        "sip:bob@example.test", "sip:bob@example.test", "sip:alice@127.0.0.1", net.now,
        proxy="sip:127.0.0.8", body=SDP,
    )  # fmt: skip
    net.advance(1)
    a.ua.terminate(key, net.now)
    net.advance(1)
    invite, ack, bye = seen
    assert "route" not in invite.headers  # the initial request goes to the proxy as it is
    assert ack.headers.get("route") == bye.headers.get("route") == "<sip:127.0.0.8;lr>"
    assert bye.uri_text == "sip:bob@127.0.0.8"
