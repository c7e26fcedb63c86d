"""数据看板: the key figures of a period for supervisors, the management office and units, with drill-down.

Who sees what is the indicators API's scope (api/indicator_scope.py): a unit's staff their own unit, a
supervisor their unit's subtree, an administrator everything; reviewers none. The figures are the reports of
models/indicators/report.py for the filter the person chose (the same function `GET /api/v1/indicators`
answers with), so the page and the API agree; every count links to `/dashboard/list`, the rows behind it.
The full-screen overview for a hall's display (数据大屏) is pages/dashboard_screen.py.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.deps import SessionDep, SettingsDep
from api.indicator_scope import indicator_user, resolve
from config import Settings
from models.indicators.definitions import Dimension
from models.indicators.report import build_report
from models.organisation import Region, Unit
from models.roles import Role
from models.suspicion.records import CHANNEL_LABELS_ZH, channel_label
from models.users import User
from pages.dashboard_figures import (
    Chart,
    Tile,
    channels_chart,
    levels_chart,
    rungs_chart,
    tiles,
    trend_chart,
    units_chart,
)
from pages.dashboard_filters import (
    PERIOD_LABELS_ZH,
    DashboardFilter,
    FilterError,
    FilterForm,
    FilterFormDep,
    read_filter,
)
from pages.render import china_time, render
from pages.routing import PageRoute
from pages.session import PageUser
from pages.supervision import unit_choices

router = APIRouter(route_class=PageRoute, include_in_schema=False)

DASHBOARD_TILES = (
    "ratings",
    "satisfaction_score",
    "good_rate",
    "bad_rate",
    "rating_rate",
    "active_rating_rate",
    "callback_rate",
    "on_time_rectification_rate",
    "rectification_satisfaction_rate",
    "overdue_open_cases",
)


@dataclass
class DashboardView:
    """What a dashboard shows for one filter: whose figures, as of when, the tiles and the charts."""

    filter: DashboardFilter
    scope_label: str
    as_of: datetime
    tiles: list[Tile]
    charts: list[Chart]

    def data(self, links: bool = True) -> dict[str, Any]:
        """The figures as JSON for the page's script: the charts, and the tiles' texts for a refresh.

        Without links (the display screen) a chart opens nothing: its points carry no list to open.
        """
        charts = [asdict(chart) for chart in self.charts]
        if not links:
            for chart in charts:
                chart["category_links"] = [None] * len(chart["categories"])
                for series in chart["series"]:
                    series["links"] = [None] * len(series["values"])
        return {
            "as_of": china_time(self.as_of, "%Y-%m-%d %H:%M:%S"),
            "scope": self.scope_label,
            "period": self.filter.label,
            "tiles": [
                {"name": t.name, "text": t.text, "note": t.note, "parts": [[p.name, p.text] for p in t.parts]}
                for t in self.tiles
            ],
            "charts": charts,
        }


def dashboard_href(flt: DashboardFilter, filters: dict[str, str]) -> str:
    """The dashboard narrowed to a group of a report (a unit of the ranking), the period kept as chosen."""
    unit = filters.get("unit_id")
    narrowed = replace(
        flt,
        unit_id=int(unit) if unit else flt.unit_id,
        include_subunits=filters.get("include_subunits") != "false",
    )
    return f"/dashboard?{narrowed.query_string()}"


async def load_view(
    session: AsyncSession, user: User, flt: DashboardFilter, tile_names: tuple[str, ...], rollup_max_age: timedelta
) -> DashboardView:
    """The reports behind a dashboard, in the caller's scope: by day or month (whose total makes the tiles),
    by channel and by subunit. A filter outside the scope or naming nothing known raises the API's 403 / 422.

    Read as the API reads them: from the rollup of counts when it was refreshed at most `rollup_max_age` ago
    (HCP_INDICATOR_ROLLUP_MAX_AGE_SECONDS), else from the raw tables; a display polling every minute at ten
    million ratings must not recount them each time.
    """
    dimension = flt.trend_dimension
    resolved = await resolve(session, user, flt.query(), dimension)
    scoped, roots = resolved.filter, resolved.subunit_roots
    trend = await build_report(session, scoped, dimension, roots, drill_down=False, rollup_max_age=rollup_max_age)
    channels = await build_report(
        session, scoped, Dimension.CHANNEL, roots, drill_down=False, rollup_max_age=rollup_max_age
    )
    units = await build_report(
        session, scoped, Dimension.SUBUNIT, roots, drill_down=False, rollup_max_age=rollup_max_age
    )
    charts = [trend_chart(trend, by_month=dimension == Dimension.MONTH), levels_chart(trend), channels_chart(channels)]
    if len(units.groups) > 1:  # a ranking of one unit ranks nothing
        charts.append(units_chart(units, lambda filters: dashboard_href(flt, filters)))
    charts.append(rungs_chart(trend))
    return DashboardView(flt, await scope_label(session, user, flt), trend.as_of, tiles(trend, tile_names), charts)


async def scope_label(session: AsyncSession, user: User, flt: DashboardFilter) -> str:
    """Whose figures these are, in words: "烟台市市场监督管理局（含下级单位） · 评价渠道：二维码"."""
    parts = []
    if flt.unit_id is not None:
        unit = await session.get(Unit, flt.unit_id)
        parts.append(f"{unit.name if unit else flt.unit_id}{'（含下级单位）' if flt.include_subunits else '（本级）'}")
    elif user.role == Role.ADMIN:
        parts.append("全部单位")
    elif user.unit_id is not None:
        unit = await session.get(Unit, user.unit_id)
        name = unit.name if unit else str(user.unit_id)
        parts.append(f"{name}（含下级单位）" if user.role == Role.SUPERVISOR else name)
    if flt.region:
        region = (await session.exec(select(Region.name).where(Region.code == flt.region))).first()
        parts.append(f"行政区划：{region or flt.region}")
    if flt.channel:
        parts.append(f"评价渠道：{channel_label(flt.channel)}")
    return " · ".join(parts)


async def filter_choices(session: AsyncSession, user: User) -> dict[str, list[tuple[str, str]]]:
    """The options of the filter form: the periods, and the units and regions of the caller's scope, the channels."""
    units = await unit_choices(session, user)
    regions = select(Region.code, Region.name).order_by(col(Region.code))
    if user.role != Role.ADMIN:
        ids = [unit_id for unit_id, _name in units]
        regions = regions.where(col(Region.id).in_(select(Unit.region_id).where(col(Unit.id).in_(ids))))
    return {
        "periods": list(PERIOD_LABELS_ZH.items()),
        "units": [(str(unit_id), name) for unit_id, name in units],
        "regions": [(code, f"{name}（{code}）") for code, name in (await session.exec(regions)).all()],
        "channels": [(channel.value, label) for channel, label in CHANNEL_LABELS_ZH.items()],
    }


