"""Dialogs: creation on both sides, routing, CSeq, target refresh, ACK for 2xx, forking."""

import pytest

from engine.sip import LocalProtocolError, SipUri, parse_message
from engine.sip.dialog import (
    Dialog,
    DialogState,
    dialog_id_of_request,
    dialog_id_of_response,
)

INVITE = (
    b"INVITE sip:bob@127.0.0.2 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@127.0.0.1>;tag=alice-tag\r\n'
    b"To: <sip:bob@127.0.0.2>\r\n"
    b"Call-ID: call-1\r\n"
    b"CSeq: 10 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5060>\r\n"
    b"Record-Route: <sip:p2@127.0.0.4;lr>, <sip:p1@127.0.0.3;lr>\r\n"
    b'Authorization: Digest username="alice"\r\n'
    b"Content-Length: 0\r\n\r\n"
)


def response_to(
    invite: bytes, status: int, tag: str, contact: str, record_route: str = ""
) -> bytes:
    lines = [f"SIP/2.0 {status} Whatever".encode()]
    for line in invite.split(b"\r\n")[1:]:
        if line.startswith((b"Via", b"From", b"Call-ID", b"CSeq")):
            lines.append(line)
        elif line.startswith(b"To"):
            lines.append(line + f";tag={tag}".encode())
    lines.append(f"Contact: {contact}".encode())
    if record_route:
        lines.append(f"Record-Route: {record_route}".encode())
    lines.append(b"Content-Length: 0")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def uac_dialog(status: int = 200, tag: str = "bob-tag", rr: str = "") -> tuple[Dialog, object]:
    invite = parse_message(INVITE)
    rr = rr or "<sip:p1@127.0.0.3;lr>, <sip:p2@127.0.0.4;lr>"
    response = parse_message(response_to(INVITE, status, tag, "<sip:bob@127.0.0.9:5070>", rr))
    return Dialog.from_response(invite, response), invite  # type: ignore[arg-type]


def test_uac_dialog_from_2xx_reverses_record_route() -> None:
    dialog, _ = uac_dialog()
    assert dialog.id == ("call-1", "alice-tag", "bob-tag")
    assert dialog.state is DialogState.CONFIRMED and dialog.is_uac
    assert dialog.local_seq == 10 and dialog.remote_seq is None
    assert dialog.remote_target == SipUri("127.0.0.9", "bob", 5070)
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2@127.0.0.4;lr", "sip:p1@127.0.0.3;lr"]


def test_in_dialog_request_with_loose_routing() -> None:
    dialog, _ = uac_dialog()
    bye = dialog.create_request("BYE", contact="<sip:alice@127.0.0.1>")
    assert bye.uri_text == "sip:bob@127.0.0.9:5070"
    assert bye.headers.get_all("route") == ["<sip:p2@127.0.0.4;lr>", "<sip:p1@127.0.0.3;lr>"]
    assert bye.cseq.seq == 11 and bye.cseq.method == "BYE"
    assert bye.from_.tag == "alice-tag" and bye.to.tag == "bob-tag"
    assert bye.from_.display == "Alice"
    assert "contact" not in bye.headers
    info = dialog.create_request(
        "INFO", contact="<sip:alice@127.0.0.1>", body=b"x", content_type="text/plain"
    )
    assert info.cseq.seq == 12 and info.headers.get("contact") == "<sip:alice@127.0.0.1>"
    assert (
        parse_message(info.to_bytes().replace(b"Route", b"Via: SIP/2.0/UDP h\r\nRoute", 1)).body
        == b"x"
    )


def test_strict_route_becomes_the_request_uri() -> None:
    dialog, _ = uac_dialog(rr="<sip:p1@127.0.0.3;lr>, <sip:p2@127.0.0.4;maddr=127.0.0.5>")
    request = dialog.create_request("INFO")
    assert request.uri_text == "sip:p2@127.0.0.4"
    assert request.headers.get_all("route") == ["<sip:p1@127.0.0.3;lr>", "<sip:bob@127.0.0.9:5070>"]


