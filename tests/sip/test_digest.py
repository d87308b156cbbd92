"""Digest authentication: RFC worked examples, challenge parsing, nonce counts and the checker."""

import hashlib
import itertools
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.sip import (
    Challenge,
    Credential,
    DigestClient,
    build_authorization,
    choose_qop,
    digest_response,
    parse_challenge,
    parse_credential,
    select_credential,
    verify_authorization,
)
from engine.sip.errors import LocalProtocolError, ParseError
from engine.sip.ids import CountingIds

# RFC 7616 section 3.9.1 (note the lower-case "of" in the password there).
RFC7616_REALM = "http-auth@example.org"
RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
MUFASA_7616 = Credential("Mufasa", RFC7616_REALM, "Circle of Life")

# RFC 2617 section 3.5 (capital "Of") and RFC 2069 section 2.4 (no spaces).
RFC2617_CHALLENGE = (
    'Digest\n realm="testrealm@host.com",\n qop="auth,auth-int",\n'
    ' nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",\n opaque="5ccc069c403ebaf9f0171e9517f40e41"'
)

ALICE = Credential("alice", "example.com", "secret")
REGISTRAR = "sip:example.com"


def fixed(*values: str):
    """A cnonce source giving ``values`` in turn."""
    it = iter(values)
    return lambda: next(it)


