"""SDP answers to offers (RFC 3264), initial offers, hold/resume rewrites, RTP port rotation."""

import pytest

from engine.ua.sdp_answer import (
    OfferError,
    RtpPortAllocator,
    answer_sdp,
    offer_sdp,
    set_direction,
)

#: SIPp's default uac scenario SDP.
SIPP_OFFER = (
    "v=0\r\n"
    "o=user1 53655765 2353687637 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
)


def sdp(*lines: str) -> str:
    return "".join(line + "\r\n" for line in lines)


def offer(*media: str, session: tuple[str, ...] = ()) -> str:
    """An offer from 192.0.2.1 with the given media lines (and session-level attributes)."""
    return sdp(
        "v=0",
        "o=alice 1 1 IN IP4 192.0.2.1",
        "s=call",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        *session,
        *media,
    )


def answer(text: str, **kwargs: object) -> str:
    args: dict[str, object] = {"address": "10.0.0.1", "rtp_port": 20000, "session_id": 7}
    args.update(kwargs)
    return answer_sdp(text, **args)  # type: ignore[arg-type]


def media_sections(text: str) -> list[list[str]]:
    """The lines of each m-section of ``text``."""
    sections: list[list[str]] = []
    for line in text.split("\r\n"):
        if line.startswith("m="):
            sections.append([line])
        elif sections and line:
            sections[-1].append(line)
    return sections


# -- answers ----------------------------------------------------------------------------------


def test_answer_to_sipp_default_offer() -> None:
    assert answer(SIPP_OFFER) == sdp(
        "v=0",
        "o=- 7 7 IN IP4 10.0.0.1",
        "s=-",
        "c=IN IP4 10.0.0.1",
        "t=0 0",
        "m=audio 20000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendrecv",
    )


def test_answer_lines_all_end_with_crlf() -> None:
    text = answer(SIPP_OFFER)
    assert text.endswith("\r\n")
    assert text.count("\n") == text.count("\r\n") == 8
    assert "\r\r" not in text


def test_answer_session_version() -> None:
    assert "o=- 7 42 IN IP4 10.0.0.1\r\n" in answer(SIPP_OFFER, session_version=42)


def test_offer_order_wins_over_our_order() -> None:
    text = offer("m=audio 6000 RTP/AVP 8 0", "a=rtpmap:8 PCMA/8000", "a=rtpmap:0 PCMU/8000")
    assert media_sections(answer(text)) == [
        ["m=audio 20000 RTP/AVP 8", "a=rtpmap:8 PCMA/8000", "a=sendrecv"]
    ]


def test_codecs_filter_skips_offered_codecs_we_lack() -> None:
    text = offer("m=audio 6000 RTP/AVP 18 8 0")
    assert media_sections(answer(text, codecs=("PCMU",)))[0][0] == "m=audio 20000 RTP/AVP 0"
    assert media_sections(answer(text))[0][0] == "m=audio 20000 RTP/AVP 8"


def test_static_payload_types_need_no_rtpmap() -> None:
    assert media_sections(answer(offer("m=audio 6000 RTP/AVP 9 0"))) == [
        ["m=audio 20000 RTP/AVP 9", "a=rtpmap:9 G722/8000", "a=sendrecv"]
    ]


def test_dynamic_payload_without_rtpmap_is_skipped() -> None:
    text = offer("m=audio 6000 RTP/AVP 96 8")
    assert media_sections(answer(text))[0][0] == "m=audio 20000 RTP/AVP 8"


def test_codec_names_compare_case_insensitively() -> None:
    text = offer("m=audio 6000 RTP/AVP 111 0", "a=rtpmap:111 OPUS/48000/2")
    assert media_sections(answer(text, codecs=("opus",))) == [
        ["m=audio 20000 RTP/AVP 111", "a=rtpmap:111 OPUS/48000/2", "a=sendrecv"]
    ]


def test_telephone_event_kept_with_its_fmtp() -> None:
    text = offer(
        "m=audio 6000 RTP/AVP 0 8 101",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-15",
        "a=ptime:20",
    )
    assert media_sections(answer(text)) == [
        [
            "m=audio 20000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=ptime:20",
            "a=sendrecv",
        ]
    ]


def test_telephone_event_dropped_when_we_do_not_list_it() -> None:
    text = offer("m=audio 6000 RTP/AVP 0 101", "a=rtpmap:101 telephone-event/8000")
    assert media_sections(answer(text, codecs=("PCMU",)))[0][0] == "m=audio 20000 RTP/AVP 0"


