"""Reviewers' pages on the real stack: the appeal queue, the decision from the case page, the decided list."""

from __future__ import annotations

import httpx
from temporalio.testing import WorkflowEnvironment

from config import Settings
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.ratings import Rating
from runtime.seed import DemoCredentials
from tests.support.db import case_row
from tests.support.http_case import case_at_work, take_steps
from tests.support.pages import page_login, post_step

EVIDENCE = ["当日叫号记录", "窗口监控截图编号 A-17"]
APPEAL: dict[str, object] = {"reason": "评价人当日并未到窗口办理，系误评", "evidence": EVIDENCE}
DISPUTED: dict[str, object] = {
    "verdict": "disputed",
    "findings": "调取叫号记录，评价人当日未取号",
    "judgement": "unreasonable",
}


async def _refused(api: httpx.AsyncClient, paths: tuple[str, ...], whose: str) -> None:
    for path in paths:
        response = await api.get(path)
        assert response.status_code == 403 and f"此页面仅供{whose}使用" in response.text, path


async def test_reviewer_upholds_an_appeal_from_the_pages(
    dev_server: WorkflowEnvironment, settings: Settings, db: Database, demo: DemoCredentials
) -> None:
    async with case_at_work(dev_server, settings, db, demo) as (api, staff, case_id):
        await take_steps(
            api, case_id, staff,
            (("accept", {"note": "签收"}), ("callbacks", {"reached": True, "note": "已致电"}),
             ("verification", DISPUTED), ("appeal", APPEAL)),
        )  # fmt: skip
        assert (await case_row(db, case_id)).stage == Stage.APPEAL_REVIEW

        # Each role's pages are its own.
        await page_login(api, "scj_staff", demo.passwords["scj_staff"])
        await _refused(api, ("/reviews", "/reviews/decided"), "复核人员")
        await _refused(api, ("/board",), "督办人员")
        await page_login(api, "supervisor", demo.passwords["supervisor"])
        await _refused(api, ("/reviews",), "复核人员")

        await page_login(api, "reviewer", demo.passwords["reviewer"])
        await _refused(api, ("/board", "/ledger"), "督办人员")
        queue = await api.get("/reviews")
        assert queue.status_code == 200 and f'href="/cases/{case_id}#step-appeal-decision"' in queue.text
        for shown in (APPEAL["reason"], *EVIDENCE, DISPUTED["findings"], "差评研判：不合理"):
            assert str(shown) in queue.text, shown
        assert "13912345678" not in queue.text and "张三丰" not in queue.text
        assert "还没有作出过复核决定" in (await api.get("/reviews/decided")).text

        upheld = await post_step(api, case_id, "appeal-decision", {"upheld": "true", "reason": "叫号记录证实系误评"})
        assert upheld.status_code == 303, upheld.text
        case = await case_row(db, case_id)
        assert case.stage == Stage.NOT_ADOPTED and case.outcome == Outcome.NOT_ADOPTED
        async with db.session() as session:
            rating = await session.get(Rating, case.rating_id)
        assert rating is not None and rating.adopted is False  # out of the unit's figures
        assert "不予采纳" in (await api.get(f"/cases/{case_id}")).text

        assert f'href="/cases/{case_id}' not in (await api.get("/reviews")).text
        decided = await api.get("/reviews/decided")
        assert decided.status_code == 200 and f'href="/cases/{case_id}"' in decided.text
        assert "申诉成立，不予采纳" in decided.text and "叫号记录证实系误评" in decided.text