def error_message(exc: HTTPException) -> str:
    detail = exc.detail
    return str(detail.get("message", "")) if isinstance(detail, dict) else str(detail or "")


async def read_view(
    session: AsyncSession, settings: Settings, user: User, form: FilterForm, tile_names: tuple[str, ...]
) -> tuple[DashboardView | None, str, int]:
    """The view for the form, or None with the Chinese message and the status saying why not (422, 403)."""
    try:
        flt = read_filter(form)
        max_age = timedelta(seconds=settings.indicator_rollup_max_age_seconds)
        return await load_view(session, user, flt, tile_names, max_age), "", 200
    except FilterError as exc:
        return None, exc.message, 422
    except HTTPException as exc:
        if exc.status_code not in (403, 422):
            raise
        return None, error_message(exc), exc.status_code


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard(
    request: Request, session: SessionDep, settings: SettingsDep, user: PageUser, form: FilterFormDep
) -> HTMLResponse:
    """数据看板: key figures with their definitions, each count a link to its rows; charts with tables beside."""
    await indicator_user(user)
    view, error, status = await read_view(session, settings, user, form, DASHBOARD_TILES)
    values = view.filter.form() if view is not None else form.values()
    screen_query = view.filter.query_string() if view is not None else ""
    return render(
        request, "dashboard/dashboard.html.j2", status_code=status, title="数据看板", view=view, error=error,
        form=values, choices=await filter_choices(session, user), screen_query=screen_query,
        data=view.data() if view is not None else {},
    )  # fmt: skip
