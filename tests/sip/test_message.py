"""Parsing and serialising messages, URIs and header values."""

import pytest

from engine.sip import (
    Headers,
    Limits,
    LocalProtocolError,
    NameAddr,
    ParseError,
    Request,
    Response,
    SipUri,
    StreamFramer,
    TelUri,
    parse_message,
    parse_name_addr,
    parse_uri,
    parse_via,
)

INVITE = (
    b"INVITE sip:bob@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n"
    b"v: SIP/2.0/TCP [::1]:5070;branch=z9hG4bK-0;received=::1\r\n"
    b"f: Alice <sip:alice@127.0.0.1:5061>;tag=a1\r\n"
    b"To: <sip:bob@127.0.0.1:5060>\r\n"
    b"i: call-1@127.0.0.1\r\n"
    b"CSeq: 7 INVITE\r\n"
    b'Contact: <sip:alice@127.0.0.1:5061>, "Al, B" <sip:alb@127.0.0.1>;q=0.5\r\n'
    b"Max-Forwards: 70\r\n"
    b"Subject: folded\r\n  across lines\r\n"
    b"c: application/sdp\r\n"
    b"l: 5\r\n"
    b"\r\n"
    b"v=0\r\n"
)


def test_request_fields() -> None:
    m = parse_message(INVITE)
    assert isinstance(m, Request)
    assert (m.method, m.uri_text, m.version) == ("INVITE", "sip:bob@127.0.0.1:5060", "SIP/2.0")
    assert m.uri == SipUri("127.0.0.1", "bob", 5060)
    assert [v.branch for v in m.vias] == ["z9hG4bK-1", "z9hG4bK-0"]
    assert m.top_via.params == {"branch": "z9hG4bK-1", "rport": None}
    assert m.vias[1].host == "[::1]" and m.vias[1].port == 5070 and m.vias[1].received == "::1"
    assert m.from_ == NameAddr(SipUri("127.0.0.1", "alice", 5061), "Alice", {"tag": "a1"})
    assert m.to.tag is None
    assert m.call_id == "call-1@127.0.0.1"
    assert (m.cseq.seq, m.cseq.method) == (7, "INVITE")
    assert [c.display for c in m.contacts()] == ["", "Al, B"]
    assert m.contacts()[1].params == {"q": "0.5"}
    assert m.max_forwards() == 70
    assert m.headers.get("SUBJECT") == "folded across lines"
    assert m.content_type == "application/sdp"
    assert m.body == b"v=0\r\n"


def test_header_lookup_is_case_insensitive_and_knows_compact_forms() -> None:
    m = parse_message(INVITE)
    assert m.headers.get("content-length") == m.headers.get("L") == "5"
    assert m.headers.get_all("VIA") == [
        "SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport",
        "SIP/2.0/TCP [::1]:5070;branch=z9hG4bK-0;received=::1",
    ]
    assert m.headers.values("contact") == [
        "<sip:alice@127.0.0.1:5061>",
        '"Al, B" <sip:alb@127.0.0.1>;q=0.5',
    ]
    assert "call-id" in m.headers and "route" not in m.headers


def test_serialise_round_trip_keeps_bytes_of_an_unfolded_message() -> None:
    raw = INVITE.replace(b"\r\n  across lines", b" across lines")
    assert parse_message(raw).to_bytes() == raw


