"""Patterns over many ratings at once, found by the sweep: a staff member's usual rate, fixed offsets, and channels.

A staff member's usual rate needs weeks of their ratings and a fixed offset needs a source system's
whole day, so neither belongs in the intake path. A channel a system cannot have needs no lookup at
all: intake checks it for each rating (`mismatch`), and the sweep looks again for what intake missed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from models.deadlines import rule_text_zh
from models.organisation import Staff
from models.services import ServiceChannel, ServiceRecord
from models.suspicion.flags import Finding
from models.suspicion.patterns import FP, MAX_ROWS
from models.suspicion.records import Detector, channel_label
from models.suspicion.rules import ChannelRule, SuspicionRules

RulesFor = Callable[[int], Awaitable[SuspicionRules]]  # a unit's thresholds

# A source system posting more than this on one channel in a window is judged on its latest ratings.
MAX_OFFSETS = 20_000


async def staff_rate(session: AsyncSession, rules_for: RulesFor, in_use: list[SuspicionRules], now: datetime
                     ) -> list[Finding]:  # fmt: skip
    """Staff members whose good ratings in the last period are far above their usual rate (刷好评)."""
    longest = max(r.staff_rate.period.as_timedelta() for r in in_use)
    fewest = min(r.staff_rate.min_ratings for r in in_use)
    busy = (
        await session.exec(
            select(FP.staff_id, FP.unit_id)
            .where(col(FP.staff_id).is_not(None), col(FP.good).is_(True))
            .where(col(FP.submitted_at) > now - longest, col(FP.submitted_at) <= now)
            .group_by(col(FP.staff_id), col(FP.unit_id))
            .having(func.count() >= fewest)
        )
    ).all()
    findings = []
    for staff_id, unit_id in busy:
        rule = (await rules_for(unit_id)).staff_rate
        period, baseline = rule.period.as_timedelta(), rule.baseline.as_timedelta()
        recent_start, baseline_start = now - period, now - period - baseline
        recent = (
            await session.exec(
                select(func.count()).where(
                    FP.staff_id == staff_id,
                    col(FP.good).is_(True),
                    col(FP.submitted_at) > recent_start,
                    col(FP.submitted_at) <= now,
                )
            )
        ).one()
        before = (
            await session.exec(
                select(func.count()).where(
                    FP.staff_id == staff_id,
                    col(FP.good).is_(True),
                    col(FP.submitted_at) > baseline_start,
                    col(FP.submitted_at) <= recent_start,
                )  # fmt: skip
            )
        ).one()
        usual = before * (period / baseline)
        if recent < max(rule.min_ratings, rule.factor * usual):
            continue
        ids = (
            await session.exec(
                select(FP.rating_id)
                .where(FP.staff_id == staff_id, col(FP.good).is_(True), col(FP.submitted_at) > recent_start)
                .where(col(FP.submitted_at) <= now)
                .order_by(col(FP.submitted_at).desc())
                .limit(MAX_ROWS)
            )
        ).all()
        staff = await session.get(Staff, staff_id)
        who = f"{staff.name}（工号 {staff.staff_no}）" if staff else f"#{staff_id}"
        span, window = rule_text_zh(rule.period), rule_text_zh(rule.baseline)
        usually = (
            f"此前 {window}平均每 {span} {usual:.1f} 条，为平常的 {recent / usual:.1f} 倍"
            if usual
            else f"此前 {window}没有好评"
        )
        reason = (
            f"工作人员{who}最近 {span}内获得 {recent} 条好评，{usually}"
            f"（阈值：平常的 {rule.factor:g} 倍，且不少于 {rule.min_ratings} 条）。"
        )
        findings.append(Finding(Detector.STAFF_RATE, str(staff_id), list(ids), reason, rule.min_ratings))
    return findings


async def constant_offset(session: AsyncSession, rules: SuspicionRules, now: datetime) -> list[Finding]:
    """Source systems whose ratings on a channel mostly come a fixed time after completion (a job, not people)."""
    rule = rules.constant_offset
    since = now - rule.within.as_timedelta()
    in_window = (col(FP.submitted_at) > since, col(FP.submitted_at) <= now)
    groups = (
        await session.exec(
            select(FP.source_system, FP.channel, func.count())
            .where(*in_window)
            .group_by(col(FP.source_system), col(FP.channel))
            .having(func.count() >= rule.ratings)
        )
    ).all()
    findings = []
    for system, channel, total in groups:
        rows = (
            await session.exec(
                select(FP.rating_id, FP.offset_seconds)
                .where(FP.source_system == system, FP.channel == channel, *in_window)
                .order_by(col(FP.submitted_at).desc())
                .limit(MAX_OFFSETS)
            )
        ).all()
        cluster = _largest_cluster(sorted(rows, key=lambda r: r[1]), rule.tolerance_seconds)
        judged = min(total, MAX_OFFSETS)
        if len(cluster) < rule.ratings or len(cluster) / judged < rule.share:
            continue
        offsets = sorted(offset for _id, offset in cluster)
        reason = (
            f"来源系统 {system} 最近 {rule_text_zh(rule.within)}内提交的 {judged} 条「{channel_label(channel)}」评价中，"
            f"{len(cluster)} 条（{len(cluster) / judged:.0%}）都在办结后约 {_duration(offsets[len(offsets) // 2])}提交，"
            f"彼此相差不超过 {offsets[-1] - offsets[0]} 秒（阈值：相差不超过 {rule.tolerance_seconds} 秒的"
            f"不少于 {rule.ratings} 条，且占 {rule.share:.0%} 以上）。"
        )
        subject = f"{system}/{channel}"
        findings.append(Finding(Detector.CONSTANT_OFFSET, subject, [i for i, _o in cluster], reason, rule.ratings))
    return findings


def _largest_cluster(rows: list[tuple[int, int]], tolerance: int) -> list[tuple[int, int]]:
    """The most (id, offset) rows, sorted by offset, whose offsets lie within `tolerance` of each other."""
    best: tuple[int, int] = (0, 0)
    start = 0
    for end in range(len(rows)):
        while rows[end][1] - rows[start][1] > tolerance:
            start += 1
        if end + 1 - start > best[1] - best[0]:
            best = (start, end + 1)
    return rows[best[0] : best[1]]


def _duration(seconds: int) -> str:
    sign, seconds = ("提前 " if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{hours} 小时" if hours else "",
        f"{minutes} 分" if minutes else "",
        f"{secs} 秒" if secs or not seconds else "",
    ]
    return sign + " ".join(p for p in parts if p)


def lacks(rule: ChannelRule, service_channel: ServiceChannel) -> list[str]:
    """The channels a system that registered a transaction handled this way cannot have."""
    return list(rule.window_system_lacks if service_channel == ServiceChannel.WINDOW else rule.online_system_lacks)


def mismatch(
    rules: SuspicionRules, rating_ids: list[int], source_system: str, channel: str, record: ServiceRecord
) -> Finding | None:
    """Ratings a system posted for its own transaction on a channel it cannot have (it rated them itself)."""
    rule = rules.channel_mismatch
    if source_system != record.source_system or channel not in lacks(rule, record.service_channel):
        return None
    kind = "窗口办件" if record.service_channel == ServiceChannel.WINDOW else "网上办件"
    missing = "、".join(channel_label(c) for c in lacks(rule, record.service_channel))
    reason = (
        f"来源系统 {source_system} 为它自己登记的{kind}提交了「{channel_label(channel)}」渠道的评价，"
        f"而登记{kind}的系统不具备{missing}渠道。"
    )
    return Finding(Detector.CHANNEL_MISMATCH, f"{source_system}/{channel}", rating_ids, reason, 1)


async def channel_mismatches(
    session: AsyncSession, rules_for: RulesFor, in_use: list[SuspicionRules], since: datetime, until: datetime
) -> list[Finding]:
    """Every mismatch in [since, until], one finding per system and channel, judged by each record's unit."""
    suspect = {
        c for r in in_use for c in (*r.channel_mismatch.window_system_lacks, *r.channel_mismatch.online_system_lacks)
    }
    rows = (
        await session.exec(
            select(FP.rating_id, FP.channel, ServiceRecord)
            .join(ServiceRecord, col(ServiceRecord.id) == FP.record_id)
            .where(col(FP.source_system) == col(ServiceRecord.source_system), col(FP.channel).in_(suspect))
            .where(col(FP.submitted_at) >= since, col(FP.submitted_at) <= until)
        )
    ).all()
    groups: dict[tuple[str, str], Finding] = {}
    for rating_id, channel, record in rows:
        found = mismatch(await rules_for(record.unit_id), [rating_id], record.source_system, str(channel), record)
        if found is not None:
            earlier = groups.get((record.source_system, str(channel)))
            ids = [*(earlier.rating_ids if earlier else []), rating_id]
            groups[(record.source_system, str(channel))] = Finding(found.detector, found.subject, ids, found.reason, 1)
    return list(groups.values())
