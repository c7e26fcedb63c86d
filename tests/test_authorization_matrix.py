"""The authorization matrix: every route × every kind of caller, generated from the app's route table.

RULES says who may call each route. A route without a rule fails the suite and is named; so does a
rule for a route that no longer exists. "Allowed" means the call gets past authentication and scope
(any answer but 401, 403 or 404); "refused" means 401, 403 or 404 (another unit's case looks missing).
The target is a case of 市场监管局 (unit 2): "own unit" is that unit's staff, "other unit" 人社局's.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, APIWebSocketRoute

from api.app import create_app
from models.case.records import Case
from models.case.requests import CaseStepRequest
from models.case.steps import STEPS, Relation
from models.case.vocabulary import Verdict
from models.db import Database
from runtime.seed import DemoCredentials
from tests.support.http import bad_rating, login
from tests.support.page_rules import PAGE_RULES
from tests.support.reports import plant_disclosure, plant_report
from tests.support.root_cause import plant_root_cause
from tests.support.suspicion import plant_flag

ANONYMOUS, API_KEY = "anonymous", "api_key"
OWN_STAFF, OTHER_STAFF, SUPERVISOR, REVIEWER, ADMIN = "own_staff", "other_staff", "supervisor", "reviewer", "admin"
OTHER_SUPERVISOR = "other_supervisor"  # supervises 人社局 only: the target case is outside their subtree
OTHER_REVIEWER = "other_reviewer"  # a reviewer of another top-level office: the target appeal is not theirs
CALLERS = [ANONYMOUS, API_KEY, OWN_STAFF, OTHER_STAFF, SUPERVISOR, OTHER_SUPERVISOR, REVIEWER, OTHER_REVIEWER, ADMIN]
USERS = {OWN_STAFF, OTHER_STAFF, SUPERVISOR, OTHER_SUPERVISOR, REVIEWER, OTHER_REVIEWER, ADMIN}
PUBLIC = "public"  # open on purpose; the token or the form is the credential
# A WebSocket route: open to connect, the first message authenticates (tests/test_devices.py proves each refusal).
IN_BAND = "authenticates in-band"
# Prometheus, not a person or a business system: HCP_METRICS_TOKEN as a bearer, or, while it is unset, loopback
# callers no proxy relayed. No caller here holds that token; tests/test_metrics.py proves each refusal.
SCRAPER = "metrics scraper"

UNIT_STEP = {OWN_STAFF}
INDICATOR_READERS = {OWN_STAFF, OTHER_STAFF, SUPERVISOR, OTHER_SUPERVISOR, ADMIN}
RULES: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/swagger-init.js"): PUBLIC,
    ("ANY", "/docs/assets"): PUBLIC,
    ("POST", "/api/v1/auth/token"): PUBLIC,
    ("GET", "/r/{token}"): PUBLIC,
    ("POST", "/r/{token}"): PUBLIC,
    ("GET", "/api/v1/auth/me"): USERS,
    ("POST", "/api/v1/service-records"): {API_KEY},
    ("POST", "/api/v1/ratings"): {API_KEY},
    ("POST", "/api/v1/ratings:batch"): {API_KEY},
    ("GET", "/api/v1/ratings/{rating_id}"): {API_KEY, OWN_STAFF, SUPERVISOR, ADMIN},
    ("GET", "/api/v1/cases"): USERS,
    ("GET", "/api/v1/cases/{case_id}"): {OWN_STAFF, SUPERVISOR, REVIEWER, ADMIN},
    ("GET", "/api/v1/cases/{case_id}/requests/{request_id}"): {OWN_STAFF, SUPERVISOR, REVIEWER, ADMIN},
    ("POST", "/api/v1/cases/{case_id}/rater/reveal"): UNIT_STEP,
    ("GET", "/api/v1/audit"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("GET", "/api/v1/admin/users"): {ADMIN},
    ("POST", "/api/v1/admin/users"): {ADMIN},
    ("PATCH", "/api/v1/admin/users/{user_id}"): {ADMIN},
    ("POST", "/api/v1/admin/rater-data/export"): {ADMIN},
    ("GET", "/api/v1/admin/units"): {ADMIN},
    ("POST", "/api/v1/admin/units"): {ADMIN},
    ("GET", "/api/v1/admin/api-keys"): {ADMIN},
    ("POST", "/api/v1/admin/api-keys"): {ADMIN},
    ("DELETE", "/api/v1/admin/api-keys/{key_id}"): {ADMIN},
    ("GET", "/api/v1/policies"): USERS,
    ("GET", "/api/v1/policies/{code}/versions"): USERS,
    ("GET", "/api/v1/policies/{code}"): USERS,
    ("PUT", "/api/v1/policies/{code}"): {ADMIN},
    ("PUT", "/api/v1/regions/{region_code}/policy"): {ADMIN},
    ("GET", "/api/v1/calendar/{year}"): USERS,
    ("PUT", "/api/v1/calendar/{year}"): {ADMIN},
    # A business system hands out rating links (一人一事一码) for its own records, and their QR codes.
    ("POST", "/api/v1/service-records/{record_no}/rating-link"): {API_KEY},
    ("GET", "/api/v1/rating-invitations/{invitation_id}/qr.svg"): {API_KEY},
    ("GET", "/api/v1/rating-invitations/{invitation_id}/qr.png"): {API_KEY},
    # Upstream reporting: the 表9 export, the dead letters and a manual re-push are administrators' work.
    ("GET", "/api/v1/ratings/export"): {ADMIN},
    # GB/T 39046 表10/表11 of cases: administrators, and supervisors over their own subtree (another subtree's
    # supervisor is allowed and gets only its own cases; a unit_id outside it is a 403, tests/test_national_tables.py).
    ("GET", "/api/v1/exports/table10.csv"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("GET", "/api/v1/exports/table11.csv"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("GET", "/api/v1/upstream/dead-letters"): {ADMIN},
    ("POST", "/api/v1/upstream/pushes/{push_id}/retry"): {ADMIN},
    # Suspicious ratings (可疑评价): supervisors of the flag's units (another subtree sees an empty list) and admins.
    ("GET", "/api/v1/suspicious-ratings"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("POST", "/api/v1/suspicious-ratings/{flag_id}/decision"): {SUPERVISOR, ADMIN},
    # Window rating devices (评价器): login {staff_no, key} with the hall system's API key (docs/devices.md).
    ("WS", "/ws/devices"): IN_BAND,
    ("GET", "/metrics"): SCRAPER,
    # Statistics (docs/indicators.md): every unit's staff and supervisor over their own scope (another unit's
    # figures are a 403 when asked for by unit_id), admins over all; reviewers and business systems none.
    ("GET", "/api/v1/indicators"): INDICATOR_READERS,
    ("GET", "/api/v1/indicators/definitions"): INDICATOR_READERS,
    ("GET", "/api/v1/ratings"): INDICATOR_READERS,
    ("GET", "/api/v1/service-records"): INDICATOR_READERS,
    # 差评集中 and 根源整改 (docs/root-cause.md): supervisors over their subtree (another subtree sees an empty list or a
    # 404), the responsible unit's staff for their unit's rectifications, administrators read-only; reviewers none.
    ("GET", "/api/v1/concentrated-problems"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("GET", "/api/v1/root-cause-rectifications"): {OWN_STAFF, OTHER_STAFF, SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("POST", "/api/v1/root-cause-rectifications"): {SUPERVISOR},
    ("GET", "/api/v1/root-cause-rectifications/{rectification_id}"): {OWN_STAFF, SUPERVISOR, ADMIN},
    ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/progress"): UNIT_STEP,
    ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/result"): UNIT_STEP,
    ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/acceptance"): {SUPERVISOR},
    ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/return"): {SUPERVISOR},
    ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/withdrawal"): {SUPERVISOR},
    # Rankings and monthly reports (docs/reports.md): read in the indicators' scope (a published version of unit 2:
    # another unit's staff or supervisor get a 404); supervisors and admins publish and correct (a supervisor over
    # another subtree cannot see unit 2's version); rectification texts are reviewed by the supervisor above the unit.
    ("GET", "/api/v1/rankings"): INDICATOR_READERS,
    ("GET", "/api/v1/reports"): INDICATOR_READERS,
    ("GET", "/api/v1/reports/draft"): INDICATOR_READERS,
    ("POST", "/api/v1/reports"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("GET", "/api/v1/reports/{report_id}"): {OWN_STAFF, SUPERVISOR, ADMIN},
    ("GET", "/api/v1/reports/{report_id}/report.{kind}"): {OWN_STAFF, SUPERVISOR, ADMIN},
    ("POST", "/api/v1/reports/{report_id}/corrections"): {SUPERVISOR, ADMIN},
    ("GET", "/api/v1/disclosures"): {SUPERVISOR, OTHER_SUPERVISOR, ADMIN},
    ("POST", "/api/v1/disclosures/{disclosure_id}/decision"): {SUPERVISOR},
}

# Case steps: who may take each comes from the step table itself.
_TAKES = {Relation.HANDLES: UNIT_STEP, Relation.SUPERVISES: {SUPERVISOR}, Relation.REVIEWS: {REVIEWER}}
RULES.update({("POST", f"/api/v1/cases/{{case_id}}/{step.name}"): _TAKES[step.relation] for step in STEPS})

# Docs routes are served by FastAPI itself, not our handlers.
FRAMEWORK_ROUTES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}

PATH_VALUES = {
    "case_id": "1",
    "rating_id": "1",
    "user_id": "4",
    "key_id": "2",
    "code": "national",
    "region_code": "370600",
    "year": "2027",
    "token": "not-a-real-token",
    "request_id": "0a1b2c3d",
    "record_no": "DEMO-0005",
    "invitation_id": "1",
    "push_id": "1",
    "flag_id": "1",
    "rectification_id": "1",
    "report_id": "1",
    "kind": "csv",
    "disclosure_id": "1",
}
SOON = "2030-01-01T00:00:00+08:00"
OTHER_OFFICE = {"code": "WH-ZWB", "name": "威海市政务服务管理办公室", "region_code": "370600"}
OTHER_REVIEWER_ACCOUNT = {
    "username": "wh_reviewer",
    "display_name": "威海 复核",
    "role": "reviewer",
    "password": "another-long-password",
}
OTHER_SUPERVISOR_ACCOUNT: dict[str, Any] = {
    "username": "rsj_supervisor",
    "display_name": "人社局 督办",
    "role": "supervisor",
    "unit_id": 3,
    "password": "another-long-password",
}


def api_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, walking included routers."""
    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any]) -> None:
        for route in routes:
            if hasattr(route, "original_router"):
                walk(route.original_router.routes)
            elif isinstance(route, APIRoute):
                assert route.methods is not None  # FastAPI fills in ["GET"] when none are given
                found.update((method, route.path) for method in route.methods - {"HEAD"})
            elif isinstance(route, APIWebSocketRoute):
                found.add(("WS", route.path))
            elif getattr(route, "path", None) not in FRAMEWORK_ROUTES:
                found.add(("ANY", str(getattr(route, "path", route))))

    walk(app.routes)
    return found


