"""Policy profiles (评价规则): every profile, which one each region runs under, and one version in words."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from api.deps import SessionDep
from api.params import CodePath, Version
from api.policies import RegionPolicy, get_policy, list_policies, list_policy_versions, set_region_policy
from models.organisation import Region
from models.users import User
from pages.admin.common import AdminForm, AdminPage, field_errors, flash_of, form_text, refused
from pages.admin.policy_words import ORIGIN_LABELS_ZH, describe, profile_text
from pages.render import render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_LIST_DONE = {"region": "已更换该区划的评价规则：此后新生成的工单按新规则计时，已有工单不受影响。"}
_VERSION_DONE = {"published": "新版本已发布：此后新生成的工单使用此版本，已有工单仍按其生成时的版本办理。"}


async def _names(session: SessionDep, ids: set[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = (await session.exec(select(User.id, User.display_name).where(col(User.id).in_(wanted)))).all()
    return {uid: name for uid, name in rows if uid is not None}


async def _regions(session: SessionDep) -> list[Region]:
    return list((await session.exec(select(Region).order_by(col(Region.code)))).all())


async def _list_page(
    request: Request,
    session: SessionDep,
    admin: User,
    *,
    status_code: int = 200,
    region_errors: dict[str, str] | None = None,
) -> HTMLResponse:
    profiles = await list_policies(session, admin)
    return render(
        request,
        "admin/policies.html.j2",
        status_code=status_code,
        title="评价规则",
        profiles=profiles,
        names=await _names(session, {p.created_by for p in profiles}),
        origin_label=lambda origin: ORIGIN_LABELS_ZH.get(origin, origin),
        regions=await _regions(session),
        choices=[(p.code, f"{p.profile.name}（{p.code}）") for p in profiles],
        region_errors=region_errors or {},
        flash=flash_of(request, _LIST_DONE),
    )


@router.get("/admin/policies", response_class=HTMLResponse)
async def policies_page(request: Request, session: SessionDep, admin: AdminPage) -> HTMLResponse:
    """Each profile's latest version, and the profile each region's new cases run under."""
    return await _list_page(request, session, admin)


@router.post("/admin/regions/{region_code}/policy", response_class=HTMLResponse)
async def set_region_policy_from_page(
    request: Request, region_code: CodePath, session: SessionDep, admin: AdminForm
) -> Response:
    """Choose a region's profile (PUT /api/v1/regions/{code}/policy, through its own function)."""
    chosen = form_text(await request.form(), "policy_code")
    try:
        await set_region_policy(
            region_code, RegionPolicy.model_validate({"policy_code": chosen}), request, session, admin
        )
    except ValidationError as exc:
        message = field_errors(exc).get("policy_code", "请选择评价规则")
        return await _list_page(request, session, admin, status_code=422, region_errors={region_code: message})
    except HTTPException as exc:
        _field, message = await refused(session, admin, exc)
        return await _list_page(request, session, admin, status_code=exc.status_code, region_errors={region_code: message})  # fmt: skip
    return RedirectResponse("/admin/policies?done=region", status_code=303)


@router.get("/admin/policies/{code}", response_class=HTMLResponse)
async def policy_page(
    request: Request, code: CodePath, session: SessionDep, admin: AdminPage, version: Version = None
) -> HTMLResponse:
    """One version (the latest unless ?version=n) in words, its history and the regions using the profile."""
    shown = await get_policy(code, session, admin, version)
    history = await list_policy_versions(code, session, admin)
    return render(
        request,
        "admin/policy.html.j2",
        title=f"评价规则 {shown.profile.name}",
        shown=shown,
        latest=history[-1].version,
        words=describe(shown.profile),
        text=profile_text(shown.profile),
        history=list(reversed(history)),
        names=await _names(session, {v.created_by for v in history}),
        origin_label=lambda origin: ORIGIN_LABELS_ZH.get(origin, origin),
        regions=[r for r in await _regions(session) if r.policy_code == code],
        flash=flash_of(request, _VERSION_DONE),
    )
