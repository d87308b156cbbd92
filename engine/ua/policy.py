"""The incoming-call policy: what happens to an initial INVITE (one without a To-tag).

Ordered rules, the first whose matchers all match wins, else the default rule. A rule either opens
a UA session (``action = "session"``: the session gets the rule's MI flags, and the rule's replies
are sent at once, in order, e.g. 180 then 200 with an SDP answer) or rejects the call with a
final code. This is the "script level" that OpenSIPS leaves to its routing script.

Match fields (regular expressions, ``re.search`` semantics, case-sensitive unless ``(?i)``):

- ``ruri``: the Request-URI as written;
- ``ruri_user``: its user part with %-escapes undone (the number of a ``tel:`` URI); a URI
  without a user part never matches;
- ``from``, ``to``: the From and To header values as written;
- ``source``: the peer's address, tried as ``ip:port`` (``[ip]:port`` for IPv6) and as ``ip``;
- ``account``: the name of the account whose Contact the call came to (see accounts);
  a call to no account never matches;
- ``header:NAME``: the value of the first line of header NAME (any case, compact forms too);
  a missing header never matches.

Configuration (TOML), read by ``IncomingPolicy.from_config``::

    [incoming]
    default = "manual"            # or "auto-answer", "reject:486", "reject:486:Busy Here"
    [[incoming.rule]]
    name = "support line"
    match = { ruri_user = "^support$", "header:X-Priority" = "urgent" }
    action = "session"
    flags = "bh"
    replies = [ { code = 180 }, { code = 200, answer_offer = true } ]
    [[incoming.rule]]
    name = "block"
    match = { source = "^127\\\\.0\\\\.0\\\\.9" }
    action = "reject"
    code = 403
    reason = "Forbidden"

Reply bodies are templates: ``{local_ip}``, ``{rtp_port}``, ``{session_id}`` and
``{session_version}`` are filled in by ``render_template``; other braces stay as written.
"""

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from engine.sip.errors import LocalProtocolError, ParseError
from engine.sip.grammar import is_token
from engine.sip.message import Request
from engine.sip.responses import reason_for
from engine.sip.target import Target
from engine.sip.uri import SipUri, TelUri

from .flags import parse_flags

SESSION = "session"
REJECT = "reject"
ACTIONS = (SESSION, REJECT)
#: Match fields besides ``header:NAME``.
MATCH_FIELDS = ("ruri", "ruri_user", "from", "to", "source", "account")
HEADER_PREFIX = "header:"
#: The placeholders a reply body template may hold.
TEMPLATE_FIELDS = ("local_ip", "rtp_port", "session_id", "session_version")
SDP = "application/sdp"
SHORTCUT_FORMS = '"manual", "auto-answer", "reject:CODE" or "reject:CODE:REASON" (CODE 300-699)'