def test_every_route_has_a_rule() -> None:
    served = api_routes(create_app())
    ruled = RULES.keys() | PAGE_RULES.keys()
    missing = sorted(served - ruled)
    assert not missing, (
        "routes without an authorization rule in tests/test_authorization_matrix.py (API) or tests/support/page_rules.py (pages): "
        + ", ".join(f"{m} {p}" for m, p in missing)
    )
    stale = sorted(ruled - served)
    assert not stale, "rules for routes that no longer exist: " + ", ".join(f"{m} {p}" for m, p in stale)


def _body(method: str, path: str, profile: dict[str, Any]) -> dict[str, Any]:
    """A valid request for each route, so that only authorization decides the answer."""
    bodies: dict[tuple[str, str], Any] = {
        ("POST", "/api/v1/service-records"): {
            "record_no": "MATRIX-0001",
            "item_code": "370600-XK-0001",
            "unit_code": "YT-SCJ",
            "applicant_type": "individual",
            "service_channel": "online",
            "completed_at": "2026-11-20T10:00:00+08:00",
        },
        ("POST", "/api/v1/ratings"): {"json": bad_rating("DEMO-0004")},
        ("POST", "/api/v1/ratings:batch"): {"items": [bad_rating("DEMO-0006")]},
        ("POST", "/api/v1/cases/{case_id}/accept"): {},
        ("POST", "/api/v1/cases/{case_id}/callbacks"): {"reached": True, "note": "回访"},
        ("POST", "/api/v1/cases/{case_id}/verification"): {
            "verdict": "valid",
            "findings": "核实",
            "judgement": "reasonable",
        },
        ("POST", "/api/v1/cases/{case_id}/ledger"): {"due_at": SOON, "plan": "台账"},
        ("POST", "/api/v1/cases/{case_id}/rectification"): {"measures": "整改"},
        ("POST", "/api/v1/cases/{case_id}/explanation"): {"explanation": "说明"},
        ("POST", "/api/v1/cases/{case_id}/appeal"): {"reason": "误评", "evidence": ["录像"]},
        ("POST", "/api/v1/cases/{case_id}/feedback"): {"message": "反馈"},
        ("POST", "/api/v1/cases/{case_id}/extension-requests"): {
            "deadline": "verification",
            "new_due_at": SOON,
            "reason": "延期",
        },
        ("POST", "/api/v1/cases/{case_id}/extension-decision"): {"approve": True},
        ("POST", "/api/v1/cases/{case_id}/cannot-rectify-requests"): {"reasons": "涉及法规修订", "explanation": "说明"},
        ("POST", "/api/v1/cases/{case_id}/cannot-rectify-decision"): {"approve": True},
        ("POST", "/api/v1/cases/{case_id}/deadline-extension"): {
            "deadline": "verification",
            "new_due_at": SOON,
            "reason": "延期",
        },
        ("POST", "/api/v1/cases/{case_id}/reminders"): {"message": "提醒"},
        ("POST", "/api/v1/cases/{case_id}/reassignment"): {"to_unit_id": 3, "reason": "改派"},
        ("POST", "/api/v1/cases/{case_id}/instructions"): {"instruction": "批示"},
        ("POST", "/api/v1/cases/{case_id}/appeal-decision"): {"upheld": False, "reason": "复核"},
        ("POST", "/api/v1/cases/{case_id}/rater/reveal"): {"reason": "电话回访需要"},
        ("POST", "/api/v1/admin/users"): {
            "username": "matrix_user",
            "display_name": "矩阵测试",
            "role": "reviewer",
            "password": "a-long-enough-password",
        },
        ("PATCH", "/api/v1/admin/users/{user_id}"): {"display_name": "市场监管局 张承办"},
        ("POST", "/api/v1/admin/units"): {"code": "YT-MATRIX", "name": "测试单位", "region_code": "370600"},
        ("POST", "/api/v1/admin/api-keys"): {"name": "矩阵测试", "source_system": "matrix"},
        ("POST", "/api/v1/admin/rater-data/export"): {"phone": "13900001111", "reason": "矩阵测试"},
        ("PUT", "/api/v1/policies/{code}"): {"profile": profile, "note": "矩阵测试"},
        ("PUT", "/api/v1/regions/{region_code}/policy"): {"policy_code": "yantai"},
        ("PUT", "/api/v1/calendar/{year}"): {"holidays": ["2027-01-01"], "workdays": [], "source": "矩阵测试"},
        ("POST", "/api/v1/suspicious-ratings/{flag_id}/decision"): {"decision": "dismissed", "note": "矩阵测试"},
        ("POST", "/api/v1/root-cause-rectifications"): {
            "unit_id": 2,
            "title": "矩阵测试",
            "problem": "矩阵测试",
            "case_ids": [1],
        },
        ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/progress"): {"note": "进展"},
        ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/result"): {"result": "结果"},
        ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/return"): {"reason": "退回"},
        ("POST", "/api/v1/root-cause-rectifications/{rectification_id}/withdrawal"): {"reason": "撤销"},
        ("POST", "/api/v1/reports"): {"month": "2025-01"},
        ("POST", "/api/v1/reports/{report_id}/corrections"): {"reason": "矩阵测试"},
        ("POST", "/api/v1/disclosures/{disclosure_id}/decision"): {"decision": "withhold", "note": "矩阵测试"},
    }
    body = bodies.get((method, path))
    if isinstance(body, dict) and set(body) == {"json"}:
        return body["json"]
    return body if body is not None else {}


