"""Units (单位): the tree with codes and regions, and a new unit under a supervising one."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import col, select

from api.admin import UnitCreate, UnitRead, create_unit, list_units
from api.deps import SessionDep
from models.organisation import Region
from models.users import User
from pages.admin.common import AdminForm, AdminPage, field_errors, flash_of, form_text, refused
from pages.render import render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_FIELDS = ("parent_code", "code", "name", "region_code")
_DONE = {"created": "单位已创建。"}


def unit_tree(units: list[UnitRead], regions: dict[int, Region]) -> list[dict[str, Any]]:
    """Top-level units, each with its children below it (a unit's parent supervises it)."""
    children: dict[int | None, list[UnitRead]] = {}
    for unit in units:
        children.setdefault(unit.parent_id, []).append(unit)

    def node(unit: UnitRead) -> dict[str, Any]:
        region = regions.get(unit.region_id)
        return {
            "unit": unit,
            "region": f"{region.name}（{region.code}）" if region else "",
            "children": [node(child) for child in children.get(unit.id, [])],
        }

    return [node(unit) for unit in children.get(None, [])]


async def _page(
    request: Request,
    session: SessionDep,
    admin: User,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    units = await list_units(session, admin)
    regions = {r.id: r for r in (await session.exec(select(Region).order_by(col(Region.code)))).all() if r.id}
    return render(
        request,
        "admin/units.html.j2",
        status_code=status_code,
        title="单位",
        tree=unit_tree(units, regions),
        parents=[(u.code, f"{u.name}（{u.code}）") for u in units],
        regions=[(r.code, f"{r.name}（{r.code}）") for r in regions.values()],
        values=values or dict.fromkeys(_FIELDS, ""),
        errors=errors or {},
        flash=flash_of(request, _DONE),
    )


@router.get("/admin/units", response_class=HTMLResponse)
async def units_page(request: Request, session: SessionDep, admin: AdminPage) -> HTMLResponse:
    """The unit tree and the form for a new unit."""
    return await _page(request, session, admin)


@router.post("/admin/units", response_class=HTMLResponse)
async def create_unit_from_page(request: Request, session: SessionDep, admin: AdminForm) -> Response:
    """Create a unit through the API's own function (its checks, its audit record)."""
    form = await request.form()
    values = {name: form_text(form, name) for name in _FIELDS}
    try:
        body = UnitCreate.model_validate({**values, "parent_code": values["parent_code"] or None})
        await create_unit(body, request, session, admin)
    except ValidationError as exc:
        return await _page(request, session, admin, status_code=422, values=values, errors=field_errors(exc))
    except HTTPException as exc:
        field, message = await refused(session, admin, exc)
        return await _page(request, session, admin, status_code=exc.status_code, values=values, errors={field: message})
    return RedirectResponse("/admin/units?done=created", status_code=303)
