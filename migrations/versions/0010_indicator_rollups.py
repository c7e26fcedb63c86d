"""indicator rollups: counts by China day and unit, the slices written to since, and the raw path's indexes

`ratingrollup` (and its sum over channels and targets, `ratingtotalrollup`), `recordrollup` and
`caserollup` hold every additive count of the indicators by (China day, unit[, channel, target]); `rollupdirty` queues the (day, unit) slices written to since
the last refresh and `rollupstate` says when that was. On PostgreSQL, statement-level triggers with
transition tables on `rating`, `servicerecord`, `case` and `caseevent` queue the slices every
statement touches, whoever writes (intake, batches, COPY imports, the sweep, the workflow's
activities), one INSERT per statement. SQLite gets the tables but no triggers: its reports read the
raw tables (docs/indicators.md). The rollup starts empty and unbuilt; the worker's refresher (or
`python -m runtime.refresh_indicators --full`) builds it.

Indexes for reports and refreshes that read the raw tables by period: `rating.submitted_at`,
`case.opened_at`, and `servicerecord.staff_id` for a staff member's figures.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RATING_COUNTS = (
    "ratings", "active_ratings", "default_ratings", "good_ratings", "bad_ratings", "level_very_satisfied",
    "level_satisfied", "level_basically_satisfied", "level_dissatisfied", "level_very_dissatisfied", "follow_ups",
    "not_adopted_ratings",
)  # fmt: skip
_RECORD_COUNTS = (
    "completed_records", "staff_completed_records", "rated_records", "actively_rated_records", "item_rated_records",
    "item_actively_rated_records", "staff_rated_records", "staff_actively_rated_records",
)  # fmt: skip
_CASE_COUNTS = (
    "cases", "real_name_cases", "called_back_cases", "rectification_cases", "rectified_cases",
    "rectified_on_time_cases", "rater_answered_cases", "rater_satisfied_cases", "cannot_rectify_requested_cases",
    "cannot_rectify_approved_cases", "cannot_rectify_refused_cases", "cannot_rectify_pending_cases",
    "overdue_open_cases", "overdue_open_cases_rung_1", "overdue_open_cases_rung_2", "overdue_open_cases_rung_3",
    "overdue_open_cases_rung_4", "overdue_open_cases_rung_5", "escalated_cases_rung_1", "escalated_cases_rung_2",
    "escalated_cases_rung_3", "escalated_cases_rung_4", "escalated_cases_rung_5", "appealed_cases",
    "appeal_decided_cases", "appeal_upheld_cases", "appeal_rejected_cases", "appeal_pending_cases",
    "follow_ups_after_rectification", "good_follow_ups_after_rectification",
)  # fmt: skip


def _keys(with_channel: bool) -> list[sa.Column]:
    keys: list[sa.Column] = [
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
    ]
    if with_channel:
        keys += [
            sa.Column("channel", sa.String(length=32), nullable=False),
            sa.Column("target", sa.String(length=32), nullable=False),
        ]
    return keys


def _counts(names: tuple[str, ...]) -> list[sa.Column]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def _day(timestamp: str) -> str:
    """The China date of a timestamp, as the rollup keys it (models/indicators/periods.py: china_date)."""
    return f"(timezone('Asia/Shanghai', {timestamp}))::date"


# What each table's rows place, as (day, unit_id) slices of the rows in `changed`:
# a rating: its own day (ratings), its record's completion day (rated or not), the case opened for it
# (adopted, real-name), and for a follow-up the case of the rating it follows (追评 after rectification).
_RATING_SLICES = f"""
    SELECT {_day("r.submitted_at")} AS day, s.unit_id FROM changed r JOIN servicerecord s ON s.id = r.record_id
    UNION SELECT {_day("s.completed_at")}, s.unit_id FROM changed r JOIN servicerecord s ON s.id = r.record_id
    UNION SELECT {_day("c.opened_at")}, c.unit_id FROM changed r JOIN "case" c ON c.rating_id = r.id
    UNION SELECT {_day("c.opened_at")}, c.unit_id FROM changed r
        JOIN rating f ON f.record_id = r.record_id AND f.target = r.target AND f.stage = r.stage AND f.follow_up = 0
        JOIN "case" c ON c.rating_id IN (f.id, f.lead_rating_id)
        WHERE r.follow_up > 0"""
# A transaction: its completion day; when it changes, its ratings too (they belong to its unit).
_RECORD_SLICES = f"SELECT {_day('changed.completed_at')} AS day, changed.unit_id FROM changed"
_RECORD_RATING_SLICES = f"""{_RECORD_SLICES}
    UNION SELECT {_day("r.submitted_at")}, s.unit_id FROM changed s JOIN rating r ON r.record_id = s.id"""
# A case: its opening day at the unit it stands at (a reassigned case leaves one slice for another).
_CASE_SLICES = f"SELECT {_day('changed.opened_at')} AS day, changed.unit_id FROM changed"
# A timeline event: its case's slice.
_EVENT_SLICES = f'SELECT {_day("c.opened_at")} AS day, c.unit_id FROM changed e JOIN "case" c ON c.id = e.case_id'

# Updates that change nothing counted (updated_at, deadlines, invited_at, PII rotation …) queue nothing.
_COUNTED_COLUMNS = {
    "rating": "record_id, level, channel, target, stage, follow_up, lead_rating_id, real_name, is_bad, adopted, "
    "submitted_at",
    "servicerecord": "unit_id, item_id, staff_id, completed_at",
    "case": "rating_id, unit_id, stage, outcome, round, overdue, escalation_rung, opened_at",
    "caseevent": "case_id, stage, round, action, at, data::text",
}
_TRIGGERS = {  # table: (slices of inserted or deleted rows, slices of updated rows)
    "rating": (_RATING_SLICES, _RATING_SLICES),
    "servicerecord": (_RECORD_SLICES, _RECORD_RATING_SLICES),
    "case": (_CASE_SLICES, _CASE_SLICES),
    "caseevent": (_EVENT_SLICES, _EVENT_SLICES),
}


def _changed(table: str, operation: str) -> str:
    if operation == "insert":
        return "SELECT * FROM new_rows"
    if operation == "delete":
        return "SELECT * FROM old_rows"
    counted = _COUNTED_COLUMNS[table].split(", ")
    old, new = (", ".join(f"{side}.{column}" for column in counted) for side in ("o", "n"))
    differs = f"({old}) IS DISTINCT FROM ({new})"
    both = "old_rows o JOIN new_rows n ON n.id = o.id"
    return f"SELECT o.* FROM {both} WHERE {differs} UNION ALL SELECT n.* FROM {both} WHERE {differs}"


def _create_triggers() -> None:
    for table, (rows_slices, update_slices) in _TRIGGERS.items():
        quoted = f'"{table}"'
        for operation, transition in (
            ("insert", "NEW TABLE AS new_rows"),
            ("update", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("delete", "OLD TABLE AS old_rows"),
        ):
            name = f"rollup_dirty_{table}_{operation}"
            slices = update_slices if operation == "update" else rows_slices
            op.execute(f"""
                CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                    WITH changed AS ({_changed(table, operation)}), slices AS ({slices})
                    INSERT INTO rollupdirty (day, unit_id) SELECT DISTINCT day, unit_id FROM slices;
                    RETURN NULL;
                END $$""")
            op.execute(
                f"CREATE TRIGGER {name} AFTER {operation.upper()} ON {quoted} REFERENCING {transition} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )


def _drop_triggers() -> None:
    for table in _TRIGGERS:
        for operation in ("insert", "update", "delete"):
            name = f"rollup_dirty_{table}_{operation}"
            op.execute(f'DROP TRIGGER IF EXISTS {name} ON "{table}"')
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")


def upgrade() -> None:
    op.create_table(
        "ratingrollup",
        *_keys(with_channel=True),
        *_counts(_RATING_COUNTS),
        sa.PrimaryKeyConstraint("day", "unit_id", "channel", "target"),
    )
    op.create_table(
        "ratingtotalrollup",
        *_keys(with_channel=False),
        *_counts(_RATING_COUNTS),
        sa.PrimaryKeyConstraint("day", "unit_id"),
    )
    op.create_table(
        "recordrollup", *_keys(with_channel=False), *_counts(_RECORD_COUNTS), sa.PrimaryKeyConstraint("day", "unit_id")
    )
    op.create_table(
        "caserollup",
        *_keys(with_channel=True),
        *_counts(_CASE_COUNTS),
        sa.PrimaryKeyConstraint("day", "unit_id", "channel", "target"),
    )
    op.create_table(
        "rollupdirty",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("marked_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "rollupstate",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("definition", sa.String(length=64), nullable=False),
        sa.Column("built_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("refreshed_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_rating_submitted_at", "rating", ["submitted_at"], unique=False)
    op.create_index("ix_case_opened_at", "case", ["opened_at"], unique=False)
    op.create_index("ix_servicerecord_staff_id", "servicerecord", ["staff_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        _create_triggers()


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _drop_triggers()
    op.drop_index("ix_servicerecord_staff_id", table_name="servicerecord")
    op.drop_index("ix_case_opened_at", table_name="case")
    op.drop_index("ix_rating_submitted_at", table_name="rating")
    op.drop_table("rollupstate")
    op.drop_table("rollupdirty")
    op.drop_table("caserollup")
    op.drop_table("recordrollup")
    op.drop_table("ratingtotalrollup")
    op.drop_table("ratingrollup")
