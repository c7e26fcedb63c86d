"""Account roles. Pure, so the workflow can check them without importing SQLModel."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    UNIT_STAFF = "unit_staff"  # 承办人员: handles their unit's cases
    SUPERVISOR = "supervisor"  # 督办人员: watches their unit's subtree
    REVIEWER = "reviewer"  # 复核人员: decides appeals
    ADMIN = "admin"  # 系统管理员
