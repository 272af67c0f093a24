"""`talent migrate | serve | relay | republish | asyncapi | template | import`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.service import ServiceCommands

from talent.config import TalentSettings
from talent.contracts import TOPIC

SERVICE_DIR = Path(__file__).resolve().parents[3]
COMMANDS = ServiceCommands(
    "talent",
    TalentSettings,
    port=8003,
    outbox="talent.adapters.tables:outbox",
    topics=[TOPIC],
    aggregates="talent.adapters.republish:AGGREGATES",
)


def main(argv: list[str] | None = None) -> None:
    parser, sub = COMMANDS.parser()
    sub.add_parser("asyncapi", help="print the AsyncAPI document of what the service publishes")
    template = sub.add_parser("template", help="write the spreadsheet template")
    template.add_argument("directory", type=Path, nargs="?", default=SERVICE_DIR / "templates")
    from talent.entrypoints.importer import add_arguments

    add_arguments(sub.add_parser("import", help="sync a society's pool from its spreadsheet"))
    args = parser.parse_args(argv)
    if COMMANDS.run(args, parser):
        return
    if args.command == "asyncapi":
        from talent.contracts import asyncapi

        print(json.dumps(asyncapi(), indent=2, ensure_ascii=False))
    elif args.command == "template":
        from talent.entrypoints.importer import write_template

        write_template(args.directory)
    else:
        sys.exit(run_import(args))


def run_import(args: argparse.Namespace) -> int:
    """Exit status: 0 every row synced, 1 some rows rejected (see the report), 2 the import failed."""
    from common.spreadsheets import SheetError
    from common.spreadsheets.client import client_and_report

    from talent.entrypoints import importer

    if not args.token:
        print("import failed: a token is required (--token or EXCHANGE_TOKEN)", file=sys.stderr)
        return 2
    report_path = args.report or args.file.with_suffix(".rejected.csv")
    try:
        with client_and_report(args, report_path, timeout=600) as (client, report):
            summary = importer.Importer(
                client, mode=args.mode, report=report, dry_run=args.dry_run, lang=args.lang
            ).run(args.file, progress=not args.no_progress)
    except (SheetError, importer.ImportFailed, OSError) as exc:
        print(f"import failed: {exc}", file=sys.stderr)
        return 2
    a = summary.answer
    print(
        f"{summary.rows} rows: {a.get('created', 0)} created, {a.get('updated', 0)} updated, "
        f"{a.get('unchanged', 0)} unchanged, {a.get('removed', 0)} removed, {summary.rejected} rejected"
        + (" (dry run: nothing changed)" if args.dry_run else "")
        + (f"; see {report_path}" if summary.rejected else "")
    )
    return 1 if summary.rejected else 0