def test_ack_for_2xx_keeps_invite_cseq_and_credentials() -> None:
    dialog, invite = uac_dialog()
    ack = dialog.create_ack(invite, body=b"v=0\r\n", content_type="application/sdp")  # type: ignore[arg-type]
    assert (ack.method, ack.cseq.seq, ack.cseq.method) == ("ACK", 10, "ACK")
    assert ack.headers.get("authorization") == 'Digest username="alice"'
    assert ack.body == b"v=0\r\n" and ack.content_type == "application/sdp"
    assert dialog.local_seq == 10
    with pytest.raises(LocalProtocolError):
        dialog.create_request("CANCEL")


def test_early_dialogs_per_to_tag_then_confirmed_by_2xx() -> None:
    invite = parse_message(INVITE)
    ring_a = parse_message(response_to(INVITE, 180, "leg-a", "<sip:a@127.0.0.7>"))
    ring_b = parse_message(response_to(INVITE, 183, "leg-b", "<sip:b@127.0.0.8>"))
    a = Dialog.from_response(invite, ring_a)  # type: ignore[arg-type]
    b = Dialog.from_response(invite, ring_b)  # type: ignore[arg-type]
    assert a.id != b.id and a.state is b.state is DialogState.EARLY
    assert dialog_id_of_response(ring_b) == b.id  # type: ignore[arg-type]
    ok = parse_message(
        response_to(INVITE, 200, "leg-a", "<sip:a2@127.0.0.7>", "<sip:p@127.0.0.3;lr>")
    )
    a.on_response(invite, ok)  # type: ignore[arg-type]
    assert a.state is DialogState.CONFIRMED
    assert a.remote_target == SipUri("127.0.0.7", "a2")
    assert [str(r.uri) for r in a.route_set] == ["sip:p@127.0.0.3;lr"]


def test_uas_dialog_keeps_record_route_order_and_checks_cseq() -> None:
    invite = parse_message(INVITE)
    dialog = Dialog.from_request(invite, "bob-tag")  # type: ignore[arg-type]
    assert dialog.id == ("call-1", "bob-tag", "alice-tag") and not dialog.is_uac
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p2@127.0.0.4;lr", "sip:p1@127.0.0.3;lr"]
    assert dialog.remote_target == SipUri("127.0.0.1", "alice", 5060)
    dialog.confirm()
    assert dialog.state is DialogState.CONFIRMED
    bye = dialog.create_request("BYE")
    assert bye.uri_text == "sip:alice@127.0.0.1:5060"
    assert bye.from_.tag == "bob-tag" and bye.to.tag == "alice-tag" and bye.cseq.seq == 1
    reinvite = parse_message(
        INVITE.replace(b"CSeq: 10", b"CSeq: 11")
        .replace(b"To: <sip:bob@127.0.0.2>", b"To: <sip:bob@127.0.0.2>;tag=bob-tag")
        .replace(b"alice@127.0.0.1:5060>", b"alice@127.0.0.1:6000>")
    )
    assert dialog_id_of_request(reinvite) == dialog.id  # type: ignore[arg-type]
    assert dialog.on_request(reinvite) is None  # type: ignore[arg-type]
    assert dialog.remote_target == SipUri("127.0.0.1", "alice", 6000)
    assert dialog.on_request(reinvite) == 500  # type: ignore[arg-type]  # same CSeq again
    assert dialog.remote_seq == 11


def test_response_without_tag_cannot_make_a_dialog() -> None:
    invite = parse_message(INVITE)
    trying = parse_message(response_to(INVITE, 100, "x", "<sip:b@h>").replace(b";tag=x", b""))
    with pytest.raises(LocalProtocolError):
        Dialog.from_response(invite, trying)  # type: ignore[arg-type]
