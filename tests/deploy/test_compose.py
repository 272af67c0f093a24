"""docker-compose.yml: the infrastructure alone (`docker compose up kafka postgres`) needs no secret, yet
every service and migration job it defines refuses to start without a real one.

Compose interpolates the whole file before it picks the services to start (profiles included), so a
required variable (`${X:?…}`) anywhere fails every command. The secret is therefore optional in the
file, and the settings are what refuse it: the file sets EXCHANGE_ENVIRONMENT=production, where an
unset (empty) or short secret is an error. The file is read as Compose reads it (YAML with its
anchors and merge keys, then `${…}` interpolation) without a container engine."""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "partners": ("partners.config", "PartnersSettings"),
    "events": ("events.config", "EventsSettings"),
    "talent": ("talent.config", "TalentSettings"),
    "reporting": ("reporting.config", "ReportingSettings"),
}
_VARIABLE = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


class Missing(Exception):
    """A required variable (`${X:?…}` or `${X?…}`) is not set: Compose stops here."""


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation of one string (`${X}`, `${X:-d}`, `${X-d}`, `${X:?e}`, `${X?e}`)."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        present = name in env and (env[name] != "" or not (op or "").startswith(":"))
        if present:
            return env[name]
        if op in (":?", "?"):
            raise Missing(f"{name}: {arg}")
        return arg if op in (":-", "-") else ""

    return _VARIABLE.sub(one, value.replace("$$", "\x00")).replace("\x00", "$")


def interpolated(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [interpolated(item, env) for item in node]
    if isinstance(node, dict):
        return {key: interpolated(item, env) for key, item in node.items()}
    return node


def compose(env: Mapping[str, str]) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return interpolated(raw, env)  # type: ignore[no-any-return]


def settings_of(service: str, environment: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's settings as its container would load them: only the compose file's environment."""
    module, name = SETTINGS[service]
    cls = getattr(importlib.import_module(module), name)
    prefixes = ("EXCHANGE_", "KAFKA_", str(cls.model_config.get("env_prefix", "")))
    for variable in list(os.environ):
        if variable.startswith(prefixes):
            monkeypatch.delenv(variable)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, str(value))
    return cls(_env_file=None)


def test_the_infrastructure_alone_needs_no_secret() -> None:
    services = compose({})["services"]  # raises Missing on a required variable anywhere in the file
    assert {"kafka", "postgres"} <= set(services)
    for name in ("kafka", "postgres"):
        assert "EXCHANGE_JWT_SECRET" not in services[name].get("environment", {})


def test_interpolation_stops_on_a_required_variable() -> None:
    with pytest.raises(Missing):
        interpolate("${EXCHANGE_JWT_SECRET:?set it}", {})
    assert interpolate("${EXCHANGE_JWT_SECRET:-}", {}) == ""
    assert interpolate("${EXCHANGE_JWT_SECRET:-}", {"EXCHANGE_JWT_SECRET": "s"}) == "s"


def _app_containers(services: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(compose service, its settings) for every service and migration job."""
    return [(name, name.removesuffix("-migrate")) for name in services if name.removesuffix("-migrate") in SETTINGS]


def test_every_service_and_migration_job_refuses_to_start_without_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    services = compose({})["services"]
    containers = _app_containers(services)
    assert len(containers) == 2 * len(SETTINGS)
    for container, service in containers:
        environment = services[container]["environment"]
        assert environment["EXCHANGE_ENVIRONMENT"] == "production"
        with monkeypatch.context() as patch, pytest.raises(ValidationError, match="EXCHANGE_JWT_SECRET must be set"):
            settings_of(service, environment, patch)


def test_a_short_secret_is_refused_and_a_real_one_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    short = compose({"EXCHANGE_JWT_SECRET": "too-short"})["services"]
    real_secret = "0123456789abcdef" * 4
    real = compose({"EXCHANGE_JWT_SECRET": real_secret})["services"]
    for container, service in _app_containers(real):
        with monkeypatch.context() as patch, pytest.raises(ValidationError, match="32 bytes or more"):
            settings_of(service, short[container]["environment"], patch)
        with monkeypatch.context() as patch:
            settings = settings_of(service, real[container]["environment"], patch)
        assert (settings.environment, settings.jwt_secret) == ("production", real_secret)
