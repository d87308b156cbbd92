"""SIPp calls the engine, on 127.0.0.1: SIPp is the caller (a UAC scenario), the engine answers
as its incoming-call policy says (auto-answer, manual ringing, reject:486).

SIPp's exit code 0 means every call went as its scenario expects; the engine's events are
checked on top, and no session may be left once SIPp is done.
"""

from collections import Counter
from collections.abc import Collection

import pytest

from engine.ua.events import EventType, Origin, SessionEvent

from .conftest import HOST, engine_config

pytestmark = pytest.mark.interop

CALLS = 200
RATE = 50


def assert_each_call_ended_by_bye(
    events: list[SessionEvent], calls: int, timed_out: Collection[str] = ()
) -> None:
    """Every call was one UAS session: NEW, then TERMINATED by the caller's BYE (or, for the
    Call-IDs in ``timed_out``, by the engine's own BYE when no ACK came)."""
    by_key: dict[str, list[SessionEvent]] = {}
    for event in events:
        by_key.setdefault(event.key, []).append(event)
    counts = Counter(e.event_type for e in events)
    assert counts == {EventType.NEW: calls, EventType.TERMINATED: calls}, counts
    assert len(by_key) == calls
    assert len({e.callid for e in events}) == calls
    for key, session in by_key.items():
        new, terminated = session
        assert (new.event_type, new.entity_type, new.method, new.origin) == (
            EventType.NEW, "UAS", "INVITE", Origin.REMOTE,
        ), key  # fmt: skip
        origin = Origin.TIMEOUT if new.callid in timed_out else Origin.REMOTE
        assert (terminated.event_type, terminated.method, terminated.origin) == (
            EventType.TERMINATED, "BYE", origin,
        ), key  # fmt: skip


async def test_builtin_uac_calls_auto_answer(start_engine, run_sipp) -> None:
    """Scenario 1: SIPp's built-in uac places 200 calls at 50 calls/s; the engine answers each
    at once and SIPp hangs up each; none fails."""
    ua = await start_engine(engine_config().with_incoming("auto-answer"))
    result = await run_sipp("uac", remote=f"{HOST}:{ua.port}", calls=CALLS, rate=RATE)
    result.assert_passed(CALLS)
    await ua.idle()
    assert_each_call_ended_by_bye(ua.seen, CALLS)


async def test_caller_cancels_while_ringing(start_engine, run_sipp) -> None:
    """Scenario 2: the engine rings (manual: 180 at once); SIPp CANCELs and checks 200 to the
    CANCEL, 487 to the INVITE, and ACKs the 487."""
    ua = await start_engine(engine_config())
    result = await run_sipp("uac_cancel.xml", remote=f"{HOST}:{ua.port}", calls=1)
    result.assert_passed(1)
    await ua.idle()
    assert [(e.event_type, e.method, e.origin) for e in ua.seen] == [
        (EventType.NEW, "INVITE", Origin.REMOTE),
        (EventType.TERMINATED, "CANCEL", Origin.REMOTE),
    ]
    assert ua.seen[0].key == ua.seen[1].key


async def test_policy_rejects_with_486(start_engine, run_sipp) -> None:
    """Scenario 6: the policy rejects every call with 486; SIPp expects 486 and ACKs it. A call
    the policy rejects opens no session, so the engine reports nothing."""
    ua = await start_engine(engine_config().with_incoming("reject:486"))
    result = await run_sipp("uac_busy.xml", remote=f"{HOST}:{ua.port}", calls=1)
    result.assert_passed(1)
    await ua.idle()
    assert ua.seen == []


async def test_calls_complete_through_packet_loss(start_engine, run_sipp) -> None:
    """Scenario 9: SIPp's built-in uac drops 10% of its messages (-lost 10, sent and received);
    200 calls at 50 calls/s against auto-answer all complete through retransmissions.

    The built-in uac takes any 200 after its BYE for the BYE's answer. When its ACK and its BYE
    are both dropped, the engine's retransmission of the INVITE's 2xx (RFC 3261 13.3.1.4) comes
    first and SIPp ends the call on it, a success to SIPp: about one call in a hundred. The
    engine never hears of that call again, so it sends its 2xx until 64*T1 and then ends the
    session itself with BYE (TERMINATED, origin timeout). The test waits for that, and checks
    that the engine ended on its own exactly calls whose ACK and BYE never left SIPp.
    """
    ua = await start_engine(engine_config().with_incoming("auto-answer"))
    result = await run_sipp(
        "uac",
        remote=f"{HOST}:{ua.port}",
        calls=CALLS,
        rate=RATE,
        options=["-lost", "10", "-recv_timeout", "40s"],
    )
    result.assert_passed(CALLS)
    assert result.counter("Retransmissions") > 0, result.report()  # the loss did happen
    give_up = 64 * ua.engine.config.timers.t1
    await ua.idle(timeout=give_up + 10)
    unheard = {
        call_id
        for call_id, methods in result.sent_requests().items()
        if not methods & {"ACK", "BYE"}
    }
    timed_out = {
        e.callid
        for e in ua.seen
        if e.event_type == EventType.TERMINATED and e.origin != Origin.REMOTE
    }
    assert timed_out == unheard, result.report()
    assert_each_call_ended_by_bye(ua.seen, CALLS, timed_out=timed_out)


async def test_transaction_aware_uac_through_packet_loss(start_engine, run_sipp) -> None:
    """Scenario 9, with a caller that matches responses to transactions (uac_transactions.xml):
    through 10% loss, every one of 200 calls ends with the caller's BYE at the engine."""
    ua = await start_engine(engine_config().with_incoming("auto-answer"))
    result = await run_sipp(
        "uac_transactions.xml",
        remote=f"{HOST}:{ua.port}",
        calls=CALLS,
        rate=RATE,
        options=["-lost", "10", "-recv_timeout", "40s"],
    )
    result.assert_passed(CALLS)
    assert result.counter("Retransmissions") > 0, result.report()
    await ua.idle()
    assert_each_call_ended_by_bye(ua.seen, CALLS)


async def test_caller_that_never_acks_gets_bye(start_engine, run_sipp) -> None:
    """RFC 3261 13.3.1.4: the caller never ACKs the 200; the engine retransmits its 2xx, and
    64*T1 later ends the session with BYE (TERMINATED, origin timeout), which SIPp answers.
    T1 is 50 ms here, so that 64*T1 is 3.2 s."""
    ua = await start_engine(engine_config(t1=0.05).with_incoming("auto-answer"))
    result = await run_sipp("uac_no_ack.xml", remote=f"{HOST}:{ua.port}", calls=1)
    result.assert_passed(1)
    await ua.idle()
    assert [(e.event_type, e.method, e.origin) for e in ua.seen] == [
        (EventType.NEW, "INVITE", Origin.REMOTE),
        (EventType.TERMINATED, "BYE", Origin.TIMEOUT),
    ]
    terminated = ua.seen[-1]
    assert 64 * 0.05 <= terminated.time - ua.seen[0].time < 64 * 0.05 + 2
    log = result.messages_file.read_text()
    assert log.count("CSeq: 1 INVITE\n") >= 1 + 5, "the 2xx was not retransmitted"
