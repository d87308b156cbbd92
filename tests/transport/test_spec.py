"""ListenSpec: the text form of what to listen on."""

import pytest

from engine.transport.spec import ListenSpec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udp:127.0.0.1:5060", ListenSpec("udp", "127.0.0.1", 5060)),
        ("tcp:[::1]:5070", ListenSpec("tcp", "::1", 5070)),
        ("tls:0.0.0.0:5061", ListenSpec("tls", "0.0.0.0", 5061)),
        ("TCP:[::]:0", ListenSpec("tcp", "::", 0)),
        (" udp:10.0.0.1:65535 ", ListenSpec("udp", "10.0.0.1", 65535)),
    ],
)
def test_parse_good(text: str, expected: ListenSpec) -> None:
    assert ListenSpec.parse(text) == expected


@pytest.mark.parametrize("text", ["udp:127.0.0.1:5060", "tcp:[::1]:5070", "tls:0.0.0.0:0"])
def test_str_gives_the_text_back(text: str) -> None:
    assert str(ListenSpec.parse(text)) == text


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("sctp:127.0.0.1:5060", "'sctp'"),
        ("udp:127.0.0.1:99999", "'99999'"),
        ("udp:127.0.0.1:50x0", "'50x0'"),
        ("udp:127.0.0.1:", "''"),
        ("udp:::1:5060", "'::1'"),
        ("udp:[127.0.0.1]:5060", "'[127.0.0.1]'"),
        ("udp:[::g]:5060", "'[::g]'"),
        ("udp:example.com:5060", "'example.com'"),
        ("udp:127.0.0.1", "'udp:127.0.0.1'"),
        ("127.0.0.1:5060", "'127.0.0.1:5060'"),
        ("", "''"),
    ],
)
def test_parse_bad_names_the_bad_value(text: str, named: str) -> None:
    with pytest.raises(ValueError) as caught:
        ListenSpec.parse(text)
    message = str(caught.value)
    assert named in message
    assert "\n" not in message
    assert "expected" in message


def test_bad_form_shows_the_expected_form() -> None:
    with pytest.raises(ValueError, match=r"expected transport:host:port, e\.g\. udp:127"):
        ListenSpec.parse("udp-127.0.0.1-5060")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("ws", "127.0.0.1", 80), "'ws'"),
        (("udp", "[::1]", 5060), "'[::1]'"),
        (("udp", "127.0.0.1", -1), "-1"),
        (("udp", "127.0.0.1", 70000), "70000"),
    ],
)
def test_constructor_checks_too(args: tuple, named: str) -> None:
    with pytest.raises(ValueError, match=named.replace("[", r"\[")):
        ListenSpec(*args)
