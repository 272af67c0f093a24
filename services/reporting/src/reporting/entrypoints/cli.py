"""`reporting migrate | serve | rebuild | dlq list | dlq replay`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.db import create_engine, is_sqlite, session_factory
from common.kafka.dead_letters import add_dead_letter_commands, dead_letter_command
from common.migrations import upgrade
from common.observability import configure_logging
from common.runtime import run_async
from common.web import serve as serve_app

from reporting.config import ReportingSettings

SERVICE_DIR = Path(__file__).resolve().parents[3]


async def _rebuild(settings: ReportingSettings, keep_previous: bool, workers: int) -> None:
    from reporting.rebuild.replay import prepare_process, rebuild

    prepare_process()
    engine = create_engine(settings.database_url)
    try:
        report = await rebuild(
            session_factory(engine),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topics=settings.source_topics(),
            keep_previous=keep_previous,
            workers=workers,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
    finally:
        await engine.dispose()
    print(
        f"rebuilt generation {report.generation} (was {report.previous_generation}): {report.messages} messages, "
        f"{report.applied} applied, {report.invalid} invalid, {report.apply_failed} failed to apply, "
        f"{report.seconds:.1f}s ({report.rate:,.0f}/s)"
    )
    skipped = report.invalid + report.apply_failed
    if skipped:
        shown = "" if len(report.skipped) == skipped else f" (the first {len(report.skipped):,} named)"
        print(f"skipped {skipped:,} poison messages, as the live consumer dead-letters them{shown}:")
        for message in report.skipped:
            print(f"  {message}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="reporting")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    serve = sub.add_parser("serve", help="run the HTTP API, the projections' consumer and the dashboard")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8004)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes, each serving and consuming its share of the partitions (PostgreSQL only: their "
        "streams share every change through LISTEN/NOTIFY)",
    )
    rebuild = sub.add_parser(
        "rebuild", help="replay every topic from the beginning into fresh projections, then swap them in"
    )
    rebuild.add_argument("--keep-previous", action="store_true", help="keep the old generation's rows")
    rebuild.add_argument(
        "--workers",
        type=int,
        default=None,
        help="processes replaying the partitions (default: 2 on PostgreSQL, 1 on SQLite; the replay is "
        "CPU-bound, so more than the machine's cores gains nothing)",
    )
    add_dead_letter_commands(sub)
    args = parser.parse_args(argv)
    settings = ReportingSettings()
    if args.command == "migrate":
        upgrade(settings.database_url, SERVICE_DIR)
    elif args.command == "dlq":
        command = dead_letter_command(
            args, bootstrap_servers=settings.kafka_bootstrap_servers, topics=settings.source_topics(), out=sys.stdout
        )
        sys.exit(run_async(command))
    elif args.command == "rebuild":
        sqlite = is_sqlite(settings.database_url)
        workers = args.workers if args.workers is not None else (1 if sqlite else 2)
        if workers < 1:
            parser.error("--workers must be at least 1")
        if workers > 1 and sqlite:
            parser.error("--workers above 1 needs PostgreSQL (REPORTING_DATABASE_URL): SQLite is one process")
        configure_logging(settings.service_name, settings.log_level)
        from reporting.rebuild.replay import RebuildRefused, RebuildRunning

        try:
            run_async(_rebuild(settings, args.keep_previous, workers))
        except (RebuildRefused, RebuildRunning) as exc:
            sys.exit(f"reporting rebuild: {exc}")
    else:
        configure_logging(settings.service_name, settings.log_level)
        if args.workers > 1 and is_sqlite(settings.database_url):
            parser.error("--workers above 1 needs PostgreSQL (REPORTING_DATABASE_URL): SQLite is one process")
        app_factory = "reporting.entrypoints.app:create_app"
        serve_app(app_factory, settings, host=args.host, port=args.port, workers=args.workers)
