"""The History tab over the SQLite event log, exports, settings written as TOML, and startup
when a listener cannot be opened."""

import json
import socket
import tomllib
from pathlib import Path
from typing import Any

import pytest

from engine.api import EngineConfig
from gui.history import HistoryModel, HistoryPane
from gui.settings import SettingsDialog, load_document, save_document
from gui.tomlwrite import dumps
from tests.gui.conftest import engine_port, free_udp_port, screenshot, wait_until


def test_history_search_ladder_and_export(
    make_console: Any, sipp: Any, run: Any, tmp_path: Path, qtmodeltester: Any
) -> None:
    console = make_console("--db", str(tmp_path / "events.db"), "--incoming", "auto-answer")
    window = console.window
    assert console.store_status is not None and console.store_status.ok
    caller = sipp(
        f"127.0.0.1:{engine_port(console)}",
        "-sn",
        "uac",
        "-m",
        "2",
        "-d",
        "100",
        "-p",
        str(free_udp_port()),
    )
    pane = window.history
    assert isinstance(pane, HistoryPane)

    async def scenario() -> None:
        assert await caller.wait() == 0, caller.output()
        await wait_until(lambda: sum(s.is_ended for s in console.hub.sessions.values()) == 2)
        await wait_until(lambda: console.event_log.status.rows_written >= 14, what="the log")
        window.log_tabs.setCurrentWidget(pane)  # switching to the tab searches
        await pane.last_task
        assert pane.model.rowCount() == 2, pane.message.text()
        pane.status.setText("bad")
        await pane.refresh(reset=True)
        assert "not a status" in pane.message.text()
        pane.status.setText("")
        pane.party.setText("sipp")
        await pane.refresh(reset=True)
        assert pane.model.rowCount() == 2
        pane.text.setText("INVITE")
        await pane.refresh(reset=True)
        assert pane.model.rowCount() == 2
        key = pane.model.key_at(0)
        assert key in console.hub.sessions
        target = tmp_path / "call.jsonl"
        assert await pane.export(key, "jsonl", target)
        lines = [json.loads(line) for line in target.read_text().splitlines()]
        assert any("INVITE" in json.dumps(line) for line in lines)
        assert await pane.export(key, "pcap", tmp_path / "call.pcap")
        assert (tmp_path / "call.pcap").stat().st_size > 100
        await pane.open_ladder(key)
        dialog = pane.forms[-1]
        assert dialog.ladder.labels()[0].startswith("INVITE")

    run(scenario(), timeout=40)
    qtmodeltester.check(pane.model, force_py=True)


def test_history_model_passes_qtmodeltester(qtmodeltester: Any) -> None:
    model = HistoryModel()
    model.set_rows(
        [
            {
                "key": f"k{n}",
                "created": 1700000000.0 + n,
                "entity_type": "UAS",
                "from_party": "a",
                "to_party": "b",
                "state": "TERMINATED",
                "final_status": 200,
                "answered": None,
                "ended": 1700000005.0 + n,
            }
            for n in range(5)
        ]
    )
    qtmodeltester.check(model, force_py=True)
    model.set_rows([])


def test_settings_write_toml_that_the_engine_reads(qtbot: Any, tmp_path: Path) -> None:
    path = tmp_path / "uaconsole.toml"
    document = load_document(path, create=True)
    assert path.exists() and EngineConfig.from_dict(document)
    document["incoming"]["rule"] = [
        {
            "name": "vip",
            "match": {"from": "boss"},
            "action": "session",
            "flags": "bh",
            "replies": [{"code": 180}],
        }
    ]
    save_document(path, document)
    dialog = SettingsDialog(path, load_document(path))
    qtbot.addWidget(dialog)
    dialog.listen.setPlainText("udp:127.0.0.1:5090\ntcp:127.0.0.1:5090")
    dialog._add_credential("alice", "pbx.example.com", "s3cret")
    dialog.incoming.setCurrentText("auto-answer")
    dialog.timers["t1"].setValue(0.25)
    dialog.mi_listen.setText("127.0.0.1:8899")
    dialog.keep_ended.setValue(42)
    dialog.retention.setValue(7)
    dialog.show_page("credentials")
    dialog.show()
    screenshot(dialog, "settings-credentials")
    dialog.save()
    assert dialog.error.isHidden(), dialog.error.text()
    saved = tomllib.loads(path.read_text())
    config = EngineConfig.from_dict(saved)
    assert [str(s.transport) + ":" + str(s.port) for s in config.listen] == ["udp:5090", "tcp:5090"]
    assert config.timers.t1 == 0.25 and config.incoming.default.name == "auto-answer"
    assert config.incoming.rules[0].name == "vip"  # rules the dialog does not edit are kept
    assert saved["gui"]["keep_ended"] == 42 and saved["mi"]["listen"] == "127.0.0.1:8899"
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    # the event log and the MI read their tables from the same file
    import argparse

    from engine.store.options import store_options

    options = store_options(argparse.Namespace(config=path))
    assert options.retention.max_age == 7 * 86400
    # a bad listener is refused next to the form, and nothing is written
    before = path.read_text()
    dialog = SettingsDialog(path, saved)
    qtbot.addWidget(dialog)
    dialog.listen.setPlainText("udp:localhost:5060")
    dialog.save()
    assert not dialog.error.isHidden() and "engine.listen" in dialog.error.text()
    assert path.read_text() == before


def test_toml_writer_round_trips() -> None:
    document = {
        "engine": {"listen": ["udp:127.0.0.1:5060"], "t1": 0.5, "tls_verify": True},
        "incoming": {
            "default": "manual",
            "rule": [
                {
                    "name": 'quote " and \\ backslash',
                    "match": {"header:X-Priority": "^urgent$"},
                    "action": "reject",
                    "code": 486,
                },
            ],
        },
        "gui": {"keep_ended": 300, "display_name": "Opérateur"},
    }
    assert tomllib.loads(dumps(document)) == document


def test_a_busy_port_opens_the_window_and_says_so(
    make_console: Any, run: Any, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        port = busy.getsockname()[1]
        console = make_console("--listen", f"udp:127.0.0.1:{port}")
        window = console.window
        assert console.backend.start_error
        assert window.problem_bar.isVisible()
        assert "not listening" in window.problem_bar.label.text().lower()
        assert str(port) in window.problem_bar.label.text()
        assert "Not listening" in window.status_listeners.text()
        # a command says what to do instead of crashing
        form = window.open_originate()
        form.ruri.setText("sip:bob@127.0.0.1:5999")
        run(form._run())
        assert form.error.isVisible() and "Settings" in form.error.text()
        form.close()
    # the fix: settings with port 0, then the engine restarts and listens
    document = dict(console.document)
    document["engine"] = dict(document.get("engine", {}), listen=["udp:127.0.0.1:0"])
    console.args.listen = None
    run(console.restart(document))
    window.backend_changed()
    assert console.backend.start_error is None and console.backend.listeners
    assert not window.problem_bar.isVisible()


@pytest.mark.parametrize(
    ("environ", "platform", "headless"),
    [
        ({}, "linux", True),
        ({"DISPLAY": ":0"}, "linux", False),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", False),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", False),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", True),
        ({}, "win32", False),
        ({}, "darwin", False),
    ],
)
def test_no_display_detection(environ: dict[str, str], platform: str, headless: bool) -> None:
    from gui.launcher import no_display_reason

    assert (no_display_reason(environ, platform) is not None) is headless
