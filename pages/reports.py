"""Supervisors' pages for 排名通报, the monthly report (月度报告) and 整改情况公开 review.

Each page calls the API's own function (api/rankings.py, api/reports.py, api/disclosures.py), so scope,
publishing rules and the redaction check are decided once; a page draws the answer and its forms.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup
from pydantic import ValidationError

from api.deps import SessionDep
from api.disclosures import DisclosureDecision, decide_disclosure, decider, disclosure_list
from api.rankings import current_month, parse_month, ranking_answer, resolve_scope, scope_units
from api.reports import corrected_by, draft, publish, publisher, scope_of, stored_file, versions, visible_report
from models.disclosure import STATUS_LABELS_ZH, DisclosureStatus
from models.rankings import INDICATOR_LABELS_ZH, KIND_LABELS_ZH, previous_months
from models.roles import Role
from models.users import User
from pages.csv_export import audit_export
from pages.render import render
from pages.reports_render import XLSX_TYPE, shown
from pages.routing import PageRoute
from pages.session import FormUser, PageUser

router = APIRouter(route_class=PageRoute, include_in_schema=False)
UnitChoice = Annotated[int, Query(ge=1, le=2_147_483_647)] | Literal[""]
MonthChoice = Annotated[str, Query(max_length=7)]
ReportId = Annotated[int, Query(alias="id", ge=1, le=2_147_483_647)]


def _reader(user: User, *roles: Role) -> User:
    if user.role not in roles:
        who = "、".join({Role.SUPERVISOR: "督办人员", Role.ADMIN: "系统管理员"}[r] for r in roles)
        raise HTTPException(403, detail={"code": "wrong_role", "message": f"此页面仅供{who}使用。"})
    return user


def _gate(*roles: Role) -> Any:
    """A page dependency: the signed-in person if their role is one of these; otherwise a 403 page."""

    async def gate(user: PageUser) -> User:
        return _reader(user, *roles)

    return Depends(gate)


async def _form_gate(user: FormUser) -> User:
    return publisher(user)


ReportReader = Annotated[User, _gate(Role.SUPERVISOR, Role.ADMIN)]
DisclosureReviewer = Annotated[User, _gate(Role.SUPERVISOR)]
PublisherForm = Annotated[User, Depends(_form_gate)]


async def _decider_gate(user: FormUser) -> User:
    return decider(user)


DeciderForm = Annotated[User, Depends(_decider_gate)]


def last_month() -> str:
    return previous_months(current_month(), 2)[0]


@router.get("/rankings", response_class=HTMLResponse)
async def rankings_page(
    request: Request, session: SessionDep, user: ReportReader, month: MonthChoice = "", kind: str = "unit",
    unit_id: UnitChoice = "",
) -> HTMLResponse:  # fmt: skip
    """排名通报: a month's ranking of units, windows or staff, and the units flagged for a talk (约谈)."""
    month = month or last_month()
    answer = await ranking_answer(session, user, month, kind, unit_id or None, None)
    scope, _ = await resolve_scope(session, user, None, None)
    return render(
        request, "reports/rankings.html.j2", title="排名通报", answer=answer, month=month, kind=kind,
        unit_id=unit_id, kinds=list(KIND_LABELS_ZH.items()), units=await scope_units(session, scope.units),
        labels=INDICATOR_LABELS_ZH, shown=shown,
    )  # fmt: skip


@router.get("/reports", response_class=HTMLResponse)
async def report_page(
    request: Request, session: SessionDep, user: ReportReader, month: MonthChoice = "", unit_id: UnitChoice = "",
    done: str = "",
) -> HTMLResponse:  # fmt: skip
    """月度报告: the month's draft as the data stands, its published versions, and the publish form."""
    month = parse_month(month or last_month())
    scope, pinned = await resolve_scope(session, user, unit_id or None, None)
    _json, digest, rendered = await draft(session, scope, pinned, month)
    found = await versions(session, scope.key, month)
    own, _ = await resolve_scope(session, user, None, None)
    return render(
        request, "reports/report.html.j2", title="月度报告", month=month, unit_id=unit_id, scope=scope,
        digest=digest, body=Markup(rendered.html), versions=found,
        corrected=await corrected_by(session, [r.id for r in found if r.id is not None]),
        units=await scope_units(session, own.units), can_publish=month < current_month(),
        flash="已发布。" if done == "published" else "",
    )  # fmt: skip


@router.get("/reports/draft.csv")
async def draft_csv(
    request: Request, session: SessionDep, user: ReportReader, month: MonthChoice = "", unit_id: UnitChoice = ""
) -> Response:
    """The draft as CSV (UTF-8 with BOM), as the data stands now; audited, as every export."""
    return await draft_file(request, session, user, "csv", month, unit_id)


@router.get("/reports/draft.xlsx")
async def draft_xlsx(
    request: Request, session: SessionDep, user: ReportReader, month: MonthChoice = "", unit_id: UnitChoice = ""
) -> Response:
    """The draft as XLSX, as the data stands now; audited, as every export."""
    return await draft_file(request, session, user, "xlsx", month, unit_id)


