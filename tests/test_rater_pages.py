"""The rater's one-time link: unknown, expired and used links say so plainly; only a hash is stored.

A used or expired link still shows the case's progress and the answer given (the page is the
rater's view of their case), but never the form again.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
from sqlmodel import select

from models.db import Database, utcnow
from models.rater_links import FEEDBACK_RESPONSE, RaterLink, hash_token, new_token
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating


async def _link(
    db: Database, case_id: int, expires_in: timedelta, used: bool = False, answer: bool | None = None, comment: str = ""
) -> str:
    token, token_hash = new_token()
    async with db.session() as session:
        session.add(
            RaterLink(
                case_id=case_id,
                round=1,
                purpose=FEEDBACK_RESPONSE,
                token_hash=token_hash,
                expires_at=utcnow() + expires_in,
                used_at=utcnow() if used else None,
                answer_satisfied=answer,
                answer_comment=comment,
            )
        )
        await session.commit()
    return token


async def test_link_states(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    case_id = (
        await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    ).json()["case_id"]
    expired = await _link(db, case_id, timedelta(minutes=-1))
    response = await offline_api.get(f"/r/{expired}")
    assert response.status_code == 410 and "此链接已过期" in response.text
    assert "办理进度" in response.text and "已受理" in response.text and 'name="satisfied"' not in response.text
    assert response.headers["cache-control"] == "no-store" and response.headers["referrer-policy"] == "no-referrer"
    assert (await offline_api.post(f"/r/{expired}", data={"satisfied": "yes"})).status_code == 410

    unknown = await offline_api.get("/r/not-a-real-token")
    assert unknown.status_code == 404 and "此链接无效" in unknown.text

    async with db.session() as session:
        stored = (await session.exec(select(RaterLink.token_hash))).all()
    assert stored == [hash_token(expired)] and expired not in stored

    # A form that is not one of the two answers is refused before anything is looked up.
    assert (await offline_api.post(f"/r/{expired}", data={"satisfied": "maybe"})).status_code == 422


async def test_used_link(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    case_id = (
        await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    ).json()["case_id"]
    used = await _link(db, case_id, timedelta(days=3), used=True, answer=False, comment="希望再快一些")
    response = await offline_api.get(f"/r/{used}")
    assert response.status_code == 410 and "此链接已使用" in response.text
    # The answer given, and where the case stands; no form.
    assert "您的确认：<strong>不满意</strong>" in response.text and "希望再快一些" in response.text
    assert "企业设立登记" in response.text and 'name="satisfied"' not in response.text
