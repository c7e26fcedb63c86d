"""Temporal activities: database writes, notifications and calendar look-ups for the case workflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.case_records import CaseRecordActivities
from activities.deadlines import DeadlineActivities
from activities.mailer import Mailer
from activities.notifications import NotificationActivities
from config import Settings
from models.db import Database


def build_activities(settings: Settings, db: Database) -> list[Callable[..., Any]]:
    """Every activity the worker registers, bound to its dependencies."""
    records = CaseRecordActivities(db)
    deadlines = DeadlineActivities()
    notifications = NotificationActivities(db, Mailer(settings), settings)
    return [
        deadlines.compute_due,
        records.record_case_event,
        notifications.notify_callback_overdue,
        notifications.send_rater_feedback,
    ]
