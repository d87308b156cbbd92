"""The incoming-call policy: rule matching, shortcuts, configuration errors, body templates."""

import re
import tomllib

import pytest

from engine.sip import LocalProtocolError, Request, parse_message
from engine.sip.target import Target
from engine.ua.policy import (
    MANUAL,
    AutoReply,
    ConfigError,
    IncomingPolicy,
    Rule,
    render_template,
    shortcut_rule,
)

SOURCE = Target("udp", "127.0.0.1", 5060)


def invite(
    ruri: str = "sip:support@example.com",
    from_: str = '"Alice" <sip:alice@example.org>;tag=a1',
    to: str = "<sip:support@example.com>",
    extra: tuple[str, ...] = (),
) -> Request:
    lines = [
        f"INVITE {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1",
        "Max-Forwards: 70",
        f"From: {from_}",
        f"To: {to}",
        "Call-ID: call-1@example.org",
        "CSeq: 1 INVITE",
        "Contact: <sip:alice@127.0.0.1:5060>",
        *extra,
        "Content-Length: 0",
    ]
    message = parse_message(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(message, Request)
    return message


def rule(name: str, **patterns: str) -> Rule:
    """A session rule; keyword ``header_X_Y`` stands for field ``header:X-Y``."""
    matchers = tuple(
        (
            "header:" + field[len("header_") :].replace("_", "-")
            if field.startswith("header_")
            else field,
            re.compile(pattern),
        )
        for field, pattern in patterns.items()
    )
    return Rule(name, matchers)


def chosen(policy_rule: Rule, request: Request, source: Target = SOURCE) -> str:
    return IncomingPolicy((policy_rule,), Rule("fallback")).decide(request, source).name


# -- matching ---------------------------------------------------------------------------------


def test_first_matching_rule_wins_and_order_matters() -> None:
    a = rule("a", ruri_user="^support$")
    b = rule("b", ruri="example\\.com")
    request = invite()
    assert IncomingPolicy((a, b)).decide(request, SOURCE).name == "a"
    assert IncomingPolicy((b, a)).decide(request, SOURCE).name == "b"


def test_later_rule_chosen_when_earlier_does_not_match() -> None:
    policy = IncomingPolicy((rule("sales", ruri_user="^sales$"), rule("support", to="support")))
    assert policy.decide(invite(), SOURCE).name == "support"


def test_default_rule_when_nothing_matches() -> None:
    policy = IncomingPolicy((rule("sales", ruri_user="^sales$"),))
    assert policy.decide(invite(), SOURCE) is MANUAL
    assert policy.default.replies == (AutoReply(180, "Ringing"),)
    other = IncomingPolicy((), Rule("mine"))
    assert other.decide(invite(), SOURCE).name == "mine"


def test_every_matcher_of_a_rule_must_match() -> None:
    both = rule("both", ruri_user="^support$", header_X_Priority="urgent")
    assert chosen(both, invite(extra=("X-Priority: urgent",))) == "both"
    assert chosen(both, invite(extra=("X-Priority: low",))) == "fallback"
    assert chosen(both, invite(ruri="sip:sales@example.com", extra=("X-Priority: urgent",))) == (
        "fallback"
    )


def test_rule_without_matchers_matches_everything() -> None:
    assert chosen(Rule("any"), invite()) == "any"


def test_ruri_is_the_request_uri_as_written() -> None:
    r = rule("r", ruri="^sip:support@example\\.com;user=phone$")
    assert chosen(r, invite(ruri="sip:support@example.com;user=phone")) == "r"
    assert chosen(r, invite(ruri="sip:support@example.com")) == "fallback"


def test_ruri_user_is_unescaped() -> None:
    r = rule("r", ruri_user="^support$")
    assert chosen(r, invite(ruri="sip:%73upport@example.com")) == "r"
    assert chosen(r, invite(ruri="sip:supporter@example.com")) == "fallback"


def test_ruri_user_search_semantics() -> None:
    r = rule("r", ruri_user="44")
    assert chosen(r, invite(ruri="sip:+4420123@example.com")) == "r"
    assert chosen(r, invite(ruri="sip:+3320123@example.com")) == "fallback"


def test_ruri_user_of_tel_uri_is_its_number() -> None:
    r = rule("r", ruri_user="^\\+4420123$")
    assert chosen(r, invite(ruri="tel:+4420123")) == "r"


def test_ruri_without_user_never_matches_ruri_user() -> None:
    r = rule("r", ruri_user="^$")
    assert chosen(r, invite(ruri="sip:example.com")) == "fallback"
    assert chosen(r, invite(ruri="urn:service:sos")) == "fallback"


def test_from_and_to_are_the_header_values_as_written() -> None:
    r = rule("r", **{"from": '^"Alice" <sip:alice@example\\.org>;tag=a1$'})
    assert chosen(r, invite()) == "r"
    assert chosen(r, invite(from_="<sip:alice@example.org>;tag=a1")) == "fallback"
    t = rule("t", to="^<sip:support@example\\.com>$")
    assert chosen(t, invite()) == "t"
    assert chosen(t, invite(to="<sip:sales@example.com>")) == "fallback"


def test_from_matches_compact_header_form() -> None:
    request = parse_message(
        b"INVITE sip:bob@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-2\r\n"
        b"f: <sip:carol@example.net>;tag=c\r\n"
        b"t: <sip:bob@example.com>\r\n"
        b"i: call-2\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"l: 0\r\n\r\n"
    )
    assert isinstance(request, Request)
    assert chosen(rule("r", **{"from": "carol@"}), request) == "r"


def test_source_matches_ip_port_and_plain_ip() -> None:
    with_port = rule("p", source="^127\\.0\\.0\\.9:5070$")
    plain = rule("i", source="^127\\.0\\.0\\.9$")
    peer = Target("udp", "127.0.0.9", 5070)
    assert chosen(with_port, invite(), peer) == "p"
    assert chosen(plain, invite(), peer) == "i"
    assert chosen(with_port, invite(), Target("udp", "127.0.0.9", 5060)) == "fallback"
    assert chosen(plain, invite(), SOURCE) == "fallback"


def test_source_ipv6_is_bracketed_with_port() -> None:
    peer = Target("udp", "2001:db8::1", 5060)
    assert chosen(rule("p", source="^\\[2001:db8::1\\]:5060$"), invite(), peer) == "p"
    assert chosen(rule("i", source="^2001:db8::1$"), invite(), peer) == "i"


def test_header_match_is_case_insensitive_on_the_name() -> None:
    r = rule("r", **{"header:x-priority": "^urgent$"})
    assert chosen(r, invite(extra=("X-PRIORITY: urgent",))) == "r"


def test_header_match_uses_the_first_line() -> None:
    r = rule("r", header_Subject="^second$")
    request = invite(extra=("Subject: first", "Subject: second"))
    assert chosen(r, request) == "fallback"
    assert chosen(rule("r", header_Subject="^first$"), request) == "r"


def test_missing_header_never_matches() -> None:
    assert chosen(rule("r", header_X_Missing="^$"), invite()) == "fallback"
    assert chosen(rule("r", header_X_Missing=".*"), invite()) == "fallback"
    assert chosen(rule("r", header_X_Empty="^$"), invite(extra=("X-Empty: ",))) == "r"


def test_rule_matches_method() -> None:
    r = rule("r", ruri_user="^support$")
    assert r.matches(invite(), SOURCE) is True
    assert r.matches(invite(ruri="sip:x@example.com"), SOURCE) is False


# -- shortcuts --------------------------------------------------------------------------------


def test_shortcut_manual() -> None:
    policy = IncomingPolicy.from_shortcut("manual")
    assert policy.rules == ()
    assert policy.default == Rule("manual", replies=(AutoReply(180, "Ringing"),))
    assert policy.default.action == "session"


def test_shortcut_auto_answer() -> None:
    default = IncomingPolicy.from_shortcut("auto-answer").default
    assert default.action == "session"
    assert default.replies == (
        AutoReply(200, "OK", content_type="application/sdp", answer_offer=True),
    )


def test_shortcut_reject_with_standard_reason() -> None:
    default = IncomingPolicy.from_shortcut("reject:486").default
    assert (default.action, default.reject_code, default.reject_reason) == (
        "reject",
        486,
        "Busy Here",
    )
    assert default.replies == ()


def test_shortcut_reject_with_own_reason() -> None:
    default = shortcut_rule("reject:603:Not Today: Really")
    assert (default.reject_code, default.reject_reason) == (603, "Not Today: Really")


VALID_FORMS = ': use "manual", "auto-answer", "reject:CODE" or "reject:CODE:REASON" (CODE 300-699)'


@pytest.mark.parametrize(
    "text",
    ["", "auto", "Manual", "reject", "reject:", "reject:48", "reject:200", "reject:700",
     "reject:4866", "reject:abc", "reject:486:", "reject:486:\r\nX: y", "answer:486"],
)  # fmt: skip
def test_bad_shortcut(text: str) -> None:
    with pytest.raises(ValueError) as info:
        IncomingPolicy.from_shortcut(text)
    message = str(info.value)
    assert "\n" not in message
    assert message.endswith(VALID_FORMS)
    assert message.startswith("bad incoming policy ")


def test_bad_shortcut_message_exact() -> None:
    with pytest.raises(ValueError, match=r'^bad incoming policy "reject:200": use ') as info:
        shortcut_rule("reject:200")
    assert str(info.value) == 'bad incoming policy "reject:200"' + VALID_FORMS


# -- configuration ----------------------------------------------------------------------------

EXAMPLE = r"""
[incoming]
default = "manual"
[[incoming.rule]]
name = "support line"
match = { ruri_user = "^support$", "header:X-Priority" = "urgent" }
action = "session"
flags = "bh"
replies = [ { code = 180 }, { code = 200, answer_offer = true } ]
[[incoming.rule]]
name = "block"
match = { source = "^127\\.0\\.0\\.9" }
action = "reject"
code = 403
reason = "Forbidden"
"""


def test_config_example() -> None:
    policy = IncomingPolicy.from_config(tomllib.loads(EXAMPLE))
    support, block = policy.rules
    assert support == Rule(
        "support line",
        (("ruri_user", re.compile("^support$")), ("header:X-Priority", re.compile("urgent"))),
        "session",
        "bh",
        (AutoReply(180, "Ringing"), AutoReply(200, "OK", None, "application/sdp", True)),
    )
    assert block == Rule(
        "block",
        (("source", re.compile("^127\\.0\\.0\\.9")),),
        "reject",
        reject_code=403,
        reject_reason="Forbidden",
    )
    assert policy.default == MANUAL
    urgent = invite(extra=("X-Priority: urgent",))
    assert policy.decide(urgent, SOURCE).name == "support line"
    assert policy.decide(invite(), Target("udp", "127.0.0.9", 5060)).name == "block"
    assert policy.decide(invite(), SOURCE).name == "manual"


def test_config_without_incoming_table_is_manual() -> None:
    policy = IncomingPolicy.from_config({"engine": {"port": 5060}})
    assert policy == IncomingPolicy((), MANUAL)


def test_config_default_shortcut() -> None:
    policy = IncomingPolicy.from_config(tomllib.loads('[incoming]\ndefault = "reject:480"\n'))
    assert (policy.default.reject_code, policy.default.reject_reason) == (
        480,
        "Temporarily Unavailable",
    )


def test_config_rule_defaults() -> None:
    policy = IncomingPolicy.from_config(
        tomllib.loads(
            '[[incoming.rule]]\naction = "session"\n'
            '[[incoming.rule]]\naction = "reject"\ncode = 404\n'
        )
    )
    first, second = policy.rules
    assert first == Rule("rule[0]")
    assert (second.name, second.reject_code, second.reject_reason) == ("rule[1]", 404, "Not Found")


def test_config_reply_body_and_content_type() -> None:
    policy = IncomingPolicy.from_config(
        tomllib.loads(
            '[[incoming.rule]]\naction = "session"\n'
            'replies = [{ code = 183, body = "v=0\\no={session_id}\\n" },'
            ' { code = 200, reason = "Fine", body = "hi", content_type = "text/plain" }]\n'
        )
    )
    early, final = policy.rules[0].replies
    assert early == AutoReply(183, "Session Progress", "v=0\no={session_id}\n", "application/sdp")
    assert final == AutoReply(200, "Fine", "hi", "text/plain")


BASE = '[[incoming.rule]]\nname = "r"\naction = "session"\n'
REJECT = '[[incoming.rule]]\naction = "reject"\ncode = 486\n'


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("incoming = 3\n", "incoming: must be a table, not 3"),
        (
            "[incoming]\ncolour = 1\n",
            "incoming.colour: unknown key (known: default, rule)",
        ),
        (
            '[incoming]\ndefault = "answer"\n',
            'incoming.default: bad incoming policy "answer"' + VALID_FORMS,
        ),
        ("[incoming]\ndefault = 486\n", "incoming.default: must be a string, not 486"),
        (
            "[incoming]\nrule = 1\n",
            "incoming.rule: must be an array of tables ([[incoming.rule]])",
        ),
        ("[incoming]\nrule = [1]\n", "incoming.rule[0]: must be a table, not 1"),
        (
            BASE + "colour = 1\n",
            "incoming.rule[0].colour: unknown key "
            "(known: name, match, action, flags, replies, code, reason)",
        ),
        (
            '[[incoming.rule]]\nname = "r"\n',
            'incoming.rule[0].action: missing (it is "session" or "reject")',
        ),
        (
            BASE + REJECT.replace('"reject"', '"answer"'),
            'incoming.rule[1].action: must be "session" or "reject", not "answer"',
        ),
        (
            "[[incoming.rule]]\naction = 1\n",
            'incoming.rule[0].action: must be "session" or "reject", not 1',
        ),
        (
            '[[incoming.rule]]\nname = 5\naction = "session"\n',
            "incoming.rule[0].name: must be a string, not 5",
        ),
        (BASE + "match = 1\n", "incoming.rule[0].match: must be a table, not 1"),
        (
            BASE + REJECT + 'match = { ruri_user = "(" }\n',
            "incoming.rule[1].match.ruri_user: bad regular expression: "
            "missing ), unterminated subpattern at position 0",
        ),
        (
            BASE + 'match = { "header:X-Priority" = "[" }\n',
            'incoming.rule[0].match."header:X-Priority": bad regular expression: '
            "unterminated character set at position 0",
        ),
        (
            BASE + 'match = { user = "x" }\n',
            'incoming.rule[0].match.user: unknown match field "user" '
            "(use ruri, ruri_user, from, to, source, account or header:NAME)",
        ),
        (
            BASE + 'match = { "header:" = "x" }\n',
            'incoming.rule[0].match."header:": unknown match field "header:" '
            "(use ruri, ruri_user, from, to, source, account or header:NAME)",
        ),
        (
            BASE + 'match = { "header:X Y" = "x" }\n',
            'incoming.rule[0].match."header:X Y": unknown match field "header:X Y" '
            "(use ruri, ruri_user, from, to, source, account or header:NAME)",
        ),
        (
            BASE + "match = { ruri = 1 }\n",
            "incoming.rule[0].match.ruri: must be a string (a regular expression), not 1",
        ),
        (BASE + "flags = 1\n", "incoming.rule[0].flags: must be a string, not 1"),
        (
            BASE + 'flags = "bxz"\n',
            'incoming.rule[0].flags: unknown flag letter(s) "xz"; known: t<N>, a, r, d, h, b, n',
        ),
        (
            BASE + "replies = { code = 180 }\n",
            "incoming.rule[0].replies: must be an array of tables, not dict",
        ),
        (BASE + "replies = [180]\n", "incoming.rule[0].replies[0]: must be a table, not 180"),
        (
            BASE + "replies = [{ code = 180 }, { status = 200 }]\n",
            "incoming.rule[0].replies[1].status: unknown key "
            "(known: code, reason, body, content_type, answer_offer)",
        ),
        (
            BASE + "replies = [{ reason = 'x' }]\n",
            "incoming.rule[0].replies[0].code: missing (a status code from 100 to 699)",
        ),
        (
            BASE + "replies = [{ code = '180' }]\n",
            'incoming.rule[0].replies[0].code: must be an integer, not "180"',
        ),
        (
            BASE + "replies = [{ code = true }]\n",
            "incoming.rule[0].replies[0].code: must be an integer, not true",
        ),
        (
            BASE + "replies = [{ code = 99 }]\n",
            "incoming.rule[0].replies[0].code: must be from 100 to 699, not 99",
        ),
        (
            BASE + "replies = [{ code = 180 }, { code = 700 }]\n",
            "incoming.rule[0].replies[1].code: must be from 100 to 699, not 700",
        ),
        (
            BASE + "replies = [{ code = 180, reason = 1 }]\n",
            "incoming.rule[0].replies[0].reason: must be a string, not 1",
        ),
        (
            BASE + 'replies = [{ code = 180, reason = "a\\r\\nb" }]\n',
            "incoming.rule[0].replies[0].reason: must not hold CR, LF or NUL",
        ),
        (
            BASE + "replies = [{ code = 200, answer_offer = 1 }]\n",
            "incoming.rule[0].replies[0].answer_offer: must be true or false, not 1",
        ),
        (
            BASE + 'replies = [{ code = 200, answer_offer = true, body = "v=0" }]\n',
            'incoming.rule[0].replies[0].answer_offer: cannot go with "body": '
            "the offer decides the answer",
        ),
        (
            BASE + "replies = [{ code = 486, answer_offer = true }]\n",
            "incoming.rule[0].replies[0].answer_offer: an SDP answer cannot go in a 486 reply",
        ),
        (
            BASE + 'replies = [{ code = 200, content_type = "text/plain" }]\n',
            'incoming.rule[0].replies[0].content_type: only with "body" or "answer_offer"',
        ),
        (
            BASE + 'replies = [{ code = 200, body = "x", content_type = "text" }]\n',
            "incoming.rule[0].replies[0].content_type: "
            'must be a media type such as text/plain, not "text"',
        ),
        (
            BASE + 'replies = [{ code = 200, answer_offer = true, content_type = "text/plain" }]\n',
            "incoming.rule[0].replies[0].content_type: an SDP answer is application/sdp",
        ),
        (
            BASE + "replies = [{ code = 200 }, { code = 180 }]\n",
            "incoming.rule[0].replies[0]: a final reply (200) must be the last one",
        ),
        (
            BASE + "code = 486\n",
            'incoming.rule[0].code: only a reject rule has one (a session rule uses "replies")',
        ),
        (
            BASE + 'reason = "Busy"\n',
            "incoming.rule[0].reason: only a reject rule has a reason",
        ),
        (
            '[[incoming.rule]]\naction = "reject"\n',
            "incoming.rule[0].code: a reject rule needs a code from 300 to 699",
        ),
        (
            BASE + REJECT.replace("486", "200"),
            "incoming.rule[1].code: must be from 300 to 699 for a reject rule, not 200",
        ),
        (
            BASE + REJECT.replace("486", "700"),
            "incoming.rule[1].code: must be from 300 to 699 for a reject rule, not 700",
        ),
        (
            REJECT.replace("486", '"486"'),
            'incoming.rule[0].code: must be an integer, not "486"',
        ),
        (
            REJECT + 'reason = "x\\ny"\n',
            "incoming.rule[0].reason: must not hold CR, LF or NUL",
        ),
        (
            REJECT + "replies = [{ code = 180 }]\n",
            'incoming.rule[0].replies: a reject rule answers with "code" alone',
        ),
    ],
)
def test_config_errors(toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        IncomingPolicy.from_config(tomllib.loads(toml))
    assert str(info.value) == message


def test_config_error_is_a_local_protocol_error_with_key_and_problem() -> None:
    with pytest.raises(LocalProtocolError) as info:
        IncomingPolicy.from_config({"incoming": {"rule": [{"action": "answer"}]}})
    error = info.value
    assert isinstance(error, ConfigError)
    assert error.key == "incoming.rule[0].action"
    assert error.problem == 'must be "session" or "reject", not "answer"'


def test_direct_construction_errors_name_the_field() -> None:
    with pytest.raises(ConfigError, match=r"^code: must be from 100 to 699, not 700$"):
        AutoReply(700)
    with pytest.raises(ConfigError, match=r"^action: must be \"session\" or \"reject\""):
        Rule("x", action="drop")
    with pytest.raises(ConfigError, match=r"^replies\[0\]: a final reply \(486\) must be"):
        Rule("x", replies=(AutoReply(486), AutoReply(180)))


def test_final_non_2xx_may_close_a_session_rule() -> None:
    ring_then_busy = Rule("x", replies=(AutoReply(180), AutoReply(486)))
    assert [r.reason for r in ring_then_busy.replies] == ["Ringing", "Busy Here"]


# -- replies and templates --------------------------------------------------------------------


def test_auto_reply_defaults() -> None:
    assert AutoReply(180).reason == "Ringing"
    assert AutoReply(183).reason == "Session Progress"
    assert AutoReply(199).reason == "Early Dialog Terminated"
    assert AutoReply(155).reason == "Trying"  # unknown codes take their class's x00 phrase
    assert AutoReply(180).content_type is None
    assert AutoReply(200, body="v=0").content_type == "application/sdp"
    assert AutoReply(200, answer_offer=True).content_type == "application/sdp"
    assert AutoReply(200, "Fine", "x", "text/plain;charset=utf-8").content_type == (
        "text/plain;charset=utf-8"
    )
    assert AutoReply(200, answer_offer=True).has_body is True
    assert AutoReply(180).has_body is False


def test_render_template_fills_known_placeholders() -> None:
    values = {
        "local_ip": "192.0.2.7",
        "rtp_port": "40000",
        "session_id": "12",
        "session_version": "13",
    }
    assert (
        render_template(
            "o=- {session_id} {session_version} IN IP4 {local_ip}\nm=audio {rtp_port} RTP/AVP 0",
            values,
        )
        == "o=- 12 13 IN IP4 192.0.2.7\nm=audio 40000 RTP/AVP 0"
    )


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{unknown} {local_ip}", "{unknown} 10.0.0.1"),
        ("{}", "{}"),
        ("{ local_ip }", "{ local_ip }"),
        ("{local_ip", "{local_ip"),
        ("local_ip}", "local_ip}"),
        ("{{local_ip}}", "{10.0.0.1}"),
        ("{0} {local_ip!r} {local_ip:>9}", "{0} {local_ip!r} {local_ip:>9}"),
        ("%s %(local_ip)s $local_ip", "%s %(local_ip)s $local_ip"),
        ("", ""),
    ],
)
def test_render_template_leaves_other_braces_alone(template: str, expected: str) -> None:
    assert render_template(template, {"local_ip": "10.0.0.1"}) == expected


def test_render_template_does_not_reinterpret_values() -> None:
    assert render_template("{a}{b}", {"a": "{b}", "b": "x"}) == "{b}x"


def test_render_body_gives_sdp_crlf_lines() -> None:
    reply = AutoReply(200, body="v=0\no=- {session_id} 1 IN IP4 {local_ip}\r\ns=-")
    assert reply.render_body({"session_id": "5", "local_ip": "10.0.0.1"}) == (
        "v=0\r\no=- 5 1 IN IP4 10.0.0.1\r\ns=-\r\n"
    )
    plain = AutoReply(200, body="a\nb {x}", content_type="text/plain")
    assert plain.render_body({"x": "1"}) == "a\nb 1"
    assert AutoReply(180).render_body({}) is None
