"""Banners at the top of the window: an incoming call (Answer / Reject), and engine problems."""

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QWidget

from .assets import icon
from .hub import SessionHub, State
from .models import short_party

_CALL_STYLE = """
QFrame#incoming { background: #fff4d1; border: 1px solid #e0b64a; border-radius: 6px; }
QFrame#incoming QLabel { color: #4a3400; }
QFrame#incoming QPushButton { padding: 5px 14px; }
QPushButton#answer { background: #1c7a3c; color: white; border-radius: 4px; font-weight: bold; }
QPushButton#answer:focus { border: 2px solid #0b3c80; }
QPushButton#reject { background: #b3261e; color: white; border-radius: 4px; font-weight: bold; }
QPushButton#reject:focus { border: 2px solid #0b3c80; }
"""

_PROBLEM_STYLE = """
QFrame#problem { background: #fdecea; border: 1px solid #e8a29c; border-radius: 6px; }
QFrame#problem QLabel { color: #6d1712; }
"""


class IncomingCallBar(QFrame):
    """Shows the oldest incoming call that waits for the operator, with Answer and Reject."""

    answerRequested = Signal(str)
    answerWithFormRequested = Signal(str)
    rejectRequested = Signal(str)
    showRequested = Signal(str)

    def __init__(self, hub: SessionHub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.key: str | None = None
        self.setObjectName("incoming")
        self.setStyleSheet(_CALL_STYLE)
        self.setAccessibleName("Incoming call")
        layout = QHBoxLayout(self)
        badge = QLabel()
        badge.setPixmap(icon("incoming").pixmap(28, 28))
        layout.addWidget(badge)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setAccessibleName("Incoming call details")
        layout.addWidget(self.label, 1)
        self.answer_button = QPushButton(icon("answer"), "&Answer")
        self.answer_button.setObjectName("answer")
        self.answer_button.setAccessibleName("Answer the incoming call")
        self.answer_button.setToolTip("Answer with 200 OK and an SDP answer to the offer")
        self.edit_button = QPushButton("Answer &with…")
        self.edit_button.setAccessibleName("Answer with a form")
        self.edit_button.setToolTip("Open the Answer form to edit the SDP or the code")
        self.reject_button = QPushButton(icon("reject"), "&Reject")
        self.reject_button.setObjectName("reject")
        self.reject_button.setAccessibleName("Reject the incoming call")
        self.reject_button.setToolTip("Reject with 486 Busy Here")
        self.show_button = QPushButton("S&how")
        self.show_button.setAccessibleName("Show the incoming call in the table")
        for button in (self.answer_button, self.edit_button, self.reject_button, self.show_button):
            layout.addWidget(button)
        self.answer_button.clicked.connect(lambda: self._emit(self.answerRequested))
        self.edit_button.clicked.connect(lambda: self._emit(self.answerWithFormRequested))
        self.reject_button.clicked.connect(lambda: self._emit(self.rejectRequested))
        self.show_button.clicked.connect(lambda: self._emit(self.showRequested))
        hub.incomingCalls.connect(lambda _keys: self.refresh())
        hub.sessionsChanged.connect(self._on_changed)
        hub.sessionsRemoved.connect(lambda _keys: self.refresh())
        self.hide()

    def _emit(self, signal: Signal) -> None:
        if self.key is not None:
            signal.emit(self.key)  # type: ignore[attr-defined]

    def _on_changed(self, keys: list[str]) -> None:
        if self.isVisible() or any(
            self.hub.sessions.get(k) is not None and self.hub.sessions[k].state == State.INCOMING
            for k in keys
        ):
            self.refresh()

    def refresh(self) -> None:
        """Show the oldest waiting call, or hide."""
        waiting = self.hub.incoming_waiting()
        if not waiting:
            self.key = None
            self.hide()
            return
        self.key = waiting[0]
        s = self.hub.sessions[self.key]
        more = f" &nbsp;·&nbsp; {len(waiting) - 1} more waiting" if len(waiting) > 1 else ""
        caller = _escape(short_party(s.from_) or "unknown caller")
        callee = _escape(short_party(s.to) or s.ruri)
        self.label.setText(f"<b>Incoming call</b> from {caller}<br>to {callee}{more}")
        self.setAccessibleDescription(f"Incoming call from {short_party(s.from_)}")
        if not self.isVisible():
            self.show()


class ProblemBar(QFrame):
    """A plain statement of what is wrong (listeners that could not open), with a fix button."""

    fixRequested = Signal()
    retryRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("problem")
        self.setStyleSheet(_PROBLEM_STYLE)
        self.setAccessibleName("Engine problem")
        layout = QHBoxLayout(self)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.label, 1)
        self.fix_button = QPushButton(icon("settings"), "&Change listeners…")
        self.fix_button.setAccessibleName("Change the listeners in Settings")
        self.retry_button = QPushButton("Re&try")
        self.retry_button.setAccessibleName("Try to start the engine again")
        layout.addWidget(self.fix_button)
        layout.addWidget(self.retry_button)
        self.fix_button.clicked.connect(self.fixRequested)
        self.retry_button.clicked.connect(self.retryRequested)
        self.hide()

    def show_problem(self, text: str | None) -> None:
        """Show ``text`` (None hides the bar)."""
        if not text:
            self.hide()
            return
        self.label.setText(text)
        self.show()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
