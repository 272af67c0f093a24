"""docs/operations.md's configuration reference is exactly what the settings classes generate, so it
cannot drift: a new or changed setting fails here until `make docs` rewrites the section."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator():
    spec = importlib.util.spec_from_file_location("settings_reference", ROOT / "deploy" / "settings_reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_configuration_reference_is_the_generated_one():
    generator = _generator()
    document = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    expected = generator.replace_section(document, generator.generate())
    assert document == expected, "docs/operations.md's configuration reference is stale: run `make docs`"


def test_every_setting_of_every_service_is_listed():
    generator = _generator()
    section = generator.generate()
    for module, name in generator.SERVICES.values():
        settings = getattr(importlib.import_module(module), name)
        prefix = settings.model_config["env_prefix"]
        for field in settings.model_fields:
            if field == "service_name":
                continue
            assert f"`{prefix}{field.upper()}`" in section or f"`<SVC>_{field.upper()}`" in section, field


def test_a_changed_setting_makes_the_document_stale(monkeypatch):
    generator = _generator()
    document = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    monkeypatch.setitem(generator.FALLBACK_MEANINGS, "log_level", "changed meaning")
    assert generator.replace_section(document, generator.generate()) != document
