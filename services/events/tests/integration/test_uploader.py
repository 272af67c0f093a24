"""The spreadsheet uploader against the running service over HTTP: a 5,000-row workbook, killed
midway with SIGKILL and run again, records every valid row exactly once and reports the bad rows."""

from __future__ import annotations

import asyncio
import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from common.auth import mint_token
from common.testing.plugin import TEST_SECRET, wait_until
from events.adapters.tables import events
from events.entrypoints.upload import HEADERS
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from ..conftest import outbox_rows_written

ROWS = 5000
BAD_EVERY = 250  # 20 invalid rows among the 5,000 valid ones
FIELDS = [h.split()[-1] for h in HEADERS]


def row(n: int) -> dict[str, object]:
    return {
        "external_ref": f"GD-{n:05d}",
        "title": f"第{n}届 China–ASEAN Forum {n}",
        "type": ["forum", "conference", "youth_camp", "exhibition"][n % 4],
        "start_date": f"2024-{n % 12 + 1:02d}-10",
        "end_date": f"2024-{n % 12 + 1:02d}-12",
        "host_country": "CN",
        "host_province": 440000,  # a number, as Excel keeps it
        "city": "广州",
        "participants": 100 + n % 50,
        "foreign_participants": n % 30,
        "papers": n % 7,
        "countries": "TH, VN；LA" if n % 2 else "DE",
        "fields": "energy;ai",
        "flagship": "是" if n % 100 == 0 else "否",
    }


def bad_row(n: int) -> dict[str, object]:
    return {**row(n), "external_ref": f"BAD-{n:05d}", "countries": "CN,DE"}


def write_workbook(path: Path) -> None:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("events")
    sheet.append(list(HEADERS))
    for n in range(ROWS):
        sheet.append([row(n).get(f) for f in FIELDS])
        if n % BAD_EVERY == 0:
            sheet.append([bad_row(n).get(f) for f in FIELDS])
    workbook.save(path)


def uploader(path: Path, live, *extra: str) -> subprocess.Popen[bytes]:
    token = mint_token(secret=TEST_SECRET, org_kind="province", org_code="440000", scopes="events:write")
    command = [sys.executable, "-m", "events.entrypoints.cli", "upload", str(path), "--token", token, "--url", live.url]
    return subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


async def test_5000_rows_killed_midway_then_resumed(live, tmp_path):
    sheet = tmp_path / "events.xlsx"
    write_workbook(sheet)
    engine = create_async_engine(live.settings.database_url)

    async def count(table) -> int:
        async with engine.connect() as connection:
            return int(await connection.scalar(select(func.count()).select_from(table)) or 0)

    try:
        first = uploader(sheet, live, "--batch-size", "100")

        async def midway() -> bool:
            return first.poll() is not None or await count(events) >= 1000

        await wait_until(midway, timeout=120, interval=0.01)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
        assert first.returncode == -signal.SIGKILL, "the uploader finished before it could be interrupted"
        interrupted_at = await count(events)
        assert 0 < interrupted_at < ROWS

        second = uploader(sheet, live)
        out, err = second.communicate(timeout=240)
        assert second.returncode == 1, err.decode()  # 1: some rows were rejected (the bad ones)
        summary = out.decode()
        assert f"{ROWS + ROWS // BAD_EVERY} rows" in summary
        # A batch in flight when the uploader died may still have been committed by the service: the
        # rerun finds it recorded too. Either way every row is recorded exactly once.
        recorded, already = (int(n) for n in re.findall(r"(\d+) recorded, (\d+) already recorded", summary)[0])
        assert recorded + already == ROWS and already >= interrupted_at and "20 rejected" in summary

        assert await count(events) == ROWS
        async with engine.connect() as connection:
            refs = await connection.scalar(select(func.count(func.distinct(events.c.external_ref))))
        assert refs == ROWS
        async with engine.connect() as connection:  # each event announced once, re-posts announced nothing
            assert await outbox_rows_written(connection) == ROWS

        with (tmp_path / "events.xlsx.rejected.csv").open(encoding="utf-8-sig") as handle:
            rejected = list(csv.DictReader(handle))
        assert len(rejected) == 20
        assert all(r["stage"] == "local" and r["external_ref"].startswith("BAD-") for r in rejected)
        assert all("countries" in r["errors"] for r in rejected)
        assert rejected[0]["row"] == "3"  # header is row 1, GD-00000 row 2, BAD-00000 row 3
    finally:
        await engine.dispose()


async def test_csv_upload_reports_what_the_service_rejects(live, tmp_path):
    sheet = tmp_path / "events.csv"
    with sheet.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for n in range(30):
            writer.writerow([row(10_000 + n).get(f, "") for f in FIELDS])
    done = uploader(sheet, live, "--no-progress")
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err.decode()
    assert "30 rows: 30 recorded, 0 already recorded, 0 rejected" in out.decode()

    # The same external_ref with other content is a conflict the service reports per row.
    with sheet.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerow([{**row(10_000), "papers": 99}.get(f, "") for f in FIELDS])
        writer.writerow([row(10_001).get(f, "") for f in FIELDS])
    done = uploader(sheet, live, "--no-progress", "--report", str(tmp_path / "report.csv"))
    out, err = done.communicate(timeout=60)
    assert done.returncode == 1
    with (tmp_path / "report.csv").open(encoding="utf-8-sig") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["row"], r["external_ref"], r["stage"], r["status"]) for r in rejected] == [
        ("2", "GD-10000", "server", "conflict")
    ]


