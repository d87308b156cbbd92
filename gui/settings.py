"""Settings: the same TOML file that ``uaconsole serve --config FILE`` reads.

The console edits the keys it knows and keeps every other key and table of the file as it was
(incoming rules, MI subscribers...). Before writing, the whole document is checked by
``EngineConfig.from_dict``, so a file the console saves always starts the headless engine too.
"""

import copy
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QStyledItemDelegate,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from engine.api import EngineConfig
from engine.api.config import ConfigError

from . import tomlwrite, validate
from .assets import default_config_text
from .forms import INVALID_STYLE

#: Defaults of the [gui] table.
GUI_DEFAULTS: dict[str, Any] = {
    "keep_ended": 300,
    "default_from": "sip:operator@127.0.0.1",
    "display_name": "Operator",
}


def default_config_path() -> Path:
    """Where the console keeps its configuration when no --config is given."""
    return platformdirs.user_config_path("uaconsole") / "uaconsole.toml"


def load_document(path: Path, *, create: bool = False) -> dict[str, Any]:
    """The parsed file; the default configuration when it does not exist (written if
    ``create``). ConfigError when it cannot be read or parsed."""
    if not path.exists():
        text = default_config_text()
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
            except OSError:
                pass  # a read-only home: run on the defaults
        return tomllib.loads(text) if text else {}
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None


def save_document(path: Path, document: dict[str, Any]) -> None:
    """Write the document atomically (a temporary file renamed over the old one)."""
    text = "# UA Console configuration; `uaconsole serve --config THIS_FILE` reads it too.\n\n"
    text += tomlwrite.dumps(document)
    tomllib.loads(text)  # never write what cannot be read back
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".uaconsole-", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(temporary, 0o600)  # it may hold credentials
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def gui_settings(document: dict[str, Any]) -> dict[str, Any]:
    """The [gui] table with defaults filled in."""
    table = document.get("gui", {})
    merged = dict(GUI_DEFAULTS)
    if isinstance(table, dict):
        merged.update(table)
    return merged


def accounts_of(document: dict[str, Any]) -> list[str]:
    """``user@realm`` of each configured credential (never the password)."""
    result = []
    for text in document.get("engine", {}).get("credentials", []) or []:
        parts = str(text).split(":", 2)
        if len(parts) == 3:
            result.append(f"{parts[0]}@{parts[1]}")
    return result


class _PasswordDelegate(QStyledItemDelegate):
    """Shows bullets for the password column and edits it masked."""

    def displayText(self, value: Any, locale: Any) -> str:
        return "•" * min(len(str(value)), 12) if value else ""

    def createEditor(self, parent: QWidget, option: Any, index: Any) -> QWidget:
        editor = QLineEdit(parent)
        editor.setEchoMode(QLineEdit.EchoMode.Password)
        return editor


