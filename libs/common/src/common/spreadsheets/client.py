"""What every uploader's command line shares: the service's address and token, the rejected-rows
report, the progress bar and the language."""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from common.spreadsheets.reports import REPORT_ENCODING, system_language


def add_client_arguments(parser: argparse.ArgumentParser, service: str, *, default_url: str, lang_of: str) -> None:
    """--token, --url (`<SERVICE>_URL`, else `default_url`), --report, --no-progress and --lang (of `lang_of`)."""
    url_variable = f"{service.upper()}_URL"
    parser.add_argument("--token", default=os.environ.get("EXCHANGE_TOKEN"), help="bearer token (or EXCHANGE_TOKEN)")
    parser.add_argument("--url", default=os.environ.get(url_variable, default_url), help=f"{service} service")
    parser.add_argument("--report", type=Path, help="rejected-rows CSV (default: FILE.rejected.csv)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--lang",
        choices=("zh", "en"),
        default=system_language(),
        help=f"language of {lang_of} (default: the system's locale, zh_CN… → zh, else en)",
    )


@contextmanager
def client_and_report(
    args: argparse.Namespace, report_path: Path, *, timeout: float
) -> Iterator[tuple[httpx.Client, IO[str]]]:
    """A client of the service bearing the token (given with or without `Bearer `), and the report opened
    for writing (UTF-8 with a BOM, so Excel opens the Chinese in it cleanly)."""
    token = args.token.removeprefix("Bearer ").strip()
    with (
        httpx.Client(base_url=args.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout) as client,
        report_path.open("w", encoding=REPORT_ENCODING, newline="") as report,
    ):
        yield client, report
