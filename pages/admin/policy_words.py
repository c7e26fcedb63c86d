"""A policy profile as an administrator reads it, in Chinese; and what changed between two versions."""

from __future__ import annotations

import difflib
import json
from typing import Any

from models.case.vocabulary import DEADLINE_LABELS_ZH
from models.deadlines import rule_text_zh
from models.policy import DeadlineName, PolicyProfile
from models.ratings import LEVEL_LABELS_ZH, RatingLevel
from pages.words import NOTICE_KIND_LABELS_ZH

NOTIFY_LABELS_ZH = {
    "supervisor": "督办单位（承办单位的上级单位）",
    "management_office": "政务服务管理机构（单位树的顶级单位）",
}
SILENCE_LABELS_ZH = {"satisfied": "视为满意", "not_satisfied": "视为不满意"}
ORIGIN_LABELS_ZH = {"file": "配置文件导入", "api": "管理员修改"}


def profile_text(profile: PolicyProfile) -> str:
    """The profile as the edit form and the diff show it: JSON, two-space indent, Chinese unescaped."""
    return json.dumps(profile.model_dump(mode="json"), ensure_ascii=False, indent=2)


def _yes(value: bool) -> str:
    return "是" if value else "否"


def describe(profile: PolicyProfile) -> dict[str, Any]:
    """Every number of a profile in words, with the source each one names."""
    levels = [
        {
            "name": LEVEL_LABELS_ZH[RatingLevel(rule.level)],
            "label": rule.label,
            "score": f"{rule.score:g}",
            "bad": rule.bad,
        }
        for rule in profile.levels
    ]
    deadlines = [
        {
            "name": DEADLINE_LABELS_ZH[name],
            "key": name.value,
            "within": rule_text_zh(rule.within),
            "reminders": "、".join(f"截止前 {rule_text_zh(spec)}" for spec in rule.remind_before) or "不提醒",
            "source": rule.source,
        }
        for name in DeadlineName
        if (rule := profile.deadlines.get(name)) is not None
    ]
    rungs = [
        {
            "rung": rung.rung,
            "notify": NOTIFY_LABELS_ZH.get(rung.notify, rung.notify),
            "when": f"超期 {rule_text_zh(rung.after_overdue)}后" if rung.after_overdue else "一超期即通知",
            "source": rung.source,
        }
        for rung in profile.escalation
    ]
    hours = profile.office_hours
    held = "、".join(NOTICE_KIND_LABELS_ZH.get(kind, kind) for kind in hours.applies_to)
    rating = profile.rating
    facts = [
        ("重新交办次数上限", f"{profile.max_reopen_rounds} 次", profile.max_reopen_source),
        ("评价人逾期未答复", SILENCE_LABELS_ZH[profile.rater_silence_outcome], profile.rater_silence_source),
        ("匿名差评须回访", _yes(profile.anonymous.callback_required), profile.anonymous.source),
        ("匿名差评可反馈", _yes(profile.anonymous.feedback_possible), profile.anonymous.source),
        ("补充评价期限", f"办结后 {rule_text_zh(rating.supplementary)}", rating.source),
        ("短信邀评", f"办结 {rule_text_zh(rating.invitation_after)}后仍未评价的，发送短信邀请", rating.source),
        (
            "追评次数",
            f"{rating.follow_up_ratings} 次，首次评价后 {rule_text_zh(rating.follow_up_within)}内",
            rating.source,
        ),
        (
            "默认评价",
            f"办结 {rule_text_zh(rating.default_after)}后仍未评价的，记为“{profile.level(rating.default_level).label}”"
            if rating.default_after and rating.default_level
            else "不设默认评价",
            rating.source,
        ),
        ("复核人员可见评价人身份", _yes(profile.reviewers_see_rater_identity), ""),
        (
            "办公时间",
            f"工作日 {hours.opens:%H:%M}–{hours.closes:%H:%M}；"
            + (f"此外的{held}顺延至下一个办公时间发出" if held else "任何通知都不顺延"),
            hours.source,
        ),
    ]
    return {"levels": levels, "deadlines": deadlines, "rungs": rungs, "facts": facts}


def _flatten(value: Any, path: str, into: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{path}.{key}" if path else str(key), into)
    elif isinstance(value, list) and value and any(isinstance(item, dict | list) for item in value):
        for index, item in enumerate(value):
            _flatten(item, f"{path}[{index}]", into)
    else:
        into[path] = json.dumps(value, ensure_ascii=False)


def changed_fields(old: PolicyProfile, new: PolicyProfile) -> list[tuple[str, str, str]]:
    """(field path, old value, new value) of each value that differs; "" where a side has none."""
    before: dict[str, str] = {}
    after: dict[str, str] = {}
    _flatten(old.model_dump(mode="json"), "", before)
    _flatten(new.model_dump(mode="json"), "", after)
    paths = list(after) + [path for path in before if path not in after]
    return [(p, before.get(p, ""), after.get(p, "")) for p in paths if before.get(p) != after.get(p)]


def unified_diff(old_text: str, new_text: str, old_name: str, new_name: str) -> list[tuple[str, str]]:
    """(kind, line) of a unified diff, kind being file, hunk, add, del or same; the template escapes lines."""
    lines = []
    for line in difflib.unified_diff(
        old_text.splitlines(), new_text.splitlines(), old_name, new_name, lineterm="", n=3
    ):
        if line.startswith(("+++", "---")):
            kind = "file"
        elif line.startswith("@@"):
            kind = "hunk"
        else:
            kind = {"+": "add", "-": "del"}.get(line[:1], "same")
        lines.append((kind, line))
    return lines
