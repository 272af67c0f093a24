"""What the unit tests share: principals, a settable clock, valid bodies."""

from __future__ import annotations

from datetime import date
from typing import Any

from common.auth import Principal
from partners.application.use_cases import PartnersService

TODAY = date(2026, 3, 1)
ADMIN = Principal(sub="admin", org_kind="hq", org_code="HQ", scopes=frozenset({"partners:write", "admin"}))
GD = Principal(sub="gd", org_kind="province", org_code="440000", scopes=frozenset({"partners:write"}))
BJ = Principal(sub="bj", org_kind="province", org_code="110000", scopes=frozenset({"partners:write"}))


class Clock:
    def __init__(self) -> None:
        self.day = TODAY

    def __call__(self) -> date:
        return self.day


def org_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "The Royal Society",
        "name_zh": "英国皇家学会",
        "country": "GB",
        "kind": "academy",
        "ror_id": "03wnrjx87",
        "website": "https://royalsociety.org",
    }
    return body | overrides


def agreement_body(partners: list[str], **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_ref": "GD-AGR-1",
        "title": "MoU on young scientists",
        "kind": "mou",
        "partner_org_ids": partners,
        "signed_on": date(2025, 5, 10),
        "expires_on": date(2030, 5, 9),
        "fields": ["energy"],
        "flagship": False,
    }
    return body | overrides


async def register(service: PartnersService, n: int = 0, by: Principal = GD, **overrides: Any) -> dict[str, Any]:
    body = org_body(name=f"Academy {n}", name_zh=f"科学院{n}", ror_id=None) | overrides
    return await service.register_organization(by, body)