async def test_wrong_token_fails_clearly(live, tmp_path):
    sheet = tmp_path / "one.csv"
    with sheet.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerow([row(20_000).get(f, "") for f in FIELDS])
    command = [
        sys.executable,
        "-m",
        "events.entrypoints.cli",
        "upload",
        str(sheet),
        "--token",
        "nope",
        "--url",
        live.url,
    ]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, timeout=60)
    assert done.returncode == 2 and b"401" in done.stderr


TYPED = [
    # as people type it: labels and aliases, slashes and Chinese dates, names of countries and provinces
    ["ZH-1", "中德氢能论坛", "国际会议", "2026/5/6", "2026/5/8", "中国", "广西", "南宁", 120, 30, 5, "德国、法国"],
    [
        "ZH-2",
        "东盟青少年营",
        "青少年营 youth_camp",
        "2026.7.1",
        "2026年7月9日",
        "CN",
        "广东省 440000",
        "",
        80,
        20,
        0,
        "泰国,Viet Nam",
    ],
    ["ZH-3", "赴德交流", "出访团组", "2026年9月1日", "2026/9/5", "德国", "", "Berlin", 6, 0, 0, "DE"],
]
TYPED_FIELDS = [*FIELDS[:12], "flagship"]


def typed_workbook(path: Path, rows: list[list[object]], flags: list[object]) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append([HEADERS[FIELDS.index(f)] for f in TYPED_FIELDS])
    for values, flag in zip(rows, flags, strict=True):
        sheet.append([*values, flag])
    workbook.save(path)


async def test_a_workbook_typed_the_way_people_type_it_uploads_without_rejection(live, tmp_path):
    sheet = tmp_path / "typed.xlsx"
    typed_workbook(sheet, TYPED, ["是", "否", "false"])
    done = uploader(sheet, live, "--no-progress", "--lang", "zh")
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, (out.decode(), err.decode(), (tmp_path / "typed.xlsx.rejected.csv").read_text())
    assert "3 rows: 3 recorded" in out.decode()
    engine = create_async_engine(live.settings.database_url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(events).where(events.c.external_ref.like("ZH-%")))).mappings()
            recorded = {r["external_ref"]: r for r in rows}
    finally:
        await engine.dispose()
    assert recorded["ZH-1"]["type"] == "conference" and recorded["ZH-1"]["host_province"] == "450000"
    assert str(recorded["ZH-2"]["end_date"]) == "2026-07-09" and recorded["ZH-3"]["host_country"] == "DE"


async def test_rejected_rows_in_chinese(live, tmp_path):
    sheet = tmp_path / "bad.xlsx"
    bad = [
        ["ZH-B1", "类型不明", "聚会", "2026/5/6", "2026/5/8", "CN", "广东", "", 1, 0, 0, ""],  # unknown type
        ["ZH-B2", "日期有歧义", "论坛", "5/6/2026", "2026/5/8", "CN", "广东", "", 1, 0, 0, ""],  # ambiguous date
        ["ZH-B3", "国家不明", "论坛", "2026/5/6", "2026/5/8", "CN", "火星", "", 1, 0, 0, "刚果"],  # province, country
        ["ZH-B4", "太长" * 300, "论坛", "2026/5/6", "2026/5/1", "CN", "广东", "", 1, 2, 0, ""],  # model's rules
    ]
    typed_workbook(sheet, bad, ["也许", "否", "否", "否"])
    done = uploader(sheet, live, "--no-progress", "--lang", "zh")
    _out, err = done.communicate(timeout=60)
    assert done.returncode == 1, err.decode()
    raw = (tmp_path / "bad.xlsx.rejected.csv").read_bytes()
    assert raw.startswith("\ufeff".encode())  # opens cleanly in Excel
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["行号", "外部编号", "阶段", "结果", "问题"]
    reasons = {r[1]: r[4] for r in rows[1:]}
    assert set(reasons) == {"ZH-B1", "ZH-B2", "ZH-B3", "ZH-B4"}
    assert "不是可选的活动类型之一" in reasons["ZH-B1"] and "无法识别 '也许'" in reasons["ZH-B1"]
    assert "有歧义" in reasons["ZH-B2"] and "2026-05-06" in reasons["ZH-B2"] and "2026-06-05" in reasons["ZH-B2"]
    assert "无法识别省份 '火星'" in reasons["ZH-B3"] and "刚果（金） (CD)" in reasons["ZH-B3"]
    assert "最多 500 个字符" in reasons["ZH-B4"] and "不得早于开始日期" in reasons["ZH-B4"]
    assert "不得超过参加人数" in reasons["ZH-B4"] and all(r[2] == "本地校验" for r in rows[1:])


async def test_rejected_by_the_service_in_chinese(live, tmp_path):
    sheet = tmp_path / "conflict.xlsx"
    first = tmp_path / "first.xlsx"
    typed_workbook(first, [["ZH-C1", *TYPED[0][1:]]], ["是"])
    assert uploader(first, live, "--no-progress").wait(timeout=60) == 0
    typed_workbook(sheet, [["ZH-C1", "另一个标题", *TYPED[0][2:]]], ["是"])
    done = uploader(sheet, live, "--no-progress", "--lang", "zh")
    done.communicate(timeout=60)
    rows = list(csv.reader((tmp_path / "conflict.xlsx.rejected.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert (
        rows[1][2:4] == ["服务校验", "冲突"] and "已对应另一个内容不同的活动" in rows[1][4] and "已有活动" in rows[1][4]
    )
