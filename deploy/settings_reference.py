"""The configuration reference of docs/operations.md, generated from the settings classes.

    uv run python deploy/settings_reference.py            # print the generated section
    uv run python deploy/settings_reference.py --write    # replace it in docs/operations.md (`make docs`)

Every field of every service's settings class becomes a row: its environment variable (the service's
prefix, and the shared unprefixed name where one exists), its default, and its meaning, taken from the
field's `description` or else the comment lines right above it in the class. The classes are read at
generation time, so a new setting appears here by itself; tests/deploy/test_configuration_reference.py
fails when the document differs from what this prints.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "operations.md"
BEGIN = "<!-- BEGIN GENERATED configuration reference: `make docs` rewrites this section -->"
END = "<!-- END GENERATED configuration reference -->"
BASE = ("common.settings", "ServiceSettings")
SERVICES = {
    "partners": ("partners.config", "PartnersSettings"),
    "events": ("events.config", "EventsSettings"),
    "talent": ("talent.config", "TalentSettings"),
    "reporting": ("reporting.config", "ReportingSettings"),
}
# What a field is, for fields whose comment in the class says only why its default was chosen (or that
# have none); the field's `description`, else its comment, follows this.
FALLBACK_MEANINGS = {
    "service_name": "The service's name in logs, metrics and the consumer's dead-letter headers.",
    "kafka_bootstrap_servers": "The Kafka brokers, comma-separated `host:port`.",
    "jwt_secret": "HS256 secret the bearer tokens are verified with; required outside development.",
    "jwks_url": "Also verify RS256 tokens from this JWKS document.",
    "jwt_audience": "Require this `aud` claim in tokens.",
    "max_body_bytes": "Larger request bodies are answered 413.",
    "relay_enabled": "Run the outbox relay in this process (`false` for API workers beside a separate `relay`).",
    "log_level": "Python log level of the JSON logs.",
    "database_url": "The service's own database: `postgresql+asyncpg://user:pass@host/db` in production.",
    "environment": "`development` or `test` allow the built-in development secret; anything else refuses it.",
    "topic_partitions": "Partitions of the topics a service creates (existing topics keep theirs).",
    "db_max_overflow": "Connections opened beyond the pool under a burst, closed after use.",
    "consumer_group": "The Kafka consumer group of the projections (every reporting process joins it).",
    "consumer_enabled": "Run the projections' consumer in this process.",
    "stream_heartbeat_seconds": "Seconds between SSE heartbeats on an idle stream.",
    "stream_buffer": "Recent changes kept for SSE clients that reconnect with `Last-Event-ID`.",
    "stream_queue_size": "Changes queued per SSE client before a slow one is dropped.",
}


def _load(module: str, name: str) -> type[Any]:
    cls: type[Any] = getattr(importlib.import_module(module), name)
    return cls


def _comments_above_fields(cls: type[Any]) -> dict[str, str]:
    """The `#` lines directly above each field assignment in the class body, joined."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    found: dict[str, str] = {}
    tree = ast.parse(source)
    for node in tree.body[0].body:  # type: ignore[attr-defined]
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            comment: list[str] = []
            index = node.lineno - 2
            while index >= 0 and lines[index].strip().startswith("#"):
                comment.insert(0, lines[index].strip().lstrip("#").strip())
                index -= 1
            if comment:
                found[node.target.id] = " ".join(comment)
    return found


def _meaning(name: str, info: FieldInfo, comments: dict[str, str]) -> str:
    parts = [FALLBACK_MEANINGS.get(name), info.description or comments.get(name)]
    return " ".join(p for p in parts if p).replace("|", "\\|")


def _default(name: str, info: FieldInfo) -> str:
    if "secret" in name:
        return "a development value (refused outside development)"
    if info.default_factory is not None:
        value = info.default_factory()  # type: ignore[call-arg]
    elif info.default is PydanticUndefined:
        return "required"
    else:
        value = info.default
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value, separators=(', ', ': '))}`"
    return f"`{value}`"


def _rows(cls: type[Any], prefix: str, names: list[str], comments: dict[str, str], shared: dict[str, str]) -> list[str]:
    rows = []
    for name in names:
        info = cls.model_fields[name]
        variable = f"`{prefix}{name.upper()}`"
        if name in shared:
            variable += f" or `{shared[name]}`"
        rows.append(f"| {variable} | {_default(name, info)} | {_meaning(name, info, comments)} |")
    return rows


def generate() -> str:
    """The Markdown of the configuration reference, between its markers."""
    settings_module = importlib.import_module(BASE[0])
    shared: dict[str, str] = dict(getattr(settings_module, "_SHARED_FALLBACKS", {}))
    base = _load(*BASE)
    base_comments = _comments_above_fields(base)
    header = ["| variable | default | meaning |", "| --- | --- | --- |"]
    out = [
        BEGIN,
        "",
        "### Every service",
        "",
        "Each service reads its variables with its own prefix (`PARTNERS_`, `EVENTS_`, `TALENT_`, `REPORTING_`, "
        "written `<SVC>_` below); the shared names in the first column are read unprefixed as a fallback, so one "
        "environment can configure all four, and a prefixed variable wins.",
        "",
        *header,
    ]
    base_names = [n for n in base.model_fields if n != "service_name"]
    out += _rows(base, "<SVC>_", base_names, base_comments, shared)
    for service, (module, name) in SERVICES.items():
        cls = _load(module, name)
        prefix = str(cls.model_config.get("env_prefix", ""))
        comments = {**base_comments, **_comments_above_fields(cls)}
        own = [n for n in cls.model_fields if n not in base.model_fields]
        overridden = [
            n
            for n in cls.model_fields
            if n in base.model_fields
            and n != "service_name"
            and _default(n, cls.model_fields[n]) != _default(n, base.model_fields[n])
        ]
        out += ["", f"### {service} (`{prefix}`)", ""]
        if not own and not overridden:
            out.append("Only the variables of every service.")
            continue
        out += header + _rows(cls, prefix, overridden + own, comments, {})
    out += ["", END]
    return "\n".join(out)


def replace_section(document: str, section: str) -> str:
    start, end = document.index(BEGIN), document.index(END) + len(END)
    return document[:start] + section + document[end:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--write", action="store_true", help=f"rewrite the section in {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    section = generate()
    if args.write:
        DOC.write_text(replace_section(DOC.read_text(encoding="utf-8"), section), encoding="utf-8")
        print(f"wrote the configuration reference into {DOC.relative_to(ROOT)}", file=sys.stderr)
    else:
        print(section)


if __name__ == "__main__":
    main()
