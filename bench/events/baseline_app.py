"""The baseline: a bare FastAPI endpoint that commits the same event row plus an outbox row with raw
asyncpg, without validation, authentication, idempotency or the service's middleware.

Run: python bench/events/baseline_app.py --port 8102 --dsn postgresql://...
"""

from __future__ import annotations

import argparse
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

INSERT_EVENT = """
INSERT INTO events (id, organizer_kind, organizer_code, external_ref, title, type, start_date, end_date,
  host_country, host_province, city, participants, foreign_participants, papers, countries, partner_org_ids,
  fields, target_groups, flagship, status, version, created_at, updated_at)
VALUES ($1, 'province', '440000', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, '[]'::jsonb,
  $14::jsonb, $15::jsonb, $16, 'active', 1, $17, $17)
"""
INSERT_OUTBOX = """
INSERT INTO outbox (event_id, topic, key, payload, headers, created_at) VALUES ($1, $2, $3, $4, $5, $6)
"""


def create_app(dsn: str) -> FastAPI:
    state: dict[str, asyncpg.Pool] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        state["pool"] = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        yield
        await state["pool"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/events")
    async def record(request: Request) -> JSONResponse:
        data = json.loads(await request.body())
        event_id, now = uuid.uuid4(), datetime.now(UTC)
        payload = json.dumps({"id": str(uuid.uuid4()), "subject": str(event_id), "data": data})
        async with state["pool"].acquire() as connection, connection.transaction():
            await connection.execute(
                INSERT_EVENT,
                event_id,
                data["external_ref"],
                data["title"],
                data["type"],
                date.fromisoformat(data["start_date"]),
                date.fromisoformat(data["end_date"]),
                data.get("host_country", "CN"),
                data.get("host_province"),
                data.get("city"),
                data.get("participants", 0),
                data.get("foreign_participants", 0),
                data.get("papers", 0),
                json.dumps(data.get("countries", [])),
                json.dumps(data.get("fields", [])),
                json.dumps(data.get("target_groups", [])),
                data.get("flagship", False),
                now,
            )
            await connection.execute(
                INSERT_OUTBOX, str(uuid.uuid4()), "bench.baseline", str(event_id), payload, "{}", now
            )
        return JSONResponse({"id": str(event_id), **data}, status_code=201)

    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", required=True)
    args = parser.parse_args()
    uvicorn.run(create_app(args.dsn), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
