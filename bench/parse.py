"""Parse and serialise SIPp's default ``uac`` INVITE: this engine beside aiosipua 0.7.1.

Run with ``make bench`` or ``.venv/bin/python bench/parse.py``. The INVITE is taken from
``sipp -sd uac`` when SIPp is installed (its keywords filled in as SIPp would on 127.0.0.1),
else from the same template kept below. Prints microseconds per operation, best of 7 rounds.
"""

import re
import shutil
import subprocess
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.sip import parse_message

FALLBACK_TEMPLATE = """\
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: sipp <sip:sipp@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: [service] <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: sip:sipp@[local_ip]:[local_port]
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length: [len]

v=0
o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 0
a=rtpmap:0 PCMU/8000
"""

VALUES = {
    "service": "service",
    "remote_ip": "127.0.0.1",
    "remote_port": "5060",
    "transport": "UDP",
    "local_ip": "127.0.0.1",
    "local_port": "5061",
    "branch": "z9hG4bK-12345-1-0",
    "pid": "12345",
    "call_number": "1",
    "call_id": "1-12345@127.0.0.1",
    "local_ip_type": "4",
    "media_ip_type": "4",
    "media_ip": "127.0.0.1",
    "media_port": "6000",
}


def sipp_template() -> tuple[str, str]:
    """SIPp's uac INVITE template and where it came from."""
    if shutil.which("sipp"):
        xml = subprocess.run(["sipp", "-sd", "uac"], capture_output=True, text=True).stdout
        m = re.search(r"<!\[CDATA\[\s*\n(\s*INVITE .*?)\]\]>", xml, re.S)
        if m:
            lines = m.group(1).rstrip().splitlines()
            indent = len(lines[0]) - len(lines[0].lstrip())
            return "\n".join(line[indent:] for line in lines) + "\n", "sipp -sd uac"
    return FALLBACK_TEMPLATE, "built-in copy of SIPp's uac template"


def render(template: str) -> bytes:
    """Fill SIPp's keywords and compute [len] as SIPp does."""
    text = re.sub(r"\[(\w+)\]", lambda m: VALUES.get(m.group(1), m.group(0)), template)
    head, body = text.split("\n\n", 1)
    body = body.replace("\n", "\r\n")
    head = head.replace("[len]", str(len(body)))
    return (head.replace("\n", "\r\n") + "\r\n\r\n" + body).encode()


def read_all(message) -> None:
    """Touch every header, as an application that looks at all of them would."""
    for name, _ in message.headers:
        message.headers.get(name)


def per_call_us(func, number: int) -> float:
    return min(timeit.repeat(func, number=number, repeat=7)) / number * 1e6


def main() -> None:
    template, source = sipp_template()
    data = render(template)
    message = parse_message(data)
    assert message.to_bytes() == data, "serialising must give back the same bytes"
    n = 20000
    rows = [
        ("uaconsole parse_message", per_call_us(lambda: parse_message(data), n)),
        ("uaconsole to_bytes", per_call_us(message.to_bytes, n)),
        (
            "uaconsole parse + read every header",
            per_call_us(lambda: read_all(parse_message(data)), n),
        ),
    ]
    try:
        from aiosipua import SipMessage  # type: ignore[import-not-found]

        theirs = SipMessage.parse(data)
        rows.append(
            ("aiosipua 0.7.1 SipMessage.parse", per_call_us(lambda: SipMessage.parse(data), n))
        )
        rows.append(("aiosipua 0.7.1 serialize", per_call_us(theirs.serialize, n)))
    except ImportError:
        rows.append(("aiosipua (not installed: pip install -e .[bench])", float("nan")))
    print(f"message: {len(data)} bytes, from {source}; Python {sys.version.split()[0]}")
    for name, us in rows:
        print(f"{name:45s} {us:8.2f} us")


if __name__ == "__main__":
    main()
