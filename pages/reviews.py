"""Reviewers' pages (复核): appeals waiting for a decision, and the appeals this reviewer decided.

The queue is the API's reviewer scope (api/cases/scope.py: the appeal path of the office's subtree)
narrowed to the appeal-review stage; the decision itself is the 复核决定 form on the case page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlmodel import col, select

from api.cases.scope import scope_conditions, summary_query
from api.deps import SessionDep
from models.calendar import load_calendar
from models.case.records import Case, CaseEvent
from models.case.vocabulary import JUDGEMENT_LABELS_ZH, STAGE_LABELS_ZH, Judgement, Stage
from models.roles import Role
from models.users import User
from pages import words
from pages.render import render, time_left_zh
from pages.routing import PageRoute
from pages.supervision import PAGE_SIZE, Listed, PageNumber, role_page

router = APIRouter(route_class=PageRoute, include_in_schema=False)

ReviewerUser = Annotated[User, role_page(Role.REVIEWER)]
_DECISIONS = ("appeal_upheld", "appeal_rejected")


@dataclass
class Appeal:
    listed: Listed
    filed: CaseEvent | None  # the unit's appeal: reason and evidence
    verified: CaseEvent | None  # the unit's verification: findings and judgement


@router.get("/reviews", response_class=HTMLResponse)
async def review_queue(request: Request, session: SessionDep, user: ReviewerUser, page: PageNumber = 1) -> HTMLResponse:
    """申诉复核: appeals waiting for this reviewer's office, the nearest decision deadline first."""
    conditions = [*await scope_conditions(session, user), Case.stage == Stage.APPEAL_REVIEW]
    total = (await session.exec(select(func.count()).select_from(Case).where(*conditions))).one()
    order = (col(Case.next_due_at).asc().nulls_last(), col(Case.id))
    query = summary_query().where(*conditions).order_by(*order).limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)
    rows = (await session.exec(query)).all()
    # Only this page's cases and only the two events it shows: the latest appeal and verification of each.
    events = (
        await session.exec(
            select(CaseEvent)
            .where(col(CaseEvent.case_id).in_([row[0].id for row in rows]))
            .where(col(CaseEvent.action).in_(("appeal_filed", "verified")))
            .order_by(col(CaseEvent.id))
        )
    ).all()
    latest = {(event.case_id, event.action): event for event in events}
    calendar = await load_calendar(session)
    appeals = [
        Appeal(
            Listed.of(row, time_left_zh(row[0].next_due_at, calendar)),
            latest.get((row[0].id, "appeal_filed")),
            latest.get((row[0].id, "verified")),
        )
        for row in rows
    ]
    return render(
        request, "reviews/queue.html.j2", title="申诉复核", appeals=appeals, total=total, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), judgement_label=_judgement_label,
    )  # fmt: skip


def _judgement_label(value: object) -> str:
    try:
        return JUDGEMENT_LABELS_ZH[Judgement(str(value))]
    except ValueError:  # a verification recorded before judgements existed carries none
        return ""


@router.get("/reviews/decided", response_class=HTMLResponse)
async def decided(request: Request, session: SessionDep, user: ReviewerUser, page: PageNumber = 1) -> HTMLResponse:
    """已作决定: the appeals this reviewer decided, newest first.

    Found by the decision's actor rather than the case's current scope: a decision stays one's own
    even after the case leaves the appeal path (a reassignment clears its verdict). The case page
    itself still applies scope.
    """
    decision = [col(CaseEvent.actor) == f"user:{user.id}", col(CaseEvent.action).in_(_DECISIONS)]
    total = (await session.exec(select(func.count()).select_from(CaseEvent).where(*decision))).one()
    query = (
        summary_query()
        .add_columns(CaseEvent)
        .join(CaseEvent, col(CaseEvent.case_id) == Case.id)
        .where(*decision)
        .order_by(col(CaseEvent.id).desc())
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    rows = [(Listed.of(row), row[5]) for row in (await session.exec(query)).all()]
    return render(
        request, "reviews/decided.html.j2", title="已作决定", rows=rows, total=total, page=page,
        pages=max(1, -(-total // PAGE_SIZE)), decision_label=words.APPEAL_DECISION_LABELS_ZH.get,
        stage_label=lambda s: STAGE_LABELS_ZH[s],
    )  # fmt: skip
