"""A SIPp scenario that plays the remote party of a logged call.

For a call the engine received, the scenario is a UAC: it sends the caller's INVITE (and ACK, BYE,
... as logged) and expects the engine's replies and requests in the logged order; run it with
``sipp -sf FILE ENGINE_HOST:PORT -m 1``. For a call the engine placed, it is a UAS: it waits for
the INVITE and answers as the callee did; start it first, then make the engine call it.

What changes from the log, so that the scenario can run again and again:
- addresses: the remote party's becomes ``[local_ip]:[local_port]``, the engine's becomes
  ``[remote_ip]:[remote_port]``; Via is SIPp's own (``[transport]``, ``[branch]``; an ACK for a
  non-2xx reply and a CANCEL reuse their INVITE's branch with ``[branch-N]``).
- Call-ID is ``[call_id]``, Content-Length ``[len]``; the engine's tag comes from what it sends
  (``[peer_tag_param]``, ``[last_To:]``, ``[last_From:]``, or a header captured with ``ereg``).
- retransmissions are left out (SIPp retransmits by itself over UDP); a pause of the logged
  length stands before each message the remote party sent after waiting 50 ms or more.
Provisional replies are optional; replies are expected by status, requests by method.
"""

import re
from dataclasses import dataclass, field
from xml.sax.saxutils import quoteattr

from .pcap import Endpoint
from .redact import Redactor
from .sipmsg import Summary, summarise

_COMPACT = {
    "v": "via", "i": "call-id", "l": "content-length", "t": "to", "f": "from", "m": "contact",
    "c": "content-type",
}  # fmt: skip
_CANONICAL = {"from": "From", "call-id": "Call-ID", "cseq": "CSeq"}
_TAG = re.compile(r";\s*tag=[^;>\s]*", re.IGNORECASE)
#: Logged gaps shorter than this are not reproduced.
MIN_PAUSE = 0.05


@dataclass
class _Step:
    """One element of the scenario (SIPp numbers them all, for ``[branch-N]``)."""

    kind: str  # "send", "recv" or "pause"
    xml: str
    #: For a recv: the message the engine sent.
    summary: Summary | None = None
    captures: list[str] = field(default_factory=list)


