"""The call-flow ladder of one session, drawn with QPainter.

A column (a vertical "lifeline") per party: our own address(es) on the left, each peer address
to the right. One row per message, top to bottom in the order they crossed the wire: an arrow
from sender to receiver, labelled with the method or the status, and the time on the left.
Retransmissions are drawn dashed in orange and marked. A click on a row selects it and emits
``messageClicked`` with its index; the details pane shows the raw message.
"""

from datetime import datetime

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPolygonF,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

from .hub import MessageItem

ROW = 34
HEADER = 46
TIME_WIDTH = 118
MIN_GAP = 240
MARGIN = 24
#: Half the width of a lifeline's title.
LABEL_HALF = 110

_REQUEST = QColor("#1d4f91")
_SUCCESS = QColor("#1c7a3c")
_PROVISIONAL = QColor("#6b6b6b")
_ERROR = QColor("#b3261e")
_RETRANSMISSION = QColor("#d9822b")
_SELECTED = QColor("#fff3c4")


class LadderView(QWidget):
    """Draws a list of MessageItem; put it in a QScrollArea."""

    messageClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAccessibleName("Call flow ladder")
        self.setAccessibleDescription(
            "One arrow per SIP message between the parties; click an arrow to see the message"
        )
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)
        self.setAutoFillBackground(True)
        self._items: list[MessageItem] = []
        self._parties: list[str] = []
        self._selected = -1

    # -- content ---------------------------------------------------------------------------------

    def set_messages(self, items: list[MessageItem]) -> None:
        """Show these messages (a copy of the list is kept)."""
        self._items = list(items)
        parties: list[str] = []
        for item in self._items:
            if item.record.local not in parties:
                parties.append(item.record.local)
        remotes: list[str] = []
        for item in self._items:
            if item.record.remote not in remotes and item.record.remote not in parties:
                remotes.append(item.record.remote)
        self._parties = parties + remotes
        if self._selected >= len(self._items):
            self._selected = -1
        self.updateGeometry()
        self.resize(self.sizeHint().expandedTo(self.size()))
        self.update()

    @property
    def parties(self) -> list[str]:
        """The lifelines, left to right."""
        return list(self._parties)

    @property
    def count(self) -> int:
        """How many messages are drawn."""
        return len(self._items)

    def labels(self) -> list[str]:
        """The text of each arrow, top to bottom (for tests and screen readers)."""
        return [self._label(item) for item in self._items]

    @property
    def selected(self) -> int:
        """The selected row, -1 for none."""
        return self._selected

    def select(self, row: int) -> None:
        """Select a row and tell the listeners."""
        if 0 <= row < len(self._items):
            self._selected = row
            self.update()
            self.messageClicked.emit(row)

    # -- geometry --------------------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        columns = max(2, len(self._parties))
        width = TIME_WIDTH + MARGIN + 40 + MIN_GAP * (columns - 1) + LABEL_HALF + 10
        height = HEADER + ROW * max(1, len(self._items)) + MARGIN
        return QSize(width, height)

    def minimumSizeHint(self) -> QSize:
        return self.sizeHint()

    def _x(self, party: str) -> float:
        columns = max(2, len(self._parties))
        left = TIME_WIDTH + MARGIN + 40
        usable = max(self.width() - left - LABEL_HALF - 10, MIN_GAP * (columns - 1))
        gap = usable / (columns - 1)
        index = self._parties.index(party) if party in self._parties else 0
        return left + gap * index

    def row_at(self, y: float) -> int:
        """The message row at height ``y``, -1 outside."""
        row = int((y - HEADER) // ROW)
        return row if 0 <= row < len(self._items) else -1

    # -- input -----------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        row = self.row_at(event.position().y())
        if row >= 0:
            self.select(row)
        super().mousePressEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Down:
            self.select(min(len(self._items) - 1, self._selected + 1))
        elif event.key() == Qt.Key.Key_Up:
            self.select(max(0, self._selected - 1))
        else:
            super().keyPressEvent(event)

    # -- drawing ---------------------------------------------------------------------------------

    def _label(self, item: MessageItem) -> str:
        text = item.text.summary
        return f"{text}  (retransmission)" if item.retransmission else text

    def _colour(self, item: MessageItem) -> QColor:
        if item.retransmission:
            return _RETRANSMISSION
        if item.text.is_request:
            return _REQUEST
        status = item.text.status
        if status < 200:
            return _PROVISIONAL
        if status < 300:
            return _SUCCESS
        return _ERROR

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), self.palette().base())
        font = QFont(self.font())
        bold = QFont(font)
        bold.setBold(True)
        metrics = QFontMetrics(font)
        if not self._items:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                self.rect(), Qt.AlignmentFlag.AlignCenter, "No SIP messages for this session yet"
            )
            painter.end()
            return
        bottom = HEADER + ROW * len(self._items)
        # Lifelines and their titles.
        for index, party in enumerate(self._parties):
            x = self._x(party)
            title = "this console" if index == 0 else "peer"
            if index > 0 and len(self._parties) > 2:
                title = f"peer {index}"
            painter.setFont(bold)
            painter.setPen(self.palette().text().color())
            box = QRectF(x - LABEL_HALF, 4, 2 * LABEL_HALF, 18)
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, title)
            painter.setFont(font)
            painter.drawText(
                QRectF(x - LABEL_HALF, 22, 2 * LABEL_HALF, 18), Qt.AlignmentFlag.AlignCenter, party
            )
            painter.setPen(QPen(QColor("#9aa5b1"), 2))
            painter.drawLine(QPointF(x, HEADER - 4), QPointF(x, bottom))
        start = self._items[0].record.time
        for row, item in enumerate(self._items):
            top = HEADER + row * ROW
            if row == self._selected:
                painter.fillRect(QRectF(0, top, self.width(), ROW), _SELECTED)
            record = item.record
            stamp = datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:-3]
            painter.setPen(self.palette().text().color())
            painter.setFont(font)
            painter.drawText(
                QRectF(6, top, TIME_WIDTH, ROW / 2 + 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                stamp,
            )
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(
                QRectF(6, top + ROW / 2, TIME_WIDTH, ROW / 2),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
                f"+{record.time - start:.3f} s",
            )
            if record.direction == "out":
                x1, x2 = self._x(record.local), self._x(record.remote)
            else:
                x1, x2 = self._x(record.remote), self._x(record.local)
            y = top + ROW - 9
            colour = self._colour(item)
            pen = QPen(colour, 2)
            if item.retransmission:
                pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawLine(QPointF(x1, y), QPointF(x2, y))
            direction = 1 if x2 > x1 else -1
            head = QPolygonF(
                [
                    QPointF(x2, y),
                    QPointF(x2 - 10 * direction, y - 5),
                    QPointF(x2 - 10 * direction, y + 5),
                ]
            )
            painter.setBrush(colour)
            painter.setPen(QPen(colour, 1))
            painter.drawPolygon(head)
            label = self._label(item)
            painter.setFont(bold if item.text.is_request else font)
            painter.setPen(colour)
            left, right = min(x1, x2), max(x1, x2)
            elided = metrics.elidedText(label, Qt.TextElideMode.ElideRight, int(right - left - 8))
            painter.drawText(
                QRectF(left, top + 2, right - left, ROW - 12),
                Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom,
                elided,
            )
        painter.end()


def describe(item: MessageItem) -> str:
    """The raw message with a one-line heading, for the pane under the ladder."""
    record = item.record
    stamp = datetime.fromtimestamp(record.time).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    arrow = (
        f"{record.local} → {record.remote}"
        if record.direction == "out"
        else (f"{record.remote} → {record.local}")
    )
    mark = "  [retransmission]" if item.retransmission else ""
    text = record.data.decode("utf-8", "replace").replace("\r\n", "\n")
    return f"# {stamp}  {record.transport.upper()}  {arrow}{mark}\n{text}"
