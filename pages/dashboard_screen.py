"""数据大屏: the full-screen overview of a region or a unit for a service hall's big display.

The same figures, filter and scope as the dashboard (pages/dashboard.py), for a signed-in person; dark, large
numbers, no links and no personal data (only counts, rates and unit names). The page's script fetches
`/dashboard/screen/data` every `refresh` seconds with the session and redraws the numbers and charts in
place, so the display never reloads (no flicker) and keeps the last figures when a fetch fails.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse

from api.deps import SessionDep, SettingsDep
from api.indicator_scope import indicator_user
from pages.dashboard import read_view
from pages.dashboard_filters import FilterError, FilterFormDep
from pages.render import render
from pages.routing import PageRoute
from pages.session import PageUser

router = APIRouter(route_class=PageRoute, include_in_schema=False)

SCREEN_TILES = (
    "ratings",
    "satisfaction_score",
    "good_rate",
    "bad_rate",
    "cases",
    "callback_rate",
    "on_time_rectification_rate",
    "overdue_open_cases",
)
# Every minute by default; more often than every 5 seconds only loads the database for a display nobody reads faster.
REFRESH_DEFAULT, REFRESH_MIN, REFRESH_MAX = 60, 5, 3600
_Refresh = Annotated[str, Query(max_length=10)]


def read_refresh(value: str) -> int:
    """The refresh interval in seconds; FilterError in Chinese when it is not a whole number in range."""
    text = value.strip()
    if not text:
        return REFRESH_DEFAULT
    if not (text.isascii() and text.isdigit() and REFRESH_MIN <= int(text) <= REFRESH_MAX):
        raise FilterError("刷新间隔", f"刷新间隔须为 {REFRESH_MIN}–{REFRESH_MAX} 之间的整数秒（收到“{value}”）")
    return int(text)


@router.get("/dashboard/screen", response_class=HTMLResponse)
async def screen(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser, form: FilterFormDep,
    refresh: _Refresh = "",
) -> HTMLResponse:  # fmt: skip
    """数据大屏: the key figures and charts, large and dark, redrawn in place every `refresh` seconds."""
    await indicator_user(user)
    try:
        seconds = read_refresh(refresh)
    except FilterError as exc:
        return render(request, "dashboard/screen.html.j2", 422, title="数据大屏", view=None, error=exc.message)
    view, error, status = await read_view(session, settings, user, form, SCREEN_TILES)
    if view is None:
        return render(request, "dashboard/screen.html.j2", status, title="数据大屏", view=None, error=error)
    query = view.filter.query_string()
    return render(
        request, "dashboard/screen.html.j2", title="数据大屏", view=view, error="", data=view.data(links=False),
        data_url=f"/dashboard/screen/data?{query}", refresh=seconds, back=f"/dashboard?{query}",
    )  # fmt: skip


@router.get("/dashboard/screen/data")
async def screen_data(session: SessionDep, settings: SettingsDep, user: PageUser, form: FilterFormDep) -> JSONResponse:
    """The screen's figures as JSON for its refresh: tiles' texts and charts; an error as {"message": …}."""
    await indicator_user(user)
    view, error, status = await read_view(session, settings, user, form, SCREEN_TILES)
    body = view.data(links=False) if view is not None else {"message": error}
    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})
