"""Settings: the same TOML file that ``uaconsole serve --config FILE`` reads.

The console edits the keys it knows and keeps every other key and table of the file as it was
(incoming rules, MI subscribers...). Before writing, the whole document is checked by
``EngineConfig.from_dict``, so a file the console saves always starts the headless engine too.

The Accounts page edits the ``[[accounts]]`` tables (registrations, and identities to call
from); the Credentials page the ``engine.credentials`` that answer challenges by realm for calls
from no account. Passwords live only in the file (written readable by its owner only), are
masked on screen and never logged.
"""

import copy
import os
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import platformdirs
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
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


#: Defaults of an [[accounts]] table (engine/api/config.py): a value equal to its default is
#: not written unless the table had the key already.
ACCOUNT_DEFAULTS: dict[str, Any] = {
    "expires": 3600,
    "transport": "udp",
    "keepalive": 30,
    "register": True,
}
#: The text fields of an account: key, label, placeholder, tooltip.
ACCOUNT_TEXT_FIELDS = (
    ("name", "&Name:", "alice", "A short name: the Accounts view, the Originate form, MI"),
    ("aor", "Address o&f record:", "sip:alice@pbx.example.com", "The identity registered"),
    ("registrar", "Re&gistrar:", "default: the AoR's domain", "Where REGISTER goes"),
    (
        "outbound_proxy",
        "&Outbound proxy:",
        "optional: sip:proxy.example.com;lr",
        "Every request of the account goes there first (REGISTER too)",
    ),
    ("username", "&User name:", "default: the AoR's user", "For digest authentication"),
    ("password", "Pass&word:", "", "Kept in the configuration file only (readable by you)"),
    ("realm", "Real&m:", "default: any realm its servers name", "The realm of the password"),
    ("display_name", "Displa&y name:", "optional: Alice", "The From's display name"),
)
_ACCOUNT_INDEX = re.compile(r"^accounts\[(\d+)\]\.?")


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

        # Accounts ([[accounts]] tables)
        self._build_accounts_page()

        # Credentials (engine.credentials)
        page, form = self._page("C&redentials")
        page.setObjectName("credentials")
        self.credentials = QTableWidget(0, 3)
        self.credentials.setAccessibleName("Credentials")
        self.credentials.setHorizontalHeaderLabels(["User", "Realm", "Password"])
        self.credentials.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.credentials.setItemDelegateForColumn(2, _PasswordDelegate(self.credentials))
        self.credentials.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        for text in _as_list(engine.get("credentials")):
            parts = text.split(":", 2)
            if len(parts) == 3:
                self._add_credential(*parts)
        buttons = QWidget()
        row = QHBoxLayout(buttons)
        row.setContentsMargins(0, 0, 0, 0)
        add = QPushButton("Add &credential")
        remove = QPushButton("Remove c&redential")
        add.clicked.connect(lambda: self._add_credential("", "", ""))
        remove.clicked.connect(self._remove_credential)
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch()
        form.addRow(self.credentials)
        form.addRow(buttons)
        note = QLabel(
            "For calls from no account: credentials answer digest challenges of their realm "
            "(an account has its own, on the Accounts page). They are kept in the configuration "
            "file (readable by you only) and are never written to the log."
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
        self.resize(780, 640)

    def _page(self, title: str) -> tuple[QWidget, QFormLayout]:
        page = QWidget()
        form = QFormLayout(page)
        self.tabs.addTab(page, title)
        return page, form

    def show_page(self, name: str) -> None:
        """Show the page whose object name (or title without its mnemonic) is ``name``."""
        for index in range(self.tabs.count()):
            page = self.tabs.widget(index)
            title = self.tabs.tabText(index).replace("&", "").lower()
            if name.lower() in (page.objectName().lower(), title):
                self.tabs.setCurrentIndex(index)
                return

    def _add_credential(self, user: str, realm: str, password: str) -> None:
        row = self.credentials.rowCount()
        self.credentials.insertRow(row)
        for column, text in enumerate((user, realm, password)):
            self.credentials.setItem(row, column, QTableWidgetItem(text))

    def _remove_credential(self) -> None:
        rows = sorted({i.row() for i in self.credentials.selectedIndexes()}, reverse=True)
        for row in rows or [self.credentials.rowCount() - 1]:
            if row >= 0:
                self.credentials.removeRow(row)

    # -- the Accounts page -----------------------------------------------------------------------

    def _build_accounts_page(self) -> None:
        page = QWidget()
        page.setObjectName("accounts")
        self.tabs.addTab(page, "&Accounts")
        column = QVBoxLayout(page)
        outer = QHBoxLayout()
        column.addLayout(outer, 1)
        left = QVBoxLayout()
        self.account_list = QListWidget()
        self.account_list.setAccessibleName("Accounts")
        self.account_list.setMinimumWidth(200)
        self.account_list.currentRowChanged.connect(self._account_selected)
        left.addWidget(self.account_list, 1)
        buttons = QHBoxLayout()
        self.add_account_button = QPushButton("A&dd")
        self.add_account_button.setAccessibleName("Add an account")
        self.add_account_button.clicked.connect(lambda: self.add_account())
        self.remove_account_button = QPushButton("Remo&ve")
        self.remove_account_button.setAccessibleName("Remove the selected account")
        self.remove_account_button.clicked.connect(self.remove_account)
        buttons.addWidget(self.add_account_button)
        buttons.addWidget(self.remove_account_button)
        left.addLayout(buttons)
        outer.addLayout(left)

        self.account_form = QWidget()
        form = QFormLayout(self.account_form)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.account_fields: dict[str, QLineEdit] = {}
        for key, label, placeholder, tip in ACCOUNT_TEXT_FIELDS:
            edit = QLineEdit()
            edit.setPlaceholderText(placeholder)
            edit.setToolTip(tip)
            edit.setAccessibleName(label.replace("&", "").rstrip(":"))
            if key == "password":
                edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.textEdited.connect(self._account_edited)
            self.account_fields[key] = edit
            caption = QLabel(label)
            caption.setBuddy(edit)
            form.addRow(caption, edit)
        self.account_expires = QSpinBox()
        self.account_expires.setRange(10, 7 * 86400)
        self.account_expires.setSuffix(" s")
        self.account_expires.setAccessibleName("Expires")
        self.account_expires.setToolTip("The registration interval asked for")
        self.account_transport = QComboBox()
        self.account_transport.addItems(["udp", "tcp", "tls"])
        self.account_transport.setAccessibleName("Transport")
        self.account_transport.setToolTip("The transport to the registrar and proxy")
        self.account_keepalive = QDoubleSpinBox()
        self.account_keepalive.setRange(0, 3600)
        self.account_keepalive.setDecimals(1)
        self.account_keepalive.setSuffix(" s")
        self.account_keepalive.setSpecialValueText("none")
        self.account_keepalive.setAccessibleName("Keep-alive interval")
        self.account_keepalive.setToolTip(
            "OPTIONS over UDP, CRLF over TCP and TLS; a binding that stops answering is renewed"
        )
        self.account_register = QCheckBox("R&egister at start (else the account only places calls)")
        self.account_register.setAccessibleName("Register at start")
        for label, widget in (
            ("E&xpires:", self.account_expires),
            ("Trans&port:", self.account_transport),
            ("&Keep-alive every:", self.account_keepalive),
        ):
            caption = QLabel(label)
            caption.setBuddy(widget)
            form.addRow(caption, widget)
        form.addRow(self.account_register)
        self.account_expires.valueChanged.connect(self._account_edited)
        self.account_transport.currentTextChanged.connect(self._account_edited)
        self.account_keepalive.valueChanged.connect(self._account_edited)
        self.account_register.toggled.connect(self._account_edited)
        outer.addWidget(self.account_form, 1)
        self.account_problem = QLabel()
        self.account_problem.setObjectName("problem")
        self.account_problem.setWordWrap(True)
        self.account_problem.setAccessibleName("Account problem")
        column.addWidget(self.account_problem)
        note = QLabel(
            "An account registers the console at a PBX or registrar, so that calls reach it, "
            "and places calls with its identity, outbound proxy and credentials. The password "
            "stays in the configuration file (readable by you only) and is never logged."
        )
        note.setWordWrap(True)
        column.addWidget(note)

        tables = self.document.get("accounts", [])
        #: The [[accounts]] tables being edited (copies; unknown keys kept).
        self.account_tables: list[dict[str, Any]] = [
            dict(t) for t in (tables if isinstance(tables, list) else []) if isinstance(t, dict)
        ]
        #: The keys each table had when read: a default value is written back only for those.
        self._account_keys: list[set[str]] = [set(t) for t in self.account_tables]
        self._loading = False
        for table in self.account_tables:
            self.account_list.addItem(QListWidgetItem(_account_label(table)))
        if self.account_tables:
            self.account_list.setCurrentRow(0)
        else:
            self._account_selected(-1)

    def add_account(self, table: dict[str, Any] | None = None) -> int:
        """A new account (blank, or ``table``), selected; its index."""
        table = dict(table or {})
        if "name" not in table:
            taken = {str(t.get("name", "")) for t in self.account_tables}
            number = 1
            while f"account{number}" in taken:
                number += 1
            table["name"] = f"account{number}"
        self.account_tables.append(table)
        self._account_keys.append(set(table) - set(ACCOUNT_DEFAULTS))
        self.account_list.addItem(QListWidgetItem(_account_label(table)))
        index = len(self.account_tables) - 1
        self.account_list.setCurrentRow(index)
        self.account_fields["aor"].setFocus()
        return index

    def remove_account(self) -> None:
        """Remove the selected account."""
        index = self.account_list.currentRow()
        if not 0 <= index < len(self.account_tables):
            return
        del self.account_tables[index]
        del self._account_keys[index]
        self.account_list.takeItem(index)
        self._account_selected(self.account_list.currentRow())

    def _account_selected(self, index: int) -> None:
        valid = 0 <= index < len(self.account_tables)
        self.account_form.setEnabled(valid)
        self.remove_account_button.setEnabled(valid)
        table = self.account_tables[index] if valid else {}
        self._loading = True
        try:
            for key, edit in self.account_fields.items():
                edit.setText(str(table.get(key, "")))
            self.account_expires.setValue(int(_num(table.get("expires"), 3600)))
            self.account_transport.setCurrentText(str(table.get("transport", "udp")))
            self.account_keepalive.setValue(_num(table.get("keepalive"), 30))
            self.account_register.setChecked(bool(table.get("register", True)))
        finally:
            self._loading = False
        self._account_check()

    def _account_edited(self, *_: Any) -> None:
        """Copy the form into the selected table."""
        if self._loading:
            return
        index = self.account_list.currentRow()
        if not 0 <= index < len(self.account_tables):
            return
        table = self.account_tables[index]
        had = self._account_keys[index]
        for key, edit in self.account_fields.items():
            text = edit.text() if key == "password" else edit.text().strip()
            if text:
                table[key] = text
            else:
                table.pop(key, None)
        keepalive = self.account_keepalive.value()
        values: dict[str, Any] = {
            "expires": self.account_expires.value(),
            "transport": self.account_transport.currentText(),
            "keepalive": int(keepalive) if keepalive == int(keepalive) else keepalive,
            "register": self.account_register.isChecked(),
        }
        for key, value in values.items():
            if value != ACCOUNT_DEFAULTS[key] or key in had:
                table[key] = value
            else:
                table.pop(key, None)
        item = self.account_list.item(index)
        if item is not None:
            item.setText(_account_label(table))
        self.error.hide()  # it was about the values before this edit
        self._account_check()

    def _account_check(self) -> None:
        """What is wrong with the selected account, under its form."""
        index = self.account_list.currentRow()
        found = None
        if 0 <= index < len(self.account_tables):
            found = account_problem(self.account_tables, index)
        field, problem = found or ("", "")
        for key, edit in self.account_fields.items():
            bad = key == field
            if edit.property("invalid") != bad:
                edit.setProperty("invalid", bad)
                edit.style().unpolish(edit)
                edit.style().polish(edit)
        self.account_problem.setText(f"• {problem[:1].upper()}{problem[1:]}" if problem else "")
        self.account_problem.setVisible(bool(problem))

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
        for row in range(self.credentials.rowCount()):
            cells = [self.credentials.item(row, c) for c in range(3)]
            user, realm, password = (c.text().strip() if c else "" for c in cells)
            if user or realm or password:
                credentials.append(f"{user}:{realm}:{password}")
        if credentials:
            engine["credentials"] = credentials
        else:
            engine.pop("credentials", None)
        accounts = [dict(table) for table in self.account_tables]
        if accounts:
            doc["accounts"] = accounts
        else:
            doc.pop("accounts", None)
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
        for credential in doc.get("engine", {}).get("credentials", []):
            user, realm, password = credential.split(":", 2)
            if not (user and realm and password):
                return "Credentials: every credential needs a user, a realm and a password."
        tables = doc.get("accounts", [])
        for index in range(len(tables) if isinstance(tables, list) else 0):
            found = account_problem(tables, index)
            if found:
                self._show_account(index)
                return f"Accounts, {_account_label(tables[index])}: {found[1]}"
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
            found = _ACCOUNT_INDEX.match(error.key or "")
            if found is None:
                return f"{error}"
            index = int(found.group(1))
            field = error.key[found.end() :]
            # The value may be a password: say what is wrong, never the value.
            what = "the password must be one line" if field == "password" else error.problem
            self._show_account(index)
            name = _account_label(tables[index]) if index < len(tables) else f"#{index + 1}"
            return f"Accounts, {name}: {field + ': ' if field else ''}{what}"
        return None

    def _show_account(self, index: int) -> None:
        if 0 <= index < self.account_list.count():
            self.show_page("accounts")
            self.account_list.setCurrentRow(index)

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
        self.error.hide()
        self.document = doc
        self.saved.emit(doc)
        self.accept()


def account_problem(tables: list[dict[str, Any]], index: int) -> tuple[str, str] | None:
    """What is wrong with ``tables[index]``: (its key, the problem in words), or None. The
    engine's own check follows at Save."""
    table = tables[index]
    name = str(table.get("name", "")).strip()
    if not name:
        return "name", "the name is needed"
    if any(c in name for c in "\r\n\x00"):
        return "name", "the name must be one line"
    if any(str(t.get("name", "")).strip() == name for t in tables[:index]):
        return "name", f"the name {name!r} is taken by another account"
    aor = str(table.get("aor", ""))
    problem = validate.sip_uri_problem(aor, what="address of record")
    if problem:
        return "aor", problem
    if "@" not in aor:
        return "aor", "the address of record needs a user: sip:user@domain"
    for key, what in (("registrar", "registrar"), ("outbound_proxy", "outbound proxy")):
        problem = validate.sip_uri_problem(str(table.get(key, "")), required=False, what=what)
        if problem:
            return key, problem
    if any(c in str(table.get("password", "")) for c in "\r\n\x00"):
        return "password", "the password must be one line"
    if ("username" in table or "realm" in table) and not table.get("password"):
        return "password", "the password is needed with a user name or realm (or clear them)"
    problem = validate.display_name_problem(str(table.get("display_name", "")))
    return ("display_name", problem) if problem else None


def _account_label(table: dict[str, Any]) -> str:
    name = str(table.get("name", "")) or "(no name)"
    aor = str(table.get("aor", ""))
    return f"{name} ({aor})" if aor else name


def _num(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return float(default)
    return float(value)


def _as_list(item: Any) -> list[str]:
    if isinstance(item, str):
        return [item]
    if isinstance(item, list):
        return [str(v) for v in item]
    return []
