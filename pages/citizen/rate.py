"""The rating page of one transaction (一人一事一码): GET /q/{token} shows the form, POST rates.

The token comes from an invitation: a business system asked for it (POST
/api/v1/service-records/{record_no}/rating-link), or the rater proved at a window's code that the
record is theirs (pages/citizen/windows.py). The ratings are written by the same intake as the
API's (models/rating_intake.py) with channel 二维码, so a bad one opens a case just the same.

The link works until the record's 补充评价 window closes (models/rating_timing.py). Once the record
is rated, the same link offers the follow-up rating (追评) the profile allows, while its window is open.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlmodel import func, select

from api.deps import SessionDep, SettingsDep, TemporalDep, client_address
from models.calendar import load_calendar
from models.db import utcnow
from models.deadlines import clock_text_zh, rule_text_zh
from models.organisation import Staff, Unit
from models.policy import DeadlineName, PinnedPolicy
from models.policy_store import policy_for_unit
from models.rating_intake import AlreadyRated, RatingAccepted, accept_ratings, rated_targets, targets_of
from models.rating_invitations import RatingInvitation, find_invitation
from models.rating_timing import Clocks, TimingRefused, follow_up_targets, supplementary_closes_at
from models.ratings import Rating, RatingTarget
from models.services import ServiceItem, ServiceRecord
from models.suspicion.keys import rater_client
from pages.citizen.rating_form import FIELDS, SCORES, questions_for, read_form
from pages.citizen.web import csrf_ok, form_text, new_csrf, notice, page, set_csrf, token_shape_ok
from pages.citizen.web import with_defaults as _with_defaults

router = APIRouter(tags=["rater pages"])

CSRF_COOKIE = "hcp_rate_csrf"
# The ratings of these pages come from this system itself, whoever handed out the link.
QR_SOURCE_SYSTEM = "hcp-qr"


@dataclass(frozen=True)
class _Invited:
    invitation: RatingInvitation
    record: ServiceRecord
    item: ServiceItem
    unit: Unit
    staff: Staff | None
    policy: PinnedPolicy
    targets: list[RatingTarget]  # those not rated yet; for a follow-up, those that may be followed up
    follow_up: bool = False
    made: int = 0  # for a follow-up form: the record's ratings when it was shown (a resent form is stale)


def _invalid() -> HTMLResponse:
    return notice(404, "链接无效", "此评价链接无效。请扫描办件回执或窗口上的二维码，或使用短信中的完整链接。")


def _already_rated(status_code: int) -> HTMLResponse:
    return notice(status_code, "已评价", "该办件已经评价过了，每个办件只能评价一次。感谢您的参与！")


async def _invited(session: SessionDep, token: str) -> _Invited | HTMLResponse:
    if not token_shape_ok(token):
        return _invalid()
    invitation = await find_invitation(session, token)
    if invitation is None:
        return _invalid()
    record = await session.get(ServiceRecord, invitation.record_id)
    assert record is not None and record.id is not None  # a foreign key
    policy, now = await policy_for_unit(session, record.unit_id), utcnow()
    rated = await rated_targets(session, record.id)
    targets = [target for target in targets_of(record) if target not in rated]
    follow_up = invitation.used_at is not None or not targets
    if follow_up:  # rated: the link now offers the 追评 the profile allows, if any is still open
        targets = await follow_up_targets(session, record, policy.profile.rating, now)
        if not targets:
            return _already_rated(410)
        made = (await session.exec(select(func.count()).select_from(Rating).where(Rating.record_id == record.id))).one()
    elif invitation.expires_at <= now:
        return notice(410, "链接已过期", "此评价链接已过期。如需评价，请联系办理单位重新发送，或拨打 12345 热线反映。")
    else:
        closes_at = supplementary_closes_at(
            record.completed_at, policy.profile.rating, Clocks(await load_calendar(session))
        )
        if now >= closes_at:
            return _window_closed(record, policy, closes_at)
    item, unit = await session.get(ServiceItem, record.item_id), await session.get(Unit, record.unit_id)
    staff = await session.get(Staff, record.staff_id) if record.staff_id is not None else None
    assert item is not None and unit is not None
    return _Invited(invitation, record, item, unit, staff, policy, targets, follow_up, made if follow_up else 0)


def _window_closed(record: ServiceRecord, policy: PinnedPolicy, closes_at: datetime) -> HTMLResponse:
    rule = rule_text_zh(policy.profile.rating.supplementary)
    return notice(
        410,
        "评价期限已过",
        f"该办件的评价期限已过：办结后 {rule}内可以评价（至 {clock_text_zh(closes_at)}）。"
        "如对办理情况有意见，可拨打 12345 热线反映。",
    )


def _form_page(invited: _Invited, csrf: str, status_code: int = 200, **form: object) -> HTMLResponse:
    questions = questions_for(invited.record.service_channel)
    blank = {name: "" for name in FIELDS + tuple(q.name for q in questions)}
    return page(
        "rate.html.j2",
        status_code,
        "追加评价" if invited.follow_up else "办事评价",
        csrf=csrf,
        follow_up=invited.follow_up,
        made=invited.made,
        item_name=invited.item.name,
        unit_name=invited.unit.name,
        completed_on=invited.record.completed_at,
        staff=invited.staff,
        levels=[(rule.level, rule.label) for rule in invited.policy.profile.levels],
        targets=[target.value for target in invited.targets],
        questions=questions,
        scores=SCORES,
        **_with_defaults(form, values=blank, errors={}),
    )


@router.get("/q/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rating_page(token: str, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    """The form: the item, the unit, the staff member of a window transaction, the levels of the unit's profile."""
    invited = await _invited(session, token)
    if isinstance(invited, HTMLResponse):
        return invited
    csrf = new_csrf()
    response = _form_page(invited, csrf)
    set_csrf(response, settings, CSRF_COOKIE, "/q/", csrf)
    return response