def rfc7616_challenge(algorithm: str) -> Challenge:
    return parse_challenge(
        f'Digest realm="{RFC7616_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )


# --- RFC worked examples -------------------------------------------------------------------


def test_rfc7616_md5_example():
    value = build_authorization(
        rfc7616_challenge("MD5"),
        MUFASA_7616,
        "GET",
        "/dir/index.html",
        cnonce=RFC7616_CNONCE,
        nc=1,
    )
    assert value == (
        'Digest username="Mufasa", realm="http-auth@example.org", '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", uri="/dir/index.html", '
        'response="8ca523f5e9506fed4657c9700eebdbec", algorithm=MD5, '
        'cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", qop=auth, nc=00000001'
    )


def test_rfc7616_sha256_example():
    value = build_authorization(
        rfc7616_challenge("SHA-256"),
        MUFASA_7616,
        "GET",
        "/dir/index.html",
        cnonce=RFC7616_CNONCE,
        nc=1,
    )
    assert value == (
        'Digest username="Mufasa", realm="http-auth@example.org", '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", uri="/dir/index.html", '
        'response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1", '
        'algorithm=SHA-256, cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", qop=auth, nc=00000001'
    )


def test_rfc7616_examples_through_the_client():
    for algorithm, response in [
        ("md5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("sha-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ]:
        client = DigestClient([MUFASA_7616], fixed(RFC7616_CNONCE))
        value = client.authorize(rfc7616_challenge(algorithm), "GET", "/dir/index.html")
        assert value is not None
        assert f'response="{response}"' in value
        assert value.endswith("qop=auth, nc=00000001")


def test_rfc2617_example():
    challenge = parse_challenge(RFC2617_CHALLENGE)
    assert challenge == Challenge(
        realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
        algorithm="MD5",
        qop=("auth", "auth-int"),
        opaque="5ccc069c403ebaf9f0171e9517f40e41",
    )
    mufasa = Credential("Mufasa", "testrealm@host.com", "Circle Of Life")
    value = build_authorization(
        challenge, mufasa, "GET", "/dir/index.html", cnonce="0a4f113b", nc=1
    )
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="6629fae49393a05397450978507c4ef1", algorithm=MD5, cnonce="0a4f113b", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41", qop=auth, nc=00000001'
    )


def test_rfc2069_example_without_qop():
    # RFC 2069 section 2.4, with the response of its erratum (the printed one is wrong).
    challenge = parse_challenge(
        'Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert challenge.qop == ()
    assert choose_qop(challenge) is None
    mufasa = Credential("Mufasa", "testrealm@host.com", "CircleOfLife")
    value = build_authorization(challenge, mufasa, "GET", "/dir/index.html", cnonce="unused")
    assert value == (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        'response="1949323746fe6a43ef61f9606e7febea", algorithm=MD5, '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )


# --- the other algorithms and qops ---------------------------------------------------------


def test_sip_register_without_qop():
    client = DigestClient([ALICE], fixed("c0ffee"))
    value = client.authorize(
        parse_challenge('Digest realm="example.com", nonce="abc123"'), "REGISTER", REGISTRAR
    )
    assert value == (
        'Digest username="alice", realm="example.com", nonce="abc123", uri="sip:example.com", '
        'response="d1d211daa2e0d7f43de25792410f5057", algorithm=MD5'
    )


def test_md5_sess():
    challenge = parse_challenge(
        'Digest realm="example.com", nonce="abc123", algorithm=md5-SESS, qop="auth"'
    )
    assert challenge.algorithm == "MD5-sess"
    value = build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c0ffee")
    assert value == (
        'Digest username="alice", realm="example.com", nonce="abc123", uri="sip:example.com", '
        'response="1d53e722041d5bcb25f35e8649be030b", algorithm=MD5-sess, cnonce="c0ffee", '
        "qop=auth, nc=00000001"
    )


def test_md5_sess_without_qop_still_sends_cnonce():
    challenge = parse_challenge('Digest realm="example.com", nonce="abc123", algorithm=MD5-sess')
    value = build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c0ffee")
    assert value == (
        'Digest username="alice", realm="example.com", nonce="abc123", uri="sip:example.com", '
        'response="e4c89b084a2c75fdc36b52202481d443", algorithm=MD5-sess, cnonce="c0ffee"'
    )


def test_sha256_sess():
    challenge = parse_challenge(
        'Digest realm="example.com", nonce="abc123", algorithm=SHA-256-sess, qop="auth"'
    )
    value = build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c0ffee")
    assert (
        'response="701873189d4947cf724e21d166914f510a87cc77aae6287dcedc3b578146bcda", '
        "algorithm=SHA-256-sess," in value
    )


def test_auth_int_when_it_is_the_only_qop():
    challenge = parse_challenge('Digest realm="example.com", nonce="abc123", qop="auth-int"')
    assert choose_qop(challenge) == "auth-int"
    value = build_authorization(
        challenge, ALICE, "INVITE", "sip:bob@example.com", cnonce="c0ffee", body=b"v=0\r\n"
    )
    assert value == (
        'Digest username="alice", realm="example.com", nonce="abc123", '
        'uri="sip:bob@example.com", response="dad18827fe6a5fbf285592cc8ce06f2a", algorithm=MD5, '
        'cnonce="c0ffee", qop=auth-int, nc=00000001'
    )


def test_auth_is_preferred_over_auth_int_in_any_order():
    challenge = parse_challenge('Digest realm="r", nonce="n", qop="auth-int, AUTH"')
    assert challenge.qop == ("auth-int", "auth")
    assert choose_qop(challenge) == "auth"


def test_unknown_qop_only_cannot_be_answered():
    challenge = parse_challenge('Digest realm="example.com", nonce="n", qop="auth-conf"')
    assert not challenge.supported
    with pytest.raises(LocalProtocolError, match="no supported qop"):
        choose_qop(challenge)
    assert DigestClient([ALICE], fixed("x")).authorize(challenge, "REGISTER", REGISTRAR) is None


def test_unknown_algorithm_is_kept_but_not_answered():
    challenge = parse_challenge('Digest realm="example.com", nonce="n", algorithm=SHA-512-256')
    assert challenge.algorithm == "SHA-512-256"
    assert not challenge.supported
    with pytest.raises(LocalProtocolError, match="unsupported digest algorithm"):
        build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c")
    assert DigestClient([ALICE], fixed("x")).authorize(challenge, "REGISTER", REGISTRAR) is None


def test_userhash():
    challenge = parse_challenge(
        'Digest realm="example.com", nonce="abc123", algorithm=SHA-256, qop="auth", userhash=true'
    )
    assert challenge.userhash
    value = build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c0ffee")
    assert value.startswith(
        'Digest username="182821e63518db2dd774c82f8142291d0376025311d4a5988d61e5a5dfafbbde", '
    )
    assert value.endswith(", userhash=true")


def test_digest_response_is_the_rfc_formula():
    # Low-level entry point, checked against hashlib directly for one auth-int case.
    def h(data: bytes) -> str:
        return hashlib.sha256(data).hexdigest()

    ha1 = h(b"u:r:p")
    ha2 = h(b"MESSAGE:sip:x@y:" + h(b"hello").encode())
    expected = h(f"{ha1}:n:0000000a:cn:auth-int:{ha2}".encode())
    got = digest_response(
        algorithm="SHA-256",
        username="u",
        realm="r",
        password="p",
        nonce="n",
        method="MESSAGE",
        uri="sip:x@y",
        qop="auth-int",
        nc="0000000a",
        cnonce="cn",
        body=b"hello",
    )
    assert got == expected


def test_values_are_quoted_with_escapes():
    challenge = parse_challenge(r'Digest realm="a \"quoted\" realm", nonce="n\\1"')
    assert challenge.realm == 'a "quoted" realm'
    assert challenge.nonce == "n\\1"
    cred = Credential('bo"b', 'a "quoted" realm', "pw")
    value = build_authorization(challenge, cred, "REGISTER", REGISTRAR, cnonce="c")
    assert value.startswith(r'Digest username="bo\"b", realm="a \"quoted\" realm", nonce="n\\1", ')
    assert verify_authorization(value, "REGISTER", lambda u, r: "pw")


def test_credential_for_another_realm_is_refused():
    challenge = parse_challenge('Digest realm="other.net", nonce="n"')
    with pytest.raises(LocalProtocolError, match=re.escape("cannot answer realm 'other.net'")):
        build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c")


@pytest.mark.parametrize("nc", [0, -1, 2**32])
def test_nonce_count_range(nc):
    challenge = parse_challenge('Digest realm="example.com", nonce="n", qop="auth"')
    with pytest.raises(LocalProtocolError, match="out of range"):
        build_authorization(challenge, ALICE, "REGISTER", REGISTRAR, cnonce="c", nc=nc)


# --- nonce counts, stale, realm selection ---------------------------------------------------


def nc_of(value: str | None) -> str:
    assert value is not None
    return value.rsplit("nc=", 1)[1]


def test_nonce_count_increments_per_realm_and_nonce():
    client = DigestClient([ALICE], fixed("c0ffee", "c0ffee", "c0ffee", "x", "y"))
    challenge = parse_challenge('Digest realm="example.com", nonce="abc123", qop="auth"')
    first = client.authorize(challenge, "REGISTER", REGISTRAR)
    second = client.authorize(challenge, "REGISTER", REGISTRAR)
    third = client.authorize(challenge, "REGISTER", REGISTRAR)
    # Exact responses for nc 1, 2, 3 with the same cnonce: the count enters the hash.
    assert 'response="dd742226c1d18c0175be150fe7260262"' in first
    assert 'response="1d313f21bab5b27d4b109b66a9d122b7"' in second
    assert 'response="30fbfd7a606ff6103c4aed9c9df0c71a"' in third
    assert [nc_of(first), nc_of(second), nc_of(third)] == ["00000001", "00000002", "00000003"]
    assert client.nonce_count("example.com", "abc123") == 3
    # Another nonce of the same realm has its own count.
    other = parse_challenge('Digest realm="example.com", nonce="def456", qop="auth"')
    assert nc_of(client.authorize(other, "REGISTER", REGISTRAR)) == "00000001"
    assert nc_of(client.authorize(challenge, "REGISTER", REGISTRAR)) == "00000004"


def test_stale_challenge_resets_the_count_once():
    client = DigestClient([ALICE], CountingIds())
    fresh = parse_challenge('Digest realm="example.com", nonce="n1", qop="auth"')
    assert nc_of(client.authorize(fresh, "REGISTER", REGISTRAR)) == "00000001"
    assert nc_of(client.authorize(fresh, "REGISTER", REGISTRAR)) == "00000002"

    stale = parse_challenge('Digest realm="example.com", nonce="n2", qop="auth", stale=TRUE')
    assert stale.stale
    assert nc_of(client.authorize(stale, "REGISTER", REGISTRAR)) == "00000001"
    # The old nonce of the realm is forgotten; reusing the stale challenge keeps counting.
    assert client.nonce_count("example.com", "n1") == 0
    assert nc_of(client.authorize(stale, "REGISTER", REGISTRAR)) == "00000002"

    # forget() drops the realm's counts, and with them the memory of the stale challenge.
    client.forget("example.com")
    assert client.nonce_count("example.com", "n2") == 0
    assert nc_of(client.authorize(stale, "REGISTER", REGISTRAR)) == "00000001"


def test_stale_on_a_nonce_in_use_restarts_it():
    client = DigestClient([ALICE], CountingIds())
    plain = parse_challenge('Digest realm="example.com", nonce="n", qop="auth"')
    stale = parse_challenge('Digest realm="example.com", nonce="n", qop="auth", stale=true')
    client.authorize(plain, "REGISTER", REGISTRAR)
    client.authorize(plain, "REGISTER", REGISTRAR)
    assert nc_of(client.authorize(stale, "REGISTER", REGISTRAR)) == "00000001"
    assert nc_of(client.authorize(stale, "REGISTER", REGISTRAR)) == "00000002"


def test_stale_does_not_touch_other_realms():
    bob = Credential("bob", "proxy.net", "pw")
    client = DigestClient([ALICE, bob], CountingIds())
    proxy = parse_challenge('Digest realm="proxy.net", nonce="p", qop="auth"')
    client.authorize(proxy, "INVITE", "sip:x@y")
    client.authorize(proxy, "INVITE", "sip:x@y")
    stale = parse_challenge('Digest realm="example.com", nonce="s", qop="auth", stale=true')
    client.authorize(stale, "INVITE", "sip:x@y")
    assert client.nonce_count("proxy.net", "p") == 2
    assert nc_of(client.authorize(proxy, "INVITE", "sip:x@y")) == "00000003"


def test_cnonce_from_id_factory_is_deterministic():
    challenge = parse_challenge('Digest realm="example.com", nonce="n", qop="auth"')
    a = DigestClient([ALICE], CountingIds("seed")).authorize(challenge, "REGISTER", REGISTRAR)
    b = DigestClient([ALICE], CountingIds("seed")).authorize(challenge, "REGISTER", REGISTRAR)
    expected_cnonce = CountingIds("seed").token(16)
    assert a == b
    assert f'cnonce="{expected_cnonce}"' in a
    assert len(expected_cnonce) == 32


def test_count_memory_is_bounded():
    client = DigestClient([ALICE], itertools.repeat("c").__next__, max_nonces=2)
    for nonce in ("a", "b", "c"):
        client.authorize(
            parse_challenge(f'Digest realm="example.com", nonce="{nonce}", qop="auth"'),
            "REGISTER",
            REGISTRAR,
        )
    assert [client.nonce_count("example.com", n) for n in "abc"] == [0, 1, 1]


def test_realm_selection():
    other = Credential("alice2", "example.com", "second")
    bob = Credential("bob", "proxy.net", "pw")
    creds = [ALICE, bob, other]
    assert select_credential(creds, "example.com") is ALICE
    assert select_credential(creds, "proxy.net") is bob
    assert select_credential(creds, "EXAMPLE.COM") is None
    assert select_credential(creds, "unknown.org") is None
    client = DigestClient(creds, fixed("c"))
    unknown = parse_challenge('Digest realm="unknown.org", nonce="n"')
    assert client.credential_for("proxy.net") is bob
    assert not client.can_answer(unknown)
    assert client.authorize(unknown, "REGISTER", REGISTRAR) is None
    assert client.nonce_count("unknown.org", "n") == 0
    value = client.authorize(parse_challenge('Digest realm="proxy.net", nonce="n"'), "BYE", "x")
    assert value is not None and value.startswith('Digest username="bob", realm="proxy.net"')


def test_pick_prefers_sha256_among_answerable():
    client = DigestClient([ALICE], fixed("c"))
    md5 = parse_challenge('Digest realm="example.com", nonce="1", qop="auth"')
    sha = parse_challenge('Digest realm="example.com", nonce="2", qop="auth", algorithm=SHA-256')
    foreign = parse_challenge('Digest realm="x.org", nonce="3", algorithm=SHA-256')
    exotic = parse_challenge('Digest realm="example.com", nonce="4", algorithm=SHA-512-256')
    assert client.pick([md5, foreign, exotic, sha]) is sha
    assert client.pick([md5, foreign]) is md5
    assert client.pick([foreign, exotic]) is None


# --- parsing --------------------------------------------------------------------------------


def test_parse_all_parameters_with_loose_whitespace():
    challenge = parse_challenge(
        '  dIgEsT   realm = "sip.example.org" ,nonce="a,b=c", opaque = "o" ,, '
        'algorithm = "sha-256-SESS", qop = "auth , auth-int", stale=FALSE, '
        'domain="sip:a.example.org  sip:b.example.org", userhash=true, charset=UTF-8'
    )
    assert challenge == Challenge(
        realm="sip.example.org",
        nonce="a,b=c",
        algorithm="SHA-256-sess",
        qop=("auth", "auth-int"),
        opaque="o",
        stale=False,
        domain=("sip:a.example.org", "sip:b.example.org"),
        userhash=True,
    )
    assert challenge.supported


def test_parse_bare_qop_and_defaults():
    challenge = parse_challenge("Digest realm=r, nonce=n, qop=auth")
    assert challenge == Challenge(realm="r", nonce="n", qop=("auth",))
    assert challenge.algorithm == "MD5"
    assert challenge.opaque is None
    assert not challenge.stale and not challenge.userhash


def test_challenge_str_round_trips():
    challenge = Challenge(
        realm='r "1"',
        nonce="n\\x",
        algorithm="SHA-256",
        qop=("auth", "auth-int"),
        opaque="o",
        stale=True,
        domain=("sip:a", "sip:b"),
        userhash=True,
    )
    assert str(challenge) == (
        'Digest realm="r \\"1\\"", domain="sip:a sip:b", nonce="n\\\\x", opaque="o", '
        'stale=true, algorithm=SHA-256, qop="auth,auth-int", userhash=true'
    )
    assert parse_challenge(str(challenge)) == challenge


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no authentication scheme"),
        ("   ", "no authentication scheme"),
        ('Basic realm="x"', "unsupported authentication scheme 'Basic'"),
        ('Digestrealm="x", nonce="n"', "unsupported authentication scheme 'Digestrealm'"),
        ('Digest,realm="x", nonce="n"', "no space after the Digest scheme"),
        ("Digest", "no realm"),
        ('Digest nonce="n"', "no realm"),
        ('Digest realm="r"', "no nonce"),
        ('Digest realm="r", nonce="n', "unterminated quoted string in parameter 'nonce'"),
        ('Digest realm="r\\', "unterminated quoted string in parameter 'realm'"),
        ('Digest realm="r" nonce="n"', "missing comma"),
        ('Digest realm="r", nonce', "parameter 'nonce' has no '=value'"),
        ('Digest realm="r", nonce=', "parameter 'nonce' has an empty value"),
        ('Digest realm="r", nonce=,', "parameter 'nonce' has an empty value"),
        ('Digest realm="r", =x', "expected a parameter name"),
        ('Digest realm="r", realm="s", nonce="n"', "parameter 'realm' appears twice"),
        ('Digest realm="r", nonce="n", qop=""', "empty qop list"),
        ('Digest realm="r", nonce="n", algorithm=""', "empty algorithm"),
        ('Digest realm="r", nonce="n", Basic realm="x"', "parameter 'basic' has no '=value'"),
    ],
)
def test_parse_errors(text, message):
    with pytest.raises(ParseError, match=re.escape(message)):
        parse_challenge(text)


