"""可疑评价: the supervisors' review queue of suspicious-rating flags, each with its reason and ratings (masked).

Who sees which flag, and who may decide it, is the API's (api/suspicious_ratings.py): this page calls
the same two functions and draws their answers; a refusal becomes the API's message on a page.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from api.deps import SessionDep
from api.params import IdPath
from api.suspicious_ratings import SuspicionDecision, decide_flag, list_flags
from models.suspicion.records import FLAG_STATUS_LABELS_ZH, FlagStatus
from models.users import User
from pages.admin.common import field_errors, flash_of, form_text, refused
from pages.render import render
from pages.routing import PageRoute
from pages.session import FormUser, PageUser
from pages.supervision import PAGE_SIZE, PageNumber, query_string

router = APIRouter(route_class=PageRoute, include_in_schema=False)

StatusChoice = FlagStatus | Literal[""]
_DONE = {"confirmed": "已确认为可疑评价。", "dismissed": "已排除该可疑评价标记。"}
DECISIONS = (("confirmed", "确认可疑"), ("dismissed", "排除（评价正常）"))


async def _queue(
    request: Request, session: SessionDep, user: User, status: StatusChoice, page: int,
    status_code: int = 200, flash: str = "", form: dict[str, Any] | None = None,
) -> HTMLResponse:  # fmt: skip
    """The queue as the API lists it for this person; `form` redraws one flag's form with its errors."""
    found = await list_flags(session, user, status or None, PAGE_SIZE, (page - 1) * PAGE_SIZE)
    return render(
        request, "supervision/suspicious.html.j2", status_code=status_code, title="可疑评价", flags=found.items,
        total=found.total, page=page, pages=max(1, -(-found.total // PAGE_SIZE)), status=status,
        query=query_string(status=status), statuses=[(s.value, label) for s, label in FLAG_STATUS_LABELS_ZH.items()],
        decisions=DECISIONS, form=form or {}, flash=flash or flash_of(request, _DONE),
        flash_kind="error" if status_code >= 400 else "ok",
    )  # fmt: skip


@router.get("/suspicious", response_class=HTMLResponse)
async def suspicious_queue(
    request: Request, session: SessionDep, user: PageUser, status: StatusChoice = FlagStatus.OPEN, page: PageNumber = 1
) -> HTMLResponse:
    """可疑评价: the flags of this person's units, waiting ones first by default."""
    return await _queue(request, session, user, status, page)


@router.post("/suspicious/{flag_id}/decision", response_class=HTMLResponse)
async def decide_from_page(flag_id: IdPath, request: Request, session: SessionDep, user: FormUser) -> Response:
    """Confirm or dismiss a flag through the API's function; errors come back on the queue, under the form."""
    posted = await request.form()
    values = {"decision": form_text(posted, "decision"), "note": form_text(posted, "note")}
    try:
        body = SuspicionDecision.model_validate(values)
        await decide_flag(flag_id, body, request, session, user)
    except ValidationError as exc:
        form = {"flag_id": flag_id, **values, "errors": field_errors(exc)}
        return await _queue(request, session, user, FlagStatus.OPEN, 1, 422, "未提交：请按提示修改。", form)
    except HTTPException as exc:
        _field, message = await refused(session, user, exc)  # 403 and 404 go on to their error pages
        return await _queue(request, session, user, FlagStatus.OPEN, 1, exc.status_code, message)
    return RedirectResponse(f"/suspicious?status=open&done={body.decision}", status_code=303)
