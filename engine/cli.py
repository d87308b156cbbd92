"""The headless command line: ``uaconsole serve`` (and the tools added beside it).

Bad flags or configuration are reported in one line that names the bad value, with exit code 2.
"""

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

from engine.api.config import LOG_LEVELS, EngineConfig
from engine.api.engine import Engine
from engine.api.gcpolicy import GcPolicy
from engine.api.loops import use_selector_loop
from engine.api.streams import Gap
from engine.mi.cli import add_mi_arguments, mi_config_from_args, start_mi_server, stop_mi_server
from engine.mi.cli import main as mi_main  # noqa: F401  (``uaconsole mi``, see gui.launcher)
from engine.mi.config import MiConfig
from engine.store import (
    StoreOptions,
    add_store_arguments,
    start_event_log,
    stop_event_log,
    store_options,
)
from engine.store.cli import main as history_main  # noqa: F401  (``uaconsole history``)
from engine.transport.base import TransportError
from engine.ua.events import EventType
from engine.ua.policy import ConfigError
from engine.ua.registration import RegistrationEvent

log = logging.getLogger("uaconsole")


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``serve`` (the console takes the same ones)."""
    parser.add_argument(
        "--listen", action="append", metavar="PROTO:HOST:PORT",
        help="listen on udp:, tcp: or tls: HOST:PORT (repeatable; default udp and tcp on "
        "127.0.0.1:5060)",
    )  # fmt: skip
    parser.add_argument(
        "--incoming", metavar="RULE",
        help="what to do with incoming calls: manual (ring, leave the rest to the controller; "
        "the default), auto-answer, or reject:CODE",
    )  # fmt: skip
    parser.add_argument(
        "--credential", action="append", metavar="USER:REALM:PASSWORD",
        help="credentials for digest challenges of REALM (repeatable)",
    )  # fmt: skip
    parser.add_argument("--advertised-contact", metavar="URI", help="Contact URI to advertise")
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    parser.add_argument("--t1", type=str, metavar="SECONDS", help="SIP timer T1 (default 0.5)")
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="log detail (default info)")
    add_mi_arguments(parser)
    add_store_arguments(parser)


def config_from_args(args: argparse.Namespace) -> EngineConfig:
    """The configuration file (if any) with the flags applied on top. ConfigError if bad."""
    config = EngineConfig.from_toml_file(args.config) if args.config else EngineConfig()
    config = config.with_values(
        {
            "listen": args.listen,
            "credentials": args.credential,
            "advertised_contact": args.advertised_contact,
            "t1": args.t1,
            "log_level": args.log_level,
        },
        prefix="--",
    )
    if args.incoming:
        config = config.with_incoming(args.incoming)
    return config


async def log_sessions(engine: Engine) -> None:
    """One log line when a session starts and one when it ends, and one per registration
    change."""
    started: set[str] = set()
    async for event in engine.events(maxsize=100000):
        if isinstance(event, Gap):
            log.warning("session log fell behind: %d events not shown", event.lost)
            continue
        if isinstance(event, RegistrationEvent):
            level = logging.WARNING if event.event_type == "FAILED" else logging.INFO
            what = event.event_type.lower()
            log.log(level, "account %s: %s (%d %s, expires %d s)", event.account, what,
                    event.status, event.reason, event.expires)  # fmt: skip
            continue
        if event.key not in started and event.event_type != EventType.TERMINATED:
            started.add(event.key)
            log.info(
                "session %s started (%s, Call-ID %s)", event.key, event.entity_type, event.callid
            )
        elif event.event_type == EventType.TERMINATED:
            started.discard(event.key)
            log.info("session %s ended (%s, %s)", event.key, event.method, event.origin)


async def serve(
    config: EngineConfig,
    *,
    ready: asyncio.Event | None = None,
    mi: MiConfig | None = None,
    store: StoreOptions | None = None,
) -> int:
    """Run the engine (and the control API, if ``mi`` is given) until SIGINT or SIGTERM."""
    engine = Engine(config)
    event_log = await start_event_log(engine, store)  # the event log (``store`` None: none)
    try:
        listeners = await engine.start()
    except TransportError as error:
        print(f"uaconsole: {error}", file=sys.stderr)
        await stop_event_log(event_log)
        return 1
    print("uaconsole engine listening on " + ", ".join(map(str, listeners)), flush=True)
    try:
        mi_server = await start_mi_server(engine, mi) if mi is not None else None
    except OSError as error:
        print(f"uaconsole: cannot start the control API: {error}", file=sys.stderr)
        await engine.stop()
        await stop_event_log(event_log)
        return 1
    if mi_server is not None:
        print(f"uaconsole control API on {mi_server.url}", flush=True)
    gc_policy = asyncio.create_task(GcPolicy(lambda: engine.activity).run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # not on Windows
            loop.add_signal_handler(sig, stop.set)
    # Reading every event costs a busy engine a few percent: only when the lines are shown.
    logger = asyncio.create_task(log_sessions(engine)) if log.isEnabledFor(logging.INFO) else None
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("stopping: ending %d sessions", len(engine.sessions()))
        await stop_mi_server(mi_server)
        await engine.stop()
        if logger is not None:
            await logger
        await stop_event_log(event_log)
        gc_policy.cancel()
    return 0


def setup_logging(level: str) -> None:
    """Log lines to standard error, with the time."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def main(argv: list[str]) -> int:
    """``uaconsole serve ...``: the exit code."""
    parser = argparse.ArgumentParser(prog="uaconsole serve", description="Run the engine headless.")
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        mi_config = mi_config_from_args(args)
        store = store_options(args)
    except ConfigError as error:
        print(f"uaconsole serve: {error}", file=sys.stderr)
        return 2
    setup_logging(config.log_level)
    use_selector_loop()
    return asyncio.run(serve(config, mi=mi_config, store=store))
