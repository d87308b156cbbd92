"""End to end: the window, its embedded engine and real SIPp on 127.0.0.1.

- originate from the form to a SIPp called party, see it answered, hold from the re-INVITE
  form, hang up, and read the ladder;
- an incoming call from SIPp answered from the notification, then ended by SIPp;
- an incoming call rejected from the notification.
"""

import asyncio
from typing import Any

from PySide6.QtCore import Qt

from gui.hub import State
from tests.gui.conftest import SCENARIOS, engine_port, free_udp_port, screenshot, wait_until


def only_session(app: Any) -> Any:
    sessions = list(app.hub.sessions.values())
    return sessions[0] if len(sessions) == 1 else None


def test_originate_hold_hangup_and_ladder(console: Any, sipp: Any, run: Any, qtbot: Any) -> None:
    window = console.window
    port = free_udp_port()
    peer = sipp("-sf", str(SCENARIOS / "uas_hold.xml"), "-p", str(port), "-m", "1")

    async def scenario() -> None:
        form = window.open_originate()
        form.ruri.setText(f"sip:service@127.0.0.1:{port}")
        form.to.name.setText("Service desk")
        form.from_.uri.setText("sip:operator@127.0.0.1")
        form.from_.name.setText("Operator")
        form.headers.setPlainText("X-Case: 4711")
        assert not form.revalidate()
        screenshot(form, "originate-form")
        # a bad URI is marked before sending, and Send is off
        form.ruri.setText("sip:bob@")
        assert form.revalidate() and not form.send_button.isEnabled()
        assert form.ruri.property("invalid") is True
        form.ruri.setText(f"sip:service@127.0.0.1:{port}")
        assert not form.revalidate()
        qtbot.mouseClick(form.send_button, Qt.MouseButton.LeftButton)
        s = await wait_until(lambda: only_session(console), what="the new session")
        await wait_until(lambda: s.state == State.ESTABLISHED, what="the answer")
        assert s.final_status == 200 and s.direction == "out"
        assert window.details.key == s.key  # the new call is selected

        # Hold from the re-INVITE form
        reinvite = window.open_reinvite()
        assert reinvite is not None
        qtbot.mouseClick(reinvite.hold_button, Qt.MouseButton.LeftButton)
        assert "a=sendonly" in reinvite.sdp.edit.toPlainText()
        assert reinvite.direction.text() == "sendonly"
        qtbot.mouseClick(reinvite.send_button, Qt.MouseButton.LeftButton)
        await wait_until(lambda: s.state == State.ON_HOLD, what="hold")
        assert any(e.side == "local" and "sendonly" in e.diff for e in s.sdp)
        screenshot(window, "main-window-with-call")
        window.details.setCurrentIndex(1)  # the SDP tab, on the hold offer and its diff
        window.details._sdp_list.setCurrentRow(2)
        assert "+a=sendonly" in window.details._sdp_text.toPlainText()
        screenshot(window.details, "sdp-diff")
        window.details.setCurrentIndex(0)

        # Hang up with the keyboard shortcut's action
        window.act_hangup.trigger()
        await wait_until(lambda: s.is_ended, what="the end of the call")
        assert s.state == State.ENDED
        assert await peer.wait() == 0, peer.output()

        await wait_until(lambda: len(s.messages) >= 9, what="every message")
        window.details.show_ladder()
        window.details.refresh()
        labels = [lab for lab in window.details.ladder.labels() if "retransmission" not in lab]
        assert labels == [
            "INVITE + SDP",
            "180 Ringing",
            "200 OK + SDP",
            "ACK",
            "re-INVITE + SDP",
            "200 OK + SDP",
            "ACK",
            "BYE",
            "200 OK (BYE)",
        ], labels
        times = [m.record.time for m in s.messages]
        assert times == sorted(times)
        window.log_dock.hide()
        window.splitter.setSizes([120, 900])
        window.details.ladder.select(2)
        assert window.details.raw_text.splitlines()[1] == "SIP/2.0 200 OK"
        await asyncio.sleep(0.1)
        screenshot(window.details, "ladder")
        window.log_dock.show()

    run(scenario(), timeout=60)


def test_incoming_call_answered_from_the_notification(
    console: Any, sipp: Any, run: Any, qtbot: Any
) -> None:
    window = console.window
    caller = sipp(
        f"127.0.0.1:{engine_port(console)}",
        "-sn",
        "uac",
        "-m",
        "1",
        "-d",
        "1500",
        "-p",
        str(free_udp_port()),
    )

    async def scenario() -> None:
        bar = window.incoming_bar
        await wait_until(lambda: bar.isVisible() and bar.key, what="the notification")
        s = console.hub.sessions[bar.key]
        assert s.state == State.INCOMING and s.direction == "in"
        assert "Incoming call" in bar.label.text()
        screenshot(window, "incoming-call")
        qtbot.mouseClick(bar.answer_button, Qt.MouseButton.LeftButton)
        await wait_until(lambda: s.state == State.ESTABLISHED, what="the answer")
        assert not bar.isVisible()
        answer = next(e for e in s.sdp if e.side == "local")
        assert answer.role == "answer" and "m=audio" in answer.sdp
        await wait_until(lambda: s.is_ended, timeout=15, what="SIPp's BYE")
        assert s.state == State.ENDED and s.ended_by == "remote"
        assert await caller.wait() == 0, caller.output()

    run(scenario(), timeout=60)


def test_incoming_call_rejected(console: Any, sipp: Any, run: Any, qtbot: Any) -> None:
    window = console.window
    caller = sipp(
        f"127.0.0.1:{engine_port(console)}",
        "-sf",
        str(SCENARIOS / "uac_rejected.xml"),
        "-m",
        "1",
        "-p",
        str(free_udp_port()),
    )

    async def scenario() -> None:
        bar = window.incoming_bar
        await wait_until(lambda: bar.isVisible() and bar.key, what="the notification")
        s = console.hub.sessions[bar.key]
        qtbot.mouseClick(bar.reject_button, Qt.MouseButton.LeftButton)
        try:
            await wait_until(lambda: s.state == State.REJECTED, what="the rejection")
        except AssertionError:
            print(
                "STATE",
                s.state,
                s.final_status,
                window.notice.text(),
                [m.text.start_line for m in s.messages],
                s.events,
            )
            raise

        assert s.final_status == 486
        await wait_until(lambda: s.is_ended, timeout=10, what="the end after the ACK")
        assert s.state == State.REJECTED
        assert await caller.wait() == 0, caller.output()

    run(scenario(), timeout=40)
