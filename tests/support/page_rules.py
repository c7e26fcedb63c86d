"""Who may open each page and post each form: the pages' half of the authorization matrix.

The route-coverage test (tests/test_authorization_matrix.py) requires a rule here for every page
route, as it requires one in RULES for every API route; tests/test_page_authorization.py signs each
kind of caller in with a page session and checks each rule. Case steps come from the step table.
"""

from __future__ import annotations

from models.case.steps import STEPS, Relation

ANONYMOUS, API_KEY = "anonymous", "api_key"
OWN_STAFF, OTHER_STAFF, SUPERVISOR, REVIEWER, ADMIN = "own_staff", "other_staff", "supervisor", "reviewer", "admin"
USERS = {OWN_STAFF, OTHER_STAFF, SUPERVISOR, REVIEWER, ADMIN}
PUBLIC = "public"  # open on purpose: sign-in, the rater's pages, static assets

STEP_PATH = "/cases/{case_id}/steps/{step}"
_TAKES = {Relation.HANDLES: {OWN_STAFF}, Relation.SUPERVISES: {SUPERVISOR}, Relation.REVIEWS: {REVIEWER}}
# Who may post each step's form: from the step table, as for the API.
STEP_RULES: dict[str, set[str]] = {step.name: _TAKES[step.relation] for step in STEPS}

PAGE_RULES: dict[tuple[str, str], set[str] | str] = {
    ("GET", "/"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): PUBLIC,
    ("ANY", "/static"): PUBLIC,
    ("POST", "/logout"): USERS,
    ("GET", "/cases"): USERS,
    ("GET", "/cases/{case_id}"): {OWN_STAFF, SUPERVISOR, REVIEWER, ADMIN},
    ("POST", STEP_PATH): "steps",  # per step: STEP_RULES
    ("POST", "/cases/{case_id}/rater-contact"): {OWN_STAFF},
    ("GET", "/board"): {SUPERVISOR},
    ("GET", "/board.csv"): {SUPERVISOR},
    ("GET", "/ledger"): {SUPERVISOR},
    ("GET", "/ledger.csv"): {SUPERVISOR},
    ("GET", "/reviews"): {REVIEWER},
    ("GET", "/reviews/decided"): {REVIEWER},
    ("GET", "/suspicious"): {SUPERVISOR, ADMIN},
    ("POST", "/suspicious/{flag_id}/decision"): {SUPERVISOR, ADMIN},
    # 差评集中 and 根源整改: supervisors open and decide; the responsible unit's staff report progress and the result.
    ("GET", "/concentrated"): {SUPERVISOR},
    ("POST", "/concentrated"): {SUPERVISOR},
    ("GET", "/root-cause"): {OWN_STAFF, OTHER_STAFF, SUPERVISOR, ADMIN},
    ("POST", "/root-cause"): {SUPERVISOR},
    ("GET", "/root-cause/{rectification_id}"): {OWN_STAFF, SUPERVISOR, ADMIN},
    ("POST", "/root-cause/{rectification_id}/progress"): {OWN_STAFF},
    ("POST", "/root-cause/{rectification_id}/result"): {OWN_STAFF},
    ("POST", "/root-cause/{rectification_id}/acceptance"): {SUPERVISOR},
    ("POST", "/root-cause/{rectification_id}/return"): {SUPERVISOR},
    ("POST", "/root-cause/{rectification_id}/withdrawal"): {SUPERVISOR},
    # 数据看板, its drill-down lists and 数据大屏: the indicators' scope (own unit, a supervisor's subtree, everything
    # for administrators); reviewers have no figures.
    ("GET", "/dashboard"): {OWN_STAFF, OTHER_STAFF, SUPERVISOR, ADMIN},
    ("GET", "/dashboard/list"): {OWN_STAFF, OTHER_STAFF, SUPERVISOR, ADMIN},
    ("GET", "/dashboard/screen"): {OWN_STAFF, OTHER_STAFF, SUPERVISOR, ADMIN},
    ("GET", "/dashboard/screen/data"): {OWN_STAFF, OTHER_STAFF, SUPERVISOR, ADMIN},
    # 排名通报 and 月度报告: supervisors and administrators (scoped); 整改情况公开 is reviewed by supervisors.
    ("GET", "/rankings"): {SUPERVISOR, ADMIN},
    ("GET", "/reports"): {SUPERVISOR, ADMIN},
    ("GET", "/reports/draft.csv"): {SUPERVISOR, ADMIN},
    ("GET", "/reports/draft.xlsx"): {SUPERVISOR, ADMIN},
    ("GET", "/reports/version"): {SUPERVISOR, ADMIN},
    ("GET", "/reports/version.csv"): {SUPERVISOR, ADMIN},
    ("GET", "/reports/version.xlsx"): {SUPERVISOR, ADMIN},
    ("POST", "/reports/publish"): {SUPERVISOR, ADMIN},
    ("POST", "/reports/correction"): {SUPERVISOR, ADMIN},
    ("GET", "/disclosures"): {SUPERVISOR},
    ("POST", "/disclosures"): {SUPERVISOR},
    # 结果全公开: published results and approved rectification texts, for everyone.
    ("GET", "/public"): PUBLIC,
    ("GET", "/public/report"): PUBLIC,
    # The rater's pages: a dynamic code (一人一事一码), a window's static code (一窗一码) and its QR codes.
    ("GET", "/q/{token}"): PUBLIC,
    ("POST", "/q/{token}"): PUBLIC,
    ("GET", "/w/{window_code}"): PUBLIC,
    ("POST", "/w/{window_code}"): PUBLIC,
    ("GET", "/w/{window_code}/print"): PUBLIC,
    ("GET", "/qr/window/{window_code}.svg"): PUBLIC,
    ("GET", "/qr/window/{window_code}.png"): PUBLIC,
    # Administration: administrators only.
    **{
        (method, path): {ADMIN}
        for method, path in (
            ("GET", "/admin/units"),
            ("POST", "/admin/units"),
            ("GET", "/admin/users"),
            ("POST", "/admin/users"),
            ("GET", "/admin/users/{user_id}"),
            ("POST", "/admin/users/{user_id}"),
            ("POST", "/admin/users/{user_id}/active"),
            ("POST", "/admin/users/{user_id}/password"),
            ("POST", "/admin/users/{user_id}/unlock"),
            ("GET", "/admin/api-keys"),
            ("POST", "/admin/api-keys"),
            ("POST", "/admin/api-keys/{key_id}/revoke"),
            ("GET", "/admin/policies"),
            ("GET", "/admin/policies/{code}"),
            ("GET", "/admin/policies/{code}/diff"),
            ("GET", "/admin/policies/{code}/edit"),
            ("POST", "/admin/policies/{code}/edit"),
            ("POST", "/admin/regions/{region_code}/policy"),
            ("GET", "/admin/calendar"),
            ("POST", "/admin/calendar/{year}"),
            ("GET", "/admin/upstream"),
            ("POST", "/admin/upstream/pushes/{push_id}/retry"),
        )
    },
}
