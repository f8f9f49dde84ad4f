"""Retries with exponential back-off for PACS exchanges, and :class:`PacsError`, the one error a failed
exchange ends with (it names the PACS and what was asked, never a patient identifier)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from sarcomri.errors import SarcomriError

T = TypeVar("T")


class PacsError(SarcomriError):
    """A PACS could not be reached, refused, timed out, or sent something unusable."""


class TransientError(Exception):
    """A failure worth another try (connection refused or reset, a timeout, a 5xx answer, a truncated
    instance); ``str()`` says what happened."""


@dataclass(frozen=True)
class Backoff:
    """How often and how patiently an exchange is tried: ``attempts`` tries, waiting ``first`` seconds after the
    first failure and ``factor`` times longer after each next one, at most ``longest`` seconds."""

    attempts: int = 4
    first: float = 1.0
    factor: float = 2.0
    longest: float = 30.0

    def waits(self) -> list[float]:
        """The waits between the tries."""
        return [min(self.first * self.factor ** k, self.longest) for k in range(max(self.attempts - 1, 0))]


def with_retries(call: Callable[[], T], what: str, where: str, backoff: Backoff,
                 sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, tried again after each :class:`TransientError` as ``backoff`` says; then a :class:`PacsError`
    naming ``what`` was asked of ``where`` and the last failure."""
    waits = backoff.waits()
    for attempt in range(len(waits) + 1):
        try:
            return call()
        except TransientError as err:
            if attempt == len(waits):
                tries = f" (tried {attempt + 1} times)" if attempt else ""
                raise PacsError(f"{where}: {what} failed{tries}: {err}") from None
            sleep(waits[attempt])
    raise AssertionError("unreachable")