def test_telephone_event_at_the_codec_rate_is_preferred() -> None:
    text = offer(
        "m=audio 6000 RTP/AVP 111 110 101",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 useinbandfec=1",
        "a=rtpmap:110 telephone-event/8000",
        "a=rtpmap:101 telephone-event/48000",
    )
    assert media_sections(answer(text)) == [
        [
            "m=audio 20000 RTP/AVP 111 101",
            "a=rtpmap:111 opus/48000/2",
            "a=rtpmap:101 telephone-event/48000",
            "a=fmtp:111 useinbandfec=1",
            "a=sendrecv",
        ]
    ]


def test_telephone_event_alone_is_no_common_codec() -> None:
    text = offer("m=audio 6000 RTP/AVP 101", "a=rtpmap:101 telephone-event/8000")
    with pytest.raises(
        OfferError, match=r"^no common audio codec: the offer has RTP/AVP telephone"
    ):
        answer(text)


def test_video_and_second_audio_rejected_in_order() -> None:
    text = offer(
        "m=video 5000 RTP/AVP 96 97",
        "a=rtpmap:96 H264/90000",
        "a=rtpmap:97 VP8/90000",
        "m=audio 6000 RTP/AVP 0",
        "m=audio 6002 RTP/AVP 8",
        "m=application 7000 UDP/BFCP *",
    )
    assert media_sections(answer(text)) == [
        ["m=video 0 RTP/AVP 96"],
        ["m=audio 20000 RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=sendrecv"],
        ["m=audio 0 RTP/AVP 8"],
        ["m=application 0 UDP/BFCP *"],
    ]


def test_audio_without_common_codec_rejected_and_next_audio_accepted() -> None:
    text = offer("m=audio 6000 RTP/AVP 18", "m=audio 6002 RTP/AVP 8")
    assert [s[0] for s in media_sections(answer(text))] == [
        "m=audio 0 RTP/AVP 18",
        "m=audio 20000 RTP/AVP 8",
    ]


def test_audio_offered_with_port_zero_stays_rejected() -> None:
    text = offer("m=audio 0 RTP/AVP 0", "m=audio 6002 RTP/AVP 0")
    assert [s[0] for s in media_sections(answer(text))] == [
        "m=audio 0 RTP/AVP 0",
        "m=audio 20000 RTP/AVP 0",
    ]


def test_srtp_audio_is_refused() -> None:
    text = offer(
        "m=audio 6000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR",
    )
    with pytest.raises(OfferError) as info:
        answer(text)
    assert str(info.value) == (
        "no common audio codec: the offer has RTP/SAVP PCMU; "
        "we accept PCMU, PCMA, G722, opus, telephone-event over RTP/AVP"
    )


@pytest.mark.parametrize(
    ("media_attr", "session_attr", "expected"),
    [
        ("a=sendonly", None, "a=recvonly"),
        ("a=recvonly", None, "a=sendonly"),
        ("a=inactive", None, "a=inactive"),
        ("a=sendrecv", None, "a=sendrecv"),
        (None, None, "a=sendrecv"),
        (None, "a=sendonly", "a=recvonly"),
        ("a=sendrecv", "a=inactive", "a=sendrecv"),
    ],
)
def test_direction_mirrored(
    media_attr: str | None, session_attr: str | None, expected: str
) -> None:
    media = ["m=audio 6000 RTP/AVP 0"] + ([media_attr] if media_attr else [])
    text = offer(*media, session=(session_attr,) if session_attr else ())
    result = answer(text)
    assert media_sections(result)[0][-1] == expected
    assert result.count("a=") == 2  # the rtpmap and one direction, at media level only


def test_rfc2543_hold_address_counts_as_sendonly() -> None:
    text = offer("m=audio 6000 RTP/AVP 0").replace("c=IN IP4 192.0.2.1", "c=IN IP4 0.0.0.0")
    result = answer(text)
    assert media_sections(result)[0][-1] == "a=recvonly"
    assert "c=IN IP4 10.0.0.1\r\n" in result


def test_ipv6_address_gives_ip6() -> None:
    result = answer(SIPP_OFFER, address="2001:db8::5")
    assert result.startswith(
        sdp("v=0", "o=- 7 7 IN IP6 2001:db8::5", "s=-", "c=IN IP6 2001:db8::5")
    )
    assert "c=IN IP6 2001:db8::5\r\n" in answer(SIPP_OFFER, address="[2001:db8::5]")


