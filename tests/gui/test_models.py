"""The table models under pytest-qt's qtmodeltester, and the hub's coalesced updates."""

import time
from typing import Any

import pytest
from PySide6.QtCore import Qt

from engine.api import Gap, MessageRecord, SessionEvent
from gui.hub import SessionHub, State, media_direction
from gui.models import (
    KEY_ROLE,
    EventTableModel,
    SessionFilterProxy,
    SessionTableModel,
    format_duration,
)

NOW = time.time()


@pytest.fixture(autouse=True)
def _application(qapp: Any) -> None:
    """The hub and the models use timers: they need the QApplication."""


def event(
    key: str,
    kind: str,
    seq: int,
    *,
    entity: str = "UAS",
    status: int = 0,
    method: str = "INVITE",
    at: float | None = None,
    origin: str = "remote",
) -> SessionEvent:
    return SessionEvent(
        key=key,
        event_type=kind,
        entity_type=entity,
        status=status,
        reason="OK" if status == 200 else None,
        method=method,
        body=None,
        headers=None,
        seq=seq,
        time=at if at is not None else NOW + seq * 0.001,
        callid=f"call-{key}",
        from_tag="f",
        to_tag="t",
        origin=origin,
    )


def message(key: str, direction: str, text: str, at: float) -> MessageRecord:
    return MessageRecord(
        at,
        direction,
        "udp",
        "udp:127.0.0.1:5060",
        "udp:127.0.0.1:5070",
        text.replace("\n", "\r\n").encode(),
    )


INVITE = """INVITE sip:bob@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1
From: <sip:alice@127.0.0.1>;tag=f
To: <sip:bob@127.0.0.1>
Call-ID: call-{key}
CSeq: 1 INVITE
Content-Type: application/sdp
Content-Length: 10

v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 4000 RTP/AVP 0
a=sendrecv
"""

OK = """SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1
From: <sip:alice@127.0.0.1>;tag=f
To: <sip:bob@127.0.0.1>;tag=t
Call-ID: call-{key}
CSeq: 1 INVITE
Content-Type: application/sdp
Content-Length: 10

v=0
o=- 2 2 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 5000 RTP/AVP 0
a=sendrecv
"""


def feed(hub: SessionHub, items: list[Any], records: list[Any] = ()) -> None:  # type: ignore[assignment]
    hub._event_batch.extend(items)
    hub._message_batch.extend(records)
    hub.flush()


def populated_hub(count: int = 30) -> SessionHub:
    hub = SessionHub()
    seq = 0
    items = []
    for n in range(count):
        key = f"B2B.1.{n}.1700000000.{n:016x}"
        seq += 1
        items.append(event(key, "NEW", seq))
        if n % 3 == 0:
            seq += 1
            items.append(event(key, "TERMINATED", seq, method="BYE"))
    feed(hub, items)
    return hub


def test_session_model_passes_qtmodeltester(qtmodeltester: Any) -> None:
    hub = populated_hub()
    model = SessionTableModel(hub)
    qtmodeltester.check(model, force_py=True)
    # the tester stays connected and checks every change that follows
    model.sort(SessionTableModel.STATE, Qt.SortOrder.DescendingOrder)
    feed(
        hub,
        [
            event("late", "NEW", 999),
            event("B2B.1.1.1700000000.0000000000000001", "TERMINATED", 1000, method="BYE", at=NOW),
        ],
    )
    hub.keep_ended = 0
    hub._housekeeping()
    assert model.rowCount() == 31 - 11


def test_filter_proxy_passes_qtmodeltester(qtmodeltester: Any) -> None:
    hub = populated_hub()
    model = SessionTableModel(hub)
    proxy = SessionFilterProxy()
    proxy.setSourceModel(model)
    qtmodeltester.check(proxy, force_py=True)
    proxy.set_states(State.ENDED_STATES)
    assert proxy.rowCount() == 10
    proxy.set_states(None)
    proxy.set_text(".7.1700000000")
    assert proxy.rowCount() == 1
    assert proxy.key_at(0) == "B2B.1.7.1700000000.0000000000000007"


