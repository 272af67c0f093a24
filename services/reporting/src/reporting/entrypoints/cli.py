"""`reporting migrate | serve | rebuild | dlq list | dlq replay`."""

from __future__ import annotations

import sys

from common.db import create_engine, is_sqlite, session_factory
from common.kafka.dead_letters import add_dead_letter_commands, dead_letter_command
from common.observability import configure_logging
from common.runtime import run_async
from common.service import ServiceCommands

from reporting.config import ReportingSettings

COMMANDS = ServiceCommands(
    name="reporting",
    settings=ReportingSettings,
    port=8004,
    serve_help="run the HTTP API, the projections' consumer and the dashboard",
    workers_help="processes, each serving and consuming its share of the partitions (PostgreSQL only: their "
    "streams share every change through LISTEN/NOTIFY)",
    workers_need_postgres=True,
)


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
    parser, sub = COMMANDS.parser()
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
    if COMMANDS.run(args, parser):
        return
    settings = ReportingSettings()
    if args.command == "dlq":
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
