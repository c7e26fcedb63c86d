"""Talking to the API and the rater pages: logging in, a bad rating, answering a rater's link."""

from __future__ import annotations

import re

import httpx


async def login(client: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    """Bearer headers for a user."""
    response = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


RATER = {"name": "张三丰", "phone": "13912345678", "email": "zhang.sanfeng@example.com"}


def bad_rating(record_no: str = "DEMO-0001", **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "record_no": record_no,
        "level": "very_dissatisfied",
        "channel": "hall_tablet",
        "target": "item",
        "answers": {"服务效率": 1, "服务态度": 2},
        "comment": "窗口排队两个小时，材料被退回三次",
        "real_name": True,
        "rater": dict(RATER),
    }
    body.update(overrides)
    return body


def csrf_of(page: httpx.Response) -> str:
    """The CSRF token of a rater page's form."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


async def answer_link(
    api: httpx.AsyncClient, token: str, satisfied: bool, comment: str = "", page: httpx.Response | None = None
) -> httpx.Response:
    """Open the rater's link (the page sets the CSRF cookie) and post the answer from its form."""
    page = page or await api.get(f"/r/{token}")
    assert page.status_code == 200, page.text
    form = {"satisfied": "yes" if satisfied else "no", "comment": comment, "csrf": csrf_of(page)}
    return await api.post(f"/r/{token}", data=form)