@given(st.text())
def test_arbitrary_text_gives_challenge_or_parse_error(text):
    try:
        challenge = parse_challenge(text)
    except ParseError:
        return
    assert isinstance(challenge, Challenge)


_NEAR_CHALLENGE = st.lists(
    st.sampled_from(
        [
            "Digest",
            "digest ",
            " ",
            "\t",
            ",",
            "=",
            '"',
            "\\",
            "realm",
            "nonce",
            "qop",
            "algorithm",
            "stale",
            "domain",
            "opaque",
            "userhash",
            "auth",
            "auth-int",
            "MD5-sess",
            "SHA-256",
            "true",
            "x",
            "\r\n",
            "\u00e9",
        ]
    )
).map("".join)


@given(_NEAR_CHALLENGE)
def test_near_challenges_give_challenge_or_parse_error(text):
    try:
        challenge = parse_challenge(text)
    except ParseError:
        return
    # Whatever parses can be printed and parsed back to the same value.
    assert parse_challenge(str(challenge)) == challenge


# --- credentials ----------------------------------------------------------------------------


def test_credential_never_shows_the_password():
    cred = Credential("alice", "example.com", "hunter2-Sekr1t")
    for shown in (repr(cred), str(cred), f"{cred}", f"{[cred]}"):
        assert "hunter2" not in shown
        assert "alice" in shown and "example.com" in shown
    assert cred.password == "hunter2-Sekr1t"


