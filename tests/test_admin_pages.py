"""The administrator's pages on the real stack: each change goes through the API's own function and audit."""

from __future__ import annotations

import html
import json
import re
from typing import Any

import httpx
from fastapi.routing import iter_route_contexts
from sqlmodel import col, func, select

from api.app import create_app
from models.audit import AuditEvent
from models.calendar import CalendarYear
from models.db import Database
from models.organisation import Region, Unit
from models.policy_store import PolicyVersion
from models.users import ApiKey, User
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating, login
from tests.support.pages import form_csrf, page_login

SAMPLE_PATH_VALUES = {
    "user_id": "4",
    "key_id": "1",
    "region_code": "370600",
    "code": "yantai",
    "year": "2027",
    "push_id": "1",
}


def admin_routes() -> list[tuple[str, str]]:
    """(method, path with sample values) of every administrator page and form."""
    found: list[tuple[str, str]] = []
    for route in iter_route_contexts(create_app().routes):
        if (route.path or "").startswith("/admin"):
            path = re.sub(r"\{(\w+)\}", lambda m: SAMPLE_PATH_VALUES[m.group(1)], route.path or "")
            found.extend((method, path) for method in sorted(route.methods or ()))
    assert len(found) >= 15, found
    return found


async def audited(db: Database, *, exclude_sign_in: bool = True) -> list[str]:
    """Every audit record's action, oldest first (page sign-ins left out)."""
    async with db.session() as session:
        actions = (await session.exec(select(AuditEvent.action).order_by(col(AuditEvent.id)))).all()
    return [a for a in actions if not (exclude_sign_in and a.startswith("auth.page_"))]


async def snapshot_audit(db: Database) -> list[dict[str, Any]]:
    """What the audit records say (to look for secrets in)."""
    async with db.session() as session:
        return [{**e.before, **e.after, "reason": e.reason} for e in (await session.exec(select(AuditEvent))).all()]


async def snapshot(db: Database) -> dict[str, Any]:
    """What an administrator's form could change."""
    async with db.session() as session:
        counts = {
            model.__name__: (await session.exec(select(func.count()).select_from(model))).one()
            for model in (Unit, User, ApiKey, PolicyVersion, CalendarYear)
        }
        users = (await session.exec(select(User.id, User.active, User.password_hash, User.role))).all()
        keys = (await session.exec(select(ApiKey.id, ApiKey.revoked_at))).all()
        regions = (await session.exec(select(Region.code, Region.policy_code))).all()
    return {**counts, "users": sorted(users), "keys": sorted(keys), "regions": sorted(regions)}


def secret_on(page: httpx.Response) -> str:
    found = re.search(r'<code class="secret">([^<]+)</code>', page.text)
    assert found, page.text[:3000]
    return html.unescape(found.group(1))


async def as_admin(api: httpx.AsyncClient, demo: DemoCredentials, page: str = "/admin/units") -> str:
    signed = await page_login(api, "admin", demo.passwords["admin"])
    assert signed.status_code == 303 and signed.headers["location"] == "/admin/units"
    return form_csrf(await api.get(page))


