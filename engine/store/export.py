"""Taking a call away: one session as pcap, a SIPp scenario, JSON lines or CSV; and the text
ladder that ``uaconsole history show`` prints.

Every format can be redacted (:mod:`engine.store.redact`): IP addresses and numbers replaced by
stand-ins, the same one each time within a file.
"""

import base64
import csv
import io
import json
from datetime import datetime
from pathlib import Path

from . import sipp
from .history import History
from .pcap import Endpoint, PcapWriter
from .redact import Redactor, redact_row

FORMATS = ("pcap", "sipp", "jsonl", "csv")
_SESSION_TEXT = ("callid", "from_party", "to_party", "ruri", "local", "remote")
_EVENT_TEXT = ("callid", "body", "headers")
_MESSAGE_TEXT = ("local", "remote", "first_line", "callid")


def export_session(
    history: History, key: str, fmt: str, out: Path, *, redact: bool = False
) -> dict:
    """Write session ``key`` (a key, Call-ID or unique part of one) to ``out`` in ``fmt``;
    the session row. LookupError if there is no such session, ValueError for a bad format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: use {', '.join(FORMATS)}")
    session = history.find_session(key)
    messages = history.ladder(session["key"])
    events = history.events(session["key"])
    redactor = Redactor() if redact else None
    if fmt == "pcap":
        with out.open("wb") as f:
            write_pcap(f, messages, redactor)
    elif fmt == "sipp":
        out.write_text(sipp.scenario(session, messages, redactor), encoding="utf-8")
    elif fmt == "jsonl":
        with out.open("w", encoding="utf-8") as f:
            for line in jsonl_lines(session, events, messages, redactor):
                f.write(line + "\n")
    else:
        with out.open("w", encoding="utf-8", newline="") as f:
            write_csv(f, events, messages, redactor)
    return session


def write_pcap(f: io.BufferedIOBase, messages: list[dict], redactor: Redactor | None) -> int:
    """Each message as a packet between its real addresses; packets written."""
    writer = PcapWriter(f)  # type: ignore[arg-type]
    count = 0
    for m in messages:
        transport, local = Endpoint.parse(m["local"])
        _, remote = Endpoint.parse(m["remote"])
        data = m["data"]
        if redactor is not None:
            local = Endpoint(redactor.ip(local.host), local.port)
            remote = Endpoint(redactor.ip(remote.host), remote.port)
            data = redactor.message(data)
        source, destination = (remote, local) if m["direction"] == "in" else (local, remote)
        writer.write(m["time"], transport, source, destination, data)
        count += 1
    return count


def jsonl_lines(
    session: dict, events: list[dict], messages: list[dict], redactor: Redactor | None
) -> list[str]:
    """The session, then its events and messages in time order, one JSON object a line.
    A message's ``data`` is text when it is UTF-8, else ``data_base64``."""
    lines = [json.dumps({"type": "session", **redact_row(redactor, session, _SESSION_TEXT)})]
    records: list[tuple[float, int, dict]] = []
    for e in events:
        row = redact_row(redactor, e, _EVENT_TEXT)
        row.pop("id", None)
        records.append((e["time"], 0, {"type": "event", **row}))
    for m in messages:
        row = redact_row(redactor, m, _MESSAGE_TEXT)
        row.pop("id", None)
        data = row.pop("data")
        try:
            row["data"] = data.decode("utf-8")
        except UnicodeDecodeError:
            row["data_base64"] = base64.b64encode(data).decode("ascii")
        records.append((m["time"], 1, {"type": "message", **row}))
    records.sort(key=lambda r: (r[0], r[1]))
    return lines + [json.dumps(r[2]) for r in records]


CSV_COLUMNS = (
    "time", "iso_time", "kind", "direction", "transport", "local", "remote", "summary", "status",
    "method", "event_type", "origin", "callid", "session_key", "data",
)  # fmt: skip


def write_csv(
    f: io.TextIOBase, events: list[dict], messages: list[dict], redactor: Redactor | None
) -> None:
    """One row per event and per message, in time order."""
    rows = []
    for e in events:
        e = redact_row(redactor, e, _EVENT_TEXT)
        rows.append(
            {
                "time": e["time"], "kind": "event", "summary": f"{e['event_type']} {e['method']}",
                "status": e["status"] or "", "method": e["method"], "event_type": e["event_type"],
                "origin": e["origin"], "callid": e["callid"], "session_key": e["key"],
                "data": e["body"] or "",
            }
        )  # fmt: skip
    for m in messages:
        m = redact_row(redactor, m, _MESSAGE_TEXT)
        rows.append(
            {
                "time": m["time"], "kind": "message", "direction": m["direction"],
                "transport": m["transport"], "local": m["local"], "remote": m["remote"],
                "summary": m["first_line"], "callid": m["callid"],
                "session_key": m["session_key"] or "",
                "data": m["data"].decode("utf-8", "replace"),
            }
        )  # fmt: skip
    rows.sort(key=lambda r: r["time"])
    writer = csv.DictWriter(f, CSV_COLUMNS, restval="")  # type: ignore[arg-type]
    writer.writeheader()
    for row in rows:
        row["iso_time"] = datetime.fromtimestamp(row["time"]).isoformat(timespec="milliseconds")
        writer.writerow(row)


def text_ladder(messages: list[dict], width: int = 78) -> list[str]:
    """The messages as arrows between the engine (left) and the remote party (right)."""
    if not messages:
        return ["(no SIP messages logged)"]
    local, remote = messages[0]["local"], messages[0]["remote"]
    span = max(width - 16, 30)
    lines = [f"{'':12}  {'engine ' + local:<{span // 2}}{'remote ' + remote:>{span - span // 2}}"]
    for m in messages:
        when = datetime.fromtimestamp(m["time"]).strftime("%H:%M:%S.%f")[:-3]
        label = f" {m['first_line']} "
        room = span - 4
        if len(label) > room:
            label = label[: room - 4] + "... "
        if m["direction"] == "out":
            arrow = "|" + label.center(span - 3, "-") + ">|"
        else:
            arrow = "|<" + label.center(span - 3, "-") + "|"
        extra = ""
        if m["local"] != local or m["remote"] != remote:
            extra = f"  ({m['local']} {'->' if m['direction'] == 'out' else '<-'} {m['remote']})"
        lines.append(f"{when}  {arrow}{extra}")
    return lines
