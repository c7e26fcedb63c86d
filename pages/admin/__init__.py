"""Administrator pages (系统管理): units, users, API keys, policy profiles, the working-day calendar.

Each page calls the API's own route functions (api/admin.py, api/policies.py, api/calendar.py), so
the checks, the rules and the audit records are exactly the API's; who may use them is decided once,
by api.deps.current_admin (pages/admin/common.py).
"""

from __future__ import annotations

from fastapi import APIRouter

from pages.admin import api_keys, calendar, policies, policy_edit, units, upstream, users

router = APIRouter()
for module in (units, users, api_keys, policies, policy_edit, calendar, upstream):
    router.include_router(module.router)