async def test_admin_creates_a_unit_and_a_user_who_then_signs_in(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    api = offline_api
    csrf = await as_admin(api, demo)
    unit = {
        "csrf": csrf,
        "parent_code": "YT-SCJ",
        "code": "YT-SCJ-KFQ",
        "name": "开发区市场监管分局",
        "region_code": "370600",
    }
    taken = await api.post("/admin/units", data={**unit, "code": "YT-SCJ"})
    assert taken.status_code == 409 and re.search(r'id="unit-code-err">单位编码 YT-SCJ 已存在<', taken.text)
    assert 'value="开发区市场监管分局"' in taken.text  # what was typed is kept
    orphan = await api.post("/admin/units", data={**unit, "parent_code": "NOPE"})
    assert orphan.status_code == 422 and re.search(r'id="unit-parent-err">上级单位 NOPE 不存在<', orphan.text)
    created = await api.post("/admin/units", data=unit)
    assert created.status_code == 303 and created.headers["location"] == "/admin/units?done=created"
    tree = (await api.get(created.headers["location"])).text
    assert "单位已创建" in tree
    assert re.search(
        r"烟台市市场监督管理局</strong>.*?<ul>\s*<li><strong>开发区市场监管分局</strong> <code>YT-SCJ-KFQ", tree, re.S
    )

    async with db.session() as session:
        unit_id = (await session.exec(select(Unit.id).where(Unit.code == "YT-SCJ-KFQ"))).one()
    person = {"csrf": csrf, "username": "kfq_staff", "display_name": "开发区 陈承办", "email": "chen@kfq.example.cn"}
    refused = await api.post("/admin/users", data={**person, "role": "unit_staff", "unit_id": "", "username": "k"})
    assert refused.status_code == 422 and 'id="user-username-err">格式不符合要求<' in refused.text
    assert 'value="开发区 陈承办"' in refused.text
    made = await api.post("/admin/users", data={**person, "role": "unit_staff", "unit_id": str(unit_id)})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store" and "只显示这一次" in made.text
    password = secret_on(made)
    listed = (await api.get("/admin/users")).text
    assert "kfq_staff" in listed and "承办单位工作人员" in listed and "开发区市场监管分局（YT-SCJ-KFQ）" in listed
    assert password not in listed
    assert await audited(db) == ["unit.create", "user.create"] and password not in str(await snapshot_audit(db))

    api.cookies.clear()
    signed = await page_login(api, "kfq_staff", password)
    assert signed.status_code == 303 and signed.headers["location"] == "/cases"


async def test_admin_changes_role_deactivates_resets_and_unlocks(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    api = offline_api
    for _ in range(5):  # rsj_staff (user 5) locks themselves out
        await api.post("/api/v1/auth/token", data={"username": "rsj_staff", "password": "a wrong guess"})
    csrf = await as_admin(api, demo, "/admin/users/5")
    page = (await api.get("/admin/users/5")).text
    assert "登录已锁定" in page and 'action="/admin/users/5/password" data-confirm=' in page
    assert (await api.post("/admin/users/5/unlock", data={"csrf": csrf})).status_code == 303

    edit = {"csrf": csrf, "display_name": "人社局 刘督办", "email": "", "role": "supervisor", "unit_id": "3"}
    changed = await api.post("/admin/users/5", data=edit)
    assert changed.headers["location"] == "/admin/users/5?done=updated"
    assert "督办人员" in (await api.get("/admin/users/5")).text
    no_unit = await api.post("/admin/users/5", data={**edit, "unit_id": ""})
    assert (
        no_unit.status_code == 422 and 'id="edit-unit-err">承办人员、督办人员和复核人员须属于一个单位<' in no_unit.text
    )

    assert (await api.post("/admin/users/5/active", data={"csrf": csrf, "active": "false"})).status_code == 303
    reset = await api.post("/admin/users/5/password", data={"csrf": csrf})
    assert reset.status_code == 200 and reset.headers["cache-control"] == "no-store"
    password = secret_on(reset)
    assert password not in (await api.get("/admin/users/5")).text
    assert (await api.post("/admin/users/5/active", data={"csrf": csrf, "active": "true"})).status_code == 303
    itself = await api.post("/admin/users/1/active", data={"csrf": csrf, "active": "false"})
    assert itself.status_code == 422 and "不能停用自己" in itself.text
    assert await audited(db) == ["auth.locked", *["user.update"] * 5]

    api.cookies.clear()
    assert (await page_login(api, "rsj_staff", demo.passwords["rsj_staff"])).status_code == 401
    assert (await page_login(api, "rsj_staff", password)).headers["location"] == "/board"


async def test_an_api_key_is_shown_once_and_revoked_after_a_confirmation(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    api = offline_api
    csrf = await as_admin(api, demo, "/admin/api-keys")
    bad = await api.post("/admin/api-keys", data={"csrf": csrf, "name": "12345 热线", "source_system": "Hot Line"})
    assert bad.status_code == 422 and 'id="key-source-err">格式不符合要求<' in bad.text
    made = await api.post("/admin/api-keys", data={"csrf": csrf, "name": "12345 热线", "source_system": "hotline"})
    assert made.status_code == 200 and made.headers["cache-control"] == "no-store" and "只显示这一次" in made.text
    key = secret_on(made)
    assert (await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": key})).status_code == 201
    listed = (await api.get("/admin/api-keys")).text
    assert "12345 热线" in listed and key.split("_", 2)[2] not in listed  # the prefix only, never the secret
    found = re.search(r'action="/admin/api-keys/(\d+)/revoke" data-confirm="([^"]+)"', listed)
    assert found and "确认作废" in found.group(2)
    revoked = await api.post(f"/admin/api-keys/{found.group(1)}/revoke", data={"csrf": csrf})
    assert revoked.status_code == 303 and "已作废" in (await api.get(revoked.headers["location"])).text
    assert (await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": key})).status_code == 401
    assert await audited(db) == ["apikey.create", "apikey.revoke"] and key not in str(await snapshot_audit(db))


def _textarea(page: httpx.Response) -> str:
    found = re.search(r'<textarea id="policy-text"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert found, page.text[:3000]
    return html.unescape(found.group(1))


async def test_a_new_policy_version_is_published_and_diffed_and_a_bad_one_is_not(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    api = offline_api
    csrf = await as_admin(api, demo, "/admin/policies/yantai/edit")
    form = await api.get("/admin/policies/yantai/edit")
    profile = json.loads(_textarea(form))
    assert profile["deadlines"]["callback"]["within"] == "1wd" and 'name="base_version" value="1"' in form.text

    def post(changed: dict[str, Any] | str, note: str = "回访时限改为 2 个工作日", base: str = "1") -> Any:
        text = changed if isinstance(changed, str) else json.dumps(changed, ensure_ascii=False, indent=2)
        return api.post("/admin/policies/yantai/edit", data={"csrf": csrf, "profile": text, "note": note, "base_version": base})  # fmt: skip

    callback = profile["deadlines"]["callback"]
    wrong = {**profile, "deadlines": {**profile["deadlines"], "callback": {**callback, "within": "2xx"}}}
    refused = await post(wrong)
    assert (
        refused.status_code == 422
        and "<code>deadlines.callback.within</code>：时限 &#39;2xx&#39; 的格式应为" in refused.text
    )
    assert "2xx" in _textarea(refused)  # the text is kept as typed
    broken = _textarea(form).replace('"code": "yantai",', '"code": "yantai"', 1)
    try:
        json.loads(broken)
    except json.JSONDecodeError as exc:
        where = f"第 {exc.lineno} 行第 {exc.colno} 列，缺少逗号"
    syntax = await post(broken)
    assert syntax.status_code == 422 and where in syntax.text
    no_note = await post({**profile, "max_reopen_rounds": 3}, note="")
    assert no_note.status_code == 422 and 'id="policy-note-err">此项必填<' in no_note.text
    unchanged = await post(profile)
    assert unchanged.status_code == 422 and "内容与当前版本相同" in unchanged.text
    assert await audited(db) == []

    better = {**profile, "deadlines": {**profile["deadlines"], "callback": {**callback, "within": "2wd", "source": "<b>市政府</b>"}}}  # fmt: skip
    published = await post(better)
    assert (
        published.status_code == 303
        and published.headers["location"] == "/admin/policies/yantai?version=2&done=published"
    )
    shown = (await api.get(published.headers["location"])).text
    assert "新版本已发布" in shown and "第 2 版" in shown and "2 个工作日" in shown and "&lt;b&gt;市政府" in shown
    stale = await post({**better, "max_reopen_rounds": 3}, base="1")  # a form opened before version 2
    assert stale.status_code == 409 and "其他管理员已发布了第 2 版" in stale.text
    assert await audited(db) == ["policy.edit"]

    diff = await api.get("/admin/policies/yantai/diff?from=1&to=2")
    assert diff.status_code == 200 and "<code>deadlines.callback.within</code>" in diff.text
    assert "<b>" not in diff.text and "&lt;b&gt;市政府&lt;/b&gt;" in diff.text
    lines = html.unescape(diff.text)
    assert '-      "within": "1wd",' in lines and '+      "within": "2wd",' in lines
    async with db.session() as session:
        versions = (await session.exec(select(PolicyVersion.version).where(PolicyVersion.code == "yantai"))).all()
    assert sorted(versions) == [1, 2]


async def test_a_region_switches_profile(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    api = offline_api
    csrf = await as_admin(api, demo, "/admin/policies")
    page = (await api.get("/admin/policies")).text
    assert re.search(r'<label for="region-370600"[^>]*>烟台市使用的评价规则</label>', page)
    unknown = await api.post("/admin/regions/370600/policy", data={"csrf": csrf, "policy_code": "nowhere"})
    assert unknown.status_code == 422 and 'id="region-370600-err">政策配置 nowhere 不存在<' in unknown.text
    switched = await api.post("/admin/regions/370600/policy", data={"csrf": csrf, "policy_code": "demo"})
    assert (
        switched.status_code == 303 and "已更换该区划的评价规则" in (await api.get(switched.headers["location"])).text
    )
    assert ("370600", "demo") in (await snapshot(db))["regions"]
    assert await audited(db) == ["region.policy"]


async def test_a_calendar_year_is_loaded(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    api = offline_api
    csrf = await as_admin(api, demo, "/admin/calendar?year=2027")
    assert "10 月 1 日（周四）" in (await api.get("/admin/calendar?year=2026")).text  # the packaged table
    assert "暂无正式安排" in (await api.get("/admin/calendar?year=2027")).text
    source = "国务院办公厅关于2027年部分节假日安排的通知（测试数据）"
    year = {"csrf": csrf, "holidays": "2027-01-01 元旦\n\n2027-02-11", "workdays": "2027-02-06", "source": source}
    typo = await api.post("/admin/calendar/2027", data={**year, "holidays": "2027-01-01\nnot-a-date"})
    assert typo.status_code == 422 and 'id="cal-holidays-err">第 2 行：日期格式应为 YYYY-MM-DD<' in typo.text
    assert "not-a-date" in typo.text
    weekday = await api.post("/admin/calendar/2027", data={**year, "workdays": "2027-01-04"})
    assert weekday.status_code == 422 and 'id="cal-workdays-err">调休上班日须为周六或周日，以下日期不是：2027-01-04<' in weekday.text  # fmt: skip
    outside = await api.post("/admin/calendar/2027", data={**year, "holidays": "2026-12-31"})
    assert outside.status_code == 422 and "以下日期不在 2027 年内：2026-12-31" in outside.text
    assert await audited(db) == []

    loaded = await api.post("/admin/calendar/2027", data=year)
    assert loaded.status_code == 303
    page = (await api.get(loaded.headers["location"])).text
    assert "已载入 2027 年日历" in page and "正式" in page and source in page
    assert "1 月 1 日（周五）" in page and "2 月 6 日（周六）" in page
    assert await audited(db) == ["calendar.load"]


async def test_only_administrators_may_use_the_admin_pages(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    api = offline_api
    assert (await api.get("/admin/units")).headers["location"] == "/login?next=/admin/units"
    before = await snapshot(db)
    for username in ("scj_staff", "supervisor", "reviewer"):
        api.cookies.clear()
        await page_login(api, username, demo.passwords[username])
        csrf = form_csrf(await api.get("/cases"))
        for method, path in admin_routes():
            data = {"csrf": csrf, "code": "X-1", "name": "x", "region_code": "370600", "policy_code": "demo"}
            response = await api.request(method, path, data=data if method == "POST" else None)
            assert response.status_code == 403 and "只有系统管理员可以执行此操作" in response.text, (username, path)
    assert await snapshot(db) == before and await audited(db) == []
    # The API says the same to the same people.
    staff = await login(api, "scj_staff", demo.passwords["scj_staff"])
    assert (await api.get("/api/v1/admin/units", headers=staff)).status_code == 403


async def test_a_form_posted_without_its_csrf_token_changes_nothing(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database
) -> None:
    api = offline_api
    csrf = await as_admin(api, demo)
    before = await snapshot(db)
    data = {"code": "YT-X", "name": "x", "region_code": "370600", "policy_code": "demo", "active": "false"}
    posts = [path for method, path in admin_routes() if method == "POST"]
    for path in posts:
        for refused in (
            await api.post(path, data=data),
            await api.post(path, data={**data, "csrf": "0" * 40}),
            await api.post(path, data={**data, "csrf": csrf}, headers={"Origin": "https://evil.example"}),
        ):
            assert refused.status_code == 403 and "页面已过期" in refused.text, path
    assert await snapshot(db) == before and await audited(db) == []
