"""Monthly reports: published frozen (same hash and bytes after new ratings and an upheld appeal), corrections as
new versions, the XLSX and CSV with their figures, formula neutralisation, double and concurrent publishing, audit.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from sqlalchemy import text
from sqlmodel import select

from api.rankings import current_month
from models.case.records import Case
from models.db import Database
from models.ratings import Rating
from models.reports.records import MonthlyReport
from runtime.seed import DemoCredentials
from tests.support.http import login
from tests.support.indicator_data import cn, rows
from tests.support.pages import page_login
from tests.support.ranking_data import ratings_of, small_rules, three_months
from tests.support.reports import audit_counts

PATH = "/api/v1/reports"


async def _files(api: httpx.AsyncClient, headers: dict[str, str], report_id: int) -> dict[str, bytes]:
    found = {}
    for kind in ("html", "csv", "xlsx"):
        response = await api.get(f"{PATH}/{report_id}/report.{kind}", headers=headers)
        assert response.status_code == 200, response.text
        found[kind] = response.content
    return found


async def _publish(api: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> httpx.Response:
    return await api.post(PATH, json=body, headers=headers)


async def test_a_published_report_never_changes_and_a_correction_is_a_new_version(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, backend: str
) -> None:
    await small_rules(db)
    case_id = await three_months(db)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    published = await _publish(offline_api, supervisor, month="2025-03")
    assert published.status_code == 201, published.text
    first = published.json()
    assert (first["version"], first["corrects_id"], first["scope_key"]) == (1, None, "unit:1")
    assert len(first["content_sha256"]) == 64
    assert first["figures"]["summary"]["counts"]["ratings"] == 15  # 4 + 3 + 3 + 3 + 2; the not-adopted one is out
    files = await _files(offline_api, supervisor, first["id"])
    assert await audit_counts(db, "report.") == {"report.published": 1}

    # The data moves on: more March ratings of unit 2, and the appeal of its bad review upheld (不予采纳).
    async with rows(db) as r:
        await ratings_of(r, 2, [1, 1, 1], cn(3, 25))
        case = await r.session.get(Case, case_id)
        assert case is not None
        rating = await r.session.get(Rating, case.rating_id)
        assert rating is not None
        rating.adopted = False
        r.session.add(rating)
    draft = (await offline_api.get(f"{PATH}/draft", params={"month": "2025-03"}, headers=supervisor)).json()
    assert draft["content_sha256"] != first["content_sha256"]
    assert draft["figures"]["summary"]["counts"]["ratings"] != 15

    # The published version: the same hash, figures and bytes.
    again = (await offline_api.get(f"{PATH}/{first['id']}", headers=supervisor)).json()
    assert again["content_sha256"] == first["content_sha256"] and again["figures"] == first["figures"]
    assert await _files(offline_api, supervisor, first["id"]) == files
    assert again["artifact_sha256"]["csv"] == hashlib.sha256(files["csv"]).hexdigest()
    assert (await _publish(offline_api, supervisor, month="2025-03")).json()["detail"]["code"] == "already_published"

    # A correction: version 2, naming version 1 and the reason; version 1 is kept as it was.
    corrected = await offline_api.post(
        f"{PATH}/{first['id']}/corrections", json={"reason": "案件申诉成立，不予采纳"}, headers=supervisor
    )
    assert corrected.status_code == 201, corrected.text
    second = corrected.json()
    assert (second["version"], second["corrects_id"], second["correction_reason"]) == (
        2,
        first["id"],
        "案件申诉成立，不予采纳",
    )
    assert second["content_sha256"] != first["content_sha256"]
    assert await _files(offline_api, supervisor, first["id"]) == files
    listed = (await offline_api.get(PATH, params={"month": "2025-03"}, headers=supervisor)).json()["versions"]
    assert [(v["version"], v["corrected_by_id"]) for v in listed] == [(2, None), (1, second["id"])]
    stale = await offline_api.post(f"{PATH}/{first['id']}/corrections", json={"reason": "再改"}, headers=supervisor)
    assert (stale.status_code, stale.json()["detail"]["code"]) == (409, "not_latest")
    assert await audit_counts(db, "report.") == {"report.published": 1, "report.corrected": 1}
    if backend == "postgresql":
        # The table itself refuses to change a published version.
        with pytest.raises(Exception, match="frozen"):
            async with db.session() as session:
                await session.exec(text("UPDATE monthlyreport SET title = 'x'"))  # type: ignore[call-overload]


async def test_the_xlsx_and_csv_hold_the_figures_and_neutralise_formulas(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    await three_months(db)
    async with rows(db) as r:
        hostile = await r.unit("T-EVIL", '=HYPERLINK("http://evil.example","点我")', parent_id=1)
        await ratings_of(r, hostile, [5, 5, 5], cn(3, 12))
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    report = (await _publish(offline_api, supervisor, month="2025-03")).json()
    files = await _files(offline_api, supervisor, report["id"])
    book = load_workbook(io.BytesIO(files["xlsx"]))
    summary = {row[0]: row[1] for row in book[book.sheetnames[1]].iter_rows(min_row=3, values_only=True)}
    # March: 5 4 4 1 | 5 5 4 | 5 4 4 | 4 5 4 | 5 5 | 5 5 5 (the hostile unit): 18 ratings, their scores add up to 79.
    assert (summary["评价数"], summary["差评数"], summary["满意度得分"]) == (18, 1, f"{79 / 18:.2f}")
    info = {row[0]: row[1] for row in book[book.sheetnames[0]].iter_rows(min_row=3, values_only=True)}
    assert info["内容哈希（SHA-256）"] == report["content_sha256"]
    units = book[book.sheetnames[2]]
    evil = [cell for row in units.iter_rows(min_row=3) for cell in row if str(cell.value).startswith("=HYPERLINK")]
    assert len(evil) == 1 and evil[0].data_type == "s"  # text, never a formula
    ranking = [row for row in book[book.sheetnames[4]].iter_rows(min_row=3, values_only=True)]
    # The hostile unit (100) first, then 人社局, 甲局 and 乙局 (tied third), then 市场监管局 fifth with 57.50.
    assert ("烟台市市场监督管理局", 5, 4, "57.50") in [(row[1], row[0], row[3], row[4]) for row in ranking]
    csv_text = files["csv"].decode("utf-8")
    assert csv_text.startswith("\ufeff报告信息")
    assert "'=HYPERLINK" in csv_text and "\n=HYPERLINK" not in csv_text and ",=HYPERLINK" not in csv_text


async def test_publishing_rules_double_and_concurrent(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    await small_rules(db)
    await three_months(db)
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    # Two publishes of the same scope and month at once: one version, the other told it is already published.
    answers = await asyncio.gather(
        _publish(offline_api, supervisor, month="2025-02", unit_id=3),
        _publish(offline_api, supervisor, month="2025-02", unit_id=3),
    )
    assert sorted(a.status_code for a in answers) == [201, 409]
    async with db.session() as session:
        assert len((await session.exec(select(MonthlyReport).where(MonthlyReport.scope_key == "unit:3"))).all()) == 1
    assert await audit_counts(db, "report.") == {"report.published": 1}
    not_over = await _publish(offline_api, supervisor, month=current_month())
    assert (not_over.status_code, not_over.json()["detail"]["code"]) == (422, "month_not_over")
    staff = await login(offline_api, "scj_staff", demo.passwords["scj_staff"])
    assert (await _publish(offline_api, staff, month="2025-03")).status_code == 403
    # Staff of unit 3's sibling cannot read unit 3's version; unit 3's staff can.
    version = next(a.json() for a in answers if a.status_code == 201)
    assert (await offline_api.get(f"{PATH}/{version['id']}", headers=staff)).status_code == 404
    rsj = await login(offline_api, "rsj_staff", demo.passwords["rsj_staff"])
    assert (await offline_api.get(f"{PATH}/{version['id']}", headers=rsj)).status_code == 200


async def test_the_report_pages(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    await small_rules(db)
    await three_months(db)
    assert (await page_login(offline_api, "supervisor", demo.passwords["supervisor"])).status_code == 303
    page = await offline_api.get("/reports", params={"month": "2025-03"})
    assert page.status_code == 200 and "本月报告尚未发布" in page.text and "57.50" in page.text
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    done = await offline_api.post("/reports/publish", data={"csrf": csrf, "month": "2025-03", "unit_id": ""})
    assert done.status_code == 303 and done.headers["location"].startswith("/reports/version?id=")
    version = await offline_api.get(done.headers["location"])
    async with db.session() as session:
        stored = (await session.exec(select(MonthlyReport))).one()
    assert stored.content_sha256 in version.text and "已发布：内容已冻结" in version.text
    xlsx = await offline_api.get("/reports/version.xlsx", params={"id": str(stored.id)})
    assert xlsx.content == stored.xlsx
    draft = await offline_api.get("/reports/draft.csv", params={"month": "2025-03"})
    assert draft.status_code == 200 and draft.content.startswith("\ufeff".encode())
