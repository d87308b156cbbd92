"""Which asyncio event loop the engine needs.

The UDP listeners watch their sockets with ``loop.add_reader`` (engine/transport/udp.py). Every
selector-based loop has it; Windows' default loop, the proactor, does not. Programs that start
a loop for the engine call :func:`use_selector_loop` first; the console makes a qasync
``QSelectorEventLoop`` for the same reason.
"""

import asyncio
import sys


def use_selector_loop() -> None:
    """Make ``asyncio.run`` use a selector event loop (a change on Windows only)."""
    if sys.platform == "win32":
        asyncio.set_event_loop_policy(asyncio.WindowsSelectorEventLoopPolicy())  # type: ignore[attr-defined]
