"""Temporal activities: database writes, notifications and calendar look-ups for the case workflow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from activities.case_records import CaseRecordActivities
from activities.deadlines import DeadlineActivities
from activities.mailer import Mailer
from activities.notifications import NotificationActivities
from activities.sms import FileSmsSink
from config import Settings
from models.db import Database


def build_activities(settings: Settings, db: Database) -> list[Callable[..., Any]]:
    """Every activity the worker registers, bound to its dependencies."""
    records = CaseRecordActivities(db)
    deadlines = DeadlineActivities(db)
    notifications = NotificationActivities(db, Mailer(settings), FileSmsSink(settings.sms_dir), settings)
    return [
        deadlines.compute_due,
        records.record_case_event,
        notifications.notify,
        notifications.send_rater_feedback,
    ]
