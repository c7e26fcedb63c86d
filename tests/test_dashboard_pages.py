"""The dashboard (数据看板), its drill-down lists and the display screen (数据大屏), over HTTP on both databases.

The figures on the pages must be the indicators API's for the same filter and caller; each number that is a
link must open a list whose total is that number; a unit sees only its own figures; a bad filter is said in
Chinese on the page. The datasets are the hand-counted ones of the indicator tests
(tests/support/indicator_datasets.py).
"""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any

import httpx
import pytest

from models.db import Database
from models.indicators.definitions import INDICATOR_BY_NAME
from models.indicators.periods import china_today
from models.ratings import RatingLevel
from pages.dashboard import DASHBOARD_TILES
from pages.dashboard_screen import SCREEN_TILES
from pages.render import china_time
from runtime.refresh_indicators import refresh_once
from runtime.seed import DemoCredentials
from tests.support.http import RATER, bad_rating, login
from tests.support.indicator_data import RSJ, SCJ, cn, report, rows
from tests.support.indicator_datasets import cases, february
from tests.support.pages import page_login

FEB = {"from": "2025-02-01", "to": "2025-02-28"}
FEB_PAGE = {"period": "range", **FEB}


# ---- reading the pages -------------------------------------------------------------------------


def shown_figures(page: str) -> dict[str, str]:
    """Each tile's figure as shown, by name."""
    return {name: html.unescape(text) for name, text in re.findall(r'data-figure="(\w+)">([^<]*)<', page)}


def shown_parts(page: str) -> dict[str, str]:
    """The counts shown under the tiles (a ratio's numerator and denominator, the overdue rungs), by name."""
    return {name: html.unescape(text) for name, text in re.findall(r'data-part="(\w+)">([^<]*)<', page)}


def list_links(page: str) -> dict[str, str]:
    """Every drill-down link on the page and the number it shows."""
    found = re.findall(r'<a href="(/dashboard/list\?[^"]+)"><span class="n"[^>]*>([^<]*)</span>', page)
    return {html.unescape(href): text for href, text in found}


def embedded_data(page: str) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="dashboard-data"[^>]*>(.*?)</script>', page, re.S)
    assert found, page[:3000]
    return json.loads(found.group(1))


def alert_of(page: str) -> str:
    found = re.search(r'role="alert">([^<]*)<', page)
    return html.unescape(found.group(1)) if found else ""


def number(text: str) -> int:
    return int(text.replace(",", ""))


# ---- what the API says, formatted as a person reads it -----------------------------------------


def as_text(value: float | int | None, kind: str) -> str:
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f}%"
    if kind == "average":
        return f"{value:.2f}"
    return f"{value:,}"


def expected_tiles(group: dict[str, Any], names: tuple[str, ...]) -> tuple[dict[str, str], dict[str, str]]:
    """The tiles' figures and the counts under them, from a group of the API's report."""
    figures, parts = {}, {}
    for name in names:
        if name in INDICATOR_BY_NAME:
            indicator = group["indicators"][name]
            figures[name] = as_text(indicator["value"], indicator["kind"])
            for count in (indicator["numerator"], indicator["denominator"]):
                if count != "score_sum":
                    parts[count] = as_text(group["counts"][count]["value"], "count")
        else:
            figures[name] = as_text(group["counts"][name]["value"], "count")
            for rung in range(1, 6):
                if f"{name}_rung_{rung}" in group["counts"]:
                    parts[f"{name}_rung_{rung}"] = as_text(group["counts"][f"{name}_rung_{rung}"]["value"], "count")
    return figures, parts


def chart(data: dict[str, Any], chart_id: str) -> dict[str, Any]:
    return next(c for c in data["charts"] if c["id"] == chart_id)


def series(found: dict[str, Any], name: str) -> list[Any]:
    return next(s["values"] for s in found["series"] if s["name"] == name)


async def signed_in(api: httpx.AsyncClient, demo: DemoCredentials, username: str) -> dict[str, str]:
    """A page session in the client's cookie jar, and bearer headers for the API, of one person."""
    api.cookies.clear()
    signed = await page_login(api, username, demo.passwords[username])
    assert signed.status_code == 303, signed.text
    return await login(api, username, demo.passwords[username])


