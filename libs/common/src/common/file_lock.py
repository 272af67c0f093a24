"""One holder per SQLite database file, among every process that opens it.

SQLite has no advisory lock: an exclusive `flock` on a file beside the database (`<database>.<suffix>`)
makes one process the holder (the outbox relay, partners' scheduler); the others stand by, and the first to
try after it is released (or its process dies) takes over."""

from __future__ import annotations

import logging
import os

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: one holder per SQLite file is then the operator's to keep
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)


class SqliteFileLock:
    """`hold(database)` is true while this process may act for the database file."""

    def __init__(self, suffix: str, holder: str) -> None:
        self.suffix = suffix
        self.holder = holder  # what the log line says this process now is, e.g. "the outbox relay"
        self._fd: int | None = None

    def hold(self, database: str | None) -> bool:
        """Takes the lock if no one holds it; true while this process holds it (or needs none)."""
        if self._fd is not None or fcntl is None:
            return True
        if not database or database == ":memory:" or database.startswith("file:"):
            return True  # private to this process
        fd = os.open(f"{database}.{self.suffix}", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        log.info("this process is %s of %s", self.holder, database)
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor of the lock file releases the lock
