"""The engine places calls to SIPp acting as the callee (a UAS scenario), on 127.0.0.1.

Each test starts SIPp first (it waits for one call), places the call with ``client_start``,
drives it from the engine's events, and then checks both sides: SIPp's exit code (0: every
message came as its scenario expects, and every check in it passed) and the engine's events.
"""

import pytest

from engine.ua.events import EventType, Origin

from .conftest import HOST, SDP_OFFER, engine_config, sdp

pytestmark = pytest.mark.interop

ALICE = f"sip:alice@{HOST}"


async def call(ua, sipp, flags: str = "") -> str:
    """Place a call from the engine to the SIPp callee; the session key."""
    target = f"sip:service@{HOST}:{sipp.port}"
    return await ua.engine.client_start(target, target, ALICE, body=SDP_OFFER, flags=flags)


async def test_engine_calls_builtin_uas_and_hangs_up(start_engine, run_sipp) -> None:
    """Scenario 3: SIPp's built-in uas rings and answers; the engine hangs up; BYE gets 200."""
    ua = await start_engine(engine_config())
    sipp = await run_sipp.start("uas", calls=1)
    key = await call(ua, sipp)
    answered = await ua.wait_for(EventType.ANSWERED, key)
    assert (answered.status, answered.method, answered.entity_type) == (200, "INVITE", "UAC")
    await ua.engine.terminate(key)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert ua.kinds(key) == ["EARLY", "ANSWERED", "TERMINATED"]
    assert ua.seen[0].status == 180
    assert ua.seen[-1].origin == Origin.LOCAL


async def test_sipp_hangs_up_first(start_engine, run_sipp) -> None:
    """Scenario 4: SIPp answers, then sends BYE after a pause; the engine answers it 200."""
    ua = await start_engine(engine_config())
    sipp = await run_sipp.start("uas_hangup.xml", calls=1)
    key = await call(ua, sipp)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert ua.kinds(key) == ["ANSWERED", "TERMINATED"]
    terminated = ua.seen[-1]
    assert (terminated.method, terminated.origin) == ("BYE", Origin.REMOTE)


async def test_sipp_puts_engine_on_hold_and_back(start_engine, run_sipp) -> None:
    """Scenario 5a: SIPp sends a hold re-INVITE (sendonly), the controller answers recvonly;
    then a resume re-INVITE (sendrecv) answered sendrecv; each 200 is ACKed; the engine hangs
    up."""
    ua = await start_engine(engine_config())
    sipp = await run_sipp.start("uas_reinvite_send.xml", calls=1)
    key = await call(ua, sipp, flags="ab")
    await ua.wait_for(EventType.ANSWERED, key)

    hold = await ua.wait_for(EventType.UPDATED, key)
    assert (hold.method, hold.status, hold.origin) == ("INVITE", 0, Origin.REMOTE)
    assert hold.body is not None and "a=sendonly" in hold.body, hold.body
    await ua.engine.reply(key, "INVITE", 200, "OK", body=sdp("recvonly"))
    ack = await ua.wait_for(EventType.UPDATED, key)
    assert ack.method == "ACK"

    resume = await ua.wait_for(EventType.UPDATED, key)
    assert resume.method == "INVITE"
    assert resume.body is not None and "a=sendrecv" in resume.body, resume.body
    await ua.engine.reply(key, "INVITE", 200, "OK", body=sdp("sendrecv", 1002))
    ack = await ua.wait_for(EventType.UPDATED, key)
    assert ack.method == "ACK"

    await ua.engine.terminate(key)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert [(e.event_type, e.method) for e in ua.seen] == [
        ("ANSWERED", "INVITE"),
        ("UPDATED", "INVITE"),
        ("UPDATED", "ACK"),
        ("UPDATED", "INVITE"),
        ("UPDATED", "ACK"),
        ("TERMINATED", "BYE"),
    ]
    assert ua.seen[-1].origin == Origin.LOCAL


async def test_engine_puts_sipp_on_hold_and_back(start_engine, run_sipp) -> None:
    """Scenario 5b: the engine sends the hold re-INVITE (sendonly; SIPp checks it and answers
    recvonly) and the resume one (sendrecv), ACKs each 200 itself, then hangs up."""
    ua = await start_engine(engine_config())
    sipp = await run_sipp.start("uas_reinvite_recv.xml", calls=1)
    key = await call(ua, sipp, flags="b")
    await ua.wait_for(EventType.ANSWERED, key)

    await ua.engine.update(key, "INVITE", body=sdp("sendonly"))
    held = await ua.wait_for(EventType.ANSWERED, key)
    assert (held.method, held.status) == ("INVITE", 200)
    assert held.body is not None and "a=recvonly" in held.body, held.body

    await ua.engine.update(key, "INVITE", body=sdp("sendrecv", 1002))
    resumed = await ua.wait_for(EventType.ANSWERED, key)
    assert (resumed.method, resumed.status) == ("INVITE", 200)
    assert resumed.body is not None and "a=sendrecv" in resumed.body, resumed.body

    await ua.engine.terminate(key)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert [(e.event_type, e.method) for e in ua.seen] == [
        ("ANSWERED", "INVITE"),
        ("ANSWERED", "INVITE"),
        ("ANSWERED", "INVITE"),
        ("TERMINATED", "BYE"),
    ]


async def test_digest_challenge_answered(start_engine, run_sipp) -> None:
    """Scenario 7: SIPp answers the INVITE 401; the engine retries with alice's credentials;
    SIPp's verifyauth accepts them and answers 200; only ANSWERED is reported."""
    ua = await start_engine(engine_config(credentials=["alice:sipp.test:secret"]))
    sipp = await run_sipp.start("uas_digest.xml", calls=1, options=["-set", "expect_auth", "1"])
    key = await call(ua, sipp)
    await ua.wait_for(EventType.ANSWERED, key)
    await ua.engine.terminate(key)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert ua.kinds(key) == ["ANSWERED", "TERMINATED"]


async def test_digest_with_wrong_password_is_refused(start_engine, run_sipp) -> None:
    """Scenario 7, wrong password: SIPp's verifyauth refuses the credentials and answers 403
    (exit code 0 means it refused them, see the scenario); the engine reports REJECTED 403 and
    ends the session."""
    ua = await start_engine(engine_config(credentials=["alice:sipp.test:not-the-secret"]))
    sipp = await run_sipp.start("uas_digest.xml", calls=1, options=["-set", "expect_auth", "0"])
    key = await call(ua, sipp)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert [(e.event_type, e.status) for e in ua.seen] == [("REJECTED", 403), ("TERMINATED", 0)]
    assert ua.seen[0].key == key


async def test_reliable_provisional_response_is_pracked(start_engine, run_sipp) -> None:
    """Scenario 8: SIPp sends 180 with Require: 100rel, RSeq: 1; the engine PRACKs it
    (RAck: 1 1 INVITE, checked by SIPp); then 200, ACK; the engine hangs up."""
    ua = await start_engine(engine_config())
    sipp = await run_sipp.start("uas_100rel.xml", calls=1)
    key = await call(ua, sipp)
    early = await ua.wait_for(EventType.EARLY, key)
    assert early.status == 180
    await ua.wait_for(EventType.ANSWERED, key)
    await ua.engine.terminate(key)
    result = await sipp.wait()
    result.assert_passed(1)
    await ua.idle()
    assert ua.kinds(key) == ["EARLY", "ANSWERED", "TERMINATED"]
