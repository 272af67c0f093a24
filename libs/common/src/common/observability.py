"""JSON logs with request and trace ids, W3C trace context, and the Prometheus metrics we alert on."""

from __future__ import annotations

import atexit
import contextvars
import logging
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pythonjsonlogger.json import JsonFormatter
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import language_of_scope, problem_response

log = logging.getLogger(__name__)
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
traceparent_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("traceparent", default=None)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

# --- metrics (one registry per process; the `service` label tells services apart) -------------
# `serve --workers N` (common.web.serve) names a fresh directory here before the workers start: each
# worker then keeps its values in files there, and /metrics answers for all of them, whichever worker
# takes the scrape. prometheus_client reads the variable when it is imported, so only the workers use it.
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
if os.environ.get(MULTIPROCESS_DIR):
    atexit.register(multiprocess.mark_process_dead, os.getpid())  # its live gauges leave with it
HTTP_REQUESTS = Counter("http_requests_total", "HTTP requests", ["service", "method", "route", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
# With several workers: each measures the same table (the largest is the freshest worry).
OUTBOX_BACKLOG = Gauge(
    "outbox_backlog", "Committed messages not yet published", ["service"], multiprocess_mode="livemax"
)
OUTBOX_PUBLISHED = Counter("outbox_published_total", "Messages published by the relay", ["service"])
OUTBOX_FAILURES = Counter("outbox_publish_failures_total", "Failed publish attempts", ["service"])
OUTBOX_DEAD_LETTERS = Counter(
    "outbox_dead_letters_total", "Outbox rows moved to outbox_dead_letter, never to be published", ["service"]
)
OUTBOX_LATENCY = Histogram(
    "outbox_commit_to_publish_seconds",
    "From outbox row creation to broker ack",
    ["service"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
)
CONSUMER_PROCESSED = Counter("consumer_messages_total", "Messages applied", ["service", "topic"])
CONSUMER_DUPLICATES = Counter("consumer_duplicates_total", "Redelivered messages skipped", ["service", "topic"])
CONSUMER_DLQ = Counter("consumer_dead_letters_total", "Messages sent to the DLQ", ["service", "topic"])
CONSUMER_DLQ_FAILURES = Counter(
    "consumer_dead_letter_failures_total", "Sends to a DLQ that failed (the batch is retried)", ["service", "topic"]
)
# kind: "transient" (broker, commit, deadlock, concurrent change) or "poison" (may be a message's data)
CONSUMER_FAILURES = Counter("consumer_failures_total", "Failed batch attempts, retried", ["service", "kind"])
# With several workers: a partition's owner may change, and the newest value is its owner's.
CONSUMER_LAG = Gauge(
    "consumer_lag",
    "Messages behind the log end",
    ["service", "topic", "partition"],
    multiprocess_mode="livemostrecent",
)
# 1 while a topic the service writes or reads would delete messages by age or size (common.kafka.admin.data_loss).
TOPIC_DROPS_DATA = Gauge(
    "kafka_topic_drops_data",
    "1 when the topic's configuration would delete messages a rebuild needs",
    ["service", "topic"],
    multiprocess_mode="livemax",
)
# Set by each /readyz probe (common.web.kafka_check); the newest probe's answer wins across workers.
KAFKA_BROKER_REACHABLE = Gauge(
    "kafka_broker_reachable",
    "1 when a bootstrap server accepted a connection at the last /readyz probe, else 0",
    ["service"],
    multiprocess_mode="mostrecent",
)
CLIENT_REBUILDS = Counter("kafka_client_rebuilds_total", "Kafka clients rebuilt by a watchdog", ["service", "role"])


def metrics_response() -> Response:
    if os.environ.get(MULTIPROCESS_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # every worker's files
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


# --- trace context ------------------------------------------------------------------------------
def new_traceparent(parent: str | None = None) -> str:
    """A child span id under the incoming trace, or a fresh trace when there is none or it is invalid."""
    match = _TRACEPARENT.match(parent or "")
    trace_id = match.group(1) if match else secrets.token_hex(16)
    flags = match.group(3) if match else "01"
    return f"00-{trace_id}-{secrets.token_hex(8)}-{flags}"


def trace_id() -> str | None:
    match = _TRACEPARENT.match(traceparent_var.get() or "")
    return match.group(1) if match else None


# --- logging ------------------------------------------------------------------------------------
class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        record.trace_id = trace_id()
        return True


_ACCESS_TOKEN = re.compile(r"([?&]access_token=)[^&#\s]*")


class _AccessTokenRedaction(logging.Filter):
    """uvicorn's access line names the path with its query; the stream's `?access_token=` (EventSource
    cannot send headers) would put a bearer token in the logs. The line keeps the parameter's name only.
    Runs for every request: it looks at the one argument that holds the path (client, method, path with
    query, HTTP version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5:
            path = args[2]
            if isinstance(path, str) and "access_token=" in path:
                record.args = (*args[:2], _ACCESS_TOKEN.sub(r"\1[redacted]", path), *args[3:])
        return True


def redact_access_tokens_in_access_log() -> None:
    """Install the redaction on uvicorn's access logger (once per process, whoever configures its handlers)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _AccessTokenRedaction) for f in access.filters):
        access.addFilter(_AccessTokenRedaction())


def configure_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(trace_id)s",
            rename_fields={"levelname": "level", "asctime": "time"},
            static_fields={"service": service},
        )
    )
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def worker_logging_config(service: str, level: str) -> dict[str, Any]:
    """For uvicorn's `log_config` with several workers: each worker is a fresh (spawned) process whose
    logging is unconfigured — its lines came out as plain text. uvicorn applies this document with
    `logging.config.dictConfig` in every worker; its one handler factory runs `configure_logging` there."""
    factory = {"()": f"{__name__}.{_configured_in_worker.__name__}", "service": service, "log_level": level}
    return {"version": 1, "disable_existing_loggers": False, "handlers": {"configure": factory}}


def _configured_in_worker(service: str, log_level: str) -> logging.Handler:  # `level` is dictConfig's own key
    configure_logging(service, log_level)
    return logging.NullHandler()  # dictConfig expects a handler; configure_logging installed the real one


# --- middleware ---------------------------------------------------------------------------------
_Children = tuple[Any, Any]  # the request counter's and the latency histogram's child for one label set
_children: dict[tuple[str, str, str, str], _Children] = {}  # bounded: methods, route templates, statuses


def _metric_children(service: str, method: str, path: str, status: str) -> _Children:
    """`labels()` validates and locks on every call (~10 µs); the children are looked up once."""
    key = (service, method, path, status)
    children = _children.get(key)
    if children is None:
        children = (HTTP_REQUESTS.labels(service, method, path, status), HTTP_LATENCY.labels(service, method, path))
        _children[key] = children
    return children


class RequestContextMiddleware:
    """Request id + trace context per request, access metrics; pure ASGI so it adds little latency."""

    def __init__(
        self, app: ASGIApp, service: str, response_headers: Callable[[str], list[tuple[bytes, bytes]]] | None = None
    ) -> None:
        self.app = app
        self.service = service
        self.response_headers = response_headers  # more headers for every answer, by path (security headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = parent = None
        for name, value in scope["headers"]:  # only the two headers read here are decoded
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                parent = value.decode("latin-1")
        request_id = request_id or secrets.token_hex(8)
        traceparent = new_traceparent(parent)
        rid_token = request_id_var.set(request_id)
        tp_token = traceparent_var.set(traceparent)
        started = time.perf_counter()
        status = 500
        extra_headers = [(b"x-request-id", request_id.encode()), (b"traceparent", traceparent.encode())]
        if self.response_headers is not None:
            extra_headers += self.response_headers(scope["path"])

        started_response = False

        async def send_with_ids(message: Message) -> None:
            nonlocal status, started_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message["headers"] = [*message.get("headers", ()), *extra_headers]
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        except Exception:
            # Answered here rather than by Starlette's outermost handler, which re-raises to the server
            # after answering: uvicorn then drops the keep-alive connection and the requests on it.
            if started_response:
                raise
            log.exception("unhandled error")
            await _internal_error(scope, receive, send_with_ids)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"  # bounded label values
            requests, latency = _metric_children(self.service, method, path, str(status))
            requests.inc()
            latency.observe(time.perf_counter() - started)
            request_id_var.reset(rid_token)
            traceparent_var.reset(tp_token)


async def _internal_error(scope: Scope, receive: Receive, send: Send) -> None:
    lang = language_of_scope(scope)
    await problem_response(500, "An internal error occurred; it has been logged.", lang=lang)(scope, receive, send)


Check = Callable[[], Awaitable[None]]
