"""Latency of ``ua_session_client_start`` over HTTP, against SIPp's built-in ``uas``.

The engine and its MI server run in this process; the load generator runs in a child process
(aiohttp, one request every 1/RATE s, not waiting for answers), so that it does not share the
engine's event loop. For every request we take:

- HTTP -> INVITE: from the moment the request is handed to the client to the moment the engine
  handed the INVITE to its socket (``engine.messages()``, which records wire time);
- HTTP -> ANSWERED: to the ANSWERED event (SIPp's 200 OK received);
- the HTTP round trip (until the key came back).

Each answered call is ended at once with ``engine.terminate`` (BYE). An error is an HTTP or
JSON-RPC error, a request whose INVITE never went out, or a call not answered within 5 s.
``--ramp`` then raises the rate step by step for ``--ramp-duration`` s each, until errors appear
or the generator cannot hold the rate, and reports the highest rate with no errors.

Everything runs on 127.0.0.1. Run: ``.venv/bin/python bench/mi_latency.py [--ramp]``.
"""

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.api.config import EngineConfig
from engine.api.engine import Engine
from engine.api.streams import Gap
from engine.mi.config import MiConfig
from engine.mi.server import MiServer

HOST = "127.0.0.1"
ANSWER_TIMEOUT = 5.0


def generate(url: str, target: str, rate: float, duration: float, out: Any) -> None:
    """Child process: send ``rate`` client_start requests per second for ``duration`` s."""
    import aiohttp

    async def run() -> list[tuple[float, float, str | None, str | None]]:
        results: list[tuple[float, float, str | None, str | None]] = []
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> None:
                doc = {
                    "jsonrpc": "2.0", "method": "ua_session_client_start", "id": i,
                    "params": {"ruri": target, "to": target, "from": f"sip:bench@{HOST}"},
                }  # fmt: skip
                body = json.dumps(doc)
                started = time.time()
                try:
                    async with session.post(
                        url, data=body, headers={"Content-Type": "application/json"}
                    ) as response:
                        answer = await response.json(content_type=None)
                    done = time.time()
                    if "result" in answer:
                        results.append((started, done, answer["result"], None))
                    else:
                        results.append((started, done, None, json.dumps(answer.get("error"))))
                except Exception as error:
                    results.append((started, time.time(), None, repr(error)))

            loop = asyncio.get_running_loop()
            count = int(rate * duration)
            begin = loop.time() + 0.1
            tasks = []
            for i in range(count):
                delay = begin + i / rate - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)
        return results

    out.put(asyncio.run(run()))


@dataclass
class Run:
    rate: float
    duration: float
    requests: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    achieved: float = 0.0
    to_invite: list[float] = field(default_factory=list)
    to_answered: list[float] = field(default_factory=list)
    round_trip: list[float] = field(default_factory=list)


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index] * 1000


async def measure(engine: Engine, server: MiServer, sipp_port: int, rate: float,
                  duration: float) -> Run:  # fmt: skip
    invites: dict[str, float] = {}
    answered: dict[str, float] = {}
    messages = engine.messages(maxsize=1_000_000)
    events = engine.events(maxsize=1_000_000)

    async def watch_messages() -> None:
        async for record in messages:
            if isinstance(record, Gap) or record.direction != "out":
                continue
            if record.first_line.startswith("INVITE "):
                for line in record.data.split(b"\r\n"):
                    if line.lower().startswith(b"call-id:"):
                        invites.setdefault(line.split(b":", 1)[1].strip().decode(), record.time)
                        break

    async def watch_events() -> None:
        async for event in events:
            if isinstance(event, Gap):
                continue
            if event.event_type == "ANSWERED" and event.method == "INVITE":
                answered.setdefault(event.key, event.time)
                with contextlib.suppress(Exception):  # the session may have ended meanwhile
                    await engine.terminate(event.key)

    watchers = [asyncio.create_task(watch_messages()), asyncio.create_task(watch_events())]
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    target = f"sip:service@{HOST}:{sipp_port}"
    child = context.Process(target=generate, args=(server.url, target, rate, duration, queue))
    child.start()
    results = await asyncio.to_thread(queue.get, True, duration + 120)
    await asyncio.to_thread(child.join, 30)
    await asyncio.sleep(ANSWER_TIMEOUT if results else 0)
    for w in watchers:
        w.cancel()
    messages.close()
    events.close()

    run = Run(rate, duration, requests=len(results))
    if results:
        first = min(r[0] for r in results)
        last = max(r[0] for r in results)
        run.achieved = (len(results) - 1) / (last - first) if last > first else 0.0
    for started, done, key, error in results:
        if error is None and key in invites and key in answered:
            run.round_trip.append(done - started)
            run.to_invite.append(invites[key] - started)
            run.to_answered.append(answered[key] - started)
            continue
        run.errors += 1
        if len(run.error_samples) < 3:
            why = error or ("no INVITE sent" if key not in invites else "not answered in 5 s")
            run.error_samples.append(why[:160])
    # Let the last BYEs finish before the next run.
    for _ in range(100):
        if not engine.sessions():
            break
        await asyncio.sleep(0.1)
    return run


