"""The rater's one-time answer page (评价人确认页): satisfied or not with the result.

Public by design: the random token in the URL is the credential. Only its hash is looked up; a
used or expired link says so plainly. The form carries a CSRF token bound to a cookie set with the
page (double submit, SameSite=Strict), and a post from a foreign Origin is refused.

Answers are serialized by the case workflow: the first answer on a round wins, a second one is told
the answer is already in, and the link row is written from the workflow's answer, so the database
always agrees with it. The answer goes through api/cases/steps.py like every other step, so an
outage answers 503 "not taken" with the link still usable.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import update
from sqlmodel import col, select

from api.cases.steps import StepAccepted, StepCall, StepError, take_step
from api.deps import SessionDep, SettingsDep, TemporalDep, client_address
from config import Settings
from models.case.context import load_case_context
from models.case.records import Case, CaseEvent
from models.case.step_inputs import RaterResponseInput
from models.case.vocabulary import RATER_ACTOR, ErrorType
from models.db import utcnow
from models.deadlines import CHINA_TZ
from models.rater_links import RaterLink, hash_token
from templating import template_environment
from workflows.case import CaseWorkflow

log = logging.getLogger(__name__)
router = APIRouter(tags=["rater pages"])

CSRF_COOKIE = "hcp_rater_csrf"

_pages = template_environment("pages", escape="always")


def _page(
    status_code: int, title: str, notice: str = "", retry_after: int | None = None, **context: object
) -> HTMLResponse:
    html = _pages.get_template("rater_response.html.j2").render(
        title=title, notice=notice, **{"state": "closed", "csrf": "", **context}
    )
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if retry_after:
        headers["Retry-After"] = str(retry_after)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _invalid() -> HTMLResponse:
    return _page(404, "链接无效", "此链接无效。请使用通知中收到的完整链接。")


async def _usable_link(session: SessionDep, token: str) -> RaterLink | HTMLResponse:
    link = (await session.exec(select(RaterLink).where(RaterLink.token_hash == hash_token(token)))).first()
    if link is None:
        return _invalid()
    if link.used_at is not None:
        return _page(410, "链接已使用", "此链接已使用，您的确认已经收到，感谢您的反馈。")
    if link.expires_at <= utcnow():
        return _page(410, "链接已过期", "此链接已过期。如仍有意见，可通过原评价渠道或 12345 热线反映。")
    return link


@router.get("/r/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rater_response_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """Show the result and the two answers."""
    if not _token_shape_ok(token):
        return _invalid()
    link = await _usable_link(session, token)
    if isinstance(link, HTMLResponse):
        return link
    ctx = await load_case_context(session, link.case_id)
    message = (
        await session.exec(
            select(CaseEvent.data)
            .where(
                CaseEvent.case_id == ctx.case.id, CaseEvent.action == "feedback_written", CaseEvent.round == link.round
            )
            .order_by(col(CaseEvent.id).desc())
        )
    ).first()
    csrf = secrets.token_urlsafe(24)
    response = _page(
        200,
        "办理结果确认",
        state="open",
        csrf=csrf,
        item_name=ctx.item.name,
        unit_name=ctx.unit.name,
        message=(message or {}).get("message", ""),
        respond_by=link.expires_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
    )
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        httponly=True,
        samesite="strict",
        secure=settings.public_base_url.startswith("https://"),
        path="/r/",
        max_age=24 * 3600,
    )
    return response


def _token_shape_ok(token: str) -> bool:
    """Tokens are URL-safe base64 of a fixed length; anything else is answered without a lookup."""
    return 8 <= len(token) <= 128 and all(ch.isalnum() or ch in "_-" for ch in token)


def _same_origin(request: Request, settings: Settings) -> bool:
    """A browser's Origin (when it sends one) must be this site's."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser, or one that sends none: the CSRF token still has to match
        return True
    allowed = {_origin_of(settings.public_base_url), _origin_of(str(request.base_url))}
    return origin.rstrip("/") in allowed


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@router.post("/r/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rater_response_submit(
    token: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    satisfied: Annotated[str, Form(pattern="^(yes|no)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
    csrf: Annotated[str, Form(max_length=64)] = "",
) -> HTMLResponse:
    """Send the answer to the case workflow (the first answer wins), then record it with the link."""
    if not _token_shape_ok(token):
        return _invalid()
    link = await _usable_link(session, token)
    if isinstance(link, HTMLResponse):
        return link
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not _same_origin(request, settings) or not csrf or not hmac.compare_digest(csrf.encode(), cookie.encode()):
        return _page(403, "页面已过期", "页面已过期或来源无效，请重新打开通知中的链接后再提交。")
    if "\x00" in comment:
        return _page(422, "无法提交", "补充意见中含有无效字符，请修改后再提交。")
    case = await session.get(Case, link.case_id)
    assert case is not None and link.id is not None
    answer = satisfied == "yes"
    call = StepCall(
        case=case,
        requester=f"rater:{link.id}",
        action="rater_response",
        update=CaseWorkflow.rater_respond,
        update_input=RaterResponseInput(actor=RATER_ACTOR, satisfied=answer),
        fields={"satisfied": answer},
        client=client_address(request),
    )
    try:
        outcome = await take_step(session, temporal, call, settings.case_action_wait_seconds, f"/r/{token}")
    except StepError as exc:
        if exc.error_type == ErrorType.ALREADY_TAKEN:
            return _page(409, "已收到确认", "您对本次办理结果的确认已经收到，无需重复提交。感谢您的反馈。")
        if exc.status == 503:
            return _page(
                503, "暂时无法提交", "系统繁忙，您的确认未提交。请稍后再次打开此链接提交。", retry_after=exc.retry_after
            )
        return _page(409, "无法确认", "该工单已不在等待确认的阶段（确认期限已过或已办结）。感谢您的关注。")
    if isinstance(outcome, StepAccepted):
        # Submitted but not yet decided: the workflow's record writes the answer to the link once it is.
        return _page(202, "已提交", "您的确认已提交，正在处理。稍后再次打开此链接即可查看是否已收到。")
    taken = outcome.rater_answer
    try:
        await _keep_answer(session, link.id, taken, comment.strip() if taken == answer else None)
    except Exception as exc:  # noqa: BLE001 - the answer is in: the workflow's record writes the link anyway
        log.warning("rater answer of case %s taken, link not updated here: %s", link.case_id, type(exc).__name__)
    if taken != answer:
        return _page(409, "已收到确认", "您对本次办理结果的确认已经收到，无需重复提交。感谢您的反馈。")
    thanks = "感谢您的确认！" if answer else "感谢您的反馈，我们会继续督促办理，并将结果再次告知您。"
    return _page(200, "已收到您的确认", thanks)


async def _keep_answer(session: SessionDep, link_id: int, taken: bool | None, comment: str | None) -> None:
    """The workflow's answer on the link (whoever writes first), and the comment of the answer that won."""
    await (await session.connection()).execute(
        update(RaterLink)
        .where(col(RaterLink.id) == link_id, col(RaterLink.used_at).is_(None))
        .values(used_at=utcnow(), answer_satisfied=taken)
    )
    if comment is not None:
        await (await session.connection()).execute(
            update(RaterLink)
            .where(col(RaterLink.id) == link_id, col(RaterLink.answer_comment) == "")
            .values(answer_comment=comment)
        )
    await session.commit()