def test_media_level_connection_is_enough() -> None:
    text = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.1",
        "s=-",
        "t=0 0",
        "m=audio 6000 RTP/AVP 0",
        "c=IN IP4 192.0.2.9",
    )
    assert media_sections(answer(text))[0][0] == "m=audio 20000 RTP/AVP 0"


def test_answer_to_our_own_offer() -> None:
    ours = offer_sdp(address="192.0.2.1", rtp_port=4000, session_id=3)
    assert media_sections(answer(ours)) == [
        [
            "m=audio 20000 RTP/AVP 0 101",
            "a=rtpmap:0 PCMU/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-16",
            "a=sendrecv",
        ]
    ]


def test_no_common_codec_message() -> None:
    with pytest.raises(OfferError) as info:
        answer(offer("m=audio 6000 RTP/AVP 18 4"), codecs=("PCMU", "PCMA"))
    assert str(info.value) == (
        "no common audio codec: the offer has RTP/AVP G729 G723; we accept PCMU, PCMA over RTP/AVP"
    )


def test_no_audio_at_all() -> None:
    with pytest.raises(OfferError) as info:
        answer(offer("m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000"))
    assert str(info.value) == (
        "no common audio codec: the offer has no audio stream; "
        "we accept PCMU, PCMA, G722, opus, telephone-event over RTP/AVP"
    )
    with pytest.raises(OfferError, match="no audio stream"):
        answer(offer())


def test_offer_error_is_a_value_error() -> None:
    assert issubclass(OfferError, ValueError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "malformed offer: it does not begin with v=0"),
        ("hello world", "malformed offer: it does not begin with v=0"),
        ("\x00\xff\r\n", "malformed offer: it does not begin with v=0"),
        (SIPP_OFFER.replace("v=0", "v=1"), "malformed offer: it does not begin with v=0"),
        (sdp("v=0", "s=-", "m=audio 6000 RTP/AVP 0"), "malformed offer: no valid o= line"),
        (
            SIPP_OFFER.replace("o=user1 53655765 2353687637 IN IP4", "o=user1 IN IP4"),
            "malformed offer: no valid o= line",
        ),
        (
            SIPP_OFFER.replace("m=audio 6000", "m=audio sixk"),
            "malformed offer: m-line 1 is not 'type port proto fmt'",
        ),
        (
            SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP"),
            "malformed offer: m-line 1 is not 'type port proto fmt'",
        ),
        (
            SIPP_OFFER.replace("RTP/AVP 0", "RTP/AVP 0 x8"),
            "malformed offer: m-line 1 has a non-numeric payload",
        ),
        (
            SIPP_OFFER.replace("c=IN IP4 127.0.0.1\r\n", ""),
            "malformed offer: no c= line for m-line 1",
        ),
    ],
)
def test_malformed_offer(text: str, message: str) -> None:
    with pytest.raises(OfferError) as info:
        answer(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rtp_port": 0}, "bad RTP port 0"),
        ({"rtp_port": 65536}, "bad RTP port 65536"),
        ({"session_id": -1}, "bad session_id -1: need an integer >= 0"),
    ],
)
def test_bad_local_arguments(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as info:
        answer(SIPP_OFFER, **kwargs)
    assert str(info.value) == message
    assert not isinstance(info.value, OfferError)


# -- offers and direction rewrites -------------------------------------------------------------


def test_offer_default() -> None:
    assert offer_sdp(address="192.0.2.1", rtp_port=4000, session_id=5) == sdp(
        "v=0",
        "o=- 5 5 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0 8 101",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=rtpmap:101 telephone-event/8000",
        "a=fmtp:101 0-16",
        "a=sendrecv",
    )


def test_offer_with_opus_ipv6_and_direction() -> None:
    text = offer_sdp(
        address="::1",
        rtp_port=4002,
        session_id=9,
        session_version=10,
        codecs=("opus", "g722", "PCMU", "opus"),
        direction="sendonly",
    )
    assert text == sdp(
        "v=0",
        "o=- 9 10 IN IP6 ::1",
        "s=-",
        "c=IN IP6 ::1",
        "t=0 0",
        "m=audio 4002 RTP/AVP 111 9 0",
        "a=rtpmap:111 opus/48000/2",
        "a=rtpmap:9 G722/8000",
        "a=rtpmap:0 PCMU/8000",
        "a=sendonly",
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"codecs": ("AMR",)}, "unknown codec 'AMR'; known: pcmu, gsm, pcma, g722, g729, "),
        ({"codecs": ("telephone-event",)}, "an offer needs at least one voice codec besides"),
        ({"codecs": ()}, "an offer needs at least one voice codec besides"),
        ({"direction": "hold"}, "bad direction 'hold': use one of sendrecv, sendonly, recvonly"),
    ],
)
def test_bad_offer_arguments(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"address": "192.0.2.1", "rtp_port": 4000, "session_id": 1}
    with pytest.raises(ValueError) as info:
        offer_sdp(**{**args, **kwargs})  # type: ignore[arg-type]
    assert str(info.value).startswith(message)


