"""The rater's one-time answer page (评价人确认页): satisfied or not with the result.

Public by design: the random token in the URL is the credential. Only its hash is stored; a used
or expired link says so plainly.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel import col, select
from temporalio.client import WorkflowUpdateFailedError

from api.deps import SessionDep, TemporalDep, client_address
from config import PROJECT_ROOT
from models.audit import audit
from models.case_actions import RaterResponseInput
from models.case_context import load_case_context
from models.case_types import RATER_ACTOR
from models.cases import Case, CaseEvent
from models.db import utcnow
from models.deadlines import CHINA_TZ
from models.rater_links import RaterLink, hash_token
from workflows.case import CaseWorkflow

router = APIRouter(tags=["rater pages"])

_pages = SandboxedEnvironment(
    loader=FileSystemLoader(PROJECT_ROOT / "templates" / "pages"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
)


def _page(status_code: int, title: str, notice: str = "", **context: object) -> HTMLResponse:
    html = _pages.get_template("rater_response.html.j2").render(
        title=title, notice=notice, **{"state": "closed", **context}
    )
    return HTMLResponse(
        html, status_code=status_code, headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    )


async def _usable_link(session: SessionDep, token: str) -> RaterLink | HTMLResponse:
    link = (await session.exec(select(RaterLink).where(RaterLink.token_hash == hash_token(token)))).first()
    if link is None:
        return _page(404, "链接无效", "此链接无效。请使用通知中收到的完整链接。")
    if link.used_at is not None:
        return _page(410, "链接已使用", "此链接已使用，您的确认已经收到，感谢您的反馈。")
    if link.expires_at <= utcnow():
        return _page(410, "链接已过期", "此链接已过期。如仍有意见，可通过原评价渠道或 12345 热线反映。")
    return link


@router.get("/r/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rater_response_page(token: str, session: SessionDep) -> HTMLResponse:
    """Show the result and the two answers."""
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
    return _page(
        200,
        "办理结果确认",
        state="open",
        item_name=ctx.item.name,
        unit_name=ctx.unit.name,
        message=(message or {}).get("message", ""),
        respond_by=link.expires_at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M"),
    )


@router.post("/r/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rater_response_submit(
    token: str,
    request: Request,
    session: SessionDep,
    temporal: TemporalDep,
    satisfied: Annotated[str, Form(pattern="^(yes|no)$")],
    comment: Annotated[str, Form(max_length=2000)] = "",
) -> HTMLResponse:
    """Record the answer once, then tell the case workflow."""
    link = await _usable_link(session, token)
    if isinstance(link, HTMLResponse):
        return link
    case = await session.get(Case, link.case_id)
    assert case is not None and link.id is not None
    answer = satisfied == "yes"
    try:
        client = await temporal.client()
        handle = client.get_workflow_handle_for(CaseWorkflow.run, case.workflow_id)
        # The update id is the link's: a double submit acts once.
        await handle.execute_update(
            CaseWorkflow.rater_respond,
            RaterResponseInput(actor=RATER_ACTOR, satisfied=answer),
            id=f"rater-link-{link.id}",
        )
    except WorkflowUpdateFailedError:
        return _page(409, "无法确认", "该工单已不在等待确认的阶段（可能已超过确认期限）。感谢您的关注。")
    except Exception:  # noqa: BLE001 - Temporal unavailable: the link stays usable
        return _page(503, "暂时无法提交", "系统繁忙，请稍后再次打开此链接提交。")
    link.used_at = utcnow()
    link.answer_satisfied = answer
    link.answer_comment = comment.strip()
    session.add(link)
    audit(
        session,
        actor="rater",
        actor_role="rater",
        action="case.rater_response",
        target_type="case",
        target_id=case.id,
        unit_id=case.unit_id,
        after={"round": link.round, "satisfied": answer},
        client=client_address(request),
    )
    await session.commit()
    thanks = "感谢您的确认！" if answer else "感谢您的反馈，我们会继续督促办理，并将结果再次告知您。"
    return _page(200, "已收到您的确认", thanks)
