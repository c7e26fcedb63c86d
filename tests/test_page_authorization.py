"""The pages' authorization matrix: every page route × every kind of caller, signed in with a page session.

"Allowed" means past the sign-in and scope checks: any answer but 401, 403, 404 or the sign-in
page. "Refused" means one of those. Forms are posted with the session's own CSRF token, so only
authorization decides; a step the stage does not allow answers 409 and still counts as allowed.
"""

from __future__ import annotations

import re

import httpx
from sqlmodel import select

from api.security import create_access_token
from config import Settings
from models.case.records import Case
from models.case.vocabulary import Verdict
from models.db import Database
from models.users import Role, User
from pages.session import SESSION_COOKIE, csrf_token
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating
from tests.support.page_rules import (
    ADMIN,
    ANONYMOUS,
    API_KEY,
    OTHER_STAFF,
    OWN_STAFF,
    PAGE_RULES,
    PUBLIC,
    REVIEWER,
    STEP_RULES,
    SUPERVISOR,
)
from tests.support.pages import page_login
from tests.support.root_cause import plant_root_cause
from tests.support.suspicion import plant_flag

CALLERS = {
    OWN_STAFF: "scj_staff",
    OTHER_STAFF: "rsj_staff",
    SUPERVISOR: "supervisor",
    REVIEWER: "reviewer",
    ADMIN: "admin",
}
# user_id names an account none of the callers signs in as: resetting its password ends no session here.
PATH_VALUES = {
    "case_id": "1",
    "user_id": "0",  # set below to the spare account's id
    "key_id": "1",
    "code": "national",
    "region_code": "370600",
    "year": "2027",
    "token": "not-a-real-token",
    "window_code": "NO-SUCH-WINDOW",
    "push_id": "1",  # the rating's push, kept as skipped (reporting is off in tests)
    "flag_id": "1",  # a suspicious-rating flag of unit 2, planted below
    "rectification_id": "1",  # a root-cause rectification of unit 2, planted below
}
FORMS = {
    "/cases/{case_id}/rater-contact": {"reason": "电话回访"},
    "/admin/users/{user_id}/active": {"active": "true"},
    "/suspicious/{flag_id}/decision": {"decision": "dismissed", "note": "矩阵测试"},
}


def _refused(response: httpx.Response) -> bool:
    if response.status_code in (303, 307) and response.headers.get("location", "").startswith("/login"):
        return True
    return response.status_code in (401, 403, 404)


async def test_page_authorization_matrix(
    offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database, settings: Settings
) -> None:
    created = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert created.status_code == 201
    sessions: dict[str, tuple[str, str]] = {}
    async with db.session() as session:
        case = await session.get(Case, 1)
        assert case is not None
        case.verdict = Verdict.DISPUTED  # on the appeal path, so the reviewer may see it
        session.add(case)
        await session.commit()
        spare = User(username="matrix_spare", display_name="备用账户", password_hash="x", role=Role.REVIEWER)
        session.add(spare)
        await session.commit()
        path_values = {**PATH_VALUES, "user_id": str(spare.id)}
        for caller, username in CALLERS.items():
            user = (await session.exec(select(User).where(User.username == username))).one()
            assert user.id is not None
            token, _ = create_access_token(user.id, settings.signing_key(), 10, password_hash=user.password_hash)
            sessions[caller] = (token, csrf_token(settings, token))
    assert await plant_flag(db) == int(PATH_VALUES["flag_id"])
    assert await plant_root_cause(db) == int(PATH_VALUES["rectification_id"])

    failures = []
    rules: list[tuple[str, str, set[str] | str]] = []
    for (method, path), rule in PAGE_RULES.items():
        if rule == "steps":
            rules.extend((method, path.replace("{step}", name), who) for name, who in STEP_RULES.items())
        elif method != "ANY":
            rules.append((method, path, rule))
    for method, path, rule in sorted(rules, key=lambda r: (r[1], r[0])):
        url = re.sub(r"\{(\w+)\}", lambda m: path_values[m.group(1)], path)
        for caller in (ANONYMOUS, API_KEY, *CALLERS):
            offline_api.cookies.clear()
            headers = {"X-API-Key": demo.api_key} if caller == API_KEY else {}
            form: dict[str, str] = dict(FORMS.get(path, {}))
            if caller in sessions:
                token, csrf = sessions[caller]
                offline_api.cookies.set(SESSION_COOKIE, token)
                form["csrf"] = csrf
            if path == "/login" and method == "POST":
                # Public: anyone may sign in; right credentials get a session whoever asks.
                response = await page_login(offline_api, "admin", demo.passwords["admin"])
            elif method == "GET":
                response = await offline_api.get(url, headers=headers)
            else:
                response = await offline_api.post(url, data=form, headers=headers)
            if path == "/logout":
                # Signing out answers with the sign-in page either way; only a session is ended.
                ended = f'{SESSION_COOKIE}=""' in response.headers.get("set-cookie", "")
                response = response if not ended else httpx.Response(200)
            ok = response.status_code not in (401, 403) if rule == PUBLIC else _refused(response) != (caller in rule)
            if not ok:
                expected = "public" if rule == PUBLIC else ("allowed" if caller in rule else "refused")
                failures.append(f"{method} {path} as {caller}: expected {expected}, got {response.status_code}")
    offline_api.cookies.clear()
    assert not failures, "\n".join(failures)
