"""`uaconsole serve`: a bad flag or configuration value is one line naming it, exit code 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT


def serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gui.launcher", "serve", "--no-mi", "--no-db", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--listen", "udp:127.0.0.1:99999"], "99999"),
        (["--listen", "carrier-pigeon:127.0.0.1:5060"], "carrier-pigeon"),
        (["--incoming", "answer-all"], "answer-all"),
        (["--incoming", "reject:99"], "reject:99"),
        (["--credential", "alice-without-realm"], "--credential"),
        (["--t1", "fast"], "fast"),
        (["--t1", "0"], "--t1"),
        (["--listen", "tls:127.0.0.1:5061"], "tls_certificate"),
    ],
)
def test_bad_flags_exit_2_with_one_line_naming_the_value(args: list[str], named: str) -> None:
    result = serve(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]


def test_bad_configuration_file_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "uaconsole.toml"
    config.write_text('[engine]\nlisten = ["udp:127.0.0.1:5060"]\nt2 = "slow"\n')
    result = serve("--config", str(config))
    assert result.returncode == 2
    assert "engine.t2" in result.stderr and "slow" in result.stderr
    config.write_text("[[accounts]]\nname = 'a'\n")
    result = serve("--config", str(config))
    assert result.returncode == 2 and "accounts[0].aor" in result.stderr
    result = serve("--config", str(tmp_path / "missing.toml"))
    assert result.returncode == 2 and "missing.toml" in result.stderr
