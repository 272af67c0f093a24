"""The importer reads a pool typed the way people type it (Chinese labels of groups and roles, slashes in
dates, countries and provinces by name, 是/否) against the live service, and tells every kind of problem in
the user's language: the rejected-rows file in Chinese with `--lang zh` (UTF-8 with a BOM), the service's
own rejections and refusals asked for in Chinese too."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest
from common.auth import mint_token
from common.testing.plugin import TEST_SECRET
from openpyxl import load_workbook
from talent.entrypoints.cli import main
from talent.entrypoints.importer import Importer, ImportFailed, write_template

from ..conftest import TalentLiveServer


def _token(society: str, scopes: list[str] | None = None) -> str:
    return mint_token(secret=TEST_SECRET, org_kind="society", org_code=society, scopes=scopes or ["talent:sync"])


def _typed_workbook(path: Path) -> Path:
    write_template(path.parent)
    workbook = load_workbook(path.parent / "talent_template.xlsx")
    people, posts = workbook["people 人员"], workbook["posts 任职"]
    people.append(["TY-1", "李雷", "Li Lei", "男", 1985.0, "青年科学家、工程师", "中国", "广西", "", "li@example.org",
                   "", "材料、能源", "否", ""])  # fmt: skip
    people.append(
        ["TY-2", "Anna Schmidt", "", "女性", "1970", "Overseas experts", "德国", "", "", "", "", "", "是", ""]
    )
    people.append(["TY-3", "韩梅梅", "", "女", 1990, "女科学家 woman_scientist", "CN", "广东省 440000", "", "", "", "",
                   "", ""])  # fmt: skip
    posts.append(["TY-1", "国际纯粹与应用化学联合会", "瑞士", "副主席", "2024/1/15", "2026年12月31日"])
    posts.append(["TY-2", "World Federation of Engineering Organizations", "France", "委员", "2022.3.1", ""])
    workbook.save(path)
    return path


def test_a_pool_typed_as_people_type_it_imports_with_no_rejection(live: TalentLiveServer, tmp_path: Path) -> None:
    path = _typed_workbook(tmp_path / "typed.xlsx")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {_token('TYPED')}"}) as client:
        report = io.StringIO()
        summary = Importer(client, mode="full", report=report, lang="zh").run(path, progress=False)
        assert report.getvalue().splitlines()[1:] == [] and summary.rejected == 0
        assert (summary.rows, summary.answer["created"]) == (4, 4)  # the template's example row too
        persons = client.get("/v1/talent/persons", params={"society": "TYPED", "limit": 50}).json()["items"]
        by_id = {p["external_id"]: p for p in persons}
        assert sorted(by_id["TY-1"]["groups"]) == ["engineer", "young_scientist"]
        assert (by_id["TY-1"]["country"], by_id["TY-1"]["province"]) == ("CN", "450000")
        assert (by_id["TY-2"]["groups"], by_id["TY-2"]["country"], by_id["TY-2"]["reserve"]) == (
            ["overseas_expert"],
            "DE",
            True,
        )
        assert by_id["TY-3"]["province"] == "440000"
        posts = client.get("/v1/talent/posts", params={"society": "TYPED", "limit": 50}).json()["items"]
        held = {(p["organization_country"], p["role"], p["start_date"], p["end_date"]) for p in posts}
        assert ("CH", "vice_president", "2024-01-15", "2026-12-31") in held
        assert ("FR", "member", "2022-03-01", None) in held


def _bad_workbook(path: Path) -> Path:
    write_template(path.parent)
    workbook = load_workbook(path.parent / "talent_template.xlsx")
    people, posts = workbook["people 人员"], workbook["posts 任职"]
    people.delete_rows(2)  # the example
    posts.delete_rows(2)
    rows = {
        "BAD-GROUP": ["聚会", "中国", "北京", "否"],
        "BAD-COUNTRY": ["工程师", "火星", "", "否"],
        "BAD-PROVINCE": ["工程师", "中国", "北极", "否"],
        "BAD-BOOL": ["工程师", "中国", "北京", "也许"],
        "BAD-YEAR": ["工程师", "中国", "北京", "否"],
        "GOOD": ["工程师", "中国", "北京", "否"],
    }
    for key, (groups, country, province, reserve) in rows.items():
        year = 1850 if key == "BAD-YEAR" else 1980
        people.append([key, "某人", "", "男", year, groups, country, province, "", "", "", "", reserve, ""])
    people.append(["GOOD", "重复", "", "", "", "", "", "", "", "", "", "", "", ""])
    posts.append(["GOOD", "ISC", "法国", "主任", "2024/1/1", ""])  # no such role
    posts.append(["GOOD", "ISC", "法国", "委员", "5/6/2024", ""])  # month or day first?
    posts.append(["NOBODY", "ISC", "法国", "委员", "2024/1/1", ""])
    workbook.save(path)
    return path


def test_each_kind_of_problem_is_reported_in_chinese(live: TalentLiveServer, tmp_path: Path) -> None:
    path = _bad_workbook(tmp_path / "bad.xlsx")
    report = tmp_path / "bad.rejected.csv"
    argv = ["import", str(path), "--token", _token("BAD"), "--url", live.url, "--lang", "zh", "--no-progress"]
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--report", str(report)])
    assert exited.value.code == 1
    raw = report.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # a BOM: Excel opens the Chinese cleanly
    header, *rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert header == ["工作表", "行号", "编号", "阶段", "问题"]
    reasons: dict[tuple[str, str], str] = {}
    for sheet, _row, key, _stage, why in rows:
        reasons[(sheet, key)] = f"{reasons[(sheet, key)]} | {why}" if (sheet, key) in reasons else why
    assert reasons[("人员", "BAD-GROUP")].startswith("人才类别: '聚会' 不是可选的群体之一")
    assert reasons[("人员", "BAD-COUNTRY")].startswith("常住国家: 无法识别国家 '火星'")
    assert reasons[("人员", "BAD-PROVINCE")].startswith("省份: 无法识别省份 '北极'")
    assert reasons[("人员", "BAD-BOOL")] == "后备人才: 无法识别 '也许'：请填写“是”或“否”（true 或 false）"
    assert reasons[("人员", "BAD-YEAR")].startswith("出生年份: ") and "1900" in reasons[("人员", "BAD-YEAR")]
    assert "编号: 本文件中重复" in reasons[("人员", "GOOD")].split(" | ")
    assert "整行: 此人的任职记录未通过（任职表第 2 行）" in reasons[("人员", "GOOD")]  # not synced without it
    assert reasons[("任职", "GOOD")].startswith("职务: '主任' 不是可选的职务之一")
    assert any("2024-05-06" in why and "2024-06-05" in why for (sheet, _k), why in reasons.items() if sheet == "任职")
    assert reasons[("任职", "NOBODY")] == "人员表中没有这个编号的人"
    assert all(not any("a" <= c <= "z" for c in why.split(":")[0]) for why in reasons.values())  # no English field


def test_the_service_answers_in_chinese_when_asked(live: TalentLiveServer, tmp_path: Path) -> None:
    headers = {
        "Authorization": f"Bearer {_token('ZH')}",
        "Accept-Language": "zh",
        "Content-Type": "application/x-ndjson",
    }
    with httpx.Client(base_url=live.url, headers=headers) as client:
        answer = client.post("/v1/talent/sync", content=b'{"external_id": "Z-1", "birth_year": 1850}\n').json()
        messages = [e["msg"] for r in answer["rejected"] for e in r["errors"]]
        assert messages and all(not m.isascii() for m in messages), messages
    unauthorised = {"Authorization": f"Bearer {_token('ZH', scopes=['talent:read'])}"}
    with httpx.Client(base_url=live.url, headers=unauthorised) as client:
        with pytest.raises(ImportFailed) as refused:
            Importer(client, mode="delta", report=io.StringIO(), lang="zh").run(
                _typed_workbook(tmp_path / "refused.xlsx"), progress=False
            )
        assert not str(refused.value).split(" ", 1)[1].isascii()  # the title and detail in Chinese


def test_a_typo_in_a_full_sync_does_not_remove_the_person(live: TalentLiveServer, tmp_path: Path) -> None:
    path = _typed_workbook(tmp_path / "full.xlsx")
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {_token('FULL')}"}) as client:
        Importer(client, mode="full", report=io.StringIO()).run(path, progress=False)
        workbook = load_workbook(path)
        workbook["people 人员"]["F3"] = "工程湿"  # TY-1's groups, mistyped
        workbook.save(path)
        again = Importer(client, mode="full", report=io.StringIO()).run(path, progress=False)
        assert (again.rejected, again.answer["removed"]) == (1, 0)
        persons = client.get("/v1/talent/persons", params={"society": "FULL", "limit": 50}).json()["items"]
        assert "TY-1" in {p["external_id"] for p in persons}
