"""Anonymising one batch (匿名化): what goes, what stays, for ratings and for service records' applicant contact.

Goes: the rater's name, phone and email (encrypted columns), the keyed hashes that find a rater again
(the fingerprint's phone, client and content keys; a suspicion flag's subject once every rating behind
it is anonymised), the rater's address on the step requests they sent, the sealed link tokens, and in
every free text about the case (the rating's comment and answers, the timeline's data, the notices'
context, the rater's answer) whatever names the rater or looks like personal data, masked by the
redaction check (models/disclosure_check.py). Stays: everything the statistics read — level, channel,
target, stage, unit, item, times, codes, the adopted flag, real_name, the case's stages, outcome,
deadlines and events. The caller commits the batch as one transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.audit import audit
from models.case.records import Case, CaseEvent
from models.case.requests import CaseStepRequest
from models.disclosure_check import KnownRater, check_text
from models.notifications import Notification
from models.rater_links import RaterLink
from models.rating_invitations import RatingInvitation
from models.ratings import TAGS_ANSWER_KEY, Rating
from models.services import ServiceRecord
from models.suspicion.records import Detector, RatingFingerprint, SuspicionFlag, SuspicionFlagRating

# Detectors whose flag subject is a keyed hash of the rater's phone, client or words (models/suspicion/patterns.py).
_KEYED_SUBJECTS = (Detector.SAME_PHONE, Detector.SAME_CLIENT, Detector.REPEATED_BAD, Detector.IDENTICAL_COMMENT)
ANONYMISED_SUBJECT = "anonymised"
_TEXT_MAX = 2000  # the comment columns' length: a mask can be longer than the name it hides


def mask(value: Any, rater: KnownRater) -> Any:
    """Every string inside a JSON value with the rater and anything like personal data masked."""
    if isinstance(value, str):
        return check_text(value, rater).masked
    if isinstance(value, list):
        return [mask(item, rater) for item in value]
    if isinstance(value, dict):
        return {key: mask(item, rater) for key, item in value.items()}
    return value


def _masked_answers(answers: dict[str, Any], rater: KnownRater) -> dict[str, Any]:
    # The content tags are codes ("5/01") the figures and the national tables read: kept as they are.
    return {key: value if key == TAGS_ANSWER_KEY else mask(value, rater) for key, value in answers.items()}


async def anonymise_ratings(session: AsyncSession, rating_ids: list[int], now: datetime) -> int:
    """Anonymise these ratings and, for each that carries a case, the case's texts. Returns the cases masked."""
    if not rating_ids:
        return 0
    ratings = (await session.exec(select(Rating).where(col(Rating.id).in_(rating_ids)))).all()
    cases = {
        case.rating_id: case for case in (await session.exec(select(Case).where(col(Case.rating_id).in_(rating_ids))))
    }
    for rating in ratings:
        rater = KnownRater(rating.rater_name, rating.rater_phone, rating.rater_email)
        rating.comment = check_text(rating.comment, rater).masked[:_TEXT_MAX]
        rating.answers = _masked_answers(rating.answers, rater)
        rating.rater_name = rating.rater_phone = rating.rater_email = None
        rating.anonymised_at = now
        session.add(rating)
        case = cases.get(rating.id)  # type: ignore[arg-type]
        if case is not None:
            assert case.id is not None
            await _anonymise_case(session, case.id, rater)
    await session.exec(
        update(RatingFingerprint)
        .where(col(RatingFingerprint.rating_id).in_(rating_ids))
        .values(phone_key=None, client_key=None, content_key=None)
    )
    await session.flush()
    await _retire_flag_subjects(session, rating_ids)
    return len(cases)


async def _anonymise_case(session: AsyncSession, case_id: int, rater: KnownRater) -> None:
    for event in (await session.exec(select(CaseEvent).where(CaseEvent.case_id == case_id))).all():
        masked = mask(event.data, rater)
        if masked != event.data:
            event.data = masked
            session.add(event)
    for notice in (await session.exec(select(Notification).where(Notification.case_id == case_id))).all():
        masked = mask(notice.context, rater)
        if masked != notice.context:
            notice.context = masked
            session.add(notice)
    for link in (await session.exec(select(RaterLink).where(RaterLink.case_id == case_id))).all():
        link.token_sealed = None
        if link.answer_comment:
            link.answer_comment = check_text(link.answer_comment, rater).masked[:_TEXT_MAX]
        session.add(link)
    # The rater's own requests (their answers) kept the address they came from; staff's requests keep theirs.
    await session.exec(
        update(CaseStepRequest)
        .where(col(CaseStepRequest.case_id) == case_id, col(CaseStepRequest.requester).like("rater:%"))
        .values(client="")
    )


async def _retire_flag_subjects(session: AsyncSession, rating_ids: Iterable[int]) -> None:
    """A flag keyed by a phone, client or words loses its key once every rating behind it is anonymised."""
    flag_ids = (
        await session.exec(
            select(SuspicionFlagRating.flag_id).where(col(SuspicionFlagRating.rating_id).in_(list(rating_ids)))
        )
    ).all()
    if not flag_ids:
        return
    remaining = (
        select(func.count())
        .select_from(SuspicionFlagRating)
        .join(Rating, col(Rating.id) == SuspicionFlagRating.rating_id)
        .where(SuspicionFlagRating.flag_id == SuspicionFlag.id, col(Rating.anonymised_at).is_(None))
        .scalar_subquery()
    )
    flags = (
        await session.exec(
            select(SuspicionFlag).where(
                col(SuspicionFlag.id).in_(set(flag_ids)),
                col(SuspicionFlag.detector).in_(_KEYED_SUBJECTS),
                col(SuspicionFlag.subject) != ANONYMISED_SUBJECT,
                remaining == 0,
            )
        )
    ).all()
    for flag in flags:
        flag.subject = ANONYMISED_SUBJECT
        if flag.open_key is not None:
            # Still unique, and no pattern a detector finds can name it again.
            flag.open_key = f"{flag.detector.value}:{ANONYMISED_SUBJECT}:{flag.id}"
        session.add(flag)


async def erase_applicant_contacts(session: AsyncSession, record_ids: list[int]) -> None:
    """Erase the applicant's contact and phone check from these records, and their invitations' sealed tokens."""
    if not record_ids:
        return
    await session.exec(
        update(ServiceRecord)
        .where(col(ServiceRecord.id).in_(record_ids))
        .values(applicant_phone=None, applicant_email=None, applicant_phone_check=None)
    )
    await session.exec(
        update(RatingInvitation).where(col(RatingInvitation.record_id).in_(record_ids)).values(token_sealed=None)
    )


def audit_batch(session: AsyncSession, action: str, target_type: str, ids: list[int], **counts: int) -> None:
    """One audit row for a batch: which rows, never what they held."""
    audit(
        session,
        actor="system",
        actor_role="retention",
        action=action,
        target_type=target_type,
        target_id=f"{ids[0]}-{ids[-1]}",
        reason="个人信息保存期限届满，按规定匿名化",
        after={"ids": ids, "count": len(ids), **counts},
    )
