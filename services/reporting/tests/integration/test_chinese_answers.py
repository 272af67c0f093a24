"""Errors in the caller's language: reporting's refusals with `Accept-Language: zh` have a Chinese title,
detail and errors[].msg; without it, English."""

from __future__ import annotations

import re

import pytest
from support import prepare, running_service

CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
async def service(make_database, kafka_bootstrap, topic_prefix, jwt_secret, token):
    settings = await prepare(
        make_database, "rep_zh", kafka_bootstrap, f"{topic_prefix}repzh.", jwt_secret, consumer_enabled=False
    )
    async with running_service(settings, token("hq", "HQ", "reporting:read")) as svc:
        yield svc


@pytest.mark.parametrize(
    ("path", "authorised", "status"),
    [
        ("/v1/metrics", False, 401),
        ("/v1/regions/nowhere", True, 404),
        ("/v1/metrics?year=1800", True, 422),
        ("/v1/metrics?year=abc", True, 422),
    ],
)
async def test_refusals_in_chinese(service, path, authorised, status):
    headers = {"Accept-Language": "zh-CN,zh;q=0.9"} | (service.headers if authorised else {})
    async with service.client(headers=headers) as client:
        response = await client.get(path)
    assert response.status_code == status, response.text
    problem = response.json()
    assert CJK.search(problem["title"]) and CJK.search(problem["detail"]), problem
    assert all(CJK.search(e["msg"]) for e in problem.get("errors", [])), problem


async def test_english_stays_the_default(service):
    async with service.client() as client:
        problem = (await client.get("/v1/metrics?year=1800")).json()
    assert problem["title"] == "Validation failed" and not CJK.search(problem["detail"])
