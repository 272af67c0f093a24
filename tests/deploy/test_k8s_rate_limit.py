"""The Kubernetes overlays turn the rate limit per token subject (common.ratelimit) on in production and
leave it off in development: the production overlay's `exchange-config` sets a positive
`EXCHANGE_RATE_LIMIT_PER_MINUTE`, every serving container reads that ConfigMap, and nothing overrides it
for one service (a prefixed `<SVC>_RATE_LIMIT_PER_MINUTE` would win). Read from the manifests as
kustomize merges them (`behavior: merge` literals over the base's), without a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from common.settings import ServiceSettings

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
SERVICES = ("partners", "events", "talent", "reporting")
CONFIG = "exchange-config"


def _literals(kustomization: Path) -> dict[str, str]:
    document = yaml.safe_load(kustomization.read_text())
    values: dict[str, str] = {}
    for generator in document.get("configMapGenerator", []):
        if generator["name"] == CONFIG:
            values.update(literal.split("=", 1) for literal in generator.get("literals", []))
    return values


def _config(overlay: str) -> dict[str, str]:
    """`exchange-config` as the overlay renders it: the base's literals, the overlay's merged over them."""
    return {
        **_literals(K8S / "base" / "kustomization.yaml"),
        **_literals(K8S / "overlays" / overlay / "kustomization.yaml"),
    }


def _limit(config: dict[str, str]) -> int:
    # As the services read it: the settings validate and convert the value.
    settings = ServiceSettings.model_validate(
        {"service_name": "check", "jwt_secret": "x" * 32, "environment": config["EXCHANGE_ENVIRONMENT"]}
        | (
            {"rate_limit_per_minute": config["EXCHANGE_RATE_LIMIT_PER_MINUTE"]}
            if "EXCHANGE_RATE_LIMIT_PER_MINUTE" in config
            else {}
        )
    )
    return settings.rate_limit_per_minute


def test_the_production_overlay_turns_the_rate_limit_on() -> None:
    config = _config("prod")
    assert config["EXCHANGE_ENVIRONMENT"] == "production"
    assert _limit(config) > 0


def test_the_development_overlay_leaves_it_off() -> None:
    assert _limit(_config("dev")) == 0


def _containers(service: str) -> list[dict[str, Any]]:
    documents = yaml.safe_load_all((K8S / "base" / "services" / f"{service}.yaml").read_text())
    return [
        container
        for document in documents
        if document and document["kind"] == "Deployment"
        for container in document["spec"]["template"]["spec"]["containers"]
    ]


@pytest.mark.parametrize("service", SERVICES)
def test_every_serving_container_reads_the_shared_config_and_overrides_no_limit(service: str) -> None:
    containers = [c for c in _containers(service) if c.get("args", [""])[0] == "serve"]
    assert containers, f"no serving container in {service}.yaml"
    for container in containers:
        assert {"configMapRef": {"name": CONFIG}} in container["envFrom"]
        overrides = [e["name"] for e in container.get("env", []) if e["name"].endswith("RATE_LIMIT_PER_MINUTE")]
        assert overrides == []
    for overlay in ("dev", "prod"):
        text = (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
        assert f"{service.upper()}_RATE_LIMIT_PER_MINUTE" not in text
