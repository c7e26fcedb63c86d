"""The rows behind a dashboard figure (drill-down): the ratings, cases or transactions a count counted.

`/dashboard/list?subset=<count>&<the indicators API's filter>` draws the answer of the drill-down API's own
functions (api/indicator_lists.py: `list_ratings`, `list_service_records`), so the total is the count the
dashboard showed, in the same scope, and the rater is masked as in the API. A case count lists each case's
rating with a link to the case page.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import SessionDep
from api.indicator_lists import list_ratings, list_service_records
from api.indicator_scope import FilterQuery, indicator_user, parse_period
from api.params import MAX_OFFSET
from models.indicators.definitions import COUNT_BY_NAME, Members
from models.ratings import SERVICE_STAGE_LABELS_ZH, RatingTarget
from models.services import ServiceChannel
from pages.dashboard import scope_label
from pages.dashboard_figures import count_text
from pages.dashboard_filters import DashboardFilter
from pages.render import render
from pages.routing import PageRoute
from pages.session import PageUser

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PAGE_SIZE = 20
TARGET_LABELS_ZH = {RatingTarget.ITEM: "事项", RatingTarget.STAFF: "工作人员"}
SERVICE_CHANNEL_LABELS_ZH = {ServiceChannel.WINDOW: "窗口办理", ServiceChannel.ONLINE: "网上办理"}
_FIELD_LABELS_ZH = {"unit_id": "单位", "item_id": "事项", "staff_id": "工作人员", "include_subunits": "含下级单位"}
_Text = Annotated[str, Query(max_length=40)]


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(422, detail={"code": "bad_filter", "message": message})


def _id(value: str, name: str) -> int | None:
    """An id of the filter, or None; a value that is no id is a 422 naming the field in Chinese."""
    text = value.strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= 2_147_483_647):
        raise _unprocessable(f"{_FIELD_LABELS_ZH[name]}编号无效（收到“{value}”），请从数据看板上的数字进入。")
    return int(text)


@router.get("/dashboard/list", response_class=HTMLResponse)
async def drill_down_list(
    request: Request, session: SessionDep, user: PageUser,
    subset: Annotated[str, Query(max_length=64)] = "ratings",
    first: Annotated[str, Query(alias="from", max_length=40)] = "",
    last: Annotated[str, Query(alias="to", max_length=40)] = "",
    unit_id: _Text = "", include_subunits: _Text = "", region: _Text = "", item_id: _Text = "",
    staff_id: _Text = "", channel: _Text = "", target: _Text = "",
    page: Annotated[int, Query(ge=1, le=MAX_OFFSET // PAGE_SIZE)] = 1,
) -> HTMLResponse:  # fmt: skip
    """明细: one page of what a count counts, the total first; the filter and scope are the dashboard's."""
    await indicator_user(user)
    count = COUNT_BY_NAME.get(subset)
    if count is None:
        raise _unprocessable(f"没有名为“{subset}”的统计项，请从数据看板上的数字进入。")
    if include_subunits not in ("", "true", "false"):
        raise _unprocessable(f"含下级单位只能是 true 或 false（收到“{include_subunits}”）。")
    query = FilterQuery(
        first=first or None, last=last or None, unit_id=_id(unit_id, "unit_id"),
        include_subunits=include_subunits != "false", region=region or None, item_id=_id(item_id, "item_id"),
        staff_id=_id(staff_id, "staff_id"), channel=channel or None, target=target or None,
    )  # fmt: skip
    offset = (page - 1) * PAGE_SIZE
    items: list[Any]
    if count.members == Members.RATINGS:
        listed = await list_ratings(session, user, query, count.name, PAGE_SIZE, offset)
        kind, total, items = "ratings", listed.total, list(listed.items)
    else:
        records = await list_service_records(session, user, query, count.name, PAGE_SIZE, offset)
        kind, total, items = "records", records.total, list(records.items)
    back = DashboardFilter(
        "range", parse_period(query), region=region, unit_id=query.unit_id,
        include_subunits=query.include_subunits, channel=channel,
    )  # fmt: skip
    keep = {key: value for key, value in request.query_params.items() if key != "page"}
    return render(
        request, "dashboard/list.html.j2", title=f"{count.label}明细", count=count, kind=kind, total=total,
        total_text=count_text(total),
        items=items, page=page, pages=max(1, -(-total // PAGE_SIZE)), query=urlencode(keep),
        scope=await scope_label(session, user, back), period=back.period, back=f"/dashboard?{back.query_string()}",
        targets=TARGET_LABELS_ZH, stages=SERVICE_STAGE_LABELS_ZH, service_channels=SERVICE_CHANNEL_LABELS_ZH,
    )  # fmt: skip