def test_response_and_reason_phrase() -> None:
    m = parse_message(
        b"SIP/2.0 180 Ringing now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert isinstance(m, Response)
    assert (m.status, m.reason, m.to.tag) == (180, "Ringing now", "2")


def test_datagram_body_runs_to_the_end_without_content_length() -> None:
    m = parse_message(
        b"MESSAGE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        b"From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\n\r\nhello"
    )
    assert m.body == b"hello"


@pytest.mark.parametrize(
    ("data", "hint"),
    [
        (b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nContent-Length: 9\r\n\r\nshort", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nContent-Length: -1\r\n\r\n", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nl: 2\r\nContent-Length: 3\r\n\r\nabc", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nContent-Length: 99999999999\r\n\r\n", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nNo colon here\r\n\r\n", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nX: a\rb\r\n\r\n", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nCSeq: 4294967296 INVITE\r\n\r\n", 400),
        (b"INVITE sip:a@h SIP/2.0\r\nCall-ID: two words\r\n\r\n", 400),
        (b"INVITE sip:a@[::1 SIP/2.0\r\n\r\n", 400),
        (b"INVITE sip:a@h:70000 SIP/2.0\r\n\r\n", 400),
        (b"INVITE  sip:a@h SIP/2.0\r\n\r\n", 400),
        (b"hello world\r\n\r\n", None),
        (b"SIP/2.0 200 OK\r\nCSeq: x\r\n\r\n", None),
        (b"SIP/2.0 99 Low\r\n\r\n", None),
    ],
)
def test_malformed_messages_get_the_right_hint(data: bytes, hint: int | None) -> None:
    with pytest.raises(ParseError) as caught:
        parse_message(data)
    assert caught.value.status_hint == hint


def test_limits_are_enforced_before_parsing() -> None:
    small = Limits(max_message=100, max_headers=3, max_header_line=20)
    with pytest.raises(ParseError) as caught:
        parse_message(INVITE, small)
    assert caught.value.status_hint == 513
    many = b"OPTIONS sip:a@h SIP/2.0\r\n" + b"X: 1\r\n" * 4 + b"\r\n"
    with pytest.raises(ParseError, match="more than 3"):
        parse_message(many, Limits(max_headers=3))
    long_line = b"OPTIONS sip:a@h SIP/2.0\r\nX: " + b"a" * 30 + b"\r\n\r\n"
    with pytest.raises(ParseError, match="longer than 20"):
        parse_message(long_line, Limits(max_header_line=20))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Evil", "a\r\nVia: injected"),
        ("X-Evil", "a\nb"),
        ("X-Evil", "nul\x00"),
        ("Bad Name", "v"),
    ],
)
def test_callers_cannot_inject_header_lines(name: str, value: str) -> None:
    headers = Headers()
    with pytest.raises(LocalProtocolError):
        headers.add(name, value)
    with pytest.raises(LocalProtocolError):
        headers.set(name, value)
    with pytest.raises(LocalProtocolError):
        Headers([(name, value)])


def test_callers_cannot_inject_through_start_lines() -> None:
    with pytest.raises(LocalProtocolError):
        Request("INVITE", "sip:a@h SIP/2.0\r\nX: y")
    with pytest.raises(LocalProtocolError):
        Request("IN VITE", "sip:a@h")
    with pytest.raises(LocalProtocolError):
        Response(200, "OK\r\nX: y")
    with pytest.raises(LocalProtocolError):
        Response(700, "Too high")


def test_headers_edit_operations() -> None:
    h = Headers([("Via", "a"), ("To", "t"), ("v", "b")])
    h.insert_first("Via", "z")
    assert h.get_all("via") == ["z", "a", "b"]
    h.remove_first("via")
    h.set("Via", "only")
    assert h.items() == [("Via", "only"), ("To", "t")]
    h.remove("to")
    assert len(h) == 1 and "to" not in h


def test_set_body_keeps_content_headers_in_step() -> None:
    r = Request("MESSAGE", "sip:b@h")
    r.set_body(b"hi", "text/plain")
    assert (r.headers.get("content-length"), r.content_type) == ("2", "text/plain")
    r.set_body(b"")
    assert r.headers.get("content-length") == "0" and r.content_type is None
    assert r.to_bytes().endswith(b"Content-Length: 0\r\n\r\n")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:h", SipUri("h")),
        ("SIP:User@Host:5070", SipUri("Host", "User", 5070)),
        (
            "sips:a:pw@h;transport=tcp;lr",
            SipUri("h", "a", None, "sips", "pw", {"transport": "tcp", "lr": None}),
        ),
        ("sip:a@[2001:db8::1]:5060", SipUri("[2001:db8::1]", "a", 5060)),
        (
            "sip:a@h?subject=x&priority=urgent",
            SipUri("h", "a", headers="subject=x&priority=urgent"),
        ),
        ("sip:user;par=u%40e@example.com", SipUri("example.com", "user;par=u%40e")),
        ("tel:+1-201-555-0123;phone-context=x", TelUri("+1-201-555-0123", {"phone-context": "x"})),
    ],
)
def test_uri_parsing(text: str, expected: object) -> None:
    assert parse_uri(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "sip:",
        "sip:a@",
        "sip:a b@h",
        "sip:h:99999",
        "sip:2001:db8::1",
        "nocolon",
        "sip:h;=x",
        "sip:a@h?",
    ],
)
def test_bad_uris_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_uri(text)


