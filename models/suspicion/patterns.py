"""Count patterns: N or more transactions sharing a key within a window (same phone, client, staff, rater, text).

Each is one indexed lookup on a key the new rating carries, so intake runs them right after its
commit; the sweep runs the same patterns over every key busy enough, to catch what intake missed
(a crash after the commit, two ratings committed at the same moment). Both call `find`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.deadlines import CHINA_TZ, rule_text_zh
from models.organisation import Staff, Unit
from models.suspicion.flags import Finding
from models.suspicion.records import Detector, RatingFingerprint
from models.suspicion.rules import CountRule, SuspicionRules

FP = RatingFingerprint
# A key rated more often than this in one window is flagged on its latest ratings; enough to judge by.
MAX_ROWS = 500

Point = tuple[int, int, datetime]  # rating id, record id, submitted at


def moment(at: datetime) -> str:
    return at.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def dense(points: Sequence[Point], window: timedelta, threshold: int) -> tuple[list[int], int]:
    """The ratings in every stretch of `window` that holds `threshold` or more transactions; the most in one stretch.

    Transactions, not ratings: the item and the staff rating of one transaction count once.
    """
    ordered = sorted(points, key=lambda p: p[2])
    members: set[int] = set()
    best, end = 0, 0
    for start in range(len(ordered)):
        while end < len(ordered) and ordered[end][2] - ordered[start][2] <= window:
            end += 1
        stretch = ordered[start:end]
        records = len({p[1] for p in stretch})
        best = max(best, records)
        if records >= threshold:
            members.update(p[0] for p in stretch)
    return sorted(members), best


Words = Callable[[AsyncSession, tuple[Any, ...], CountRule, int], Awaitable[str]]


@dataclass(frozen=True)
class CountPattern:
    detector: Detector
    across_units: bool  # judged by the default profile (models/suspicion/in_force.py), else by the unit's
    keys: tuple[Any, ...]  # the fingerprint columns the ratings share
    rule: Callable[[SuspicionRules], CountRule]
    where: Callable[[SuspicionRules], list[ColumnElement[bool]]]  # which fingerprints take part
    applies: Callable[[RatingFingerprint, SuspicionRules], bool]  # the same, for one new fingerprint
    words: Words  # the pattern in Chinese, given its key values, rule and the most transactions in one window

    def values_of(self, fingerprint: RatingFingerprint) -> tuple[Any, ...] | None:
        values = tuple(getattr(fingerprint, column.key) for column in self.keys)
        return None if any(v is None for v in values) else values


async def _phone(_s: AsyncSession, _v: tuple[Any, ...], rule: CountRule, best: int) -> str:
    return f"同一手机号（以密钥散列比对，不保存号码）在 {rule_text_zh(rule.within)}内评价了 {best} 个办件（阈值 {rule.ratings} 个）"


async def _client(_s: AsyncSession, _v: tuple[Any, ...], rule: CountRule, best: int) -> str:
    return (
        f"同一终端（网络地址与浏览器，以密钥散列比对）在 {rule_text_zh(rule.within)}内评价了 {best} 个办件"
        f"（阈值 {rule.ratings} 个）"
    )


async def _staff(session: AsyncSession, values: tuple[Any, ...], rule: CountRule, best: int) -> str:
    staff = await session.get(Staff, values[0])
    who = f"{staff.name}（工号 {staff.staff_no}）" if staff else f"#{values[0]}"
    return f"工作人员{who}在 {rule_text_zh(rule.within)}内获得 {best} 条好评（阈值 {rule.ratings} 条）"


async def _repeated(session: AsyncSession, values: tuple[Any, ...], rule: CountRule, best: int) -> str:
    unit = await session.get(Unit, values[1])
    return (
        f"同一评价人（手机号以密钥散列比对）在 {rule_text_zh(rule.within)}内对{unit.name if unit else '同一单位'}"
        f"作出 {best} 次差评（阈值 {rule.ratings} 次）"
    )


async def _identical(_s: AsyncSession, _v: tuple[Any, ...], rule: CountRule, best: int) -> str:
    min_chars = getattr(rule, "min_chars", 1)
    return (
        f"{best} 个办件的评价在 {rule_text_zh(rule.within)}内文字评价（不少于 {min_chars} 个字）与各项评分完全相同"
        f"（阈值 {rule.ratings} 个）"
    )


def _min_chars(rules: SuspicionRules) -> int:
    return rules.identical_comment.min_chars


COUNT_PATTERNS = (
    CountPattern(Detector.SAME_PHONE, True, (col(FP.phone_key),), lambda r: r.same_phone, lambda r: [],
                 lambda fp, r: True, _phone),
    CountPattern(Detector.SAME_CLIENT, True, (col(FP.client_key),), lambda r: r.same_client, lambda r: [],
                 lambda fp, r: True, _client),
    CountPattern(Detector.STAFF_BURST, False, (col(FP.staff_id),), lambda r: r.staff_burst, lambda r: [col(FP.good).is_(True)],
                 lambda fp, r: fp.good, _staff),
    CountPattern(Detector.REPEATED_BAD, False, (col(FP.phone_key), col(FP.unit_id)), lambda r: r.repeated_bad,
                 lambda r: [col(FP.bad).is_(True)], lambda fp, r: fp.bad, _repeated),
    CountPattern(Detector.IDENTICAL_COMMENT, True, (col(FP.content_key),), lambda r: r.identical_comment,
                 lambda r: [col(FP.content_chars) >= _min_chars(r)], lambda fp, r: fp.content_chars >= _min_chars(r),
                 _identical),
)  # fmt: skip


async def find(
    session: AsyncSession, pattern: CountPattern, rules: SuspicionRules, values: tuple[Any, ...],
    since: datetime, until: datetime,
) -> Finding | None:  # fmt: skip
    """The pattern among the ratings with these key values submitted in [since, until], if it is there."""
    rule = pattern.rule(rules)
    conditions = [column == value for column, value in zip(pattern.keys, values, strict=True)]
    rows = (
        await session.exec(
            select(FP.rating_id, FP.record_id, FP.submitted_at)
            .where(*conditions, *pattern.where(rules), col(FP.submitted_at) >= since, col(FP.submitted_at) <= until)
            .order_by(col(FP.submitted_at).desc())
            .limit(MAX_ROWS)
        )
    ).all()
    points = [(rating_id, record_id, at) for rating_id, record_id, at in rows]
    members, best = dense(points, rule.window, rule.ratings)
    if not members:
        return None
    times = [at for rating_id, _record, at in points if rating_id in set(members)]
    reason = (
        f"{await pattern.words(session, values, rule, best)}。涉及 {len(members)} 条评价，"
        f"提交于 {moment(min(times))} 至 {moment(max(times))}。"
    )
    subject = "/".join(str(v) for v in values)
    return Finding(pattern.detector, subject, members, reason, rule.ratings)


async def busy_keys(
    session: AsyncSession, pattern: CountPattern, rules: SuspicionRules, since: datetime, until: datetime
) -> list[tuple[Any, ...]]:
    """Key values with enough transactions in [since, until] that the pattern may be among them."""
    rule = pattern.rule(rules)
    query = (
        select(*pattern.keys)
        .where(*[column.is_not(None) for column in pattern.keys], *pattern.where(rules))
        .where(col(FP.submitted_at) >= since, col(FP.submitted_at) <= until)
        .group_by(*pattern.keys)
        .having(func.count(func.distinct(FP.record_id)) >= rule.ratings)
    )
    rows = (await session.exec(query)).all()
    return [(row,) for row in rows] if len(pattern.keys) == 1 else [tuple(row) for row in rows]
