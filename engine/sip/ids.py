"""Identifiers (Call-IDs, tags, branches, session keys) from an injected source.

The core never draws random numbers itself: the engine passes a factory built on the operating
system's randomness, and tests pass :class:`CountingIds`, so the bytes on the wire are the same
in every run.
"""

import hashlib
from collections.abc import Callable

BRANCH_COOKIE = "z9hG4bK"


class IdFactory:
    """Makes identifiers from ``token(nbytes) -> str`` (hex of that many random bytes)."""

    def __init__(self, token: Callable[[int], str]) -> None:
        self._token = token

    def branch(self) -> str:
        """A Via branch with the RFC 3261 magic cookie."""
        return BRANCH_COOKIE + self._token(8)

    def tag(self) -> str:
        """A From or To tag (64 random bits)."""
        return self._token(8)

    def call_id(self) -> str:
        """A Call-ID (128 random bits)."""
        return self._token(16)

    def token(self, nbytes: int) -> str:
        """Hex of ``nbytes`` random bytes (session keys, nonces)."""
        return self._token(nbytes)


class CountingIds(IdFactory):
    """Deterministic identifiers for tests: SHA-256 of a seed and a counter."""

    def __init__(self, seed: str = "test") -> None:
        self._seed = seed
        self._counter = 0
        super().__init__(self._next)

    def _next(self, nbytes: int) -> str:
        self._counter += 1
        digest = hashlib.sha256(f"{self._seed}:{self._counter}".encode()).hexdigest()
        return (digest * (1 + nbytes // 32))[: nbytes * 2]
