"""Pure UA sessions with OpenSIPS b2b_entities semantics (no asyncio, socket, clock or random)."""
