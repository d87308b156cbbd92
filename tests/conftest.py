"""Fixtures shared by every test: where the shared test data is, and tools that may be missing.

On a user's machine a missing tool (SIPp) or missing shared data skips the tests that need it,
with the reason; under ``UACONSOLE_REQUIRE_TOOLS=1`` (set by ``.ci/run``) it fails them instead.
"""

import os
import shutil
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED = PROJECT_ROOT.parent / "shared"


def tools_required() -> bool:
    """True when missing tools and data must fail the run rather than skip."""
    return os.environ.get("UACONSOLE_REQUIRE_TOOLS") == "1"


def missing(reason: str) -> None:
    """Skip (or fail, under UACONSOLE_REQUIRE_TOOLS=1) for something the test cannot run without."""
    if tools_required():
        pytest.fail(f"{reason} (UACONSOLE_REQUIRE_TOOLS=1)")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    """The path of executable ``name``, or skip/fail."""
    path = shutil.which(name)
    if path is None:
        missing(f"{name} is not installed (Debian: apt-get install sip-tester for sipp)")
    return path  # type: ignore[return-value]


@pytest.fixture(scope="session")
def torture_dir() -> Path:
    """The RFC 4475 / RFC 5118 torture messages in ../shared, or skip/fail."""
    path = SHARED / "testdata" / "sip-torture"
    if not (path / "EXPECTED.tsv").is_file():
        missing(f"shared test data not found at {path}")
    return path
