"""``uaconsole history``: list, show, search and export what the event log holds.

Problems (no log file, no such session, a bad time) are one line on standard error, exit code 1
(2 for bad flags).
"""

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path

from .export import FORMATS, export_session, text_ladder
from .history import STATES, History, parse_when
from .options import default_db_path
from .schema import StoreError

DESCRIPTION = """\
Look back at calls the engine logged.

  uaconsole history list --since 1h --party alice
  uaconsole history show KEY          (a session key, a Call-ID, or a unique part of one)
  uaconsole history search "Call-ID text or a number"
  uaconsole history export KEY --format pcap --out call.pcap [--redact]
"""


def _when(value: float | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")


def _duration(row: dict) -> str:
    if row.get("answered") and row.get("ended"):
        return f"{row['ended'] - row['answered']:.1f}s"
    return "-"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uaconsole history",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    db_help = f"the event log (default {default_db_path()})"
    parser.add_argument("--db", type=Path, metavar="PATH", help=db_help)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--db", type=Path, metavar="PATH", help=db_help, default=argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", metavar="list|show|search|export|registrations")
    sub.required = True

    p = sub.add_parser("list", parents=[common], help="sessions, newest first")
    p.add_argument("--since", metavar="TIME", help="from TIME: 2024-05-01, '2024-05-01 14:00', 2h")
    p.add_argument("--until", metavar="TIME", help="before TIME (same forms)")
    p.add_argument("--party", metavar="TEXT", help="From, To or Request-URI contains TEXT")
    p.add_argument("--state", metavar="STATE", help=f"{', '.join(STATES)} or active")
    p.add_argument("--status", metavar="CODE", help="final status: 486, 4xx, or none")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    p.add_argument("--json", action="store_true", help="one JSON object a line")

    p = sub.add_parser("show", parents=[common], help="one session: events and ladder")
    p.add_argument("key", metavar="KEY", help="session key, Call-ID, or a unique part")
    p.add_argument("--full", action="store_true", help="print every message in full as well")

    p = sub.add_parser("search", parents=[common], help="full-text search over SIP messages")
    p.add_argument("text", metavar="TEXT", help="words to find (each must appear)")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    p = sub.add_parser("registrations", parents=[common], help="account registration changes")
    p.add_argument("account", metavar="ACCOUNT", nargs="?", help="only this account")
    p.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")

    p = sub.add_parser("export", parents=[common], help="write one session to a file")
    p.add_argument("key", metavar="KEY", help="session key, Call-ID, or a unique part")
    p.add_argument("--format", choices=FORMATS, required=True, help="file format")
    p.add_argument("--out", type=Path, required=True, metavar="FILE", help="where to write")
    p.add_argument("--redact", action="store_true", help="replace numbers and IP addresses")
    return parser


def main(argv: list[str]) -> int:
    """Run ``uaconsole history ...``; the exit code."""
    args = build_parser().parse_args(argv)
    path = args.db.expanduser() if args.db else default_db_path()
    try:
        history = History.open(path)
    except StoreError as error:
        print(f"uaconsole history: {error}", file=sys.stderr)
        return 1
    try:
        return _run(args, history)
    except (StoreError, LookupError, ValueError, OSError) as error:
        message = error.args[0] if isinstance(error, LookupError) and error.args else error
        print(f"uaconsole history: {message}", file=sys.stderr)
        return 1
    finally:
        history.close()


def _run(args: argparse.Namespace, history: History) -> int:
    if args.command == "registrations":
        rows = history.registrations(args.account, limit=args.limit)
        if not rows:
            print("no registration changes logged")
        for r in rows:
            expires = f", expires {r['expires']} s" if r["expires"] else ""
            print(
                f"{_when(r['time'])}  {r['account']:12}  {r['event_type']:12}  "
                f"{r['status']} {r['reason']}{expires}  ({r['origin']})"
            )
        return 0
    if args.command == "list":
        rows = history.sessions(
            since=parse_when(args.since) if args.since else None,
            until=parse_when(args.until) if args.until else None,
            party=args.party,
            state=args.state,
            status=args.status,
            limit=args.limit,
        )
        if args.json:
            for row in rows:
                print(json.dumps(row))
            return 0
        if not rows:
            print("no sessions match")
            return 0
        print(f"{'created':19}  {'dir':3}  {'state':10}  {'final':>5}  {'length':>7}  "
              f"{'from':24}  {'to':24}  key")  # fmt: skip
        for r in rows:
            print(
                f"{_when(r['created']):19}  {r['direction'] or '':3}  {r['state'] or '':10}  "
                f"{r['final_status'] or '-':>5}  {_duration(r):>7}  "
                f"{_short(r['from_party']):24}  {_short(r['to_party']):24}  {r['key']}"
            )
        return 0
    if args.command == "show":
        s = history.find_session(args.key)
        print(f"session  {s['key']}  ({s['entity_type']}, {s['direction']})")
        print(f"Call-ID  {s['callid']}")
        print(f"From     {s['from_party'] or '-'}")
        print(f"To       {s['to_party'] or '-'}")
        print(f"R-URI    {s['ruri'] or '-'}")
        final = f"{s['final_status']} {s['final_reason'] or ''}" if s["final_status"] else "-"
        print(f"state    {s['state']}, final reply {final.strip()}")
        print(
            f"created  {_when(s['created'])}, answered {_when(s['answered'])}, "
            f"ended {_when(s['ended'])} by {s['ended_by'] or '-'}"
        )
        print("\nevents")
        for e in history.events(s["key"]):
            status = f" {e['status']} {e['reason'] or ''}".rstrip() if e["status"] else ""
            print(
                f"  {_when(e['time'])}.{int(e['time'] * 1000) % 1000:03d}  #{e['seq']:<6} "
                f"{e['event_type']:10} {e['method']}{status}  ({e['origin']})"
            )
        messages = history.ladder(s["key"])
        print("\nladder")
        for line in text_ladder(messages):
            print("  " + line)
        if args.full:
            for m in messages:
                print(f"\n--- {m['direction']} {m['local']} / {m['remote']} at {m['time']:.6f}")
                print(m["data"].decode("utf-8", "replace").rstrip("\r\n"))
        return 0
    if args.command == "search":
        rows = history.search(args.text, limit=args.limit)
        if not rows:
            print("nothing found")
            return 0
        for r in rows:
            snippet = " ".join(r["snippet"].split())
            print(f"{_when(r['time'])}  {r['direction']:3}  {r['session_key'] or r['callid']}")
            print(f"    {r['first_line']}")
            print(f"    {snippet}")
        return 0
    session = export_session(history, args.key, args.format, args.out, redact=args.redact)
    print(f"wrote {args.out} ({args.format}, session {session['key']})")
    return 0


def _short(text: str | None, width: int = 24) -> str:
    text = text or "-"
    return text if len(text) <= width else text[: width - 3] + "..."