def test_parse_credential():
    cred = parse_credential("alice:example.com:pa:ss:word")
    assert cred == Credential("alice", "example.com", "pa:ss:word")
    assert parse_credential("bob:r:") == Credential("bob", "r", "")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice", "not in the form USER:REALM:PASSWORD"),
        ("alice:topsecretpw", "not in the form USER:REALM:PASSWORD"),
        (":example.com:topsecretpw", "empty username"),
        ("alice::topsecretpw", "user 'alice' has an empty realm"),
        ("alice\r\n:example.com:topsecretpw", "CR, LF or NUL"),
    ],
)
def test_parse_credential_errors_do_not_echo_the_password(text, message):
    with pytest.raises(LocalProtocolError, match=re.escape(message)) as excinfo:
        parse_credential(text)
    assert "topsecretpw" not in str(excinfo.value)


# --- server-side check ----------------------------------------------------------------------


def lookup(username: str, realm: str) -> str | None:
    return {("alice", "example.com"): "secret"}.get((username, realm))


@pytest.mark.parametrize(
    "challenge_text",
    [
        'Digest realm="example.com", nonce="n1"',
        'Digest realm="example.com", nonce="n1", qop="auth"',
        'Digest realm="example.com", nonce="n1", qop="auth-int", algorithm=SHA-256',
        'Digest realm="example.com", nonce="n1", algorithm=MD5-sess',
        'Digest realm="example.com", nonce="n1", qop="auth", algorithm=SHA-256-sess, opaque="o"',
    ],
)
def test_verify_accepts_our_own_answers(challenge_text):
    challenge = parse_challenge(challenge_text)
    client = DigestClient([ALICE], CountingIds())
    value = client.authorize(challenge, "INVITE", "sip:bob@example.com", b"body")
    assert value is not None
    kwargs = {"realm": "example.com", "nonce": "n1", "uri": "sip:bob@example.com"}
    assert verify_authorization(value, "INVITE", lookup, body=b"body", **kwargs)
    assert not verify_authorization(value, "BYE", lookup, body=b"body", **kwargs)
    assert not verify_authorization(value, "INVITE", lambda u, r: "wrong", body=b"body")
    assert not verify_authorization(value, "INVITE", lookup, body=b"body", nonce="n2")
    assert not verify_authorization(value, "INVITE", lookup, body=b"body", realm="x")
    assert not verify_authorization(value, "INVITE", lookup, body=b"body", uri="sip:x@y")
    if "auth-int" in challenge_text:
        assert not verify_authorization(value, "INVITE", lookup, body=b"other")


