"""The spreadsheet importer against the live service (people and posts sheets, local and server
rejections in the report, resend unchanged), and schemathesis from the service's own OpenAPI with every
check it has, the stateful phase included (bounded): no 5xx, every response as documented, schema-valid
requests accepted, schema-invalid ones refused."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import httpx
import schemathesis
from common.auth import mint_token
from common.testing.contract import conformance_tests, every_check, load
from common.testing.plugin import TEST_SECRET
from openpyxl import load_workbook
from talent.config import TalentSettings
from talent.entrypoints.app import create_app
from talent.entrypoints.importer import Importer, write_template

from ..conftest import TalentLiveServer


def _workbook(path: Path) -> Path:
    write_template(path.parent)
    workbook = load_workbook(path.parent / "talent_template.xlsx")
    people, posts = workbook.worksheets[:2]  # then the hidden lists of the dropdowns
    people.append(
        [
            "CMES-2",
            "李雷",
            "Li Lei",
            "男",
            1985,
            "young_scientist",
            "CN",
            "440000",
            "",
            "li@example.org",
            "",
            "",
            "否",
            "",
        ]
    )
    people.append(["CMES-3", "韩梅梅", "", "女", 1850, "youth", "CN", "", "", "", "", "", "", ""])  # birth year
    people.append(["CMES-4", "Bad Mail", "", "", "", "engineer", "DE", "", "", "nobody", "", "", "", ""])
    posts.append(["CMES-2", "ISC", "FR", "member", "2024-01-01", ""])
    posts.append(["CMES-9", "ISC", "FR", "member", "2024-01-01", ""])  # nobody of that id
    workbook.save(path)
    return path


def test_import_a_workbook(live: TalentLiveServer, tmp_path: Path) -> None:
    path = _workbook(tmp_path / "pool.xlsx")
    token = mint_token(secret=TEST_SECRET, org_kind="society", org_code="CMES", scopes=["talent:sync"])
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        report = io.StringIO()
        summary = Importer(client, mode="full", report=report).run(path, progress=False)
        assert (summary.rows, summary.answer["created"], summary.rejected) == (4, 2, 3)
        rows = list(csv.reader(io.StringIO(report.getvalue())))[1:]
        reasons = {(r[0], r[2]): r[4] for r in rows}
        assert "birth_year" in reasons[("people", "CMES-3")]
        assert "e-mail" in reasons[("people", "CMES-4")]
        assert reasons[("posts", "CMES-9")] == "no such person"
        again = Importer(client, mode="full", report=io.StringIO()).run(path, progress=False)
        assert (again.answer["created"], again.answer["unchanged"]) == (0, 2)
        posts = client.get("/v1/talent/posts", params={"society": "CMES"}).json()["items"]
        assert sorted(p["organization"] for p in posts) == ["ISC", "World Federation of Engineering Organizations"]


@schemathesis.serializer("application/x-ndjson")
def _ndjson(_ctx: object, value: object) -> bytes:
    # The stream's schema is that of one record: each generated record is sent as a one-line stream.
    return (json.dumps(value) + "\n").encode()


# An erased person stays readable as `{"deleted": true}` with nothing else (GET /persons/{id} says so):
# the erasure removes the personal data, not the id that others (posts, reports) may hold, so "used after
# free" is the documented behaviour, not a defect.
CHECKS = every_check(excluding=["use_after_free"])
# 412: a well-formed `If-Match` naming a version the person has left.
schema = load(
    create_app(TalentSettings(environment="test", jwt_secret=TEST_SECRET)).openapi(),
    also_accepted=[412],
    # 413: a JSON sync over its documented `maxItems` is refused as too large.
    also_refusing=[413],
)
# A society's sync token: it may sync, read its own people in full and erase them.
AUTH = {
    "Authorization": "Bearer "
    + mint_token(secret=TEST_SECRET, org_kind="society", org_code="SCHEMA", scopes=["talent:sync"])
}


test_api_conforms_to_its_openapi, workflow, test_stateful_workflows_conform = conformance_tests(
    schema, headers=AUTH, checks=CHECKS, max_examples=25
)
