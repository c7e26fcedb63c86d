"""Drawing a page: one template environment, the navigation of each role, and the filters pages share."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from models.db import utcnow
from models.deadlines import CHINA_TZ, WorkdayCalendar
from models.roles import Role
from templating import template_environment

_env = template_environment("pages", escape="always")

ROLE_LABELS_ZH = {
    Role.ADMIN: "系统管理员",
    Role.SUPERVISOR: "督办人员",
    Role.UNIT_STAFF: "承办单位工作人员",
    Role.REVIEWER: "复核人员",
}


@dataclass(frozen=True)
class NavItem:
    href: str
    label: str


# What each role works on, first item first: where "/" sends them after signing in.
NAV: dict[Role, tuple[NavItem, ...]] = {
    Role.UNIT_STAFF: (
        NavItem("/cases", "待办工单"),
        NavItem("/cases?status=finished", "已办结"),
        NavItem("/root-cause", "根源整改"),
        NavItem("/dashboard", "数据看板"),
    ),
    Role.SUPERVISOR: (
        NavItem("/board", "督办看板"),
        NavItem("/ledger", "整改台账"),
        NavItem("/suspicious", "可疑评价"),
        NavItem("/concentrated", "差评集中"),
        NavItem("/root-cause", "根源整改"),
        NavItem("/rankings", "排名通报"),
        NavItem("/reports", "月度报告"),
        NavItem("/disclosures", "整改公开"),
        NavItem("/dashboard", "数据看板"),
        NavItem("/cases", "全部工单"),
    ),
    Role.REVIEWER: (NavItem("/reviews", "申诉复核"), NavItem("/reviews/decided", "已作决定")),
    Role.ADMIN: (
        NavItem("/admin/units", "单位"),
        NavItem("/admin/users", "用户"),
        NavItem("/admin/api-keys", "接入密钥"),
        NavItem("/admin/policies", "评价规则"),
        NavItem("/admin/calendar", "工作日历"),
        NavItem("/admin/upstream", "数据上报"),
        NavItem("/rankings", "排名通报"),
        NavItem("/reports", "月度报告"),
        NavItem("/dashboard", "数据看板"),
        NavItem("/cases", "工单"),
    ),
}


def home_of(role: Role) -> str:
    return NAV[role][0].href


def china_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC moment as people read it: China time."""
    return value.astimezone(CHINA_TZ).strftime(fmt) if value is not None else ""


def due_time(value: datetime | None) -> str:
    """A due moment as the rules say it: a deadline at midnight is "<the day before> 24:00" (that day counts)."""
    if value is None:
        return ""
    local = value.astimezone(CHINA_TZ)
    if (local.hour, local.minute, local.second) == (0, 0, 0):
        return f"{(local - timedelta(days=1)).strftime('%Y-%m-%d')} 24:00"
    return local.strftime("%Y-%m-%d %H:%M")


def time_left_zh(due: datetime | None, calendar: WorkdayCalendar, now: datetime | None = None) -> str:
    """Time left before a deadline in working days (工作日), as a unit counts it; overdue says by how much."""
    if due is None:
        return ""
    now = now or utcnow()
    # A deadline at midnight ends the day before: that day is the last one to work on it.
    today, due_day = now.astimezone(CHINA_TZ).date(), (due - timedelta(microseconds=1)).astimezone(CHINA_TZ).date()
    if due <= now:
        late = _workdays_between(due_day, today, calendar)
        return f"已超期 {late} 个工作日" if late else "已超期"
    if due_day == today:
        hours = max(1, int((due - now).total_seconds() // 3600))
        return f"今日到期（约 {hours} 小时）" if hours < 24 else "今日到期"
    left = _workdays_between(today, due_day, calendar)
    return f"剩余 {left} 个工作日" if left else "剩余不足 1 个工作日"


def _workdays_between(start: date, end: date, calendar: WorkdayCalendar) -> int:
    """Working days after `start`, up to and including `end`."""
    count, day = 0, start + timedelta(days=1)
    while day <= end and count < 1000:
        if calendar.is_workday(day)[0]:
            count += 1
        day += timedelta(days=1)
    return count


_env.filters["china_time"] = china_time
_env.filters["due_time"] = due_time


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page for the signed-in staff member (or the sign-in page), never cached."""
    user = getattr(request.state, "user", None)
    html = _env.get_template(template).render(
        user=user,
        role_label=ROLE_LABELS_ZH.get(user.role, "") if user else "",
        nav=NAV.get(user.role, ()) if user else (),
        path=request.url.path,
        csrf=getattr(request.state, "csrf", ""),
        **{"flash": "", "flash_kind": "ok", **context},
    )
    return HTMLResponse(html, status_code=status_code, headers={"Cache-Control": "no-store"})