async def draft_file(
    request: Request, session: SessionDep, user: User, kind: str, month: str, unit_id: int | Literal[""]
) -> Response:
    month = parse_month(month or last_month())
    scope, pinned = await resolve_scope(session, user, unit_id or None, None)
    _json, _digest, rendered = await draft(session, scope, pinned, month)
    await audit_export(session, request, user, "report_draft", {"scope": scope.key, "month": month, "format": kind},
                       rows=1, total=1)  # fmt: skip
    body, media = (rendered.csv, "text/csv; charset=utf-8") if kind == "csv" else (rendered.xlsx, XLSX_TYPE)
    name = f"hcp-report-draft-{scope.key.replace(':', '-')}-{month}.{kind}"
    return Response(
        body, media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )  # fmt: skip


@router.post("/reports/publish", response_model=None)
async def publish_form(
    request: Request, session: SessionDep, user: PublisherForm, month: Annotated[str, Form(max_length=7)] = "",
    unit_id: Annotated[str, Form(max_length=12)] = "",
) -> Response:  # fmt: skip
    """发布 from the report page; a refusal (already published, month not over) is an error page saying why."""
    scoped = await resolve_scope(session, user, int(unit_id) if unit_id.isdigit() else None, None)
    report = await publish(session, request, user, scoped, parse_month(month))
    return RedirectResponse(f"/reports/version?id={report.id}&done=published", status_code=303)


@router.get("/reports/version", response_class=HTMLResponse)
async def version_page(
    request: Request, session: SessionDep, user: ReportReader, report_id: ReportId, done: str = ""
) -> HTMLResponse:
    """A published version exactly as stored, with its hash, its place among the versions and the correction form."""
    report = await visible_report(session, user, report_id)
    found = await versions(session, report.scope_key, report.month)
    flash = {"published": "已发布：内容已冻结。", "corrected": "已发布更正版本。"}.get(done, "")
    return render(
        request, "reports/version.html.j2", title=report.title, report=report, body=Markup(report.html),
        versions=found, corrected=await corrected_by(session, [r.id for r in found if r.id is not None]),
        flash=flash,
    )  # fmt: skip


@router.get("/reports/version.csv")
async def version_csv(session: SessionDep, user: ReportReader, report_id: ReportId) -> Response:
    """A published version's stored CSV, byte for byte."""
    return stored_file(await visible_report(session, user, report_id), "csv")


@router.get("/reports/version.xlsx")
async def version_xlsx(session: SessionDep, user: ReportReader, report_id: ReportId) -> Response:
    """A published version's stored XLSX, byte for byte."""
    return stored_file(await visible_report(session, user, report_id), "xlsx")


@router.post("/reports/correction", response_model=None)
async def correction_form(
    request: Request, session: SessionDep, user: PublisherForm, report_id: Annotated[int, Form(alias="id", ge=1)] = 0,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:  # fmt: skip
    """更正: a new version correcting this one, with the reason (required)."""
    if not report_id:
        raise HTTPException(422, detail={"code": "invalid", "message": "请从报告页面提交更正。"})
    old = await visible_report(session, user, report_id)
    if not reason.strip():
        raise HTTPException(422, detail={"code": "reason_required", "message": "请填写更正原因。"})
    report = await publish(session, request, user, await scope_of(session, user, old), old.month, old, reason.strip())
    return RedirectResponse(f"/reports/version?id={report.id}&done=corrected", status_code=303)


@router.get("/disclosures", response_class=HTMLResponse)
async def disclosures_page(
    request: Request, session: SessionDep, user: DisclosureReviewer, month: MonthChoice = "",
    status: DisclosureStatus | Literal[""] = "", flash: str = "",
) -> HTMLResponse:  # fmt: skip
    """整改情况公开审核: each closed case's text, masked by the check, to approve (公开) or withhold."""
    month = parse_month(month or last_month())
    rows = await disclosure_list(session, user, month, None, status or None)
    return render(
        request, "reports/disclosures.html.j2", title="整改情况公开审核", rows=rows, month=month, status=status,
        statuses=list(STATUS_LABELS_ZH.items()), flash={"done": "已保存。"}.get(flash, ""),
    )  # fmt: skip


@router.post("/disclosures", response_model=None)
async def disclosure_form(request: Request, session: SessionDep, user: DeciderForm) -> Response:
    """公开 or 不予公开 one text; a text still holding personal data comes back as an error page naming what."""
    posted = await request.form()
    disclosure_id = str(posted.get("id", ""))
    if not disclosure_id.isdigit() or not 1 <= int(disclosure_id) <= 2_147_483_647:
        raise HTTPException(422, detail={"code": "invalid", "message": "请从审核页面提交。"})
    values: dict[str, Any] = {
        "decision": posted.get("decision", ""),
        "text": str(posted.get("text", "")).strip() or None,
        "note": str(posted.get("note", "")).strip(),
    }
    try:
        body = DisclosureDecision.model_validate(values)
    except ValidationError:
        raise HTTPException(
            422, detail={"code": "invalid", "message": "请选择公开或不予公开，文本不超过 8000 字。"}
        ) from None
    row = await decide_disclosure(session, request, user, int(disclosure_id), body)
    return RedirectResponse(f"/disclosures?month={row.month}&flash=done", status_code=303)