def test_hold_and_resume_rewrite_direction_and_bump_version() -> None:
    ours = offer_sdp(address="192.0.2.1", rtp_port=4000, session_id=5, codecs=("PCMU",))
    held = set_direction(ours, "sendonly")
    assert held == sdp(
        "v=0",
        "o=- 5 6 IN IP4 192.0.2.1",
        "s=-",
        "c=IN IP4 192.0.2.1",
        "t=0 0",
        "m=audio 4000 RTP/AVP 0",
        "a=rtpmap:0 PCMU/8000",
        "a=sendonly",
    )
    resumed = set_direction(held, "sendrecv")
    assert resumed == ours.replace("o=- 5 5 ", "o=- 5 7 ")


def test_set_direction_on_every_live_media_and_drops_session_level() -> None:
    text = offer(
        "m=audio 6000 RTP/AVP 0",
        "a=recvonly",
        "m=audio 0 RTP/AVP 8",
        "m=video 5000 RTP/AVP 96",
        "a=rtpmap:96 H264/90000",
        session=("a=sendrecv",),
    )
    result = set_direction(text, "inactive")
    assert "o=alice 1 2 IN IP4 192.0.2.1\r\n" in result
    assert media_sections(result) == [
        ["m=audio 6000 RTP/AVP 0", "a=inactive"],
        ["m=audio 0 RTP/AVP 8"],
        ["m=video 5000 RTP/AVP 96", "a=rtpmap:96 H264/90000", "a=inactive"],
    ]
    assert result.count("a=inactive") == 2
    assert "a=sendrecv" not in result


def test_set_direction_errors() -> None:
    with pytest.raises(ValueError, match=r"^bad direction 'hold'"):
        set_direction(SIPP_OFFER, "hold")
    with pytest.raises(OfferError, match=r"^malformed session description: it does not begin"):
        set_direction("junk", "sendonly")


# -- RTP ports --------------------------------------------------------------------------------


def test_port_allocator_rotates_even_ports() -> None:
    ports = RtpPortAllocator(10000, 10005)
    assert [ports.next() for _ in range(7)] == [10000, 10002, 10004, 10000, 10002, 10004, 10000]
    assert len(ports) == 3


def test_port_allocator_rounds_odd_bounds_inwards() -> None:
    ports = RtpPortAllocator(10001, 10006)
    assert [ports.next() for _ in range(4)] == [10002, 10004, 10006, 10002]
    assert (ports.first, ports.last) == (10002, 10006)


def test_port_allocator_single_port() -> None:
    ports = RtpPortAllocator(10001, 10002)
    assert [ports.next() for _ in range(3)] == [10002, 10002, 10002]


def test_port_allocators_are_independent_and_deterministic() -> None:
    a, b = RtpPortAllocator(20000, 20010), RtpPortAllocator(20000, 20010)
    a.next()
    assert (a.next(), b.next()) == (20002, 20000)


@pytest.mark.parametrize(
    ("first", "last", "message"),
    [
        (10001, 10001, "RTP port range 10001-10001 holds no even port"),
        (65535, 65535, "RTP port range 65535-65535 holds no even port"),
        (10010, 10000, "bad RTP port range 10010-10000: need 1 <= first <= last <= 65535"),
        (0, 100, "bad RTP port range 0-100: need 1 <= first <= last <= 65535"),
        (60000, 70000, "bad RTP port range 60000-70000: need 1 <= first <= last <= 65535"),
    ],
)
def test_port_allocator_range_errors(first: int, last: int, message: str) -> None:
    with pytest.raises(ValueError) as info:
        RtpPortAllocator(first, last)
    assert str(info.value) == message
