"""Using the staff pages as a browser would: sign in through the form, read a page's CSRF token, post a form."""

from __future__ import annotations

import re

import httpx


def form_csrf(page: httpx.Response) -> str:
    """The CSRF token of a staff page's forms."""
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text[:2000]
    return found.group(1)


async def page_login(client: httpx.AsyncClient, username: str, password: str, next_url: str = "") -> httpx.Response:
    """Sign in through the login form; the session cookie stays in the client's jar."""
    form = await client.get("/login")
    assert form.status_code == 200, form.text
    return await client.post(
        "/login", data={"username": username, "password": password, "csrf": form_csrf(form), "next": next_url}
    )


async def post_step(
    client: httpx.AsyncClient, case_id: int, step: str, fields: dict[str, str], csrf: str | None = None
) -> httpx.Response:
    """Post one step's form from the case page, as its button would."""
    if csrf is None:
        csrf = form_csrf(await client.get(f"/cases/{case_id}"))
    return await client.post(f"/cases/{case_id}/steps/{step}", data={**fields, "csrf": csrf})
