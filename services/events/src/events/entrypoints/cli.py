"""`events migrate | serve | asyncapi | upload`: the operator's and the provinces' command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.republish import add_republish_command

from events.config import EventsSettings

SERVICE_DIR = Path(__file__).resolve().parents[3]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="events")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply the database migrations")
    serve = sub.add_parser("serve", help="run the HTTP API and the outbox relay")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8002)
    serve.add_argument("--workers", type=int, default=1)
    add_republish_command(sub)
    sub.add_parser("relay", help="run only the outbox relay (for API workers started with EVENTS_RELAY_ENABLED=false)")
    sub.add_parser("asyncapi", help="print the AsyncAPI document (services/events/asyncapi.json)")
    sub.add_parser("openapi", help="print the OpenAPI document")
    template = sub.add_parser("template", help="write the spreadsheet templates (.xlsx and .csv)")
    template.add_argument("--out", type=Path, default=SERVICE_DIR / "templates")
    from events.entrypoints.upload import add_arguments

    add_arguments(sub.add_parser("upload", help="upload a spreadsheet of events (.xlsx or .csv)"))
    args = parser.parse_args(argv)

    if args.command == "asyncapi":
        from events.contracts import asyncapi

        print(json.dumps(asyncapi(), indent=2, ensure_ascii=False, sort_keys=True))
        return
    if args.command == "openapi":
        from events.entrypoints.app import create_app

        print(json.dumps(create_app(EventsSettings(environment="development")).openapi(), indent=2, ensure_ascii=False))
        return
    if args.command == "template":
        from events.entrypoints.upload import write_templates

        write_templates(args.out)
        return
    if args.command == "upload":
        sys.exit(upload(args))
    settings = EventsSettings()
    if args.command == "migrate":
        from common.migrations import upgrade

        upgrade(settings.database_url, SERVICE_DIR)
        return
    if args.command == "republish":
        from common.republish import run_republish

        from events.adapters.tables import outbox
        from events.application.republish import AGGREGATES

        run_republish(settings, outbox, AGGREGATES)
        return
    if args.command == "relay":
        import asyncio

        from common.observability import configure_logging

        from events.entrypoints.app import run_relay

        configure_logging(settings.service_name, settings.log_level)
        asyncio.run(run_relay(settings.model_copy(update={"relay_enabled": True})))
        return
    from common.observability import configure_logging
    from common.web import serve as serve_app

    configure_logging(settings.service_name, settings.log_level)
    serve_app("events.entrypoints.app:create_app", settings, host=args.host, port=args.port, workers=args.workers)


def upload(args: argparse.Namespace) -> int:
    """Exit status: 0 every row recorded, 1 some rows rejected (see the report), 2 the upload failed."""
    import httpx

    from events.entrypoints import upload as upload_module

    if not args.token:
        print("a token is required: --token or EXCHANGE_TOKEN", file=sys.stderr)
        return 2
    if not 1 <= args.batch_size <= 1000:
        print("--batch-size must be between 1 and 1000", file=sys.stderr)
        return 2
    report_path: Path = args.report or args.file.with_name(args.file.name + ".rejected.csv")
    token = args.token.removeprefix("Bearer ").strip()
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with (
            httpx.Client(base_url=args.url, headers=headers, timeout=120) as client,
            report_path.open("w", encoding="utf-8-sig", newline="") as report,
        ):
            summary = upload_module.Uploader(client, batch_size=args.batch_size, report=report).run(
                args.file, progress=not args.no_progress
            )
    except (upload_module.SheetError, upload_module.UploadFailed, OSError) as exc:
        print(f"upload failed: {exc}", file=sys.stderr)
        print("nothing is lost: run the same command again; rows already recorded are skipped", file=sys.stderr)
        return 2
    print(
        f"{summary.rows} rows: {summary.created} recorded, {summary.unchanged} already recorded, "
        f"{len(summary.rejected)} rejected" + (f" (see {report_path})" if summary.rejected else "")
    )
    return 1 if summary.rejected else 0


if __name__ == "__main__":
    main()
