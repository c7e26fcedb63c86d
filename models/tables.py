"""Imports every table so SQLModel.metadata is complete (Alembic and tests import this)."""

from sqlmodel import SQLModel

from models.audit import AuditEvent
from models.calendar import CalendarYear
from models.case.records import Case, CaseEvent
from models.case.requests import CaseStepRequest
from models.disclosure import RectificationDisclosure
from models.idempotency import IdempotentResponse
from models.indicators.rollup_tables import case_rollup, rating_rollup, record_rollup, rollup_dirty, rollup_state
from models.notifications import Notification
from models.organisation import Region, Staff, Unit
from models.outbox import OutboxEntry
from models.policy_store import PolicyVersion
from models.rater_links import RaterLink
from models.rating_invitations import RatingInvitation
from models.ratings import Rating
from models.reports.records import MonthlyReport
from models.root_cause import RootCauseEvent, RootCauseLink, RootCauseRectification
from models.services import ServiceItem, ServiceRecord
from models.suspicion.records import RatingFingerprint, SuspicionFlag, SuspicionFlagRating
from models.upstream import UpstreamPush
from models.users import ApiKey, User
from models.windows import ServiceWindow, WindowCheckAttempt

metadata = SQLModel.metadata

__all__ = [
    "ApiKey",
    "AuditEvent",
    "CalendarYear",
    "Case",
    "CaseEvent",
    "CaseStepRequest",
    "IdempotentResponse",
    "MonthlyReport",
    "Notification",
    "OutboxEntry",
    "PolicyVersion",
    "RaterLink",
    "Rating",
    "RatingFingerprint",
    "RatingInvitation",
    "RectificationDisclosure",
    "Region",
    "RootCauseEvent",
    "RootCauseLink",
    "RootCauseRectification",
    "ServiceItem",
    "ServiceRecord",
    "ServiceWindow",
    "Staff",
    "SuspicionFlag",
    "SuspicionFlagRating",
    "Unit",
    "UpstreamPush",
    "User",
    "WindowCheckAttempt",
    "case_rollup",
    "metadata",
    "rating_rollup",
    "record_rollup",
    "rollup_dirty",
    "rollup_state",
]
