"""Errors in the caller's language: every bad-input case of test_bad_input answered with
`Accept-Language: zh` has a Chinese title, detail and errors[].msg; English stays the default."""

from __future__ import annotations

import re

import pytest

from ..conftest import body
from .test_bad_input import POST_CASES, WRITER, send

CJK = re.compile(r"[\u4e00-\u9fff]")


def assert_chinese(problem: dict) -> None:
    assert CJK.search(problem["title"]) and CJK.search(problem["detail"]), problem
    for error in problem.get("errors", []):
        assert CJK.search(error["msg"]), error


@pytest.mark.parametrize(("sent", "field", "actor"), [c[1:] for c in POST_CASES], ids=[c[0] for c in POST_CASES])
async def test_every_refusal_of_a_post_in_chinese(service, token, sent, field, actor):
    headers = {"Authorization": token(*actor), "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}
    response = await send(service, "POST", "/v1/events", sent, headers)
    assert response.status_code == 422 and response.headers["content-type"] == "application/problem+json"
    assert_chinese(response.json())


async def test_limits_and_values_are_kept_in_the_chinese_message(service, token):
    headers = {"Authorization": token(*WRITER), "Accept-Language": "zh"}
    response = await service.client.post("/v1/events", json=body(title="x" * 501), headers=headers)
    assert response.json()["errors"] == [{"loc": ["body", "title"], "msg": "最多 500 个字符"}]
    assert response.json()["title"] == "校验未通过"
    english = await service.client.post(
        "/v1/events", json=body(title="x" * 501), headers={"Authorization": token(*WRITER)}
    )
    assert english.json()["errors"][0]["msg"] == "String should have at most 500 characters"


async def test_batch_items_refused_in_chinese(service, token):
    items = [body(external_ref="zh-1", end_date="2025-05-01"), body(external_ref="zh-2", type="party")]
    headers = {"Authorization": token(*WRITER), "Accept-Language": "zh-Hans"}
    answer = (await service.client.post("/v1/events/batch", json={"events": items}, headers=headers)).json()
    assert answer["rejected"] == 2
    for item in answer["items"]:
        assert item["errors"] and all(CJK.search(e["msg"]) for e in item["errors"]), item
    assert answer["items"][0]["errors"][0]["msg"] == "不得早于开始日期（start_date）"


@pytest.mark.parametrize(
    ("method", "url", "authorised", "status"),
    [
        ("POST", "/v1/events", False, 401),
        ("GET", "/v1/events/0193a5b2-7c1e-7d4a-9b3f-2a1c5e6f7a8b", True, 404),
        ("GET", "/v1/nowhere", True, 404),
        ("GET", "/v1/events?country=XX", True, 422),
        ("GET", "/v1/events?cursor=%%%", True, 422),
        ("GET", "/v1/events?limit=0", True, 422),
    ],
)
async def test_other_refusals_in_chinese(service, token, method, url, authorised, status):
    headers = {"Accept-Language": "zh"} | ({"Authorization": token(*WRITER)} if authorised else {})
    response = await service.client.request(method, url, headers=headers, json=body())
    assert response.status_code == status
    assert_chinese(response.json())


async def test_the_openapi_documents_accept_language(service):
    document = (await service.client.get("/openapi.json")).json()
    assert "Accept-Language" in document["info"]["description"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            names = [p["name"] for p in operation.get("parameters", [])]
            assert "Accept-Language" in names, f"{method.upper()} {path}"