@router.post("/q/{token}", response_class=HTMLResponse, include_in_schema=False)
async def rate(
    token: str, request: Request, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> HTMLResponse:
    """Write the ratings through the shared intake; show each wrong field again with what was typed."""
    invited = await _invited(session, token)
    if isinstance(invited, HTMLResponse):
        return invited
    form = await request.form()
    csrf = form_text(form, "csrf", 64)
    if not csrf_ok(request, settings, CSRF_COOKIE, csrf):
        return notice(403, "页面已过期", "页面已过期或来源无效，请重新打开评价链接后再提交。")
    if invited.follow_up and form_text(form, "follow_up", 8) != str(invited.made):
        # The rating form sent again, or a follow-up form sent twice: what it was for is done, never a new 追评.
        return _already_rated(410)
    read = read_form(form, invited.targets, questions_for(invited.record.service_channel), invited.policy)
    if read.errors:
        return _form_page(invited, csrf, 422, values=read.values, errors=read.errors)
    invitation = invited.invitation
    unit_name = invited.unit.name
    # Asked for as follow-ups; intake numbers them (models/rating_timing.py).
    ratings = [dataclasses.replace(r, follow_up=1) for r in read.ratings] if invited.follow_up else read.ratings

    def use_invitation(_accepted: list[RatingAccepted]) -> None:
        if invitation.used_at is None:
            invitation.used_at = utcnow()
            session.add(invitation)

    try:
        result = await accept_ratings(
            session, settings, temporal, invited.record, ratings, QR_SOURCE_SYSTEM, use_invitation,
            client=rater_client(client_address(request), request.headers.get("user-agent", "")),
        )  # fmt: skip
    except AlreadyRated:
        return _already_rated(409)
    except TimingRefused as refused:
        if refused.code == "rating_window_closed" and refused.closes_at is not None:
            return _window_closed(invited.record, invited.policy, refused.closes_at)
        return notice(409, "无法追评" if invited.follow_up else "无法评价", refused.message)
    if not any(accepted.case_id is not None for accepted in result.accepted):
        # A follow-up on a target with a case is kept on that case (its unit sees it), never a second case.
        words = "感谢您的追评！您的意见已记录，承办单位可以看到。" if invited.follow_up else ""
        return page("thanks.html.j2", 200, "感谢您的评价", bad=False, follow_up_words=words)
    first = read.ratings[0]
    return page(
        "thanks.html.j2",
        200,
        "评价已收到",
        bad=True,
        unit_name=unit_name,
        policy_name=result.policy.profile.name,
        steps=what_happens_next(result.policy, first.real_name, first.rater_phone, first.rater_email),
    )


def what_happens_next(policy: PinnedPolicy, real_name: bool, phone: str | None, email: str | None) -> list[str]:
    """A bad review's path in the rater's words, with the deadlines of the profile its case pinned."""
    profile = policy.profile

    def within(name: DeadlineName) -> str:
        return rule_text_zh(profile.deadline(name).within)

    steps = []
    if real_name or profile.anonymous.callback_required:
        steps.append(f"承办单位在 {within(DeadlineName.CALLBACK)}内与您联系回访，了解具体情况。")
    steps.append(f"承办单位在 {within(DeadlineName.VERIFICATION)}内核实情况。")
    steps.append(
        f"情况属实的，核实后 {within(DeadlineName.RECTIFICATION_IMMEDIATE)}内立行立改；问题复杂的列入整改台账，"
        f"最长 {within(DeadlineName.RECTIFICATION_LEDGER_MAX)}。诉求缺乏政策依据的，"
        f"{within(DeadlineName.EXPLANATION)}内向您解释说明。"
    )
    channels = "、".join(name for name, given in (("短信", phone), ("电子邮件", email)) if given)
    if channels:
        steps.append(
            f"整改或解释完成后 {within(DeadlineName.FEEDBACK)}内，办理结果通过{channels}告诉您。"
            f"请在 {within(DeadlineName.RATER_RESPONSE)}内通过其中的链接告诉我们是否满意；"
            f"不满意的，将重新交办（最多 {profile.max_reopen_rounds} 次）。"
        )
    else:
        steps.append("您没有留下联系方式：承办单位仍会核实和整改，但无法把办理结果告诉您。")
    return steps
