"""The health of what the service depends on beyond its model: the events store.

When a dependency fails, requests keep being answered in a degraded way (offers without the
latest events' caps, saying so); the failure is logged once per interval, not per request,
and ``/readyz`` reports it.
"""

from __future__ import annotations

import logging
import threading
import time

logger = logging.getLogger(__name__)


class Dependency:
    """Whether one dependency answered the last time it was asked, and since when it fails."""

    def __init__(self, name: str, log_every: float = 60.0, consequence: str = "answering without it"):
        self.name = name
        self.consequence = consequence
        self.log_every = log_every
        self.down_since: float | None = None
        self.last_error: str | None = None
        self._logged_at = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    @property
    def ok(self) -> bool:
        return self.down_since is None

    def failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            if self.down_since is None:
                self.down_since = time.time()
            self.last_error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            if now - self._logged_at >= self.log_every:
                more = f" ({self._suppressed} more failures since the last report)" if self._suppressed else ""
                logger.error("%s unavailable, %s: %s%s", self.name, self.consequence, self.last_error, more)
                self._logged_at, self._suppressed = now, 0
            else:
                self._suppressed += 1

    def succeeded(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            if self.down_since is not None:
                logger.warning("%s available again after %.0f s", self.name, time.time() - self.down_since)
                self.down_since, self.last_error, self._logged_at, self._suppressed = None, None, 0.0, 0

    def as_dict(self) -> dict:
        if self.ok:
            return {"ok": True}
        return {"ok": False, "since": self.down_since, "error": self.last_error}
