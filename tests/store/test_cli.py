"""``uaconsole history ...`` as a person types it, and the event log flags of ``serve``."""

import argparse
import json
from pathlib import Path

import pytest

from engine.api.engine import Engine
from engine.store import EventLog, History, default_db_path, store_options
from engine.store.options import add_store_arguments
from engine.ua.policy import ConfigError
from gui.launcher import main as uaconsole

from .conftest import loopback_call


@pytest.fixture
async def db(engine: Engine, tmp_path: Path) -> tuple[Path, str, str]:
    path = tmp_path / "log.db"
    log = EventLog(path)
    await log.start(engine)
    uac, uas = await loopback_call(engine, caller="Alice,sip:alice@127.0.0.1")
    await engine.stop()
    await log.stop()
    return path, uac, uas


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = uaconsole(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_history_list_show_search_export(db, capsys, tmp_path: Path) -> None:
    path, uac, uas = db
    code, out, _ = run(capsys, "history", "list", "--db", str(path))
    assert code == 0 and uac in out and uas in out and "TERMINATED" in out
    code, out, _ = run(capsys, "history", "--db", str(path), "list", "--party", "alice",
                       "--status", "2xx", "--since", "1h", "--json")  # fmt: skip
    assert code == 0 and {json.loads(line)["key"] for line in out.splitlines()} == {uac, uas}
    code, out, _ = run(capsys, "history", "list", "--db", str(path), "--status", "486")
    assert (code, out.strip()) == (0, "no sessions match")

    code, out, _ = run(capsys, "history", "show", "--db", str(path), uas[-10:])
    assert code == 0
    assert f"session  {uas}" in out and "NEW" in out and "TERMINATED" in out
    assert "|<" in out and ">|" in out and "INVITE sip:bob@" in out  # the ladder

    code, out, _ = run(capsys, "history", "search", "--db", str(path), "alice")
    assert code == 0 and "INVITE sip:bob@" in out

    for fmt in ("pcap", "sipp", "jsonl", "csv"):
        target = tmp_path / f"call.{fmt}"
        code, out, _ = run(capsys, "history", "export", "--db", str(path), uac, "--format", fmt,
                           "--out", str(target), "--redact")  # fmt: skip
        assert code == 0 and target.stat().st_size > 0, out


def test_history_registrations(db, capsys) -> None:
    path, _, _ = db
    code, out, _ = run(capsys, "history", "registrations", "--db", str(path))
    assert (code, out.strip()) == (0, "no registration changes logged")
    history = History.open(path)
    history.db["registrations"].insert_all(
        [
            {"seq": 1, "time": 1000.0, "account": "alice", "event_type": "FAILED",
             "status": 401, "reason": "Unauthorized", "expires": 0, "aor": "sip:a@h",
             "origin": "remote"},
            {"seq": 2, "time": 1005.0, "account": "alice", "event_type": "REGISTERED",
             "status": 200, "reason": "OK", "expires": 300, "aor": "sip:a@h", "origin": "remote"},
        ]
    )  # fmt: skip
    history.close()
    code, out, _ = run(capsys, "history", "registrations", "--db", str(path), "alice")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2
    assert "REGISTERED" in lines[0] and "expires 300 s" in lines[0]
    assert "FAILED" in lines[1] and "401 Unauthorized" in lines[1]


def test_history_problems_are_one_line(db, capsys, tmp_path: Path) -> None:
    path, _, _ = db
    code, _, err = run(capsys, "history", "list", "--db", str(tmp_path / "none.db"))
    assert code == 1 and err.count("\n") == 1 and "no event log at" in err
    code, _, err = run(capsys, "history", "show", "--db", str(path), "no-such-call")
    assert code == 1 and err.strip() == "uaconsole history: no session matches 'no-such-call'"
    code, _, err = run(capsys, "history", "show", "--db", str(path), "B2B")
    assert code == 1 and "several sessions" in err
    code, _, err = run(capsys, "history", "list", "--db", str(path), "--since", "last tuesday")
    assert code == 1 and "is not a time" in err
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"nope" * 100)
    code, _, err = run(capsys, "history", "list", "--db", str(bad))
    assert code == 1 and "corrupt" in err and err.count("\n") == 1


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", type=Path)
    add_store_arguments(parser)
    return parser.parse_args(argv)


def test_store_options_from_flags_and_config(tmp_path: Path) -> None:
    options = store_options(parse())
    assert options.path == default_db_path()
    assert "uaconsole" in str(options.path)
    assert options.retention.max_age == 30 * 86400
    assert store_options(parse("--no-db")).path is None
    assert store_options(parse("--db", "~/x.db")).path == Path("~/x.db").expanduser()
    config = tmp_path / "c.toml"
    config.write_text('[store]\npath = "/tmp/a.db"\nretention_days = 7\nmax_mb = 10\n')
    options = store_options(parse("--config", str(config)))
    assert options.path == Path("/tmp/a.db")
    assert options.retention.max_age == 7 * 86400
    assert options.retention.max_bytes == 10 * 1024 * 1024
    options = store_options(parse("--config", str(config), "--db-retention-days", "0"))
    assert options.retention.max_age is None
    config.write_text("[store]\nkeep = 3\n")
    with pytest.raises(ConfigError, match=r"store\.keep"):
        store_options(parse("--config", str(config)))


def test_serve_flag_errors_are_one_line(capsys) -> None:
    code = uaconsole(["serve", "--db-max-mb", "-5"])
    _, err = capsys.readouterr()
    assert code == 2 and "--db-max-mb" in err and err.count("\n") == 1