# ---- the tests ---------------------------------------------------------------------------------


async def test_the_dashboard_shows_the_indicators_api_figures(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
        await cases(r)
    bearer = await signed_in(offline_api, demo, "supervisor")
    variants: list[dict[str, str]] = [
        {},
        {"unit_id": str(SCJ)},
        {"unit_id": "1", "include_subunits": "no"},
        {"channel": "hall_tablet"},
        {"region": "370600"},
    ]
    for variant in variants:
        page = await offline_api.get("/dashboard", params={**FEB_PAGE, **variant})
        assert page.status_code == 200, (variant, page.text[:2000])
        api_params = {**FEB, **variant}
        if variant.get("include_subunits") == "no":
            api_params["include_subunits"] = "false"
        api = await report(offline_api, bearer, **api_params)
        figures, parts = expected_tiles(api["total"], DASHBOARD_TILES)
        assert shown_figures(page.text) == figures, variant
        assert shown_parts(page.text) == parts, variant

        data = embedded_data(page.text)
        counts = {name: count["value"] for name, count in api["total"]["counts"].items()}
        assert sum(series(chart(data, "trend"), "评价数")) == counts["ratings"]
        assert sum(series(chart(data, "trend"), "差评数")) == counts["bad_ratings"]
        assert len(chart(data, "trend")["categories"]) == 28  # every February day, a day without ratings too
        assert series(chart(data, "levels"), "评价数") == [counts[f"level_{level.value}"] for level in RatingLevel]
        assert sum(series(chart(data, "channels"), "评价数")) == counts["ratings"]
        assert series(chart(data, "rungs"), "当前处于该级") == [
            counts[f"overdue_open_cases_rung_{n}"] for n in range(1, 6)
        ]

    # Longer than two months: the trend is by month, every month of the range drawn, the API's month rows.
    quarter = {"from": "2025-01-01", "to": "2025-03-31"}
    page = await offline_api.get("/dashboard", params={"period": "range", **quarter})
    trend = chart(embedded_data(page.text), "trend")
    months = {
        group["key"]: group for group in (await report(offline_api, bearer, **quarter, group_by="month"))["groups"]
    }
    assert trend["title"] == "评价趋势（按月）" and trend["categories"] == ["2025-01", "2025-02", "2025-03"]
    assert series(trend, "评价数") == [
        months[m]["counts"]["ratings"]["value"] if m in months else 0 for m in trend["categories"]
    ]
    assert series(trend, "评价数")[0] >= 1 and series(trend, "评价数")[2] >= 1  # g1 in January, i1 on March 1st

    # Hand-counted (tests/test_indicator_cases.py): February's unit-2 cases of adopted ratings, two overdue now.
    page = await offline_api.get("/dashboard", params={**FEB_PAGE, "unit_id": str(SCJ)})
    assert shown_figures(page.text)["overdue_open_cases"] == "2"
    assert shown_parts(page.text)["overdue_open_cases_rung_1"] == "1"
    assert shown_parts(page.text)["overdue_open_cases_rung_2"] == "1"
    # The ranking: each unit below the office with the API's subunit figures, each opening its own dashboard.
    page = await offline_api.get("/dashboard", params=FEB_PAGE)
    ranking = chart(embedded_data(page.text), "units")
    below = await report(offline_api, bearer, **FEB, group_by="subunit")
    by_label = {group["label"]: group for group in below["groups"]}
    assert sorted(ranking["categories"]) == sorted(by_label)
    for label, ratings in zip(ranking["categories"], series(ranking, "评价数"), strict=True):
        assert ratings == by_label[label]["counts"]["ratings"]["value"]
    assert f"/dashboard?period=range&amp;from=2025-02-01&amp;to=2025-02-28&amp;unit_id={SCJ}" in page.text


async def test_every_number_opens_the_list_behind_it(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
        ids = await cases(r)
    await signed_in(offline_api, demo, "supervisor")
    page = await offline_api.get("/dashboard", params=FEB_PAGE)
    links = list_links(page.text)
    # Tiles, their parts, and the tables' counts: a link for every count that is not zero.
    assert len(links) > 40
    subsets = {re.search(r"subset=(\w+)", href).group(1) for href in links}  # type: ignore[union-attr]
    assert {"ratings", "bad_ratings", "rated_records", "called_back_cases", "overdue_open_cases_rung_2"} <= subsets
    for href, shown in links.items():
        listed = await offline_api.get(href)
        assert listed.status_code == 200, (href, listed.text[:2000])
        total = re.search(r'data-total="(\d+)"', listed.text)
        assert total is not None and int(total.group(1)) == number(shown), href
        # A page holds 20 rows at most; each row of a ratings list is one rating (a <tr> in the body).
        assert max(listed.text.count("<tr>") - 1, 0) == min(number(shown), 20), href
        assert "13900001111" not in listed.text  # the rater's phone is masked on every list

    called = await offline_api.get(next(href for href in links if "subset=called_back_cases" in href))
    assert "139****1111" in called.text
    assert {f'href="/cases/{ids["C1"]}"', f'href="/cases/{ids["C5"]}"'} <= set(
        re.findall(r'href="/cases/\d+"', called.text)
    )
    completed = await offline_api.get(next(href for href in links if "subset=completed_records" in href))
    assert "办结时间" in completed.text and "K-6" in completed.text  # transactions, C6's record among them

    # More than a page: the second page holds the rest, and the total stays the count.
    for n in range(25):
        async with rows(db) as r:
            await r.rating(await r.record(SCJ, cn(2, 20), no=f"MANY-{n:02d}"), RatingLevel.SATISFIED, cn(2, 20))
    page = await offline_api.get("/dashboard", params={**FEB_PAGE, "unit_id": str(SCJ)})
    many = next(h for h in list_links(page.text) if h.startswith("/dashboard/list?subset=ratings&"))
    expected = number(list_links(page.text)[many])
    assert expected > 40
    rows_listed = 0
    for page_number in (1, 2, 3):
        part = await offline_api.get(many + f"&page={page_number}")
        assert f'data-total="{expected}"' in part.text
        rows_listed += part.text.count("<tr>") - 1
    assert rows_listed == expected


async def test_a_unit_sees_only_its_own_figures(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
    bearer = await signed_in(offline_api, demo, "scj_staff")
    page = await offline_api.get("/dashboard", params=FEB_PAGE)
    assert page.status_code == 200
    mine = await report(offline_api, bearer, **FEB)
    assert shown_figures(page.text) == expected_tiles(mine["total"], DASHBOARD_TILES)[0]
    assert "人力资源" not in page.text  # no figure, ranking row or filter choice of the other unit
    supervisor = await login(offline_api, "supervisor", demo.passwords["supervisor"])
    everything = await report(offline_api, supervisor, **FEB)
    assert mine["total"]["counts"]["ratings"]["value"] < everything["total"]["counts"]["ratings"]["value"]

    outside = {**FEB_PAGE, "unit_id": str(RSJ)}
    for path in ("/dashboard", "/dashboard/screen", "/dashboard/list"):
        refused = await offline_api.get(path, params=outside)
        assert refused.status_code == 403, path
        assert f"单位 {RSJ} 不在您的查看范围内" in alert_of(refused.text), path
        assert "data-figure" not in refused.text and "/dashboard/list?" not in refused.text
    data = await offline_api.get("/dashboard/screen/data", params=outside)
    assert data.status_code == 403 and data.json() == {"message": f"单位 {RSJ} 不在您的查看范围内"}

    await signed_in(offline_api, demo, "reviewer")
    for path in ("/dashboard", "/dashboard/list", "/dashboard/screen"):
        refused = await offline_api.get(path)
        assert refused.status_code == 403 and "统计数据仅对承办单位、督办人员和系统管理员开放" in refused.text
    offline_api.cookies.clear()
    anonymous = await offline_api.get("/dashboard/screen/data")
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login")


@pytest.mark.parametrize("backend", ["postgresql"])
async def test_the_dashboard_reads_the_rollup_when_the_api_does(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
        await cases(r)
    built = await refresh_once(db)
    # A rating after the refresh: in the raw tables, not yet in the rollup.
    async with rows(db) as r:
        await r.rating(await r.record(SCJ, cn(2, 20), no="AFTER-REFRESH"), RatingLevel.SATISFIED, cn(2, 20))
    bearer = await signed_in(offline_api, demo, "supervisor")
    rolled = await report(offline_api, bearer, **FEB)
    assert rolled["source"] == "rollup"
    page = await offline_api.get("/dashboard", params=FEB_PAGE)
    assert shown_figures(page.text) == expected_tiles(rolled["total"], DASHBOARD_TILES)[0]
    assert f"数据截至 {china_time(built.as_of)}" in page.text  # the figures are as of the rollup's refresh
    screen = (await offline_api.get("/dashboard/screen/data", params=FEB_PAGE)).json()
    assert screen["as_of"] == china_time(built.as_of, "%Y-%m-%d %H:%M:%S")
    before = number(shown_figures(page.text)["ratings"])

    await refresh_once(db)
    page = await offline_api.get("/dashboard", params=FEB_PAGE)
    assert number(shown_figures(page.text)["ratings"]) == before + 1
    assert (
        shown_figures(page.text)
        == expected_tiles((await report(offline_api, bearer, **FEB))["total"], DASHBOARD_TILES)[0]
    )


@pytest.mark.parametrize(
    ("path", "params", "message", "status"),
    [
        ("/dashboard", {"period": "range", "from": "2025-02-30", "to": "2025-03-01"}, "开始日期须为日期", 422),
        (
            "/dashboard",
            {"period": "range", "from": "2025-03-01", "to": "2025-02-01"},
            "结束日期（2025-02-01）不能早于开始日期",
            422,
        ),
        ("/dashboard", {"period": "range", "from": "2025-02-01"}, "须同时填写开始日期和结束日期", 422),
        ("/dashboard", {"period": "range", "from": "2000-01-01", "to": "2025-01-01"}, "自定义时间段最长", 422),
        ("/dashboard", {"period": "decade"}, "时间只能选择：今日、本月、上月、自定义时间段（收到“decade”）", 422),
        ("/dashboard", {"channel": "fax"}, "评价渠道只能选择", 422),
        ("/dashboard", {"unit_id": "abc"}, "单位须从列表中选择（收到“abc”）", 422),
        ("/dashboard", {"unit_id": "999"}, "单位 999 不存在", 422),
        ("/dashboard", {"region": "999999"}, "行政区划 '999999' 不存在", 422),
        ("/dashboard", {"include_subunits": "maybe"}, "含下级单位只能选择", 422),
        ("/dashboard", {"from": "x" * 41}, "请求的参数无效", 422),
        ("/dashboard/screen", {"refresh": "1"}, "刷新间隔须为 5–3600 之间的整数秒（收到“1”）", 422),
        ("/dashboard/screen", {"channel": "fax"}, "评价渠道只能选择", 422),
        ("/dashboard/list", {"subset": "everything"}, "没有名为“everything”的统计项", 422),
        ("/dashboard/list", {"unit_id": "2x"}, "单位编号无效（收到“2x”）", 422),
        ("/dashboard/list", {"from": "2025-13-01", "to": "2025-02-01"}, "from 须为日期 YYYY-MM-DD", 422),
        ("/dashboard/list", {"channel": "fax", "subset": "ratings"}, "channel 不支持 'fax'", 422),
    ],
)
async def test_a_bad_filter_is_said_in_chinese_on_the_page(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, path: str, params: dict[str, str], message: str, status: int
) -> None:
    await signed_in(offline_api, demo, "supervisor")
    answer = await offline_api.get(path, params=params)
    assert answer.status_code == status, answer.text[:2000]
    assert answer.headers["content-type"].startswith("text/html")
    assert message in alert_of(answer.text), alert_of(answer.text)
    if path == "/dashboard" and "x" * 41 not in params.values():
        # The form again, the dates as typed, to correct them.
        assert 'action="/dashboard"' in answer.text
        for field in ("from", "to"):
            if field in params:
                assert f'name="{field}" value="{params[field]}"' in answer.text, field


async def test_the_period_presets_are_china_days(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    bearer = await signed_in(offline_api, demo, "supervisor")
    today = china_today()
    last_month_end = today.replace(day=1) - timedelta(days=1)
    presets = {
        "today": (today, today),
        "this_month": (today.replace(day=1), today),
        "last_month": (last_month_end.replace(day=1), last_month_end),
    }
    # Demo transactions are completed "now": this month's and today's figures have them.
    assert (
        await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    ).status_code == 201
    for preset, (first, last) in presets.items():
        page = await offline_api.get("/dashboard", params={"period": preset})
        assert page.status_code == 200, page.text[:2000]
        assert f"（{first} 至 {last}）" in page.text, preset
        api = await report(offline_api, bearer, **{"from": first.isoformat(), "to": last.isoformat()})
        assert shown_figures(page.text) == expected_tiles(api["total"], DASHBOARD_TILES)[0], preset
    default = await offline_api.get("/dashboard")
    assert shown_figures(default.text) == shown_figures(
        (await offline_api.get("/dashboard", params={"period": "this_month"})).text
    )
    assert shown_figures(default.text)["ratings"] == "1"


async def test_the_screen_shows_the_same_figures_refreshes_them_and_holds_no_personal_data(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    async with rows(db) as r:
        await february(r)
        await cases(r)
    bearer = await signed_in(offline_api, demo, "supervisor")
    rated = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert rated.status_code == 201
    params = {"period": "this_month", "refresh": "30"}
    screen = await offline_api.get("/dashboard/screen", params=params)
    assert screen.status_code == 200, screen.text[:2000]
    assert 'class="screen"' in screen.text and 'data-refresh="30"' in screen.text
    for personal in (RATER["name"], RATER["phone"], RATER["email"], RATER["phone"][-4:], "139****"):
        assert personal not in screen.text, personal
    assert "/dashboard/list" not in screen.text and "/cases/" not in screen.text  # a display has nothing to open

    today = china_today()
    this_month = {"from": today.replace(day=1).isoformat(), "to": today.isoformat()}
    api = await report(offline_api, bearer, **this_month)
    figures, parts = expected_tiles(api["total"], SCREEN_TILES)
    assert shown_figures(screen.text) == figures and shown_parts(screen.text) == parts
    assert figures["ratings"] == "1" and figures["cases"] == "1"

    url = html.unescape(re.search(r'data-url="([^"]+)"', screen.text).group(1))  # type: ignore[union-attr]
    fresh = await offline_api.get(url)
    assert fresh.status_code == 200 and fresh.headers["cache-control"] == "no-store"
    body = fresh.json()
    assert {tile["name"]: tile["text"] for tile in body["tiles"]} == figures
    assert body["charts"] == embedded_data(screen.text)["charts"]
    for personal in (RATER["name"], RATER["phone"], RATER["email"]):
        assert personal not in fresh.text

    # A rating arrives: the next refresh has it, and the February screen never had this month's.
    again = bad_rating("DEMO-0002", rater={"phone": "13700007777"})
    assert (
        await offline_api.post("/api/v1/ratings", json=again, headers={"X-API-Key": demo.api_key})
    ).status_code == 201
    later = (await offline_api.get(url)).json()
    assert {tile["name"]: tile["text"] for tile in later["tiles"]}["ratings"] == "2"
    assert "13700007777" not in json.dumps(later, ensure_ascii=False)
    february_screen = await offline_api.get("/dashboard/screen/data", params=FEB_PAGE)
    feb_api = await report(offline_api, bearer, **FEB)
    feb_figures, _ = expected_tiles(feb_api["total"], SCREEN_TILES)
    assert {tile["name"]: tile["text"] for tile in february_screen.json()["tiles"]} == feb_figures
