"""The parse memo: one parse per distinct text, errors never remembered, bounded."""

import pytest

from engine.sip import ParseError, parse_uri
from engine.sip.fields import parse_name_addr
from engine.sip.memo import memoized


def test_a_text_seen_before_gives_the_same_parsed_object() -> None:
    assert parse_uri("sip:carol@192.0.2.7:5070") is parse_uri("sip:carol@192.0.2.7:5070")
    first = parse_name_addr('"Carol" <sip:carol@192.0.2.7>;tag=9')
    assert first is parse_name_addr('"Carol" <sip:carol@192.0.2.7>;tag=9')
    assert first.tag == "9" and first.display == "Carol"


def test_errors_are_raised_every_time_in_the_callers_words() -> None:
    with pytest.raises(ParseError, match="in From"):
        parse_name_addr("<sip:alice@host", "From")
    with pytest.raises(ParseError, match="in To"):
        parse_name_addr("<sip:alice@host", "To")


def test_the_memo_is_bounded_and_starts_again_when_full() -> None:
    calls: list[str] = []

    def parse(text: str) -> str:
        calls.append(text)
        return text.upper()

    lookup = memoized(parse, limit=3)
    assert [lookup(t) for t in ("a", "b", "a", "c")] == ["A", "B", "A", "C"]
    assert calls == ["a", "b", "c"]
    lookup("d")  # full: forgets everything, then keeps d
    lookup("a")
    assert calls == ["a", "b", "c", "d", "a"]
    lookup("d")
    assert calls[-1] == "a"
