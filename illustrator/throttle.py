"""Failed logins slow the next ones down: per login name and per address, with a delay that doubles each time.

The first few failures cost nothing (a writer mistypes); after that each attempt waits its turn, 1 s, 2 s, 4 s … up
to a minute, counted from the last attempt, so even attempts sent all at once are spread out. An attempt whose turn
is further away than `MAX_WAIT` is refused without checking the password. A success clears the name and the
address. Failures are logged when their count reaches 1, 2, 4, 8 …, so a flood of guesses writes a few lines.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

FREE_FAILURES = 3  # failures before any delay
FIRST_DELAY = 1.0  # seconds after the first failure beyond the free ones
LONGEST_DELAY = 60.0
MAX_WAIT = 30.0  # a turn further away than this is refused outright
FORGET_AFTER = 15 * 60.0  # seconds without a failure after which a name or address starts afresh
MAX_TRACKED = 10_000  # names and addresses remembered at once (the oldest are forgotten first)


@dataclass
class _Record:
    failures: int = 0
    pending: int = 0  # attempts reserved and not yet answered: attempts sent at once are spread out too
    next_turn: float = 0.0  # the monotonic time from which the next attempt may be checked
    last_failure: float = 0.0


class LoginThrottle:
    """Growing delays for failed logins, per name and per address; one instance per server, used on one event loop."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()

    def reserve(self, name: str, address: str) -> float | None:
        """Seconds this attempt must wait before its password is checked, or None when it is refused outright."""
        now = self._clock()
        keys = self._keys(name, address)
        turn = max((self._record(key, now).next_turn for key in keys), default=now)
        wait = max(0.0, turn - now)
        if wait > MAX_WAIT:
            return None
        for key in keys:  # the next attempt waits behind this one
            record = self._record(key, now)
            record.next_turn = max(record.next_turn, now) + self._step(record.failures + record.pending)
            record.pending += 1
        return wait

    def failed(self, name: str, address: str, *, reserved: bool = True) -> None:
        """Count a failed attempt (`reserved=False`: refused outright), and log it when the count is a power of two."""
        now = self._clock()
        for key in self._keys(name, address):
            record = self._record(key, now)
            record.failures += 1
            record.last_failure = now
            if reserved:
                record.pending = max(0, record.pending - 1)
                record.next_turn = max(record.next_turn, now + self._step(record.failures))
            if record.failures & (record.failures - 1) == 0:
                logger.warning("%d failed login(s) for %s", record.failures, key)

    def succeeded(self, name: str, address: str) -> None:
        """Clear the name and the address after a successful login."""
        for key in self._keys(name, address):
            self._records.pop(key, None)

    @staticmethod
    def _keys(name: str, address: str) -> tuple[str, ...]:
        return (f"the name {name[:64]!r}", f"the address {address[:64]}")

    @staticmethod
    def _step(failures: int) -> float:
        if failures < FREE_FAILURES:
            return 0.0
        return float(min(LONGEST_DELAY, FIRST_DELAY * 2.0 ** (failures - FREE_FAILURES)))

    def _record(self, key: str, now: float) -> _Record:
        record = self._records.get(key)
        if record is None or (record.failures and now - record.last_failure > FORGET_AFTER):
            record = _Record()
            self._records[key] = record
            while len(self._records) > MAX_TRACKED:
                self._records.popitem(last=False)
        return record
