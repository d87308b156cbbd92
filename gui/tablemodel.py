"""What the console's flat table models share: fixed named columns, header tips, bounds checks."""

from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

Index = QModelIndex | QPersistentModelIndex

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
