"""The rater's page of a case (/r/{token}, from the feedback SMS or email): its progress, the result, and the answer.

Public by design: the random token in the URL is the credential. Only its hash is looked up. While
the link is open the page asks whether the result is enough (satisfied / not satisfied); once it
is used or expired the page says so, with the progress and the answer given.

Answers are serialized by the case workflow: the first answer on a round wins, a second one is told
the answer is already in, and the link row is written from the workflow's answer, so the database
always agrees with it. The answer goes through api/cases/steps.py like every other step, so an
outage answers 503 "not taken" with the link still usable.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import update
from sqlmodel import col, select

from api.cases.steps import StepAccepted, StepCall, StepError, take_step
from api.deps import SessionDep, SettingsDep, TemporalDep, client_address
from models.case.records import Case
from models.case.step_inputs import RaterResponseInput
from models.case.vocabulary import RATER_ACTOR, ErrorType
from models.db import utcnow
from models.rater_links import RaterLink, hash_token
from pages.citizen.status import case_status
from pages.citizen.web import csrf_ok, new_csrf, notice, page, set_csrf, token_shape_ok
from workflows.case import CaseWorkflow

log = logging.getLogger(__name__)
router = APIRouter(tags=["rater pages"])

CSRF_COOKIE = "hcp_rater_csrf"


def _invalid() -> HTMLResponse:
    return notice(404, "链接无效", "此链接无效。请使用通知中收到的完整链接。")


async def _link(session: SessionDep, token: str) -> RaterLink | None:
    if not token_shape_ok(token):
        return None
    return (await session.exec(select(RaterLink).where(RaterLink.token_hash == hash_token(token)))).first()


async def _closed_page(session: SessionDep, link: RaterLink) -> HTMLResponse | None:
    """The page of a used or expired link (410, with the progress and the answer); None while it is open."""
    if link.used_at is not None:
        text = "此链接已使用，您的确认已经收到，感谢您的反馈。"
        return page(
            "status.html.j2", 410, "链接已使用", notice=text, state="closed", **await case_status(session, link)
        )
    if link.expires_at <= utcnow():
        text = "此链接已过期。如仍有意见，可通过原评价渠道或 12345 热线反映。"
        return page(
            "status.html.j2", 410, "链接已过期", notice=text, state="closed", **await case_status(session, link)
        )
    return None


@router.get("/r/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rater_response_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The progress, the result and, while the link is open, the two answers."""
    link = await _link(session, token)
    if link is None:
        return _invalid()
    if (closed := await _closed_page(session, link)) is not None:
        return closed
    csrf = new_csrf()
    response = page(
        "status.html.j2", 200, "办理结果确认", notice="", state="open", csrf=csrf, **await case_status(session, link)
    )
    set_csrf(response, settings, CSRF_COOKIE, "/r/", csrf)
    return response


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
    link = await _link(session, token)
    if link is None:
        return _invalid()
    if (closed := await _closed_page(session, link)) is not None:
        return closed
    if not csrf_ok(request, settings, CSRF_COOKIE, csrf):
        return notice(403, "页面已过期", "页面已过期或来源无效，请重新打开通知中的链接后再提交。")
    if "\x00" in comment:
        return notice(422, "无法提交", "补充意见中含有无效字符，请修改后再提交。")
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
        # An answer may close the case in the very task that takes it, so the second of two answers can find
        # the case already ended rather than "already answered": the link says which it was.
        await session.refresh(link)
        if exc.error_type == ErrorType.ALREADY_TAKEN or link.answer_satisfied is not None:
            return notice(409, "已收到确认", "您对本次办理结果的确认已经收到，无需重复提交。感谢您的反馈。")
        if exc.status == 503:
            text = "系统繁忙，您的确认未提交。请稍后再次打开此链接提交。"
            return notice(503, "暂时无法提交", text, retry_after=exc.retry_after)
        return notice(409, "无法确认", "该工单已不在等待确认的阶段（确认期限已过或已办结）。感谢您的关注。")
    if isinstance(outcome, StepAccepted):
        # Submitted but not yet decided: the workflow's record writes the answer to the link once it is.
        return notice(202, "已提交", "您的确认已提交，正在处理。稍后再次打开此链接即可查看是否已收到。")
    taken = outcome.rater_answer
    try:
        await _keep_answer(session, link.id, taken, comment.strip() if taken == answer else None)
    except Exception as exc:  # noqa: BLE001 - the answer is in: the workflow's record writes the link anyway
        log.warning("rater answer of case %s taken, link not updated here: %s", link.case_id, type(exc).__name__)
    if taken != answer:
        return notice(409, "已收到确认", "您对本次办理结果的确认已经收到，无需重复提交。感谢您的反馈。")
    thanks = "感谢您的确认！" if answer else "感谢您的反馈，我们会继续督促办理，并将结果再次告知您。"
    try:
        await session.refresh(link)
        status = await case_status(session, link)
    except Exception as exc:  # noqa: BLE001 - the answer is in; the progress is shown the next time the link is opened
        log.warning("rater answer of case %s taken, progress not shown: %s", link.case_id, type(exc).__name__)
        return notice(200, "已收到您的确认", thanks)
    return page("status.html.j2", 200, "已收到您的确认", flash=thanks, notice="", state="closed", **status)


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