async def test_authorization_matrix(offline_api: httpx.AsyncClient, demo: DemoCredentials, db: Database) -> None:
    # The target: a case of unit 2 on the appeal path (so reviewers may see it); a spare API key to revoke.
    created = await offline_api.post("/api/v1/ratings", json=bad_rating(), headers={"X-API-Key": demo.api_key})
    assert created.status_code == 201
    async with db.session() as session:
        case = await session.get(Case, 1)
        assert case is not None
        case.verdict = Verdict.DISPUTED
        case.workflow_started_at = case.opened_at
        session.add(case)
        # A step request that finished, so reading it is allowed or refused by scope alone.
        session.add(
            CaseStepRequest(
                update_id=PATH_VALUES["request_id"],
                case_id=1,
                requester="user:4",
                action="accept",
                request_hash="0" * 64,
                completed_at=case.opened_at,
            )
        )
        await session.commit()
    # A suspicious-rating flag on the case's rating (unit 2): a supervisor of 人社局 does not see it.
    assert await plant_flag(db) == int(PATH_VALUES["flag_id"])
    # A root-cause rectification of unit 2 over the case.
    assert await plant_root_cause(db) == int(PATH_VALUES["rectification_id"])
    # A published monthly report of unit 2, and a rectification text of its case waiting for review.
    assert await plant_report(db) == int(PATH_VALUES["report_id"])
    assert await plant_disclosure(db) == int(PATH_VALUES["disclosure_id"])
    headers: dict[str, dict[str, str]] = {ANONYMOUS: {}, API_KEY: {"X-API-Key": demo.api_key}}
    for caller, username in ((OWN_STAFF, "scj_staff"), (OTHER_STAFF, "rsj_staff"), (SUPERVISOR, "supervisor"),
                             (REVIEWER, "reviewer"), (ADMIN, "admin")):  # fmt: skip
        headers[caller] = await login(offline_api, username, demo.passwords[username])
    other_supervisor = {**OTHER_SUPERVISOR_ACCOUNT}
    made = await offline_api.post("/api/v1/admin/users", json=other_supervisor, headers=headers[ADMIN])
    assert made.status_code == 201, made.text
    headers[OTHER_SUPERVISOR] = await login(offline_api, other_supervisor["username"], other_supervisor["password"])
    office = await offline_api.post("/api/v1/admin/units", json=OTHER_OFFICE, headers=headers[ADMIN])
    assert office.status_code == 201, office.text
    reviewer = {**OTHER_REVIEWER_ACCOUNT, "unit_id": office.json()["id"]}
    made = await offline_api.post("/api/v1/admin/users", json=reviewer, headers=headers[ADMIN])
    assert made.status_code == 201, made.text
    headers[OTHER_REVIEWER] = await login(offline_api, reviewer["username"], reviewer["password"])
    spare = await offline_api.post(
        "/api/v1/admin/api-keys", json={"name": "备用", "source_system": "spare"}, headers=headers[ADMIN]
    )
    assert spare.json()["id"] == 2
    profile = (await offline_api.get("/api/v1/policies/national", headers=headers[ADMIN])).json()["profile"]

    failures = []
    for method, path in sorted(RULES):
        rule = RULES[(method, path)]
        if rule in (IN_BAND, SCRAPER):
            continue  # no HTTP caller's credentials count there
        url = re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES[m.group(1)], path)
        for caller in CALLERS:
            if path == "/api/v1/auth/token":
                # Public: anyone may try to log in; correct credentials get a token whoever asks.
                response = await offline_api.post(url, data={"username": "admin", "password": demo.passwords["admin"]})
            elif path == "/r/{token}" and method == "POST":
                response = await offline_api.post(url, data={"satisfied": "yes"}, headers=headers[caller])
            else:
                body = _body(method, path, profile) if method != "GET" else None
                response = await offline_api.request(method, url, json=body, headers=headers[caller])
            refused = response.status_code in (401, 403, 404)
            ok = response.status_code not in (401, 403) if rule == PUBLIC else refused != (caller in rule)
            if not ok:
                expected = "public" if rule == PUBLIC else ("allowed" if caller in rule else "refused")
                failures.append(f"{method} {path} as {caller}: expected {expected}, got {response.status_code}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_matrix_catches_an_unruled_route(backend: str) -> None:
    app = create_app()

    @app.get("/api/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    missing = api_routes(app) - RULES.keys() - PAGE_RULES.keys()
    assert missing == {("GET", "/api/v1/forgotten")}
