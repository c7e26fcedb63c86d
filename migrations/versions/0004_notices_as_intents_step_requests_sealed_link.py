"""notices recorded as intents, case step requests, the rater link's sealed token

Notices become an outbox: a row per (case, notice, round, arm, channel, recipient) written with the
timeline event, sent later by the worker's notice relay. Rows written before this revision were
sent at the time they were written, so they become `sent`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db
import models.pii

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = sa.Enum("pending", "sending", "sent", "failed", name="noticestatus", native_enum=False, length=32)
_CHANNEL = sa.Enum("email", "sms", name="noticechannel", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "casesteprequest",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("update_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("requester", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("action", sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("request_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "requester", "idempotency_key", name="uq_casesteprequest_key"),
        sa.UniqueConstraint("update_id"),
    )
    with op.batch_alter_table("casesteprequest", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_casesteprequest_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("event_key", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("context", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("status", _STATUS, nullable=False, server_default="sent"))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("next_attempt_at", models.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("claimed_until", models.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("created_at", models.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.alter_column("channel", existing_type=sa.VARCHAR(length=20), type_=_CHANNEL, existing_nullable=False)
        batch_op.alter_column("sent_at", existing_type=models.db.UTCDateTime(timezone=True), nullable=True)
        batch_op.create_index(batch_op.f("ix_notification_status"), ["status"], unique=False)
    op.execute("UPDATE notification SET created_at = sent_at")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.alter_column("created_at", existing_type=models.db.UTCDateTime(timezone=True), nullable=False)

    with op.batch_alter_table("raterlink", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_sealed", models.pii.EncryptedText(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("raterlink", schema=None) as batch_op:
        batch_op.drop_column("token_sealed")

    op.execute("DELETE FROM notification WHERE status <> 'sent'")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notification_status"))
        batch_op.alter_column("sent_at", existing_type=models.db.UTCDateTime(timezone=True), nullable=False)
        batch_op.alter_column("channel", existing_type=_CHANNEL, type_=sa.VARCHAR(length=20), existing_nullable=False)
        for column in ("created_at", "last_error", "claimed_until", "next_attempt_at", "attempts", "status"):
            batch_op.drop_column(column)
        batch_op.drop_column("context")
        batch_op.drop_column("event_key")

    with op.batch_alter_table("casesteprequest", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_casesteprequest_case_id"))
    op.drop_table("casesteprequest")
