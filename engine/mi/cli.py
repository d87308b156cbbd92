"""Command-line pieces of the control API.

- The flags of ``uaconsole serve`` (``add_mi_arguments``) and the configuration they give
  (``mi_config_from_args``), re-exported from ``config``.
- ``uaconsole mi COMMAND [name=value ...]``: run one MI command and print its result as JSON
  (as ``opensips-cli -x mi`` does); exit code 1 with the error on a JSON-RPC error.
"""

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from engine.ua.policy import ConfigError

from .config import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    add_mi_arguments,
    mi_config_from_args,
    read_token_file,
)
from .server import MiServer, start_mi_server, stop_mi_server

__all__ = [
    "MiServer",
    "add_mi_arguments",
    "main",
    "mi_config_from_args",
    "start_mi_server",
    "stop_mi_server",
]

DEFAULT_URL = f"http://{DEFAULT_HOST}:{DEFAULT_PORT}/mi"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uaconsole mi",
        description="Run one MI command against a running engine (or OpenSIPS) and print the "
        "result as JSON. Parameters are name=value (named) or bare values (positional).",
    )
    parser.add_argument(
        "--url", default=os.environ.get("UACONSOLE_MI_URL", DEFAULT_URL),
        help=f"the JSON-RPC endpoint (default $UACONSOLE_MI_URL or {DEFAULT_URL})",
    )  # fmt: skip
    parser.add_argument("--token-file", metavar="FILE", help="bearer token file (mode 0600)")
    parser.add_argument(
        "--token", default=os.environ.get("UACONSOLE_MI_TOKEN"),
        help="bearer token (default $UACONSOLE_MI_TOKEN)",
    )  # fmt: skip
    parser.add_argument("--cafile", metavar="FILE", help="CA certificate to trust for https")
    parser.add_argument("-j", "--json", metavar="PARAMS", help="the params as one JSON document")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("command", help="the MI command, e.g. ua_session_list")
    parser.add_argument("params", nargs="*", metavar="name=value", help="parameters")
    return parser


def build_params(values: list[str]) -> dict[str, str] | list[str]:
    """``name=value`` words as an object, bare words as an array; ValueError if mixed."""
    named = [v for v in values if "=" in v and v.split("=", 1)[0].isidentifier()]
    if named and len(named) != len(values):
        raise ValueError("give every parameter as name=value, or none of them")
    if named:
        return dict(v.split("=", 1) for v in values)  # type: ignore[misc]
    return list(values)


def call(
    url: str, method: str, params: Any, *, token: str | None = None,
    context: ssl.SSLContext | None = None, timeout: float = 10.0,
) -> dict[str, Any]:  # fmt: skip
    """POST one JSON-RPC request; the response document. OSError/ValueError when unreachable."""
    document = {"jsonrpc": "2.0", "method": method, "params": params, "id": 1}
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, json.dumps(document).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
        return json.loads(response.read().decode("utf-8"))


def main(argv: list[str]) -> int:
    """``uaconsole mi ...``: the exit code."""
    args = _parser().parse_args(argv)
    try:
        params: Any = json.loads(args.json) if args.json else build_params(args.params)
    except ValueError as error:
        print(f"uaconsole mi: {error}", file=sys.stderr)
        return 2
    token = args.token
    if args.token_file:
        try:
            token = read_token_file(Path(args.token_file), "--token-file")
        except ConfigError as error:
            print(f"uaconsole mi: {error}", file=sys.stderr)
            return 2
    context = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    try:
        answer = call(args.url, args.command, params, token=token, context=context,
                      timeout=args.timeout)  # fmt: skip
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace").strip()
        print(f"uaconsole mi: HTTP {error.code}: {detail or error.reason}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        print(f"uaconsole mi: cannot reach {args.url}: {reason}", file=sys.stderr)
        return 1
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        err = answer["error"]
        data = f" ({err['data']})" if err.get("data") is not None else ""
        print(f"uaconsole mi: {err.get('code')}: {err.get('message')}{data}", file=sys.stderr)
        return 1
    print(json.dumps(answer.get("result") if isinstance(answer, dict) else answer, indent=4))
    return 0