def row(run: Run) -> str:
    return (
        f"| {run.rate:g} | {run.requests} | {run.achieved:.0f} | {run.errors} | "
        f"{pct(run.to_invite, 50):.2f} | {pct(run.to_invite, 99):.2f} | "
        f"{pct(run.to_answered, 50):.2f} | {pct(run.to_answered, 99):.2f} | "
        f"{pct(run.round_trip, 50):.2f} | {pct(run.round_trip, 99):.2f} |"
    )


HEADER = (
    "| rate (req/s) | requests | achieved (req/s) | errors | HTTP→INVITE p50 (ms) | p99 (ms) | "
    "HTTP→ANSWERED p50 (ms) | p99 (ms) | HTTP round trip p50 (ms) | p99 (ms) |\n"
    "|---|---|---|---|---|---|---|---|---|---|"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


async def main(args: argparse.Namespace) -> int:
    sipp = shutil.which("sipp")
    if sipp is None:
        print("mi_latency: skipped, sipp is not installed (Debian: apt-get install sip-tester)")
        return 0
    port = free_udp_port()
    workdir = tempfile.mkdtemp(prefix="mi-bench-")
    process = subprocess.Popen(
        [sipp, "-sn", "uas", "-i", HOST, "-p", str(port), "-nostdin", "-timeout", "3600",
         "-max_recv_loops", "10000"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    engine = Engine(EngineConfig().with_values({"listen": [f"udp:{HOST}:0"]}))
    await engine.start()
    server = MiServer(engine, MiConfig(host=HOST, port=0, client_start_rate=0, max_sessions=0))
    await server.start()
    await asyncio.sleep(0.5)
    runs = []
    try:
        print(f"engine {engine.listeners[0]}, MI {server.url}, SIPp uas on {HOST}:{port}")
        print(HEADER)
        main_run = await measure(engine, server, port, args.rate, args.duration)
        runs.append(main_run)
        print(row(main_run), flush=True)
        best = args.rate if main_run.errors == 0 else None
        if args.ramp:
            for rate in args.ramp_rates:
                if rate <= args.rate:
                    continue
                run = await measure(engine, server, port, rate, args.ramp_duration)
                runs.append(run)
                print(row(run), flush=True)
                if run.errors or run.achieved < 0.95 * rate:
                    break
                best = rate
        for run in runs:
            for sample in run.error_samples:
                print(f"  error at {run.rate:g}/s: {sample}")
        if args.ramp:
            print(f"highest rate with no errors (and held): {best if best else 'none'} req/s")
    finally:
        await server.stop()
        await engine.stop(timeout=2)
        process.terminate()
        process.wait(5)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="requests per second (200)")
    parser.add_argument("--duration", type=float, default=10, help="seconds (10)")
    parser.add_argument("--ramp", action="store_true", help="then find the highest clean rate")
    parser.add_argument("--ramp-duration", type=float, default=5)
    parser.add_argument(
        "--ramp-rates", type=lambda s: [float(x) for x in s.split(",")],
        default=[300, 400, 500, 600, 800, 1000, 1200, 1500, 2000],
    )  # fmt: skip
    sys.exit(asyncio.run(main(parser.parse_args())))
