"""Starting without a display, form checks as the user types, and the refcount guard on Qt."""

import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt

from gui import validate
from gui.sipmsg import parse_header_lines, split_message
from tests.conftest import PROJECT_ROOT


def test_no_display_runs_the_engine_headless() -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "gui.launcher", "--listen", "udp:127.0.0.1:0", "--no-mi", "--no-db"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stdout.readline()  # type: ignore[union-attr]
        second = process.stdout.readline()  # type: ignore[union-attr]
    finally:
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=15)
    assert first.startswith("uaconsole: no display"), (first, err)
    assert "running the engine headless" in first
    assert second.startswith("uaconsole engine listening on udp:127.0.0.1:"), (second, err)
    assert process.returncode == 0, err


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("sip:bob@127.0.0.1", True),
        ("sip:bob@127.0.0.1:5070;transport=tcp", True),
        ("<sips:alice@example.com>", True),
        ("sip:[::1]:5060", True),
        ("tel:+15551234", True),
        ("sip:bob@", False),
        ("bob@127.0.0.1", False),
        ("sip:bob @127.0.0.1", False),
        ("sip:bob@127.0.0.1:99999", False),
        ("", False),
    ],
)
def test_uri_check(text: str, ok: bool) -> None:
    assert (validate.uri_problem(text) is None) is ok


def test_other_checks() -> None:
    assert validate.code_problem("486") is None
    assert validate.code_problem("99") and validate.code_problem("700")
    assert validate.flags_problem("t3600bh") is None
    assert "x" in (validate.flags_problem("bx") or "")
    assert validate.display_name_problem("Smith, John")
    assert validate.media_type_problem("application/dtmf-relay") is None
    assert validate.media_type_problem("dtmf")
    assert validate.sdp_problem("v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\n") is None
    assert validate.sdp_problem("hello")
    pairs, problem = parse_header_lines("X-Case: 1\nSubject: hi\n")
    assert pairs == [("X-Case", "1"), ("Subject", "hi")] and problem is None
    assert "Name: value" in (parse_header_lines("nonsense")[1] or "")
    assert "set by the engine" in (parse_header_lines("Call-ID: x")[1] or "")


def test_split_message_reads_compact_forms() -> None:
    text = split_message(
        b"SIP/2.0 180 Ringing\r\nv: SIP/2.0/UDP h;branch=z9hG4bK1\r\ni: abc\r\n"
        b"CSeq: 2 UPDATE\r\nc: application/sdp\r\n\r\nv=0\r\n"
    )
    assert text.call_id == "abc" and text.cseq_method == "UPDATE" and text.status == 180
    assert text.summary == "180 Ringing (UPDATE) + SDP"


def test_forms_mark_bad_fields_as_the_user_types(console: Any, qtbot: Any) -> None:
    window = console.window
    form = window.open_originate()
    assert not form.send_button.isEnabled()  # nothing typed yet
    assert form.ruri.property("invalid") is not True  # empty: explained, not outlined
    qtbot.keyClicks(form.ruri.lineEdit(), "sip:bob@")
    assert form.ruri.property("invalid") is True
    assert "host" in form.problem.text()
    qtbot.keyClicks(form.ruri.lineEdit(), "127.0.0.1")
    assert form.ruri.property("invalid") is False and form.send_button.isEnabled()
    form.headers.setPlainText("Via: forged")
    assert form.headers.property("invalid") is True and not form.send_button.isEnabled()
    form.headers.setPlainText("")
    form.flags.setText("q")
    assert not form.send_button.isEnabled()
    form.close()
    assert window.act_originate.shortcut().toString() == "Ctrl+N"
    for action in (
        window.act_answer,
        window.act_hangup,
        window.act_hold,
        window.act_reinvite,
        window.act_request,
        window.act_reject,
    ):
        assert not action.shortcut().isEmpty()
        assert not action.isEnabled()  # nothing selected


def test_qt_keeps_none_alive(qapp: Any) -> None:
    """PySide6 6.12.0 drops a reference to None for every None a model's data() returns: on
    Python 3.11 the console aborts after a few thousand repaints (pyproject pins below it)."""

    class Model(QAbstractTableModel):
        def rowCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008
            return 1

        def columnCount(self, parent: Any = QModelIndex()) -> int:  # noqa: B008
            return 1

        def data(self, index: Any, role: int = 0) -> Any:
            return None

    model = Model()
    index = model.index(0, 0)
    before = sys.getrefcount(None)
    for _ in range(200):
        index.data(Qt.ItemDataRole.BackgroundRole)
    assert sys.getrefcount(None) >= before - 10