def test_event_model_passes_qtmodeltester_and_caps(qtmodeltester: Any) -> None:
    model = EventTableModel(capacity=50)
    model.append([event(f"k{n}", "NEW", n) for n in range(40)])
    qtmodeltester.check(model, force_py=True)
    model.append([event(f"k{n}", "NEW", n) for n in range(40, 70)])
    assert model.rowCount() == 50
    assert model.index(0, 1).data() == "20"


def test_rows_are_inserted_changed_and_removed_in_batches(qtbot: Any) -> None:
    hub = SessionHub(keep_ended=0)
    model = SessionTableModel(hub)
    inserted: list[tuple[int, int]] = []
    changed: list[tuple[int, int]] = []
    model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    model.dataChanged.connect(lambda a, b, _r: changed.append((a.row(), b.row())))
    feed(hub, [event(f"k{n}", "NEW", n) for n in range(500)])
    assert inserted == [(0, 499)]  # one insertion for the whole burst
    assert changed == [(0, 499)]
    feed(hub, [event("k10", "TERMINATED", 1000, method="BYE", at=NOW), Gap(7)])
    assert hub.events_lost == 7
    assert model.index(10, SessionTableModel.STATE).data() == State.CANCELLED
    hub._housekeeping()  # keep_ended=0: the ended session leaves the table
    assert model.rowCount() == 499 and model.row_of("k10") == -1
    assert model.index(10, 0).data(KEY_ROLE) == "k11"


def test_states_follow_events_and_messages() -> None:
    hub = SessionHub()
    key = "k1"
    t = NOW
    feed(hub, [event(key, "NEW", 1, at=t + 0.01)], [message(key, "in", INVITE.format(key=key), t)])
    s = hub.sessions[key]
    assert s.state == State.INCOMING and s.remote_offer is not None
    assert hub.incoming_waiting() == [key]
    feed(hub, [], [message(key, "out", OK.format(key=key), t + 1)])
    assert s.state == State.ESTABLISHED and s.answered == t + 1
    assert [(e.side, e.role) for e in s.sdp] == [("remote", "offer"), ("local", "answer")]
    # a retransmitted 200 is marked, and does not add an SDP
    feed(hub, [], [message(key, "out", OK.format(key=key), t + 1.5)])
    assert s.messages[-1].retransmission and len(s.sdp) == 2
    # the peer puts us on hold
    held = INVITE.format(key=key).replace("a=sendrecv", "a=sendonly").replace("1 1 IN", "1 2 IN")
    feed(hub, [event(key, "UPDATED", 2, at=t + 2)], [message(key, "in", held, t + 1.9)])
    answer = OK.format(key=key).replace("a=sendrecv", "a=recvonly")
    feed(hub, [], [message(key, "out", answer, t + 2.1)])
    assert s.state == State.HELD
    assert "-a=sendrecv" in s.sdp[2].diff and "+a=sendonly" in s.sdp[2].diff
    feed(hub, [event(key, "TERMINATED", 3, method="BYE", at=t + 3)])
    assert s.state == State.ENDED and s.duration(t + 100) == 2.0


def test_media_direction_and_durations() -> None:
    assert media_direction("v=0\nm=audio 1 RTP/AVP 0\na=sendonly\n") == "sendonly"
    assert media_direction("v=0\na=inactive\nm=audio 1 RTP/AVP 0\n") == "inactive"
    assert media_direction("v=0\nm=audio 0 RTP/AVP 0\na=sendonly\nm=audio 2 RTP/AVP 0\n") == (
        "sendrecv"
    )
    assert format_duration(7) == "0:07"
    assert format_duration(3723) == "1:02:03"


def test_ten_thousand_rows_sort_quickly(qtbot: Any) -> None:
    hub = populated_hub(10_000)
    model = SessionTableModel(hub)
    proxy = SessionFilterProxy()
    proxy.setSourceModel(model)
    started = time.perf_counter()
    proxy.sort(SessionTableModel.FROM, Qt.SortOrder.AscendingOrder)
    proxy.sort(SessionTableModel.STATE, Qt.SortOrder.DescendingOrder)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"sorting 10,000 rows twice took {elapsed:.2f} s"
    assert proxy.rowCount() == 10_000
