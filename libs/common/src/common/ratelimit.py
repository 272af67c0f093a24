"""A request rate limit per token subject: a token bucket per `sub`, in the process's memory.

Per process: with N replicas (or `serve --workers N`) a subject may make N times the limit in all. That
bounds what one client can make a process do, which is the point; an exact cluster-wide limit belongs to
the gateway in front. Off (not even installed) when the limit is 0, so the hot paths pay nothing then;
on, a request costs one dict look-up of its token and one of its bucket.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from common.auth import AuthConfig, decode_token, optional_bearer_token
from common.errors import Problem, problem_response

MAX_REMEMBERED_TOKENS = 4096  # verified token → its subject; emptied when full
MAX_BUCKETS = 100_000  # subjects (and addresses) tracked; emptied when full, which only forgives
# Probes and scrapes (common.web.operations_router) are never limited, token or not: a 429 on /readyz
# would take the replica out of rotation.
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/asyncapi.json"})


class RateLimit:
    """`per_minute` requests per subject, in bursts of up to `per_minute`, refilled evenly. The subject is
    the verified `sub` of the bearer token; a request whose token does not verify counts against its
    client address (it gets 401 further in, but may not try tokens faster than the limit). Requests
    without a token (the dashboard's files) and the operations endpoints are not limited here."""

    def __init__(
        self,
        app: ASGIApp,
        per_minute: int,
        auth: Callable[[], AuthConfig],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.auth = auth
        self.clock = clock
        self.subjects: dict[bytes, str] = {}
        self.buckets: dict[str, list[float]] = {}  # key → [tokens left, when last refilled]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            if authorization is not None and scope["path"] not in UNLIMITED_PATHS:
                wait = self._take(self._key(authorization, scope))
                if wait:
                    response = problem_response(
                        429,
                        f"More than {int(self.capacity)} requests a minute for this token's subject; "
                        f"retry after {wait} s.",
                        headers={"Retry-After": str(wait)},
                    )
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _key(self, authorization: bytes, scope: Scope) -> str:
        subject = self.subjects.get(authorization)
        if subject is not None:
            return subject
        token = optional_bearer_token(authorization.decode("latin-1"))
        principal = None
        if token is not None:
            with contextlib.suppress(Problem, ValueError):
                principal = decode_token(token, self.auth(), purpose="api")
        if principal is None:
            client = scope.get("client")
            return f"address:{client[0] if client else '-'}"
        if len(self.subjects) >= MAX_REMEMBERED_TOKENS:
            self.subjects.clear()
        subject = self.subjects[authorization] = f"sub:{principal.sub}"
        return subject

    def _take(self, key: str) -> int:
        """Take one request from `key`'s bucket: 0 when allowed, else the whole seconds to wait."""
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            if len(self.buckets) >= MAX_BUCKETS:
                self.buckets.clear()
            bucket = self.buckets[key] = [self.capacity, now]
        else:
            bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return 0
        return max(1, math.ceil((1.0 - bucket[0]) / self.rate))
