"""The details pane of the selected session: Summary, SDP, Headers, Ladder, Events."""

from datetime import datetime

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QSyntaxHighlighter, QTextCharFormat
from PySide6.QtWidgets import (
    QFormLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QScrollArea,
    QSplitter,
    QTableView,
    QTabWidget,
    QWidget,
)

from .hub import SessionData, SessionHub
from .ladder import LadderView, describe
from .models import EventTableModel, format_duration


def mono_font() -> QFont:
    """The system's fixed-width font."""
    return QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)


class DiffHighlighter(QSyntaxHighlighter):
    """Colours a unified diff: additions green, removals red, headings grey."""

    def highlightBlock(self, text: str) -> None:
        colour = None
        if text.startswith(("+++", "---", "@@")):
            colour = "#6b6b6b"
        elif text.startswith("+"):
            colour = "#1c7a3c"
        elif text.startswith("-"):
            colour = "#b3261e"
        elif text.startswith("#"):
            colour = "#1d4f91"
        if colour:
            fmt = QTextCharFormat()
            fmt.setForeground(QColor(colour))
            self.setFormat(0, len(text), fmt)


def _when(value: float | None) -> str:
    if value is None:
        return "—"
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


class SessionDetails(QTabWidget):
    """Tabs about one session; ``show_session`` picks it, ``refresh`` redraws it."""

    def __init__(self, hub: SessionHub, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.key: str | None = None
        self.setAccessibleName("Session details")
        self.setDocumentMode(True)

        # Summary
        summary = QWidget()
        self._form = QFormLayout(summary)
        self._form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        self._fields: dict[str, QLabel] = {}
        for name in (
            "Key",
            "Direction",
            "State",
            "From",
            "To",
            "Request-URI",
            "Call-ID",
            "Peer",
            "Created",
            "Answered",
            "Ended",
            "Duration",
            "Final status",
            "Last event",
            "Flags",
            "CSeq",
            "Route set",
            "Contacts",
        ):
            label = QLabel("—")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            label.setAccessibleName(name)
            self._fields[name] = label
            self._form.addRow(f"{name}:", label)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(summary)
        self.addTab(scroll, "&Summary")

        # SDP: a list of every SDP seen, and the selected one with its diff.
        sdp = QSplitter(Qt.Orientation.Horizontal)
        self._sdp_list = QListWidget()
        self._sdp_list.setAccessibleName("SDP offers and answers")
        self._sdp_text = QPlainTextEdit()
        self._sdp_text.setReadOnly(True)
        self._sdp_text.setFont(mono_font())
        self._sdp_text.setAccessibleName("Selected SDP and its changes")
        DiffHighlighter(self._sdp_text.document())
        sdp.addWidget(self._sdp_list)
        sdp.addWidget(self._sdp_text)
        sdp.setStretchFactor(1, 3)
        sdp.setSizes([330, 900])
        self._sdp_list.currentRowChanged.connect(self._show_sdp)
        self.addTab(sdp, "S&DP")

        # Headers of the last message
        self._headers = QPlainTextEdit()
        self._headers.setReadOnly(True)
        self._headers.setFont(mono_font())
        self._headers.setAccessibleName("Headers of the last message")
        self.addTab(self._headers, "&Headers")

        # Ladder with the raw message under it
        ladder = QSplitter(Qt.Orientation.Vertical)
        self.ladder = LadderView()
        self._ladder_scroll = QScrollArea()
        self._ladder_scroll.setWidgetResizable(True)
        self._ladder_scroll.setWidget(self.ladder)
        self._raw = QPlainTextEdit()
        self._raw.setReadOnly(True)
        self._raw.setFont(mono_font())
        self._raw.setAccessibleName("Raw SIP message")
        self._raw.setPlaceholderText("Click an arrow of the ladder to see the message")
        ladder.addWidget(self._ladder_scroll)
        ladder.addWidget(self._raw)
        ladder.setStretchFactor(0, 3)
        ladder.setStretchFactor(1, 2)
        self.ladder.messageClicked.connect(self._show_raw)
        self.addTab(ladder, "&Ladder")

        # Events of the session
        self.events_model = EventTableModel(capacity=5000)
        self._events = QTableView()
        self._events.setModel(self.events_model)
        self._events.setAccessibleName("Events of the session")
        self._events.verticalHeader().hide()
        self._events.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self._events.horizontalHeader().setStretchLastSection(True)
        self._events.setColumnHidden(2, True)
        self.addTab(self._events, "&Events")

        self._sdp_count = -1
        self._message_count = -1
        self._event_count = -1
        hub.sessionsChanged.connect(self._on_changed)
        self.show_session(None)

    # -- selection -------------------------------------------------------------------------------

    def show_session(self, key: str | None) -> None:
        """Show this session (None: nothing)."""
        if key != self.key:
            self._sdp_count = self._message_count = self._event_count = -1
            self._raw.clear()
        self.key = key
        self.refresh()

    def _on_changed(self, keys: list[str]) -> None:
        if self.key is not None and self.key in keys:
            self.refresh()

    def session(self) -> SessionData | None:
        """The session shown."""
        return self.hub.sessions.get(self.key) if self.key else None

    def refresh(self) -> None:
        """Redraw from the hub's copy of the session."""
        s = self.session()
        if s is None:
            for label in self._fields.values():
                label.setText("—")
            if self.key is None:
                self._fields["Key"].setText("Select a session in the table")
            self._sdp_list.clear()
            self._sdp_text.clear()
            self._headers.clear()
            self.ladder.set_messages([])
            self.events_model.only_key = None
            self.events_model.set_events([])
            return
        self._summary(s)
        if len(s.sdp) != self._sdp_count:
            self._sdp_count = len(s.sdp)
            keep = self._sdp_list.currentRow()
            self._sdp_list.clear()
            for entry in s.sdp:
                stamp = datetime.fromtimestamp(entry.time).strftime("%H:%M:%S")
                item = QListWidgetItem(f"{stamp}  {entry.side} {entry.role} · {entry.carrier}")
                self._sdp_list.addItem(item)
            if s.sdp:
                self._sdp_list.setCurrentRow(keep if 0 <= keep < len(s.sdp) else len(s.sdp) - 1)
        if len(s.messages) != self._message_count:
            self._message_count = len(s.messages)
            last = s.last_message()
            if last is not None:
                text = last.text
                heading = f"# {text.start_line}"
                lines = [heading] + [f"{name}: {value}" for name, value in text.headers]
                self._headers.setPlainText("\n".join(lines))
            self.ladder.set_messages(s.messages)
        if len(s.events) != self._event_count:
            self._event_count = len(s.events)
            self.events_model.only_key = s.key
            self.events_model.set_events(s.events)

    def _summary(self, s: SessionData) -> None:
        import time

        info = s.info
        values = {
            "Key": s.key,
            "Direction": "incoming (UAS)" if s.direction == "in" else "outgoing (UAC)",
            "State": s.state + (f" — ended by {s.ended_by}" if s.ended_by else ""),
            "From": s.from_,
            "To": s.to,
            "Request-URI": s.ruri,
            "Call-ID": s.callid,
            "Peer": info.peer if info else "",
            "Created": _when(s.created),
            "Answered": _when(s.answered),
            "Ended": _when(s.ended),
            "Duration": format_duration(s.duration(time.time())),
            "Final status": str(s.final_status or "—"),
            "Last event": s.last_event,
            "Flags": info.flags if info else "",
            "CSeq": (
                f"caller {info.cseq.get('caller')}, callee {info.cseq.get('callee')}"
                if info
                else ""
            ),
            "Route set": ", ".join(info.route_set.get("caller", [])) if info else "",
            "Contacts": (
                f"caller {info.contact.get('caller')}\ncallee {info.contact.get('callee')}"
                if info
                else ""
            ),
        }
        for name, value in values.items():
            self._fields[name].setText(value or "—")

    def _show_sdp(self, row: int) -> None:
        s = self.session()
        if s is None or not 0 <= row < len(s.sdp):
            self._sdp_text.clear()
            return
        entry = s.sdp[row]
        parts: list[str] = []
        if entry.diff:  # what changed first: it is what the operator looks for
            parts += [f"# changes from the previous {entry.side} SDP", entry.diff.rstrip(), ""]
        elif row and any(e.side == entry.side for e in s.sdp[:row]):
            parts += [f"# same as the previous {entry.side} SDP", ""]
        parts += [f"# {entry.side} {entry.role}, carried by {entry.carrier}", entry.sdp.rstrip()]
        self._sdp_text.setPlainText("\n".join(parts))

    def _show_raw(self, row: int) -> None:
        s = self.session()
        if s is None or not 0 <= row < len(s.messages):
            return
        self._raw.setPlainText(describe(s.messages[row]))

    @property
    def raw_text(self) -> str:
        """The raw message shown under the ladder."""
        return self._raw.toPlainText()

    def show_ladder(self) -> None:
        """Bring the ladder tab forward."""
        self.setCurrentIndex(3)