def test_verify_rfc2617_example():
    value = (
        'Digest username="Mufasa", realm="testrealm@host.com", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, '
        'nc=00000001, cnonce="0a4f113b", response="6629FAE49393A05397450978507C4EF1", '
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert verify_authorization(value, "GET", lambda u, r: "Circle Of Life")
    assert not verify_authorization(value, "GET", lambda u, r: "Circle of Life")


@pytest.mark.parametrize(
    "value",
    [
        "",
        "Basic YWxhZGRpbjpvcGVuc2VzYW1l",
        'Digest username="alice", realm="example.com", nonce="n", uri="u"',
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="x',
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="0", '
        "qop=auth, cnonce=c",
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="0", '
        "qop=auth, cnonce=c, nc=1",
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="0", '
        "qop=auth-conf, cnonce=c, nc=00000001",
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="0", '
        "algorithm=SHA-512-256",
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="0", '
        "algorithm=MD5-sess",
        'Digest username="alice", realm="example.com", nonce="n", uri="u", response="0", '
        "userhash=true",
        'Digest username="mallory", realm="example.com", nonce="n", uri="u", response="0"',
    ],
)
def test_verify_rejects_malformed_or_unknown(value):
    assert verify_authorization(value, "REGISTER", lookup) is False


@given(
    username=st.text(min_size=1).filter(lambda s: not any(c in s for c in "\r\n\x00")),
    password=st.text(),
    nonce=st.text(),
    uri=st.text(),
    algorithm=st.sampled_from(["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"]),
    qop=st.sampled_from(["", ', qop="auth"', ', qop="auth-int"']),
)
def test_verify_round_trip(username, password, nonce, uri, algorithm, qop):
    realm = "example.com"
    challenge = parse_challenge(str(Challenge(realm=realm, nonce=nonce, algorithm=algorithm)) + qop)
    cred = Credential(username, realm, password)
    value = DigestClient([cred], CountingIds()).authorize(challenge, "MESSAGE", uri, b"hi")
    assert value is not None
    assert verify_authorization(value, "MESSAGE", lambda u, r: password, body=b"hi", uri=uri)
    assert not verify_authorization(value, "MESSAGE", lambda u, r: password + "x", body=b"hi")


def test_wildcard_realm_credential_answers_any_realm_with_the_challenges_realm() -> None:
    from engine.sip.digest import Credential, DigestClient, parse_challenge, verify_authorization

    client = DigestClient([Credential("alice", "*", "pw")], lambda: "c0ffee")
    challenge = parse_challenge('Digest realm="pbx.example", nonce="n1", qop="auth"')
    answer = client.authorize(challenge, "REGISTER", "sip:pbx.example")
    assert answer is not None and 'realm="pbx.example"' in answer
    assert verify_authorization(
        answer, "REGISTER", lambda user, realm: "pw" if realm == "pbx.example" else None
    )
    exact = DigestClient(
        [Credential("bob", "other", "x"), Credential("alice", "*", "pw")], lambda: "c"
    )
    assert exact.credential_for("other").username == "bob"
    assert exact.credential_for("anything").username == "alice"
