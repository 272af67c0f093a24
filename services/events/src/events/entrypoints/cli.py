"""`events migrate | serve | relay | republish | asyncapi | openapi | template | upload`: the operators' and
the provinces' command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.service import ServiceCommands

from events.config import EventsSettings
from events.contracts import TOPIC

SERVICE_DIR = Path(__file__).resolve().parents[3]
COMMANDS = ServiceCommands(
    name="events",
    settings=EventsSettings,
    port=8002,
    outbox="events.adapters.tables:outbox",
    topics=[TOPIC],
    aggregates="events.adapters.republish:AGGREGATES",
)


def main(argv: list[str] | None = None) -> None:
    parser, sub = COMMANDS.parser()
    sub.add_parser("asyncapi", help="print the AsyncAPI document (services/events/asyncapi.json)")
    sub.add_parser("openapi", help="print the OpenAPI document")
    template = sub.add_parser("template", help="write the spreadsheet templates (.xlsx and .csv)")
    template.add_argument("--out", type=Path, default=SERVICE_DIR / "templates")
    from events.entrypoints.upload import add_arguments

    add_arguments(sub.add_parser("upload", help="upload a spreadsheet of events (.xlsx or .csv)"))
    args = parser.parse_args(argv)
    if COMMANDS.run(args, parser):
        return
    if args.command == "asyncapi":
        from events.contracts import asyncapi

        print(json.dumps(asyncapi(), indent=2, ensure_ascii=False, sort_keys=True))
    elif args.command == "openapi":
        from events.entrypoints.app import create_app

        print(json.dumps(create_app(EventsSettings(environment="development")).openapi(), indent=2, ensure_ascii=False))
    elif args.command == "template":
        from events.entrypoints.upload import write_templates

        write_templates(args.out)
    else:
        sys.exit(upload(args))


def upload(args: argparse.Namespace) -> int:
    """Exit status: 0 every row recorded, 1 some rows rejected (see the report), 2 the upload failed."""
    from common.spreadsheets.client import client_and_report

    from events.entrypoints import upload as upload_module

    if not args.token:
        print("a token is required: --token or EXCHANGE_TOKEN", file=sys.stderr)
        return 2
    if not 1 <= args.batch_size <= 1000:
        print("--batch-size must be between 1 and 1000", file=sys.stderr)
        return 2
    report_path: Path = args.report or args.file.with_name(args.file.name + ".rejected.csv")
    try:
        with client_and_report(args, report_path, timeout=120) as (client, report):
            uploader = upload_module.Uploader(client, batch_size=args.batch_size, report=report, lang=args.lang)
            summary = uploader.run(args.file, progress=not args.no_progress)
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