def _hostport(endpoint: Endpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


def _header_name(line: str) -> str:
    name = line.split(":", 1)[0].strip().lower()
    return _COMPACT.get(name, name)


def _dedupe(messages: list[dict]) -> list[tuple[dict, Summary]]:
    """The messages without retransmissions (same direction, start line and CSeq)."""
    seen: set[tuple[str, str, str]] = set()
    out = []
    for m in messages:
        s = summarise(m["data"])
        key = (m["direction"], s.first_line, s.cseq)
        if key in seen:
            continue
        seen.add(key)
        out.append((m, s))
    return out


def scenario(session: dict, messages: list[dict], redactor: Redactor | None = None) -> str:
    """The scenario XML for ``session`` from its ``messages`` (as History.ladder gives them)."""
    flow = _dedupe(messages)
    if not flow:
        raise ValueError(f"session {session['key']} has no SIP messages to replay")
    first = flow[0][0]
    transport, engine = Endpoint.parse(first["local"])
    _, peer = Endpoint.parse(first["remote"])
    peer_is_caller = session.get("entity_type") == "UAS"
    replacements = [
        (_hostport(peer), "[local_ip]:[local_port]"),
        (_hostport(engine), "[remote_ip]:[remote_port]"),
        (peer.host, "[local_ip]"),
    ]
    if engine.host != peer.host:
        replacements.append((engine.host, "[remote_ip]"))

    def substitute(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return redactor.text(text) if redactor is not None else text

    steps: list[_Step] = []
    invite_index: int | None = None
    engine_requests: dict[str, Summary] = {}  # CSeq -> the engine's request
    uses_engine_from = uses_engine_contact = False
    previous_time: float | None = None
    for m, s in flow:
        if m["direction"] == "out":  # the engine sent it: the remote party receives it
            if s.is_request:
                engine_requests[s.cseq] = s
                attrs = f"request={quoteattr(s.method or '')}"
            else:
                attrs = f"response={quoteattr(str(s.status))}"
                if s.status < 200:
                    attrs += ' optional="true"'
                elif s.cseq_method == "INVITE" and s.status < 300:
                    attrs += ' rrs="true"'
            steps.append(_Step("recv", f"  <recv {attrs}>", s))
            previous_time = m["time"]
            continue
        if previous_time is not None and m["time"] - previous_time >= MIN_PAUSE:
            millis = round((m["time"] - previous_time) * 1000)
            steps.append(_Step("pause", f'  <pause milliseconds="{millis}"/>'))
        previous_time = m["time"]
        text = m["data"].decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        start, headers = lines[0], lines[1:]
        out: list[str] = []
        via_done = False
        if s.is_request:
            if s.method == "INVITE" and not s.to_has_tag:
                invite_index = len(steps)
            elif not peer_is_caller and s.method not in ("ACK", "CANCEL"):
                # The callee's own request: to the engine's Contact, To = the engine's From.
                uses_engine_contact = True
                start = f"{s.method} [$engine_contact] SIP/2.0"
            for line in headers:
                name = _header_name(line)
                if name == "via":
                    if not via_done:
                        branch = "[branch]"
                        if (
                            s.method in ("ACK", "CANCEL")
                            and invite_index is not None
                            and not _is_2xx_ack(s, engine_requests, flow)
                        ):
                            branch = f"[branch-{len(steps) - invite_index}]"
                        out.append(
                            f"Via: SIP/2.0/[transport] [local_ip]:[local_port];branch={branch}"
                        )
                        via_done = True
                elif name == "call-id":
                    out.append("Call-ID: [call_id]")
                elif name == "content-length":
                    out.append("Content-Length: [len]")
                elif name == "to" and peer_is_caller and s.to_has_tag:
                    out.append(substitute(_TAG.sub("", line)) + "[peer_tag_param]")
                elif name == "to" and not peer_is_caller:
                    uses_engine_from = True
                    out.append("To:[$engine_from]")
                else:
                    out.append(substitute(line))
            start = substitute(start)
        else:
            request = engine_requests.get(s.cseq)
            for line in headers:
                name = _header_name(line)
                if name == "via":
                    if not via_done:
                        out.append("[last_Via:]")
                        via_done = True
                elif name in ("from", "call-id", "cseq"):
                    out.append(f"[last_{_CANONICAL[name]}:]")
                elif name == "to":
                    tag = _TAG.search(line)
                    if request is not None and not request.to_has_tag and tag:
                        out.append("[last_To:]" + tag.group(0).replace(" ", ""))
                    else:
                        out.append("[last_To:]")
                elif name == "content-length":
                    out.append("Content-Length: [len]")
                elif name == "record-route":
                    continue
                else:
                    out.append(substitute(line))
            start = substitute(start)
        message = "\r\n".join([start, *out]) + "\r\n\r\n" + substitute(body)
        if "]]>" in message:
            raise ValueError("a message contains ']]>' and cannot go into a SIPp scenario")
        retrans = (
            ' retrans="500"' if transport == "udp" and s.is_request and s.method != "ACK" else ""
        )
        steps.append(
            _Step(
                "send", f"  <send{retrans}>\n    <![CDATA[\n{_indent(message)}\n    ]]>\n  </send>"
            )
        )
    # Captures on the engine's INVITE (callee role), or on its 2xx (caller role).
    for step in steps:
        if step.kind != "recv" or step.summary is None:
            continue
        if not peer_is_caller and step.summary.method == "INVITE":
            if uses_engine_from:
                step.captures.append(
                    '      <ereg regexp=".*" search_in="hdr" header="From:" '
                    'assign_to="engine_from"/>'
                )
            if uses_engine_contact:
                step.captures.append(
                    '      <ereg regexp="sips?:[^&gt;;]*" search_in="hdr" header="Contact:" '
                    'assign_to="engine_contact"/>'
                )
            break
    name = f"UA Console replay of {session['key']}"
    role = "caller (UAC)" if peer_is_caller else "callee (UAS)"
    parts = [
        '<?xml version="1.0" encoding="ISO-8859-1" ?>',
        '<!DOCTYPE scenario SYSTEM "sipp.dtd">',
        f"<!-- Plays the {role} of session {session['key']} as logged by UA Console. -->",
        f"<scenario name={quoteattr(name)}>",
    ]
    for step in steps:
        if step.kind == "recv":
            if step.captures:
                parts.append(step.xml)
                parts.append("    <action>")
                parts.extend(step.captures)
                parts.append("    </action>")
                parts.append("  </recv>")
            else:
                parts.append(step.xml[:-1] + "/>")
        else:
            parts.append(step.xml)
    parts.append("</scenario>")
    return "\n".join(parts) + "\n"


def _is_2xx_ack(s: Summary, engine_requests: dict[str, Summary], flow: list) -> bool:
    """True when ``s`` (an ACK) acknowledges a 2xx: the INVITE with its CSeq number got one."""
    if s.method != "ACK":
        return False
    number = s.cseq.split(" ", 1)[0]
    for m, other in flow:
        if (
            m["direction"] == "out"
            and not other.is_request
            and other.cseq == f"{number} INVITE"
            and 200 <= other.status < 300
        ):
            return True
    return False


def _indent(message: str) -> str:
    # SIPp strips the indentation of every line and ends lines with CRLF itself.
    return "\n".join("      " + line for line in message.split("\r\n"))
