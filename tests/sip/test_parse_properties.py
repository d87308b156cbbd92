"""Property tests: hostile bytes only ever raise ParseError; generated messages round-trip."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.sip import Headers, ParseError, Request, Response, StreamFramer, parse_message
from engine.sip.headers import header_key
from engine.sip.validate import answer_without_dialog, response_is_acceptable, validate_request

SEED = (
    b"INVITE sip:bob@127.0.0.1:5060;transport=udp SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1;rport\r\n"
    b'From: "Alice" <sip:alice@127.0.0.1:5061>;tag=a1\r\n'
    b"To: <sip:bob@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"
    b"Contact: <sip:alice@127.0.0.1:5061>\r\nRoute: <sip:p@127.0.0.1;lr>\r\n"
    b"Require: 100rel\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\n"
    b"Content-Length: 4\r\n\r\nv=0\n"
)
TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~",
    min_size=1,
    max_size=12,
)


def exercise(data: bytes) -> None:
    """Parse and touch everything the engine would; only ParseError may come out."""
    try:
        message = parse_message(data)
    except ParseError:
        return
    if isinstance(message, Request):
        if validate_request(message) is None:
            answer_without_dialog(message)
            message.contacts()
            message.routes()
    else:
        response_is_acceptable(message)
    message.to_bytes()


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_parse_errors(data: bytes) -> None:
    exercise(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEED)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.binary(min_size=1, max_size=4)
            | st.sampled_from(
                [b"\r\n", b";", b",", b"<", b">", b'"', b":", b" ", b"\x00", b"%", b"[", b"\r\n "]
            )
        )
        if kind == "insert":
            data[pos:pos] = chunk
        elif kind == "delete":
            del data[pos : pos + len(chunk)]
        else:
            data[pos : pos + len(chunk)] = chunk
    return bytes(data)


@settings(max_examples=3000, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_messages_raise_only_parse_errors(data: bytes) -> None:
    exercise(data)


@settings(max_examples=300)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=30))
def test_stream_pieces_do_not_change_the_frames(cuts: list[int]) -> None:
    stream = SEED + b"\r\n\r\n" + SEED.replace(b"CSeq: 1", b"CSeq: 2")
    framer = StreamFramer()
    frames, pos = [], 0
    for size in cuts * (len(stream) // sum(cuts) + 1):
        frames.extend(framer.feed(stream[pos : pos + size]))
        pos += size
        if pos >= len(stream):
            break
    assert [parse_message(f).cseq.seq for f in frames] == [1, 2]


USER = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.!~*'", min_size=1, max_size=12)
RESERVED = {header_key(n) for n in ("via", "from", "to", "call-id", "cseq", "content-length", "l")}
VALUE = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs", "Cc", "Zl", "Zp"), blacklist_characters="\x85"
    ),
    max_size=30,
).map(str.strip)


@st.composite
def messages(draw: st.DrawFn) -> Request | Response:
    user, host = draw(USER), draw(st.sampled_from(["127.0.0.1", "example.com", "[::1]"]))
    port = draw(st.none() | st.integers(1, 65535))
    hostport = host if port is None else f"{host}:{port}"
    method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS", "INFO"]) | TOKEN)
    headers = Headers(
        [
            ("Via", f"SIP/2.0/UDP {hostport};branch=z9hG4bK{draw(TOKEN)}"),
            ("From", f'"{draw(TOKEN)}" <sip:{user}@{hostport}>;tag={draw(TOKEN)}'),
            ("To", f"<sip:{draw(USER)}@{hostport}>"),
            ("Call-ID", draw(TOKEN)),
            ("CSeq", f"{draw(st.integers(0, 2**32 - 1))} {method}"),
        ]
    )
    for name, value in draw(st.lists(st.tuples(TOKEN, VALUE), max_size=8)):
        if header_key(name) not in RESERVED:
            headers.add(name, value)
    body = draw(st.binary(max_size=200))
    if draw(st.booleans()):
        message: Request | Response = Request(method, f"sip:{user}@{hostport}", headers)
    else:
        status = draw(st.integers(100, 699))
        message = Response(status, draw(VALUE), headers)
    message.set_body(body, "application/octet-stream" if body else None)
    return message


@settings(max_examples=800)
@given(messages())
def test_generated_messages_round_trip(message: Request | Response) -> None:
    data = message.to_bytes()
    parsed = parse_message(data)
    assert parsed == message
    assert parsed.to_bytes() == data
    framer = StreamFramer()
    assert framer.feed(data) == [data]
