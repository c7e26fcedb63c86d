"""What a rater sees of their case (办理进度): progress in plain words, the result, the deadlines.

Only what is the rater's own: when each stage was reached, the result text the unit wrote for them,
the deadlines of the case (China time) and the answer they gave. Never the findings, measures,
evidence, notes or names of the people handling it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.case.context import load_case_context
from models.case.records import Case, CaseEvent
from models.case.vocabulary import DEADLINE_LABELS_ZH, Outcome, Stage
from models.db import utcnow
from models.deadlines import clock_text_zh
from models.policy import DeadlineName
from models.policy_store import policy_version
from models.rater_links import RaterLink


@dataclass(frozen=True)
class Step:
    label: str
    at: datetime | None  # None: not reached yet


_RECEIVED = ("opened", "reopened", "reassigned")
_HANDLED = {"rectified": "已整改", "explained": "已解释说明", "cannot_rectify_approved": "已说明无法整改的原因"}


async def case_status(session: AsyncSession, link: RaterLink) -> dict[str, Any]:
    """The template context of the status part of the rater's page, for the link's case and round."""
    ctx = await load_case_context(session, link.case_id)
    case = ctx.case
    events = (
        await session.exec(
            select(CaseEvent.action, CaseEvent.at)
            .where(CaseEvent.case_id == case.id, CaseEvent.round == link.round)
            .order_by(col(CaseEvent.id))
        )
    ).all()
    first: dict[str, datetime] = {}
    for action, at in events:
        first.setdefault(action, at)
    handled = next(((label, first[action]) for action, label in _HANDLED.items() if action in first), None)
    steps = [
        Step("已受理", next((first[a] for a in _RECEIVED if a in first), case.opened_at)),
        Step("已核实", first.get("verified")),
        Step(handled[0], handled[1]) if handled else Step("整改或解释说明", None),
        Step("办理结果已反馈", first.get("feedback_written")),
    ]
    message = (
        await session.exec(
            select(CaseEvent.data)
            .where(CaseEvent.case_id == case.id, CaseEvent.action == "feedback_written", CaseEvent.round == link.round)
            .order_by(col(CaseEvent.id).desc())
        )
    ).first()
    pinned = await policy_version(session, case.policy_code, case.policy_version)
    silence = pinned.profile.rater_silence_outcome if pinned else "satisfied"
    return {
        "item_name": ctx.item.name,
        "unit_name": ctx.unit.name,
        "steps": steps,
        "message": (message or {}).get("message", ""),
        "respond_by": clock_text_zh(link.expires_at),
        "silence_words": "满意" if silence == "satisfied" else "不满意",
        "answer": _answer(link, "rater_silent" in first),
        "answer_comment": link.answer_comment,
        "now_words": _now_words(case, link),
        "deadlines": _running_deadlines(case) if case.round > link.round else [],
    }


def _answer(link: RaterLink, silent: bool) -> str:
    if link.answer_satisfied is True:
        return "满意"
    if link.answer_satisfied is False:
        return "不满意"
    if silent:
        return "未在期限内确认"
    return "已收到" if link.used_at is not None else ""


def _now_words(case: Case, link: RaterLink) -> str:
    """Where the case stands now, in a rater's words."""
    if case.stage in (Stage.CLOSED, Stage.NOT_ADOPTED):
        if case.outcome == Outcome.UNSATISFIED:
            return "已办结。您仍不满意，已报政务服务管理机构督办。"
        return "已办结。"
    if case.round > link.round:
        return f"您的意见已转回承办单位重新办理（第 {case.round} 轮），办理结果会再次告诉您。"
    if case.stage == Stage.RATER_RESPONSE and link.used_at is None and link.expires_at > utcnow():
        return "等待您确认是否满意。"
    return "正在处理。"


def _running_deadlines(case: Case) -> list[tuple[str, str, bool]]:
    """(name, due in China time, overdue) of each clock of the current round still running."""
    found = []
    for deadline in case.deadlines:
        if deadline.get("state") not in ("running", "overdue"):
            continue
        name = DeadlineName(deadline["name"])
        due = datetime.fromisoformat(deadline["due_at"])
        found.append((DEADLINE_LABELS_ZH.get(name, name.value), clock_text_zh(due), deadline["state"] == "overdue"))
    return found
