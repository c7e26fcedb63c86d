"""What every administrator page shares: the one admin check, and the API's refusals as form errors."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.datastructures import FormData

from api.deps import current_admin
from models.users import User
from pages.session import FormUser, PageUser


async def _admin_page(user: PageUser) -> User:
    # The API's own check: a page refuses exactly whom the API refuses (its 403, drawn as a page).
    return await current_admin(user)


async def _admin_form(user: FormUser) -> User:
    return await current_admin(user)


AdminPage = Annotated[User, Depends(_admin_page)]
AdminForm = Annotated[User, Depends(_admin_form)]


def form_text(form: FormData, name: str) -> str:
    """A posted text field, stripped; a missing field or a file is empty."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def flash_of(request: Request, messages: dict[str, str]) -> str:
    """The message a redirect after a post asked for (?done=…); only known messages, never echoed text."""
    return messages.get(request.query_params.get("done", ""), "")


async def refused(session: AsyncSession, admin: User, exc: HTTPException) -> tuple[str, str]:
    """(field, message) of an API refusal a form can show; anything else (403, 404) goes on to its error page.

    The API rolls back on some refusals, which expires what the session loaded; the signed-in admin is
    loaded again so the page can still draw who is signed in.
    """
    if exc.status_code not in (409, 422):
        raise exc
    await session.rollback()
    await session.refresh(admin)
    detail: dict[str, Any] = exc.detail if isinstance(exc.detail, dict) else {}
    return str(detail.get("field") or ""), str(detail.get("message") or exc.detail)


def _ctx(error: Any, key: str) -> Any:
    return (error.get("ctx") or {}).get(key, "")


# Pydantic's messages are English; each kind an administrator meets is said in Chinese here.
_BY_TYPE = {
    "missing": lambda e: "此项必填",
    "extra_forbidden": lambda e: "没有这个字段（拼写有误？）",
    "string_too_short": lambda e: "此项必填" if _ctx(e, "min_length") == 1 else f"至少 {_ctx(e, 'min_length')} 个字符",
    "string_too_long": lambda e: f"最多 {_ctx(e, 'max_length')} 个字符",
    "too_short": lambda e: f"至少 {_ctx(e, 'min_length')} 项",
    "too_long": lambda e: f"最多 {_ctx(e, 'max_length')} 项",
    "string_pattern_mismatch": lambda e: "格式不符合要求",
    "greater_than_equal": lambda e: f"不能小于 {_ctx(e, 'ge')}",
    "less_than_equal": lambda e: f"不能大于 {_ctx(e, 'le')}",
    "literal_error": lambda e: f"应为以下之一：{_ctx(e, 'expected')}",
    "enum": lambda e: f"应为以下之一：{_ctx(e, 'expected')}",
    "int_parsing": lambda e: "应为整数",
    "int_type": lambda e: "应为整数",
    "float_parsing": lambda e: "应为数字",
    "float_type": lambda e: "应为数字",
    "bool_parsing": lambda e: "应为 true 或 false",
    "bool_type": lambda e: "应为 true 或 false",
    "string_type": lambda e: "应为文本（用双引号括起）",
    "date_parsing": lambda e: "日期格式应为 YYYY-MM-DD",
    "date_from_datetime_parsing": lambda e: "日期格式应为 YYYY-MM-DD",
    "date_type": lambda e: "日期格式应为 YYYY-MM-DD",
    "time_parsing": lambda e: "时间格式应为 HH:MM",
    "time_type": lambda e: "时间格式应为 HH:MM",
    "list_type": lambda e: "应为列表 [ … ]",
    "dict_type": lambda e: "应为对象 { … }",
    "model_type": lambda e: "应为对象 { … }",
    "model_attributes_type": lambda e: "应为对象 { … }",
}

_EMPTY_MEANS_MISSING = {"string_pattern_mismatch", "literal_error", "enum", "int_parsing", "date_from_datetime_parsing"}

# Messages of the domain models' own checks (models/policy.py, models/deadlines.py, models/calendar.py).
_VALUE_ERRORS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"value is not a valid email address"), "邮箱地址无效"),
    (re.compile(r"levels must list each of (.+) exactly once"), r"评价等级须恰好列出以下每一项各一次：\1"),
    (re.compile(r"deadlines missing: (.+)"), r"缺少以下时限：\1"),
    (re.compile(r"escalation rungs must be numbered"), "督办升级的级别须依次为 1、2、……"),
    (re.compile(r"at least one level must be a bad review"), "至少要有一个等级算作差评"),
    (re.compile(r"reminders are set in natural time"), "提醒须用自然时间（h、m 或 d），不能用工作日"),
    (re.compile(r"escalation delays are natural time"), "升级间隔须用自然时间（h、m 或 d）"),
    (re.compile(r"office hours must open before they close"), "办公时间的开始须早于结束"),
    (
        re.compile(r"deadline (.+) is not of the form"),
        r'时限 \1 的格式应为 "<数字>wd"（工作日）、"<数字>d"、"<数字>h" 或 "<数字>m"，例如 "1wd"',
    ),
    (re.compile(r"dates outside (\d+): (.+)"), r"以下日期不在 \1 年内：\2"),
    (re.compile(r"dates listed as both holiday and workday: (.+)"), r"以下日期同时列为节假日和调休上班日：\1"),
    (re.compile(r"调休 workdays must be Saturdays or Sundays: (.+)"), r"调休上班日须为周六或周日，以下日期不是：\1"),
]


def message_zh(message: str) -> str:
    """A domain check's message in Chinese when it is one of the known ones; otherwise as it is."""
    message = message.removeprefix("Value error, ")
    for pattern, chinese in _VALUE_ERRORS:
        found = pattern.search(message)
        if found:
            return found.expand(chinese)
    return message


def error_list(exc: ValidationError, drop: int = 0) -> list[tuple[str, str]]:
    """(dotted field path, message) of each error; `drop` leading path parts are left off (a wrapper's name)."""
    found = []
    for error in exc.errors():
        path = ".".join(str(part) for part in error.get("loc", ())[drop:])
        kind = _BY_TYPE.get(error["type"])
        if error.get("input") == "" and error["type"] in _EMPTY_MEANS_MISSING:
            found.append((path, "此项必填"))  # an empty input or select, not a malformed value
        else:
            found.append((path, kind(error) if kind else message_zh(error["msg"])))
    return found


def field_errors(exc: ValidationError) -> dict[str, str]:
    """The first error of each top-level field (a form's input), by field name; "" holds the whole form's."""
    errors: dict[str, str] = {}
    for path, message in error_list(exc):
        errors.setdefault(path.split(".", 1)[0], message)
    return errors
