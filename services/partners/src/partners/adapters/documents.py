"""Signed documents on the local disk: one file per SHA-256, written whole or not at all."""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class LocalDocumentStorage:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):  # never a path from outside
            raise ValueError("not a SHA-256")
        return self.directory / f"{sha256}.pdf"

    async def put(self, sha256: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self._path(sha256), data)

    def _write(self, path: Path, data: bytes) -> None:
        if path.exists():
            return  # the same content is already there
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, path)  # atomic: a reader sees the whole file or none
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def get(self, sha256: str) -> bytes | None:
        path = self._path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None
