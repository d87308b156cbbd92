"""The log's quick look at a SIP message."""

from engine.store.sipmsg import summarise


def test_a_request_with_full_header_names() -> None:
    s = summarise(
        b"INVITE sip:bob@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1\r\n"
        b'From: "A" <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:bob@127.0.0.1>\r\n'
        b"Call-ID: abc@host\r\nCSeq:   7   INVITE\r\nContent-Length: 4\r\n\r\nTo: x"
    )
    assert (s.method, s.ruri, s.status, s.is_request) == ("INVITE", "sip:bob@127.0.0.1", 0, True)
    assert (s.callid, s.cseq, s.cseq_method) == ("abc@host", "7 INVITE", "INVITE")
    assert s.from_ == '"A" <sip:a@127.0.0.1>;tag=1' and s.to == "<sip:bob@127.0.0.1>"
    assert not s.to_has_tag


def test_a_response_with_compact_forms_and_odd_case() -> None:
    s = summarise(
        b"SIP/2.0 486 Busy Here\r\nv: SIP/2.0/UDP h\r\nf: <sip:a@h>;tag=1\r\n"
        b"T: <sip:b@h;x=tag=no>;TAG=2\r\ni: cid\r\nCSEQ: 1 invite\r\nl: 0\r\n\r\n"
    )
    assert (s.method, s.status, s.reason) == (None, 486, "Busy Here")
    assert (s.callid, s.cseq_method) == ("cid", "INVITE")
    assert s.to_has_tag


def test_folded_headers_and_the_first_of_repeated_ones() -> None:
    s = summarise(
        b"BYE sip:x SIP/2.0\r\nCall-ID: one\r\nTo: <sip:b@h>\r\n ;tag=9\r\n"
        b"Call-ID: two\r\nCSeq: 2 BYE\r\n\r\n"
    )
    assert s.callid == "one" and s.to == "<sip:b@h> ;tag=9" and s.to_has_tag


def test_garbage_never_raises() -> None:
    for data in (b"", b"\r\n\r\n", b"\xff\xfe junk", b"SIP/2.0 abc\r\n\r\n", b"X\r\nnocolon\r\n"):
        s = summarise(data)
        assert s.callid == "" and s.cseq_method == ""
