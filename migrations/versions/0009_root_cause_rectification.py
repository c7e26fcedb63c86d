"""root-cause rectifications (根源整改): the rectification, the cases it covers, its timeline, its notices

A supervisor groups the cases of a concentrated problem (差评集中) and opens one rectification over
them. A case is in at most one open rectification: `rootcauselink.open_case_id` holds the case id
while its rectification is open (unique) and is cleared when it is accepted or withdrawn. Notices
to staff about a rectification name it (`notification.root_cause_id`) instead of a case or record.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAGE = sa.Enum(
    "rectifying", "result_submitted", "accepted", "withdrawn", name="rootcausestage", native_enum=False, length=32
)


def upgrade() -> None:
    op.create_table(
        "rootcauserectification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workflow_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("opened_by", sa.Integer(), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("problem", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("concentration", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("stage", _STAGE, nullable=False),
        sa.Column("policy_code", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("within", sqlmodel.sql.sqltypes.AutoString(length=10), nullable=False),
        sa.Column("due_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("escalation_rung", sa.Integer(), nullable=False),
        sa.Column("result", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("opened_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("workflow_started_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["opened_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workflow_id"),
    )
    with op.batch_alter_table("rootcauserectification", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rootcauserectification_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rootcauserectification_stage"), ["stage"], unique=False)
        batch_op.create_index(batch_op.f("ix_rootcauserectification_due_at"), ["due_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_rootcauserectification_overdue"), ["overdue"], unique=False)

    op.create_table(
        "rootcauselink",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rectification_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("open_case_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["rectification_id"], ["rootcauserectification.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("open_case_id", name="uq_rootcauselink_open_case"),
        sa.UniqueConstraint("rectification_id", "case_id", name="uq_rootcauselink_rectification_case"),
    )
    with op.batch_alter_table("rootcauselink", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rootcauselink_case_id"), ["case_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rootcauselink_rectification_id"), ["rectification_id"], unique=False)

    op.create_table(
        "rootcauseevent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rectification_id", sa.Integer(), nullable=False),
        sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("stage", _STAGE, nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("recorded_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["rectification_id"], ["rootcauserectification.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rectification_id", "event_key", name="uq_rootcauseevent_key"),
    )
    with op.batch_alter_table("rootcauseevent", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rootcauseevent_rectification_id"), ["rectification_id"], unique=False)

    # A rectification's notice to staff names the rectification: neither a case nor a record.
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("root_cause_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_notification_root_cause_id"), ["root_cause_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_notification_root_cause_id", "rootcauserectification", ["root_cause_id"], ["id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE root_cause_id IS NOT NULL")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notification_root_cause_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notification_root_cause_id"))
        batch_op.drop_column("root_cause_id")
    with op.batch_alter_table("rootcauseevent", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rootcauseevent_rectification_id"))
    op.drop_table("rootcauseevent")
    with op.batch_alter_table("rootcauselink", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rootcauselink_rectification_id"))
        batch_op.drop_index(batch_op.f("ix_rootcauselink_case_id"))
    op.drop_table("rootcauselink")
    with op.batch_alter_table("rootcauserectification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rootcauserectification_overdue"))
        batch_op.drop_index(batch_op.f("ix_rootcauserectification_due_at"))
        batch_op.drop_index(batch_op.f("ix_rootcauserectification_stage"))
        batch_op.drop_index(batch_op.f("ix_rootcauserectification_unit_id"))
    op.drop_table("rootcauserectification")
