"""Errors in the caller's language: every bad-input case of test_bad_input answered with
`Accept-Language: zh` has a Chinese title, detail and errors[].msg."""

from __future__ import annotations

import re

import pytest

from .test_bad_input import AGREEMENT_CASES, MEMBERSHIP_CASES, NO_SUCH, ORGANIZATION_CASES, _swap, partner  # noqa: F401

CJK = re.compile(r"[\u4e00-\u9fff]")
ZH = {"Accept-Language": "zh-CN"}


def assert_chinese(problem: dict) -> None:
    assert CJK.search(problem["title"]) and CJK.search(problem["detail"]), problem
    for error in problem.get("errors", []):
        assert CJK.search(error["msg"]), error


CASES = [
    *(("/v1/partners/organizations", *c) for c in ORGANIZATION_CASES),
    *(("/v1/partners/agreements", *c) for c in AGREEMENT_CASES),
    *(("/v1/partners/memberships", *c) for c in MEMBERSHIP_CASES),
]


@pytest.mark.parametrize(("path", "body"), [(c[0], c[2]) for c in CASES], ids=[f"{c[0]} {c[1]}" for c in CASES])
async def test_every_refusal_in_chinese(service, headers, partner, path, body):  # noqa: F811
    response = await service.client.post(path, json=_swap(body, partner), headers=headers() | ZH)
    assert response.status_code == 422, response.text
    assert_chinese(response.json())


@pytest.mark.parametrize(
    ("path", "status", "scopes"),
    [
        (f"/v1/partners/organizations/{NO_SUCH}", 404, ("partners:write",)),
        (f"/v1/partners/agreements/{NO_SUCH}", 404, ("partners:write",)),
        ("/v1/partners/organizations?region=nowhere", 422, ("partners:write",)),
    ],
)
async def test_reads_refused_in_chinese(service, headers, path, status, scopes):
    response = await service.client.get(path, headers=headers("hq", "HQ", *scopes) | ZH)
    assert response.status_code == status, response.text
    assert_chinese(response.json())


async def test_a_missing_token_in_chinese(service):
    response = await service.client.post("/v1/partners/organizations", json={}, headers=ZH)
    assert response.status_code == 401
    assert response.json()["title"] == "未认证"
