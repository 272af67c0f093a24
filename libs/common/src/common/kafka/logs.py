"""aiokafka's own loggers, rate-limited: with the broker gone its clients log each failed connection,
metadata refresh and produce retry, thousands of lines a second (28 MB in a 30-second outage)."""

from __future__ import annotations

import logging
import pkgutil
import time

import aiokafka

# One line per logger, message and level in this many seconds; the next one says how many were held back.
INTERVAL = 10.0


class OncePerInterval(logging.Filter):
    """Lets the first record of each (logger, message template, level) through, then holds the same
    record back for `interval` seconds, counting; the first one after that carries the count."""

    def __init__(self, interval: float = INTERVAL) -> None:
        super().__init__()
        self.interval = interval
        self._seen: dict[tuple[str, str, int], tuple[float, int]] = {}  # key -> (last let through, held back)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg), record.levelno)
        now = time.monotonic()
        last, held = self._seen.get(key, (-self.interval, 0))
        if now - last < self.interval:
            self._seen[key] = (last, held + 1)
            return False
        self._seen[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like this in the last {now - last:.0f}s)"
        return True


_installed: OncePerInterval | None = None


def rate_limit_kafka_client_logs(interval: float = INTERVAL) -> OncePerInterval:
    """Attach one `OncePerInterval` to every aiokafka logger (a logger's filters see only its own
    records, not its children's, so each gets it). Idempotent: the first call's interval stays."""
    global _installed
    if _installed is None:
        _installed = OncePerInterval(interval)
        # Its modules log under their own names (`__name__`), its client under "aiokafka".
        names = ["aiokafka", *(module.name for module in pkgutil.walk_packages(aiokafka.__path__, "aiokafka."))]
        for name in names:
            logging.getLogger(name).addFilter(_installed)
    return _installed