_PLACEHOLDER_RE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MEDIA_TYPE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+/[A-Za-z0-9\-.!%*_+`'~]+(?:\s*;[^\r\n]*)?")
_BARE_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")

_TOP_KEYS = ("default", "rule")
_RULE_KEYS = ("name", "match", "action", "flags", "replies", "code", "reason")
_REPLY_KEYS = ("code", "reason", "body", "content_type", "answer_offer")


class ConfigError(LocalProtocolError):
    """A configuration value we cannot use.

    ``key`` is the path of the value (``incoming.rule[1].match.ruri_user``), ``problem`` what is
    wrong with it; the message is ``"<key>: <problem>"``. Errors raised while building an
    ``AutoReply`` or ``Rule`` directly carry the key relative to it, under its TOML names
    (``code``, ``reason``, ``replies[0].code``...).
    """

    def __init__(self, problem: str, key: str = "") -> None:
        super().__init__(f"{key}: {problem}" if key else problem)
        self.problem = problem
        self.key = key

    def under(self, prefix: str) -> "ConfigError":
        """The same error with its key placed under ``prefix``."""
        if not self.key:
            key = prefix
        elif self.key.startswith("["):
            key = prefix + self.key
        else:
            key = f"{prefix}.{self.key}"
        return ConfigError(self.problem, key)


# -- checks shared by the dataclasses and the configuration reader ------------------------------


def _match_field_problem(name: object) -> str | None:
    if isinstance(name, str):
        if name in MATCH_FIELDS:
            return None
        if name.startswith(HEADER_PREFIX) and is_token(name[len(HEADER_PREFIX) :]):
            return None
    return f"unknown match field {_show(name)} (use {', '.join(MATCH_FIELDS)} or header:NAME)"


def _check_code(code: object, low: int, key: str, where: str = "") -> None:
    if isinstance(code, bool) or not isinstance(code, int):
        raise ConfigError(f"must be an integer, not {_show(code)}", key)
    if not low <= code <= 699:
        raise ConfigError(f"must be from {low} to 699{where}, not {code}", key)


def _check_reason(reason: object, key: str) -> None:
    if not isinstance(reason, str):
        raise ConfigError(f"must be a string, not {_show(reason)}", key)
    if any(c in reason for c in "\r\n\x00"):
        raise ConfigError("must not hold CR, LF or NUL", key)


def _media_type(content_type: str) -> str:
    return content_type.split(";", 1)[0].strip().lower()


def _key(name: object) -> str:
    """A key as TOML writes it in a dotted path: bare when it can be, else quoted."""
    text = str(name)
    return text if _BARE_KEY_RE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


def _show(value: object) -> str:
    """A value as the configuration file writes it."""
    if isinstance(value, str | bool | int | float) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return type(value).__name__


def render_template(template: str, values: Mapping[str, object]) -> str:
    """``template`` with each ``{name}`` whose name is in ``values`` replaced by the value.

    Other braces (unknown names, ``{}``, ``{ x }``, unbalanced ones) are left as written; this
    never raises, whatever the template holds.
    """

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        return str(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER_RE.sub(fill, template)


@dataclass(frozen=True, slots=True)
class AutoReply:
    """A reply the engine sends by itself to an incoming INVITE, as a rule says."""

    #: The status code, 100 to 699.
    code: int
    #: The reason phrase; empty means the standard one for ``code``.
    reason: str = ""
    #: The body as a template (see ``render_template``), or None.
    body: str | None = None
    #: The body's media type; defaults to application/sdp when there is a body.
    content_type: str | None = None
    #: True: the body is an SDP answer generated from the INVITE's offer (``sdp_answer``).
    answer_offer: bool = False

    def __post_init__(self) -> None:
        _check_code(self.code, 100, "code")
        _check_reason(self.reason, "reason")
        if not self.reason:
            object.__setattr__(self, "reason", reason_for(self.code))
        if self.body is not None and not isinstance(self.body, str):
            raise ConfigError(f"must be a string, not {_show(self.body)}", "body")
        if not isinstance(self.answer_offer, bool):
            shown = _show(self.answer_offer)
            raise ConfigError(f"must be true or false, not {shown}", "answer_offer")
        if self.answer_offer and self.body is not None:
            raise ConfigError('cannot go with "body": the offer decides the answer', "answer_offer")
        if self.answer_offer and self.code >= 300:
            raise ConfigError(f"an SDP answer cannot go in a {self.code} reply", "answer_offer")
        if self.content_type is not None:
            if not isinstance(self.content_type, str) or not _MEDIA_TYPE_RE.fullmatch(
                self.content_type
            ):
                raise ConfigError(
                    f"must be a media type such as text/plain, not {_show(self.content_type)}",
                    "content_type",
                )
            if not self.has_body:
                raise ConfigError('only with "body" or "answer_offer"', "content_type")
            if self.answer_offer and _media_type(self.content_type) != SDP:
                raise ConfigError(f"an SDP answer is {SDP}", "content_type")
        elif self.has_body:
            object.__setattr__(self, "content_type", SDP)

    @property
    def has_body(self) -> bool:
        """True when the reply carries a body (a template or a generated answer)."""
        return self.body is not None or self.answer_offer

    def render_body(self, values: Mapping[str, object]) -> str | None:
        """The body template filled in with ``values``; None without a template.

        An application/sdp body gets CRLF line ends (TOML strings hold bare LFs).
        """
        if self.body is None:
            return None
        text = render_template(self.body, values)
        if self.content_type is not None and _media_type(self.content_type) == SDP:
            text = "".join(line + "\r\n" for line in text.splitlines())
        return text


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of the incoming-call policy."""

    #: A name for logs and the console.
    name: str
    #: (field, compiled regex) pairs that must all match (``re.search``); none matches anything.
    matchers: tuple[tuple[str, re.Pattern[str]], ...] = ()
    #: ``session`` (open a UA session) or ``reject`` (answer with ``reject_code``).
    action: str = SESSION
    #: The MI flags of the session (``"bh"``, ``"t60"``...); see MI-API.md section 1.
    flags: str = ""
    #: Replies sent at once, in order, when the session opens (a final one only last).
    replies: tuple[AutoReply, ...] = ()
    #: The final status of a reject rule, 300 to 699; None for a session rule.
    reject_code: int | None = None
    #: Its reason phrase (the standard one when not given); None for a session rule.
    reject_reason: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise ConfigError(f"must be a string, not {_show(self.name)}", "name")
        if self.action not in ACTIONS:
            raise ConfigError(f'must be "session" or "reject", not {_show(self.action)}', "action")
        for name, pattern in self.matchers:
            problem = _match_field_problem(name)
            if problem:
                raise ConfigError(problem, f"match.{_key(name)}")
            if not isinstance(pattern, re.Pattern):
                raise ConfigError("must be a compiled regular expression", f"match.{_key(name)}")
        if not isinstance(self.flags, str):
            raise ConfigError(f"must be a string, not {_show(self.flags)}", "flags")
        unknown = parse_flags(self.flags).unknown
        if unknown:
            raise ConfigError(
                f"unknown flag letter(s) {_show(unknown)}; known: t<N>, a, r, d, h, b, n", "flags"
            )
        if self.action == REJECT:
            self._check_reject()
        else:
            self._check_session()

    def _check_reject(self) -> None:
        if self.replies:
            raise ConfigError('a reject rule answers with "code" alone', "replies")
        if self.reject_code is None:
            raise ConfigError("a reject rule needs a code from 300 to 699", "code")
        _check_code(self.reject_code, 300, "code", " for a reject rule")
        if self.reject_reason is None or self.reject_reason == "":
            object.__setattr__(self, "reject_reason", reason_for(self.reject_code))
        else:
            _check_reason(self.reject_reason, "reason")

    def _check_session(self) -> None:
        if self.reject_code is not None:
            raise ConfigError('only a reject rule has one (a session rule uses "replies")', "code")
        if self.reject_reason is not None:
            raise ConfigError("only a reject rule has a reason", "reason")
        for index, reply in enumerate(self.replies):
            if not isinstance(reply, AutoReply):
                raise ConfigError("must be an AutoReply", f"replies[{index}]")
            if reply.code >= 200 and index != len(self.replies) - 1:
                raise ConfigError(
                    f"a final reply ({reply.code}) must be the last one", f"replies[{index}]"
                )

    def matches(self, request: Request, source: Target) -> bool:
        """True when every matcher finds its pattern in its field."""
        return _Subject(request, source).matches(self.matchers)


def _manual() -> Rule:
    return Rule("manual", replies=(AutoReply(180),))


#: The rule of the "manual" shortcut, the default: a session, 180 Ringing at once.
MANUAL = _manual()


@dataclass(frozen=True, slots=True)
class IncomingPolicy:
    """The ordered rules for initial INVITEs, and the rule used when none matches."""

    rules: tuple[Rule, ...] = ()
    default: Rule = MANUAL

    def decide(self, request: Request, source: Target, account: str | None = None) -> Rule:
        """The first rule matching ``request`` (received from ``source``, for the named
        ``account`` when it came through one), else the default."""
        subject = _Subject(request, source, account)
        for rule in self.rules:
            if subject.matches(rule.matchers):
                return rule
        return self.default

    @classmethod
    def from_shortcut(cls, text: str) -> "IncomingPolicy":
        """A policy of one default rule, from a command-line shortcut (see ``shortcut_rule``)."""
        return cls((), shortcut_rule(text))

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> "IncomingPolicy":
        """The policy of the ``[incoming]`` table of a parsed TOML document (``tomllib.load``).

        Other top-level tables are not looked at; without ``[incoming]`` the policy is "manual".
        Raises ConfigError naming the key path and the problem.
        """
        table = data.get("incoming", {})
        if not isinstance(table, Mapping):
            raise ConfigError(f"must be a table, not {_show(table)}", "incoming")
        _check_keys(table, _TOP_KEYS, "incoming")
        default_text = table.get("default", "manual")
        if not isinstance(default_text, str):
            raise ConfigError(f"must be a string, not {_show(default_text)}", "incoming.default")
        try:
            default = shortcut_rule(default_text)
        except ValueError as exc:
            raise ConfigError(str(exc), "incoming.default") from None
        items = table.get("rule", [])
        if not isinstance(items, list):
            raise ConfigError("must be an array of tables ([[incoming.rule]])", "incoming.rule")
        rules = tuple(_rule_from_config(item, index) for index, item in enumerate(items))
        return cls(rules, default)


def shortcut_rule(text: str) -> Rule:
    """The rule of a command-line shortcut.

    ``manual``: a session, 180 Ringing sent at once, the controller answers. ``auto-answer``: a
    session answered 200 OK with an SDP answer to the offer. ``reject:CODE`` or
    ``reject:CODE:REASON``: a final reply, CODE 300 to 699. Anything else: ValueError.
    """
    if text == "manual":
        return _manual()
    if text == "auto-answer":
        return Rule("auto-answer", replies=(AutoReply(200, answer_offer=True),))
    kind, _, rest = text.partition(":")
    code_text, colon, reason = rest.partition(":")
    if (
        kind == REJECT
        and code_text.isascii()
        and code_text.isdigit()
        and len(code_text) == 3
        and 300 <= int(code_text) <= 699
        and not (colon and not reason.strip())
        and not any(c in reason for c in "\r\n\x00")
    ):
        return Rule(text, action=REJECT, reject_code=int(code_text), reject_reason=reason.strip())
    raise ValueError(f"bad incoming policy {_show(text)}: use {SHORTCUT_FORMS}")


# -- matching ---------------------------------------------------------------------------------


class _Subject:
    """The match fields of one request, computed once each, when first needed."""

    __slots__ = ("_cache", "account", "request", "source")

    def __init__(self, request: Request, source: Target, account: str | None = None) -> None:
        self.request = request
        self.source = source
        self.account = account
        self._cache: dict[str, tuple[str, ...]] = {}

    def matches(self, matchers: tuple[tuple[str, re.Pattern[str]], ...]) -> bool:
        for name, pattern in matchers:
            values = self._cache.get(name)
            if values is None:
                values = self._cache[name] = self._values(name)
            if not any(pattern.search(value) for value in values):
                return False
        return True

    def _values(self, name: str) -> tuple[str, ...]:
        """The texts a field is matched against; empty when the field is missing."""
        request, headers = self.request, self.request.headers
        if name == "ruri":
            return (request.uri_text,)
        if name == "ruri_user":
            return _ruri_user(request)
        if name == "account":
            return () if self.account is None else (self.account,)
        if name == "source":
            host, port = self.source.host, self.source.port
            return (f"[{host}]:{port}" if ":" in host else f"{host}:{port}", host)
        header = name[len(HEADER_PREFIX) :] if name.startswith(HEADER_PREFIX) else name
        value = headers.get(header)
        return () if value is None else (value,)


def _ruri_user(request: Request) -> tuple[str, ...]:
    try:
        uri = request.uri
    except ParseError:
        return ()
    if isinstance(uri, SipUri) and uri.user is not None:
        return (unquote(uri.user),)
    if isinstance(uri, TelUri):
        return (uri.number,)
    return ()


# -- configuration ----------------------------------------------------------------------------


def _rule_from_config(item: object, index: int) -> Rule:
    path = f"incoming.rule[{index}]"
    if not isinstance(item, Mapping):
        raise ConfigError(f"must be a table, not {_show(item)}", path)
    _check_keys(item, _RULE_KEYS, path)
    if "action" not in item:
        raise ConfigError('missing (it is "session" or "reject")', f"{path}.action")
    match = item.get("match", {})
    if not isinstance(match, Mapping):
        raise ConfigError(f"must be a table, not {_show(match)}", f"{path}.match")
    matchers = []
    for name, pattern in match.items():
        key = f"{path}.match.{_key(name)}"
        problem = _match_field_problem(name)
        if problem:
            raise ConfigError(problem, key)
        if not isinstance(pattern, str):
            raise ConfigError(f"must be a string (a regular expression), not {_show(pattern)}", key)
        try:
            matchers.append((name, re.compile(pattern)))
        except (re.error, RecursionError, OverflowError) as exc:
            raise ConfigError(f"bad regular expression: {exc}", key) from None
    replies = item.get("replies", [])
    if not isinstance(replies, list):
        raise ConfigError(f"must be an array of tables, not {_show(replies)}", f"{path}.replies")
    built_replies = tuple(
        _reply_from_config(reply, f"{path}.replies[{n}]") for n, reply in enumerate(replies)
    )
    fields = {
        "name": _get(item, "name", str, "a string", path, f"rule[{index}]"),
        "matchers": tuple(matchers),
        "action": item["action"],
        "flags": _get(item, "flags", str, "a string", path, ""),
        "replies": built_replies,
        "reject_code": _get(item, "code", int, "an integer", path, None),
        "reject_reason": _get(item, "reason", str, "a string", path, None),
    }
    try:
        return Rule(**fields)
    except ConfigError as exc:
        raise exc.under(path) from None


def _reply_from_config(item: object, path: str) -> AutoReply:
    if not isinstance(item, Mapping):
        raise ConfigError(f"must be a table, not {_show(item)}", path)
    _check_keys(item, _REPLY_KEYS, path)
    if "code" not in item:
        raise ConfigError("missing (a status code from 100 to 699)", f"{path}.code")
    fields = {
        "code": _get(item, "code", int, "an integer", path, 0),
        "reason": _get(item, "reason", str, "a string", path, ""),
        "body": _get(item, "body", str, "a string", path, None),
        "content_type": _get(item, "content_type", str, "a string", path, None),
        "answer_offer": _get(item, "answer_offer", bool, "true or false", path, False),
    }
    try:
        return AutoReply(**fields)
    except ConfigError as exc:
        raise exc.under(path) from None


def _get(
    table: Mapping[str, Any], key: str, kind: type, kind_text: str, path: str, default: Any
) -> Any:
    if key not in table:
        return default
    value = table[key]
    _check_type(value, kind, kind_text, f"{path}.{key}")
    return value


def _check_type(value: object, kind: type, kind_text: str, key: str) -> None:
    # bool is an int in Python but not in TOML.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"must be {kind_text}, not {_show(value)}", key)


def _check_keys(table: Mapping[str, Any], known: tuple[str, ...], path: str) -> None:
    for name in table:
        if name not in known:
            raise ConfigError(f"unknown key (known: {', '.join(known)})", f"{path}.{_key(name)}")
