"""A window's static code (一窗一码): /w/{code} asks which record, checks it is the rater's, then rates it.

The code printed in the hall is public, so the page asks for the receipt's 办件编号 and the last four
digits of the phone the record was registered with. A wrong number, a wrong tail, a record without
a phone on file and a record of another unit all get the same message, and a client that fails
MAX_FAILED_CHECKS times at a window is refused there for CHECK_LOCK. On success the rater gets a
short-lived invitation and continues on the same rating page as a per-record link (/q/{token}).
"""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, SettingsDep, client_address
from models.db import utcnow
from models.organisation import Unit
from models.rating_invitations import issue_invitation
from models.services import PHONE_CHECK_DIGITS, ServiceRecord
from models.windows import (
    CHECK_LOCK,
    MAX_FAILED_CHECKS,
    WINDOW_CODE_PATTERN,
    ServiceWindow,
    begin_attempt,
    client_key,
    record_matches,
    succeed,
)
from pages.citizen.qr import PNG_TYPE, SVG_TYPE, qr_png, qr_svg, window_url
from pages.citizen.web import csrf_ok, form_text, new_csrf, notice, page, set_csrf
from pages.citizen.web import with_defaults as _with_defaults

router = APIRouter(tags=["rater pages"])

CSRF_COOKIE = "hcp_window_csrf"
# Long enough to fill in the form at the counter or on the way out, short enough not to be a standing credential.
INVITATION_MINUTES = 30
_CODE_RE = re.compile(WINDOW_CODE_PATTERN)
_TAIL_RE = re.compile(rf"^\d{{{PHONE_CHECK_DIGITS}}}$")
_NO_MATCH = "办件编号或手机号后四位不正确。请核对办件回执上的编号，以及办理时登记的手机号。"


async def _window(session: AsyncSession, code: str) -> tuple[ServiceWindow, Unit] | None:
    if not _CODE_RE.match(code):
        return None
    window = (await session.exec(select(ServiceWindow).where(ServiceWindow.code == code))).first()
    if window is None or not window.active:
        return None
    unit = await session.get(Unit, window.unit_id)
    assert unit is not None  # a foreign key
    return window, unit


def _unknown() -> HTMLResponse:
    return notice(404, "二维码无效", "该二维码无效或窗口已停用。请向窗口工作人员咨询。")


def _form(
    window: ServiceWindow, unit: Unit, csrf: str, status_code: int = 200, message: str = "", **form: object
) -> HTMLResponse:
    return page(
        "window.html.j2",
        status_code,
        "窗口服务评价",
        csrf=csrf,
        window_name=window.name,
        unit_name=unit.name,
        message=message,
        **_with_defaults(form, values={"record_no": ""}, errors={}),
    )


@router.get("/w/{window_code}", response_class=HTMLResponse, include_in_schema=False)
async def window_page(window_code: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Which record to rate: its number from the receipt, and the check."""
    found = await _window(session, window_code)
    if found is None:
        return _unknown()
    csrf = new_csrf()
    response = _form(*found, csrf)
    set_csrf(response, settings, CSRF_COOKIE, "/w/", csrf)
    return response


@router.post("/w/{window_code}", response_class=HTMLResponse, include_in_schema=False, response_model=None)
async def window_check(
    window_code: str, request: Request, session: SessionDep, settings: SettingsDep
) -> HTMLResponse | RedirectResponse:
    """Check the record is the rater's and this window's unit's; then on to its rating page."""
    found = await _window(session, window_code)
    if found is None:
        return _unknown()
    window, unit = found
    form = await request.form()
    csrf = form_text(form, "csrf", 64)
    if not csrf_ok(request, settings, CSRF_COOKIE, csrf):
        return notice(403, "页面已过期", "页面已过期或来源无效，请重新扫描窗口上的二维码。")
    record_no, tail = form_text(form, "record_no", 64), form_text(form, "phone_tail", PHONE_CHECK_DIGITS)
    errors = {}
    if not record_no or len(record_no) > 64 or "\x00" in record_no:
        errors["record_no"] = "请填写办件回执上的办件编号"
    if not _TAIL_RE.match(tail):
        errors["phone_tail"] = f"请填写 {PHONE_CHECK_DIGITS} 位数字"
    if errors:  # not a guess yet: nothing is counted
        values = {"record_no": record_no.replace("\x00", "")}
        return _form(window, unit, csrf, 422, values=values, errors=errors)
    assert window.id is not None
    signing_key = settings.signing_key()
    attempt = await begin_attempt(session, window.id, client_key(signing_key, client_address(request)))
    if attempt is None:
        minutes = int(CHECK_LOCK.total_seconds() // 60)
        text = (
            f"核对失败次数过多（{MAX_FAILED_CHECKS} 次）。为保护办件信息，请 {minutes} 分钟后再试，"
            "或请窗口工作人员协助评价。"
        )
        return notice(429, "请稍后再试", text, retry_after=int(CHECK_LOCK.total_seconds()))
    record = (await session.exec(select(ServiceRecord).where(ServiceRecord.record_no == record_no))).first()
    if not record_matches(record, window, signing_key, record_no, tail):
        return _form(window, unit, csrf, 422, message=_NO_MATCH, values={"record_no": record_no})
    assert record is not None and record.id is not None
    await succeed(session, attempt)
    _, token = issue_invitation(
        session, record.id, f"window:{window.code}", utcnow() + timedelta(minutes=INVITATION_MINUTES), keep_token=False
    )
    await session.commit()
    return RedirectResponse(f"/q/{token}", status_code=303, headers={"Cache-Control": "no-store"})


@router.get("/w/{window_code}/print", response_class=HTMLResponse, include_in_schema=False)
async def window_print(window_code: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """An A4 sheet for the counter: 请扫码评价, the unit, the window and its code."""
    found = await _window(session, window_code)
    if found is None:
        return _unknown()
    window, unit = found
    return page(
        "window_print.html.j2",
        200,
        f"{window.name} · 请扫码评价",
        window_name=window.name,
        window_code=window.code,
        unit_name=unit.name,
        url=window_url(settings, window.code),
    )


# A window's code is printed in the hall for anyone to scan: its image is public and may be cached a while.
_PUBLIC_IMAGE = {"Cache-Control": "public, max-age=3600"}


@router.get("/qr/window/{window_code}.svg", include_in_schema=False)
async def window_qr_svg(window_code: str, session: SessionDep, settings: SettingsDep) -> Response:
    found = await _window(session, window_code)
    if found is None:
        return _unknown()
    title = f"{found[1].name} {found[0].name} 评价二维码"
    return Response(qr_svg(window_url(settings, window_code), title), media_type=SVG_TYPE, headers=_PUBLIC_IMAGE)


@router.get("/qr/window/{window_code}.png", include_in_schema=False)
async def window_qr_png(window_code: str, session: SessionDep, settings: SettingsDep) -> Response:
    found = await _window(session, window_code)
    if found is None:
        return _unknown()
    return Response(qr_png(window_url(settings, window_code)), media_type=PNG_TYPE, headers=_PUBLIC_IMAGE)