def test_uri_serialises_back() -> None:
    for text in ["sip:a@h:5060;lr;transport=udp", "sips:[::1]:5061", "sip:a:pw@h?x=y", "tel:+123"]:
        assert str(parse_uri(text)) == text


def test_uri_comparison_undoes_escapes_and_host_case() -> None:
    a = parse_uri("sip:%61lice@EXAMPLE.com;transport=TCP")
    b = parse_uri("sip:alice@example.com;transport=tcp")
    assert isinstance(a, SipUri) and isinstance(b, SipUri)
    assert a.comparable() == b.comparable()
    assert a.comparable() != parse_uri("sip:alice@example.com").comparable()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"A \\"B\\"" <sip:a@h>;tag=1', 'A "B"', "sip:a@h", {"tag": "1"}),
        ("caller<sip:c@h>", "caller", "sip:c@h", {}),
        ("sip:a@h;tag=x", None, "sip:a@h", {"tag": "x"}),
        ("<sip:a@h;lr>", "", "sip:a@h;lr", {}),
        (" Two Words  < sip:a@h > ; q = 0.3", "Two Words", "sip:a@h", {"q": "0.3"}),
    ],
)
def test_name_addr_parsing(text: str, display: str | None, uri: str, params: dict) -> None:
    addr = parse_name_addr(text)
    assert (addr.display, str(addr.uri), addr.params) == (display, uri, params)


@pytest.mark.parametrize(
    "text",
    ['"unterminated <sip:a@h>', "Bell, A <sip:a@h>", "<sip:a@h", "<sip:a@h> junk", "sip:a@h?x=y"],
)
def test_bad_name_addrs_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        parse_name_addr(text)


def test_name_addr_serialises_with_quotes_and_tag() -> None:
    addr = parse_name_addr('"Bob \\"B\\"" <sip:b@h>').with_tag("t9")
    assert str(addr) == '"Bob \\"B\\"" <sip:b@h>;tag=t9'
    assert parse_name_addr(str(addr)) == addr


def test_via_parsing_with_whitespace_and_parameters() -> None:
    via = parse_via(" SIP / 2.0 / tcp  host.example.com:5070 ; branch = z9hG4bK1 ; rport=5071")
    assert (via.transport, via.host, via.port, via.branch, via.rport) == (
        "TCP",
        "host.example.com",
        5070,
        "z9hG4bK1",
        5071,
    )
    assert str(via) == "SIP/2.0/TCP host.example.com:5070;branch=z9hG4bK1;rport=5071"
    for bad in [
        "SIP/2.0/UDP",
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP h;rport=x",
        "SIP/2.0/UDP h;received=",
    ]:
        with pytest.raises(ParseError):
            parse_via(bad)


def test_stream_framer_handles_pieces_keepalives_and_pipelining() -> None:
    second = INVITE.replace(b"CSeq: 7", b"CSeq: 8")
    framer = StreamFramer()
    stream = b"\r\n\r\n" + INVITE + b"\r\n" + second
    frames = []
    for i in range(0, len(stream), 7):
        frames.extend(framer.feed(stream[i : i + 7]))
    assert frames == [INVITE, second]
    assert framer.keepalives == 2 and framer.pending == 0
    assert framer.eof() is None


def test_stream_framer_refuses_runaway_headers_and_bodies() -> None:
    framer = StreamFramer(Limits(max_message=1000))
    with pytest.raises(ParseError):
        framer.feed(b"INVITE sip:a@h SIP/2.0\r\nX: " + b"a" * 2000)
    framer = StreamFramer(Limits(max_message=1000))
    with pytest.raises(ParseError):
        framer.feed(b"INVITE sip:a@h SIP/2.0\r\nContent-Length: 5000\r\n\r\n")
