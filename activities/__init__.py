"""Temporal activities: database writes and calendar look-ups for the case workflow; notice sending; the sweeps.

The sweeps: the rating sweep (defaults, invitations) and the retention job (docs/retention.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from activities.case_records import CaseRecordActivities
from activities.deadlines import DeadlineActivities
from activities.mailer import Mailer
from activities.notice_sender import NoticeSender
from activities.notifications import NotificationActivities
from activities.rating_sweep import RatingSweepActivities
from activities.retention import RetentionActivities
from activities.root_cause import RootCauseActivities
from activities.sms import FileSmsSink, SmsGateway
from config import Settings
from models.db import Database


@dataclass
class CaseActivities:
    """Every activity the worker registers, and the notice sender its relay runs beside them."""

    activities: list[Callable[..., Any]]
    sender: NoticeSender
    notices_written: asyncio.Event


def build_activities(settings: Settings, db: Database, sms: SmsGateway | None = None) -> CaseActivities:
    """The activities bound to their dependencies; the event wakes the notice relay when notices are written."""
    notices_written = asyncio.Event()
    records = CaseRecordActivities(
        db, notices_written, settings.office_hours_enforced, upstream_reporting=settings.upstream_enabled
    )
    deadlines = DeadlineActivities(db)
    notifications = NotificationActivities(db, notices_written, settings.office_hours_enforced)
    sender = NoticeSender(db, Mailer(settings), sms or FileSmsSink(settings.sms_dir), settings)
    sweep = RatingSweepActivities(db, settings, notices_written)
    root_cause = RootCauseActivities(db, notices_written, settings.office_hours_enforced)
    retention = RetentionActivities(db, settings)
    return CaseActivities(
        activities=[
            deadlines.compute_due,
            deadlines.compute_dues,
            records.record_case_event,
            notifications.notify,
            notifications.send_rater_feedback,
            sweep.default,
            sweep.invite,
            root_cause.record_root_cause_event,
            retention.ratings,
            retention.records,
        ],
        sender=sender,
        notices_written=notices_written,
    )
