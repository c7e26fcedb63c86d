"""Editing a policy profile as its next version (the JSON PUT /api/v1/policies/{code} takes), and diffs.

The form holds the profile as JSON text, the very body the API's edit takes, and what is posted goes
through the API's own model and function: the page cannot accept a profile the API would refuse, and
the version and its audit record are the API's. The page adds two guards for people at a form: a
version published by someone else since the form was opened, and a text that changes nothing.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep
from api.errors import api_error
from api.params import MAX_ID, CodePath, Version
from api.policies import PolicyEdit, PolicyVersionRead, edit_policy, get_policy, list_policy_versions
from models.users import User
from pages.admin.common import AdminForm, AdminPage, error_list, form_text, refused
from pages.admin.policy_words import changed_fields, profile_text, unified_diff
from pages.render import render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# The JSON decoder's messages, as someone fixing the text needs them.
_JSON_MESSAGES = {
    "Expecting ',' delimiter": "缺少逗号 ,",
    "Expecting ':' delimiter": "缺少冒号 :",
    "Expecting value": "此处缺少值（或多了一个逗号）",
    "Expecting property name enclosed in double quotes": "字段名须用英文双引号括起（或多了一个逗号）",
    "Extra data": "JSON 结束后还有多余的内容",
    "Unterminated string starting at": "字符串缺少结束的双引号",
    "Invalid control character at": "字符串中不能直接换行或含控制字符（换行请写作 \\n）",
    "Invalid \\escape": "无效的转义符",
}


def syntax_error(exc: json.JSONDecodeError) -> str:
    return f"JSON 格式错误：第 {exc.lineno} 行第 {exc.colno} 列，{_JSON_MESSAGES.get(exc.msg, exc.msg)}"


async def _edit_page(
    request: Request,
    admin: User,
    current: PolicyVersionRead,
    *,
    status_code: int = 200,
    text: str,
    note: str = "",
    base_version: int,
    syntax: str = "",
    problems: list[tuple[str, str]] | None = None,
    note_error: str = "",
    stale: bool = False,
) -> HTMLResponse:
    return render(
        request,
        "admin/policy_edit.html.j2",
        status_code=status_code,
        title=f"修改评价规则 {current.profile.name}",
        current=current,
        text=text,
        note=note,
        base_version=base_version,
        syntax=syntax,
        problems=problems or [],
        note_error=note_error,
        stale=stale,
    )


@router.get("/admin/policies/{code}/edit", response_class=HTMLResponse)
async def edit_policy_form(
    request: Request, code: CodePath, session: SessionDep, admin: AdminPage, version: Version = None
) -> HTMLResponse:
    """The form, starting from the latest version's text (or ?version=n's, to go back to it)."""
    latest = await get_policy(code, session, admin)
    start = await get_policy(code, session, admin, version) if version else latest
    return await _edit_page(request, admin, latest, text=profile_text(start.profile), base_version=latest.version)


@router.post("/admin/policies/{code}/edit", response_class=HTMLResponse)
async def publish_policy_from_page(request: Request, code: CodePath, session: SessionDep, admin: AdminForm) -> Response:
    """Validate the text as the API would and publish it as the next version; every problem shown where it is."""
    latest = await get_policy(code, session, admin)
    form = await request.form()
    raw = form.get("profile")
    text = raw if isinstance(raw, str) else ""
    note = form_text(form, "note")
    base = form_text(form, "base_version")
    again: dict[str, Any] = {"text": text, "note": note, "base_version": latest.version}
    stale = base != str(latest.version)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return await _edit_page(request, admin, latest, status_code=422, syntax=syntax_error(exc), stale=stale, **again)
    try:
        body = PolicyEdit.model_validate({"profile": data, "note": note})
    except ValidationError as exc:
        found = error_list(exc)
        problems = [(path.removeprefix("profile").lstrip("."), msg) for path, msg in found if path != "note"]
        note_error = next((msg for path, msg in found if path == "note"), "")
        return await _edit_page(
            request, admin, latest, status_code=422, problems=problems, note_error=note_error, stale=stale, **again
        )
    if stale:
        # Publishing now would silently drop what the other version changed.
        return await _edit_page(request, admin, latest, status_code=409, stale=True, **again)
    if body.profile.model_dump(mode="json") == latest.profile.model_dump(mode="json"):
        problems = [("", "内容与当前版本相同，没有发布新版本。")]
        return await _edit_page(request, admin, latest, status_code=422, problems=problems, **again)
    try:
        published = await edit_policy(code, body, request, session, admin)
    except HTTPException as exc:
        field, message = await refused(session, admin, exc)
        problems = [(field.removeprefix("profile").lstrip("."), message)]
        return await _edit_page(request, admin, latest, status_code=exc.status_code, problems=problems, **again)
    return RedirectResponse(f"/admin/policies/{code}?version={published.version}&done=published", status_code=303)


FromVersion = Annotated[int | None, Query(alias="from", ge=1, le=MAX_ID, description="the older version")]


@router.get("/admin/policies/{code}/diff", response_class=HTMLResponse)
async def policy_diff(
    request: Request,
    code: CodePath,
    session: SessionDep,
    admin: AdminPage,
    from_version: FromVersion = None,
    to: Version = None,
) -> HTMLResponse:
    """What changed between two versions (by default the latest and the one before it)."""
    versions = {v.version: v for v in await list_policy_versions(code, session, admin)}
    newer = to or max(versions)
    older = from_version or max(newer - 1, 1)
    missing = [n for n in (older, newer) if n not in versions]
    if missing:
        raise api_error(404, "unknown_policy", f"评价规则 {code} 没有第 {missing[0]} 版")
    old, new = versions[older], versions[newer]
    return render(
        request,
        "admin/policy_diff.html.j2",
        title=f"评价规则 {new.profile.name}：第 {older} 版与第 {newer} 版的差异",
        code=code,
        older=older,
        newer=newer,
        versions=sorted(versions),
        changes=changed_fields(old.profile, new.profile),
        lines=unified_diff(
            profile_text(old.profile), profile_text(new.profile), f"{code} 第 {older} 版", f"{code} 第 {newer} 版"
        ),
        new=new,
    )
