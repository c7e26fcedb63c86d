"""Raters and cases in every state for the retention tests, each rater with personal data in every place it lives.

Each rater has their own phone, name and email, rates one transaction of unit 2 or 3 (the demo seed's),
and the kind says what must happen to it: `due` kinds are anonymised by a run at `now`, the others are
kept whole. The personal data is planted where the system keeps it: the rating's encrypted columns,
its comment and answers, the fingerprint's keyed hashes, the timeline's texts, a notice's context, the
rater's link (sealed token, answer), the rater's step request (their address) and the record's
applicant contact; and a suspicion flag keyed by the phone.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from config import Settings
from models.case.records import Case, CaseEvent
from models.case.requests import CaseStepRequest
from models.case.vocabulary import Outcome, Stage
from models.db import Database
from models.notifications import NoticeChannel, NoticeStatus, Notification
from models.rater_links import RaterLink
from models.ratings import TAGS_ANSWER_KEY, Rating, RatingChannel, RatingLevel, RatingTarget
from models.services import ApplicantType, ServiceChannel, ServiceRecord, phone_check_digest
from models.suspicion.keys import client_key, content_key, phone_key
from models.suspicion.records import Detector, FlagStatus, RatingFingerprint, SuspicionFlag, SuspicionFlagRating

YEAR = timedelta(days=365)
SURNAMES = "赵钱孙李周吴郑王冯陈褚卫蒋沈韩杨朱秦尤许何吕施张"

# kind: (case stage or None, outcome, how long ago the case closed / the rating came, anonymised by the run)
KINDS: dict[str, tuple[Stage | None, Outcome | None, timedelta, bool]] = {
    "closed_old": (Stage.CLOSED, Outcome.SATISFIED, 4 * YEAR, True),
    "not_adopted_old": (Stage.NOT_ADOPTED, Outcome.NOT_ADOPTED, 4 * YEAR, True),
    "unsatisfied_old": (Stage.CLOSED, Outcome.UNSATISFIED, 3 * YEAR + timedelta(days=5), True),
    "closed_recent": (Stage.CLOSED, Outcome.SATISFIED, timedelta(days=100), False),
    "closed_nearly": (Stage.CLOSED, Outcome.CANNOT_RECTIFY, 3 * YEAR - timedelta(days=5), False),
    "rectification_old": (Stage.RECTIFICATION, None, 4 * YEAR, False),
    "verification_old": (Stage.VERIFICATION, None, 4 * YEAR, False),
    "appeal_review_old": (Stage.APPEAL_REVIEW, None, 4 * YEAR, False),
    "appeal_filing_old": (Stage.APPEAL_FILING, None, 4 * YEAR, False),
    "rater_response_old": (Stage.RATER_RESPONSE, None, 4 * YEAR, False),
    "uncased_old": (None, None, 2 * YEAR, True),
    "uncased_recent": (None, None, timedelta(days=100), False),
}


@dataclass(frozen=True)
class Rater:
    kind: str
    name: str
    phone: str
    email: str
    rating_id: int
    record_id: int
    case_id: int | None

    @property
    def due(self) -> bool:
        return KINDS[self.kind][3]


@dataclass
class Dataset:
    raters: list[Rater] = field(default_factory=list)
    flag_all_due: int = 0  # a same_phone flag whose ratings are all due: its key goes
    flag_mixed: int = 0  # a flag with a kept rating: its key stays

    def of(self, *kinds: str) -> list[Rater]:
        return [r for r in self.raters if r.kind in kinds]


class Builder:
    def __init__(self, db: Database, settings: Settings, now: datetime) -> None:
        self.db, self.key, self.now = db, settings.signing_key(), now
        self._numbers = itertools.count(1)

    async def rater(self, kind: str, unit_id: int) -> Rater:
        stage, outcome, ago, _ = KINDS[kind]
        n = next(self._numbers)
        name = SURNAMES[n % len(SURNAMES)] + "晓" + "一二三四五六七八九十"[n % 10]
        phone, email = f"139{n:08d}", f"rater{n}@example.com"
        at = self.now - ago - timedelta(days=20)  # the rating; its case closes `ago` before now
        async with self.db.session() as session:
            record = ServiceRecord(
                record_no=f"RET-{n:04d}", item_id=1, unit_id=unit_id, applicant_type=ApplicantType.INDIVIDUAL,
                service_channel=ServiceChannel.ONLINE, source_system="demo-hall", completed_at=at - timedelta(hours=3),
                applicant_phone=phone, applicant_email=email,
                applicant_phone_check=phone_check_digest(self.key, f"RET-{n:04d}", phone[-4:]),
            )  # fmt: skip
            session.add(record)
            await session.flush()
            assert record.id is not None
            level = RatingLevel.VERY_DISSATISFIED if stage else RatingLevel.SATISFIED
            comment = f"我是{name}，电话{phone}，窗口让我跑了三趟"
            answers = {"服务效率": 2, "补充说明": f"请联系{name} {email}", TAGS_ANSWER_KEY: ["5/01"]}
            rating = Rating(
                record_id=record.id, level=level, channel=RatingChannel.PC, target=RatingTarget.ITEM, answers=answers,
                comment=comment, real_name=True, rater_name=name, rater_phone=phone, rater_email=email,
                is_bad=stage is not None, source_system="demo-hall", submitted_at=at,
            )  # fmt: skip
            session.add(rating)
            await session.flush()
            assert rating.id is not None
            content, chars = content_key(self.key, comment, answers)
            session.add(
                RatingFingerprint(
                    rating_id=rating.id,
                    record_id=record.id,
                    unit_id=unit_id,
                    good=stage is None,
                    bad=stage is not None,
                    phone_key=phone_key(self.key, phone),
                    client_key=client_key(self.key, f"10.0.0.{n}\x00Mobile"),
                    content_key=content,
                    content_chars=chars,
                    source_system="demo-hall",
                    channel=RatingChannel.PC,
                    offset_seconds=3 * 3600,
                    submitted_at=at,
                )  # fmt: skip
            )
            case_id = await self._case(session, rating.id, unit_id, stage, outcome, at, name, phone) if stage else None
            await session.commit()
        return Rater(kind, name, phone, email, rating.id, record.id, case_id)

    async def _case(
        self, session: AsyncSession, rating_id: int, unit_id: int, stage: Stage, outcome: Outcome | None, at: datetime,
        name: str, phone: str,
    ) -> int:  # fmt: skip
        terminal = stage in (Stage.CLOSED, Stage.NOT_ADOPTED)
        closed_at = at + timedelta(days=20) if terminal else None
        case = Case(
            rating_id=rating_id, unit_id=unit_id, workflow_id=f"retention-case-{rating_id}", stage=stage,
            outcome=outcome, policy_code="yantai", policy_version=1, opened_at=at, closed_at=closed_at,
            updated_at=closed_at or at,
        )  # fmt: skip
        session.add(case)
        await session.flush()
        assert case.id is not None
        events: list[tuple[str, Stage, dict[str, Any]]] = [
            ("opened", Stage.ASSIGNED, {}),
            ("callback", Stage.VERIFICATION, {"reached": True, "note": f"已致电{name}（{phone}），核对身份证370602198001011234"}),
            ("verified", Stage.RECTIFICATION, {"verdict": "valid", "findings": f"{name}反映属实", "judgement": "reasonable"}),
            ("overdue", Stage.RECTIFICATION, {"deadline": "rectification_immediate", "rung": 1}),
            ("rectified", Stage.FEEDBACK, {"mode": "immediate", "measures": f"上门至幸福路12号3单元向{name}道歉"}),
            ("feedback_written", Stage.FEEDBACK, {"message": f"{name}您好，已增开窗口"}),
            ("rater_responded", Stage.CLOSED, {"satisfied": True, "comment": f"谢谢，我的电话{phone}"}),
        ]  # fmt: skip
        for number, (action, after, data) in enumerate(events, start=1):
            session.add(
                CaseEvent(
                    case_id=case.id,
                    event_key=f"{number:04d}-{action}",
                    stage=after,
                    action=action,
                    actor="system",
                    at=at + timedelta(hours=number),
                    data=data,
                )  # fmt: skip
            )
        link = RaterLink(
            case_id=case.id, round=1, purpose="feedback_response", token_hash=f"{rating_id:064d}",
            token_sealed=f"token-of-{rating_id}", expires_at=at + timedelta(days=10), used_at=at + timedelta(days=1),
            answer_satisfied=True, answer_comment=f"谢谢，我是{name}",
        )  # fmt: skip
        session.add(link)
        await session.flush()
        session.add_all(
            [
                Notification(
                    case_id=case.id,
                    kind="feedback",
                    channel=NoticeChannel.SMS,
                    recipient_ref="rater",
                    dedup_key=f"retention.case-{case.id}.feedback.sms.rater",
                    context={"message": f"{name}您好"},
                    status=NoticeStatus.SENT,
                    created_at=at,
                    sent_at=at,
                ),
                CaseStepRequest(
                    update_id=f"rater-{case.id}",
                    case_id=case.id,
                    requester=f"rater:{link.id}",
                    action="rater_response",
                    request_hash="0" * 64,
                    client="10.20.30.40",
                ),
                CaseStepRequest(
                    update_id=f"staff-{case.id}",
                    case_id=case.id,
                    requester="user:4",
                    action="accept",
                    request_hash="1" * 64,
                    client="10.9.9.9",
                ),
            ]  # fmt: skip
        )
        return case.id

    async def flag(self, raters: list[Rater], status: FlagStatus) -> int:
        """A same_phone flag over these raters' ratings (as if one phone had rated them all)."""
        async with self.db.session() as session:
            subject = phone_key(self.key, raters[0].phone)
            assert subject is not None
            flag = SuspicionFlag(
                detector=Detector.SAME_PHONE, subject=subject, status=status,
                open_key=f"same_phone:{subject}" if status == FlagStatus.OPEN else None, unit_id=2,
                reason="同一手机号评价多个办件", rating_count=len(raters), first_at=self.now, last_at=self.now,
            )  # fmt: skip
            session.add(flag)
            await session.flush()
            assert flag.id is not None
            session.add_all([SuspicionFlagRating(flag_id=flag.id, rating_id=r.rating_id) for r in raters])
            await session.commit()
            return flag.id


async def build(db: Database, settings: Settings, now: datetime, each: int = 3) -> Dataset:
    """`each` raters of every kind, alternately of units 2 and 3, and (from three each) two flags."""
    builder = Builder(db, settings, now)
    data = Dataset()
    for round_ in range(each):
        for kind in KINDS:
            data.raters.append(await builder.rater(kind, 2 + round_ % 2))
    if each < 3:
        return data
    data.flag_all_due = await builder.flag(data.of("closed_old")[:2], FlagStatus.OPEN)
    data.flag_mixed = await builder.flag([data.of("closed_old")[2], data.of("closed_recent")[0]], FlagStatus.DISMISSED)
    return data
