"""The parse caches of repeated values: one parse per distinct text, errors never remembered."""

import pytest

from engine.sip import ParseError, parse_uri
from engine.sip.fields import parse_name_addr


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
