"""What the console's flat table models share: fixed named columns, header tips, bounds checks."""

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, QTimer
from PySide6.QtGui import QBrush, QColor

Index = QModelIndex | QPersistentModelIndex
T = TypeVar("T")

#: The console's row colours (background, text), light and readable on a light theme.
GREEN = ("#dcf5e3", "#145c2c")
BLUE = ("#e3efff", "#0b3c80")
YELLOW = ("#fff1c2", "#7a4d00")
PURPLE = ("#eee5fb", "#4b2a86")
RED = ("#fde2e1", "#8a1c17")
GREY = ("#f0f0f0", "#555555")


def brushes(colours: dict[str, tuple[str, str]]) -> dict[str, tuple[QBrush, QBrush]]:
    """(background, text) brushes for each state of a colour table."""
    return {state: (QBrush(QColor(bg)), QBrush(QColor(fg))) for state, (bg, fg) in colours.items()}


class ColumnsModel(QAbstractTableModel):
    """A flat table whose columns are ``COLUMNS`` (tooltips ``HEADER_TIPS``, if any).

    Subclasses say how many rows they hold with ``_count`` and read cells through ``_cell_at``,
    which returns None for any index outside the table.
    """

    COLUMNS: tuple[str, ...] = ()
    HEADER_TIPS: tuple[str, ...] = ()

    def _count(self) -> int:
        raise NotImplementedError

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._count()

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(self.COLUMNS):
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole and section < len(self.HEADER_TIPS):
            return self.HEADER_TIPS[section]
        return None

    def _cell_at(self, index: Index) -> tuple[int, int] | None:
        """(row, column) of a valid index inside the table, else None."""
        if not index.isValid():
            return None
        row, column = index.row(), index.column()
        if not (0 <= row < self._count() and 0 <= column < len(self.COLUMNS)):
            return None
        return row, column


class KeyedRowsModel(ColumnsModel, Generic[T]):
    """Rows of the hub's items (sessions, accounts), found by key, with a clock for the
    columns that count time: ``_tick`` runs once a second, after ``_now`` moves on.

    Subclasses give ``key_of`` (an item's key) and the hub's current items by key to
    ``_take_added``; the hub's change signals go to ``_take_added``, ``_show_changed`` and
    ``_take_removed``.
    """

    def __init__(self, key_of: Callable[[T], str], parent: Any = None) -> None:
        super().__init__(parent)
        self._key_of = key_of
        self._rows: list[T] = []
        self._row_of: dict[str, int] = {}
        self._now = time.time()
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._on_second)
        self._ticker.start()

    def _count(self) -> int:
        return len(self._rows)

    def _on_second(self) -> None:
        self._now = time.time()
        self._tick()

    def _tick(self) -> None:
        """What moves on once a second (nothing by default)."""

    def _take_added(self, keys: Iterable[str], known: dict[str, T]) -> bool:
        """Append the rows of ``keys`` that ``known`` holds and the table lacks; True if any."""
        new = [known[k] for k in keys if k in known and k not in self._row_of]
        if not new:
            return False
        first = len(self._rows)
        self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
        for item in new:
            self._row_of[self._key_of(item)] = len(self._rows)
            self._rows.append(item)
        self.endInsertRows()
        return True

    def _show_changed(self, keys: Iterable[str]) -> list[int]:
        """Repaint the rows of ``keys``; their row numbers, sorted."""
        rows = sorted(self._row_of[k] for k in keys if k in self._row_of)
        last = len(self.COLUMNS) - 1
        for first, end in runs(rows):
            self.dataChanged.emit(self.index(first, 0), self.index(end, last))
        return rows

    def _take_removed(self, keys: Iterable[str]) -> None:
        """Remove the rows of ``keys``."""
        rows = sorted(self._row_of[k] for k in keys if k in self._row_of)
        if not rows:
            return
        for first, end in reversed(list(runs(rows))):
            self.beginRemoveRows(QModelIndex(), first, end)
            del self._rows[first : end + 1]
            self.endRemoveRows()
        self._reindex()

    def _reindex(self) -> None:
        self._row_of = {self._key_of(item): i for i, item in enumerate(self._rows)}


def runs(rows: Sequence[int]) -> Iterable[tuple[int, int]]:
    """Contiguous runs (first, last) of sorted row numbers."""
    if not rows:
        return
    first = prev = rows[0]
    for row in rows[1:]:
        if row == prev or row == prev + 1:
            prev = row
            continue
        yield first, prev
        first = prev = row
    yield first, prev