class SettingsDialog(QDialog):
    """Edits the configuration file; ``saved`` carries the new document."""

    saved = Signal(dict)

    def __init__(self, path: Path, document: dict[str, Any], parent: QWidget | None = None):
        super().__init__(parent)
        self.path = path
        self.document = copy.deepcopy(document)
        self.setWindowTitle("Settings")
        self.setAccessibleName("Settings")
        self.setStyleSheet(INVALID_STYLE)
        engine = self.document.get("engine", {})
        gui = gui_settings(self.document)
        layout = QVBoxLayout(self)
        where = QLabel(
            f"Saved in <code>{path}</code> — <code>uaconsole serve --config {path}</code> "
            "runs the same engine headless."
        )
        where.setWordWrap(True)
        where.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(where)
        self.tabs = QTabWidget()
        layout.addWidget(self.tabs)

        # Listeners
        _, form = self._page("&Listeners")
        self.listen = QPlainTextEdit(
            "\n".join(
                _as_list(engine.get("listen")) or ["udp:127.0.0.1:5060", "tcp:127.0.0.1:5060"]
            )
        )
        self.listen.setAccessibleName("Listeners, one per line")
        self.listen.setToolTip("One per line: udp:, tcp: or tls: then address:port (port 0: any)")
        self.listen.setMaximumHeight(110)
        form.addRow("Listen on:", self.listen)
        self.advertised = QLineEdit(engine.get("advertised_contact", ""))
        self.advertised.setPlaceholderText("optional: sip:operator@198.51.100.7")
        form.addRow("Advertised Contact:", self.advertised)
        self.user_agent = QLineEdit(engine.get("user_agent", "UA Console"))
        form.addRow("User-Agent:", self.user_agent)
        self.rtp_address = QLineEdit(engine.get("rtp_address", ""))
        self.rtp_address.setPlaceholderText("address written in generated SDP (default: listener)")
        form.addRow("Media address:", self.rtp_address)

        # Identity
        _, form = self._page("&Identity")
        self.default_from = QLineEdit(str(gui.get("default_from", "")))
        self.default_from.setAccessibleName("Default From URI")
        form.addRow("Default From URI:", self.default_from)
        self.display_name = QLineEdit(str(gui.get("display_name", "")))
        self.display_name.setAccessibleName("Display name")
        form.addRow("Display name:", self.display_name)

        # Accounts
        _, form = self._page("&Accounts")
        self.accounts = QTableWidget(0, 3)
        self.accounts.setAccessibleName("Accounts")
        self.accounts.setHorizontalHeaderLabels(["User", "Realm", "Password"])
        self.accounts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.accounts.setItemDelegateForColumn(2, _PasswordDelegate(self.accounts))
        self.accounts.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for text in _as_list(engine.get("credentials")):
            parts = text.split(":", 2)
            if len(parts) == 3:
                self._add_account(*parts)
        buttons = QWidget()
        row = QHBoxLayout(buttons)
        row.setContentsMargins(0, 0, 0, 0)
        add = QPushButton("&Add account")
        remove = QPushButton("&Remove account")
        add.clicked.connect(lambda: self._add_account("", "", ""))
        remove.clicked.connect(self._remove_account)
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch()
        form.addRow(self.accounts)
        form.addRow(buttons)
        note = QLabel(
            "Credentials answer digest challenges of their realm. They are kept in the "
            "configuration file (readable by you only) and are never written to the log."
        )
        note.setWordWrap(True)
        form.addRow(note)

        # Incoming calls
        _, form = self._page("In&coming calls")
        self.incoming = QComboBox()
        self.incoming.setEditable(True)
        self.incoming.addItems(["manual", "auto-answer", "reject:486", "reject:603", "reject:480"])
        self.incoming.setCurrentText(
            str(self.document.get("incoming", {}).get("default", "manual"))
        )
        self.incoming.setAccessibleName("Default rule for incoming calls")
        form.addRow("When a call comes in:", self.incoming)
        rules = self.document.get("incoming", {}).get("rule", [])
        kept = QLabel(
            f"{len(rules)} rule(s) of [[incoming.rule]] in the file are kept as they are."
            if rules
            else "manual: ring and let the operator answer; auto-answer: 200 with an SDP "
            "answer; reject:CODE: refuse."
        )
        kept.setWordWrap(True)
        form.addRow(kept)

        # Control API
        _, form = self._page("Control &API")
        mi = self.document.get("mi", {}) if isinstance(self.document.get("mi"), dict) else {}
        self.mi_listen = QLineEdit(str(mi.get("listen", "")))
        self.mi_listen.setPlaceholderText("127.0.0.1:8888 (empty: the MI is off)")
        self.mi_listen.setAccessibleName("MI listener")
        form.addRow("MI over HTTP on:", self.mi_listen)

        # Database
        _, form = self._page("&Database")
        store = (
            self.document.get("store", {}) if isinstance(self.document.get("store"), dict) else {}
        )
        self.db_path = QLineEdit(str(store.get("path", "")))
        self.db_path.setPlaceholderText(
            str(platformdirs.user_data_path("uaconsole") / "log.sqlite")
        )
        self.db_path.setAccessibleName("Database path")
        form.addRow("SQLite file:", self.db_path)
        self.retention = QSpinBox()
        self.retention.setRange(0, 3650)
        self.retention.setSuffix(" days")
        self.retention.setSpecialValueText("keep forever")
        self.retention.setValue(int(store.get("retention_days", 30)))
        self.retention.setAccessibleName("Retention")
        form.addRow("Keep history:", self.retention)
        self.keep_ended = QSpinBox()
        self.keep_ended.setRange(0, 86400)
        self.keep_ended.setSuffix(" s")
        self.keep_ended.setValue(int(gui.get("keep_ended", 300)))
        self.keep_ended.setAccessibleName("Keep ended sessions in the table")
        form.addRow("Ended sessions stay in the table:", self.keep_ended)

        # Timers
        _, form = self._page("&Timers")
        self.timers: dict[str, QDoubleSpinBox] = {}
        for name, default, tip in (
            ("t1", 0.5, "RTT estimate (RFC 3261)"),
            ("t2", 4.0, "maximum retransmit interval for non-INVITE requests and INVITE replies"),
            ("t4", 5.0, "maximum time a message stays in the network"),
        ):
            spin = QDoubleSpinBox()
            spin.setRange(0.01, 120)
            spin.setDecimals(2)
            spin.setSuffix(" s")
            spin.setValue(float(engine.get(name, default)))
            spin.setToolTip(tip)
            spin.setAccessibleName(f"Timer {name.upper()}")
            self.timers[name] = spin
            form.addRow(f"{name.upper()}:", spin)
        self.max_duration = QSpinBox()
        self.max_duration.setRange(1, 10_000_000)
        self.max_duration.setSuffix(" s")
        self.max_duration.setValue(int(engine.get("max_duration", 43200)))
        self.max_duration.setAccessibleName("Default maximum call duration")
        form.addRow("Flag t limit:", self.max_duration)

        self.error = QLabel()
        self.error.setObjectName("error")
        self.error.setWordWrap(True)
        self.error.setAccessibleName("Settings problem")
        self.error.hide()
        layout.addWidget(self.error)
        box = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        box.accepted.connect(self.save)
        box.rejected.connect(self.reject)
        layout.addWidget(box)
        for widget in (self.listen, self.default_from):
            widget.textChanged.connect(self._live_check)
        self.resize(640, 480)

    def _page(self, title: str) -> tuple[QWidget, QFormLayout]:
        page = QWidget()
        form = QFormLayout(page)
        self.tabs.addTab(page, title)
        return page, form

    def _add_account(self, user: str, realm: str, password: str) -> None:
        row = self.accounts.rowCount()
        self.accounts.insertRow(row)
        for column, text in enumerate((user, realm, password)):
            self.accounts.setItem(row, column, QTableWidgetItem(text))

    def _remove_account(self) -> None:
        rows = sorted({i.row() for i in self.accounts.selectedIndexes()}, reverse=True)
        for row in rows or [self.accounts.rowCount() - 1]:
            if row >= 0:
                self.accounts.removeRow(row)

    def _live_check(self) -> None:
        problem = validate.uri_problem(self.default_from.text(), required=False, what="From URI")
        self.error.setText(problem or "")
        self.error.setVisible(bool(problem))

    def build(self) -> dict[str, Any]:
        """The document with the dialog's values."""
        doc = copy.deepcopy(self.document)
        engine = doc.setdefault("engine", {})
        engine["listen"] = [
            line.strip() for line in self.listen.toPlainText().splitlines() if line.strip()
        ]
        for name, widget in (
            ("advertised_contact", self.advertised),
            ("user_agent", self.user_agent),
            ("rtp_address", self.rtp_address),
        ):
            text = widget.text().strip()
            if text:
                engine[name] = text
            else:
                engine.pop(name, None)
        credentials = []
        for row in range(self.accounts.rowCount()):
            cells = [self.accounts.item(row, c) for c in range(3)]
            user, realm, password = (c.text().strip() if c else "" for c in cells)
            if user or realm or password:
                credentials.append(f"{user}:{realm}:{password}")
        if credentials:
            engine["credentials"] = credentials
        else:
            engine.pop("credentials", None)
        for name, spin in self.timers.items():
            engine[name] = round(spin.value(), 3)
        engine["max_duration"] = self.max_duration.value()
        incoming = doc.setdefault("incoming", {})
        incoming["default"] = self.incoming.currentText().strip()
        mi_listen = self.mi_listen.text().strip()
        if mi_listen:
            doc.setdefault("mi", {})["listen"] = mi_listen
        elif isinstance(doc.get("mi"), dict):
            doc["mi"].pop("listen", None)
            if not doc["mi"]:
                del doc["mi"]
        store = doc.setdefault("store", {})
        if self.db_path.text().strip():
            store["path"] = self.db_path.text().strip()
        else:
            store.pop("path", None)
        if "retention_days" in store or self.retention.value() != 30:
            store["retention_days"] = self.retention.value()
        if not store:
            doc.pop("store", None)
        gui = doc.setdefault("gui", {})
        gui["keep_ended"] = self.keep_ended.value()
        gui["default_from"] = self.default_from.text().strip()
        gui["display_name"] = self.display_name.text().strip()
        return doc

    def problem(self, doc: dict[str, Any]) -> str | None:
        """What is wrong with the document, in words; None when the engine accepts it."""
        for account in doc.get("engine", {}).get("credentials", []):
            user, realm, password = account.split(":", 2)
            if not (user and realm and password):
                return "Accounts: every account needs a user, a realm and a password."
        problem = validate.uri_problem(
            str(doc["gui"].get("default_from", "")), required=False, what="default From URI"
        )
        if problem:
            return f"Identity: {problem}"
        problem = validate.display_name_problem(str(doc["gui"].get("display_name", "")))
        if problem:
            return f"Identity: {problem}"
        try:
            EngineConfig.from_dict(doc)
        except ConfigError as error:
            return f"{error}"
        return None

    def save(self) -> None:
        """Check, write, and tell the window."""
        doc = self.build()
        problem = self.problem(doc)
        if problem:
            self.error.setText(problem)
            self.error.show()
            return
        try:
            save_document(self.path, doc)
        except (OSError, ValueError, tomllib.TOMLDecodeError) as error:
            self.error.setText(f"Cannot write {self.path}: {error}")
            self.error.show()
            return
        self.document = doc
        self.saved.emit(doc)
        self.accept()


def _as_list(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, list):
        return [str(v) for v in item]
    return []
