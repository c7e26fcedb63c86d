"""The working-day calendar (工作日历): a year's holidays and 调休 workdays, and loading or correcting a year."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import select

from api.calendar import get_calendar_year, load_calendar_year
from api.deps import SessionDep, TemporalDep
from api.params import MAX_YEAR, MIN_YEAR, Year
from models.calendar import CalendarYear, CalendarYearBody
from models.db import utcnow
from models.deadlines import CHINA_TZ
from models.users import User
from pages.admin.common import AdminForm, AdminPage, error_list, form_text, message_zh, refused
from pages.render import render
from pages.routing import PageRoute

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_WEEKDAYS_ZH = "一二三四五六日"
_LISTS = ("holidays", "workdays")


def _day(d: date) -> str:
    return f"{d.month} 月 {d.day} 日（周{_WEEKDAYS_ZH[d.weekday()]}）"


def by_month(holidays: list[date], workdays: list[date]) -> list[tuple[int, list[str], list[str]]]:
    """(month, holidays, workdays) of each month that has either."""
    months: dict[int, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for d in sorted(holidays):
        months[d.month][0].append(_day(d))
    for d in sorted(workdays):
        months[d.month][1].append(_day(d))
    return [(month, *months[month]) for month in sorted(months)]


def _lines(text: str) -> tuple[list[str], list[int]]:
    """The first word of each non-empty line (a date may be followed by a note), and its line number."""
    dates, numbers = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            dates.append(line.split()[0])
            numbers.append(number)
    return dates, numbers


def _flash(request: Request, year: int) -> str:
    if request.query_params.get("done") != "loaded":
        return ""

    def count(name: str) -> int:
        value = request.query_params.get(name, "0")
        return int(value) if value.isdigit() and len(value) < 7 else 0

    message = f"已载入 {year} 年日历。"
    if count("recomputed"):
        message += f"已重算 {count('recomputed')} 件工单的暂定时限。"
    if count("failed"):
        message += f"{count('failed')} 件工单暂未能重算（办理流程服务暂不可用），请稍后再次载入本年日历。"
    return message


async def _page(
    request: Request,
    session: SessionDep,
    admin: User,
    year: int,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    shown = await get_calendar_year(year, session, admin)
    loaded = await session.get(CalendarYear, year)
    this_year = utcnow().astimezone(CHINA_TZ).year
    loaded_years = set((await session.exec(select(CalendarYear.year))).all())
    years = sorted({*range(this_year - 1, this_year + 3), *loaded_years, year})
    current = {
        "holidays": "\n".join(d.isoformat() for d in shown.holidays),
        "workdays": "\n".join(d.isoformat() for d in shown.workdays),
        "source": loaded.source if loaded else "",
    }
    return render(
        request,
        "admin/calendar.html.j2",
        status_code=status_code,
        title=f"工作日历 {year} 年",
        year=year,
        years=[(y, f"{y} 年") for y in years],
        shown=shown,
        loaded=loaded,
        months=by_month(shown.holidays, shown.workdays),
        values=values or current,
        errors=errors or {},
        flash=_flash(request, year),
    )


YearQuery = Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR, description="the year shown; omitted: this year")]


@router.get("/admin/calendar", response_class=HTMLResponse)
async def calendar_page(
    request: Request, session: SessionDep, admin: AdminPage, year: YearQuery = None
) -> HTMLResponse:
    """A year's holidays and 调休 workdays as they are in force, and the form to load or correct it."""
    return await _page(request, session, admin, year or utcnow().astimezone(CHINA_TZ).year)


@router.post("/admin/calendar/{year}", response_class=HTMLResponse)
async def load_calendar_from_page(
    request: Request, year: Year, session: SessionDep, temporal: TemporalDep, admin: AdminForm
) -> Response:
    """Load or replace a year through the API's function (its checks, its audit, its recompute of deadlines)."""
    form = await request.form()
    values = {name: form_text(form, name) for name in (*_LISTS, "source")}
    parsed = {name: _lines(values[name]) for name in _LISTS}
    try:
        body = CalendarYearBody.model_validate(
            {"holidays": parsed["holidays"][0], "workdays": parsed["workdays"][0], "source": values["source"]}
        )
        result = await load_calendar_year(year, body, request, session, temporal, admin)
    except ValidationError as exc:
        return await _page(request, session, admin, year, status_code=422, values=values, errors=_errors(exc, parsed))
    except HTTPException as exc:
        _field, message = await refused(session, admin, exc)
        # The API names one field for dates of either list; the message itself lists the dates.
        errors = {"": message_zh(message)}
        return await _page(request, session, admin, year, status_code=exc.status_code, values=values, errors=errors)
    query = f"year={year}&done=loaded&recomputed={result.cases_recomputed}&failed={len(result.cases_failed)}"
    return RedirectResponse(f"/admin/calendar?{query}", status_code=303)


def _errors(exc: ValidationError, parsed: dict[str, Any]) -> dict[str, str]:
    """Each list's errors by the line they are on; the whole form's (a weekday as 调休 workday) apart."""
    found: dict[str, list[str]] = defaultdict(list)
    for error, (path, message) in zip(exc.errors(), error_list(exc), strict=True):
        loc = error.get("loc", ())
        if len(loc) == 2 and loc[0] in _LISTS and isinstance(loc[1], int):
            found[str(loc[0])].append(f"第 {parsed[str(loc[0])][1][loc[1]]} 行：{message}")
        elif not path and message.startswith("调休"):
            found["workdays"].append(message)  # the model's own check of the workdays list
        else:
            found[path.split(".", 1)[0]].append(message)
    return {name: "；".join(messages) for name, messages in found.items()}
