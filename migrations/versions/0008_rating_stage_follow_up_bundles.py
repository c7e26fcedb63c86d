"""what a rating covers and when: the stage of service, follow-up ratings, batch and theme bundles

A rating was one per target of a record. Now it is one per target, stage of service (受理/办理/办结,
or the whole transaction) and follow-up number (0 = the rating, 1 = the first 追评) of a record.
A batch (一次办多件) or theme (一件事) rating is written on every record it covers; the rows after
the first point at the first (`lead_rating_id`), which alone carries a case.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db
import models.pii

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAGE = sa.Enum("whole", "acceptance", "handling", "completion", name="servicestage", native_enum=False, length=32)
_BUNDLE = sa.Enum("visit", "theme", name="bundlekind", native_enum=False, length=32)


def upgrade() -> None:
    # --- the rating's identity (shared) ---
    with op.batch_alter_table("rating", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stage", _STAGE, nullable=False, server_default="whole"))
        batch_op.add_column(sa.Column("follow_up", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("lead_rating_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_rating_lead_rating_id"), ["lead_rating_id"], unique=False)
        batch_op.create_foreign_key("fk_rating_lead_rating_id", "rating", ["lead_rating_id"], ["id"])
        batch_op.drop_constraint("uq_rating_record_target", type_="unique")
        batch_op.create_unique_constraint(
            "uq_rating_record_target_stage_follow_up", ["record_id", "target", "stage", "follow_up"]
        )

    # --- what a rating covers: batch business (一次办多件) and 一件事 themes ---
    with op.batch_alter_table("servicerecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bundle_no", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("bundle_kind", _BUNDLE, nullable=True))
        batch_op.add_column(sa.Column("theme_name", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_servicerecord_bundle_no"), ["bundle_no"], unique=False)

    # --- timing: invitations to unrated raters (the applicant's contact, encrypted) ---
    with op.batch_alter_table("servicerecord", schema=None) as batch_op:
        batch_op.add_column(sa.Column("applicant_phone", models.pii.EncryptedText(), nullable=True))
        batch_op.add_column(sa.Column("applicant_email", models.pii.EncryptedText(), nullable=True))
        batch_op.add_column(sa.Column("invited_at", models.db.UTCDateTime(timezone=True), nullable=True))
        # The invitation and default-rating sweeps select records by completion time.
        batch_op.create_index(batch_op.f("ix_servicerecord_completed_at"), ["completed_at"], unique=False)
    # An invitation is a notice about a record, not a case: a notice names one or the other.
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.add_column(sa.Column("record_id", sa.Integer(), nullable=True))
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=True)
        batch_op.create_index(batch_op.f("ix_notification_record_id"), ["record_id"], unique=False)
        batch_op.create_foreign_key("fk_notification_record_id", "servicerecord", ["record_id"], ["id"])


def downgrade() -> None:
    op.execute("DELETE FROM notification WHERE case_id IS NULL")
    with op.batch_alter_table("notification", schema=None) as batch_op:
        batch_op.drop_constraint("fk_notification_record_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_notification_record_id"))
        batch_op.alter_column("case_id", existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column("record_id")
    with op.batch_alter_table("servicerecord", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_servicerecord_completed_at"))
        batch_op.drop_column("invited_at")
        batch_op.drop_column("applicant_email")
        batch_op.drop_column("applicant_phone")

    with op.batch_alter_table("servicerecord", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_servicerecord_bundle_no"))
        batch_op.drop_column("theme_name")
        batch_op.drop_column("bundle_kind")
        batch_op.drop_column("bundle_no")

    # Follow-ups and per-stage ratings cannot be kept under the old one-per-target rule.
    op.execute("DELETE FROM rating WHERE follow_up <> 0 OR stage <> 'whole' OR lead_rating_id IS NOT NULL")
    with op.batch_alter_table("rating", schema=None) as batch_op:
        batch_op.drop_constraint("uq_rating_record_target_stage_follow_up", type_="unique")
        batch_op.create_unique_constraint("uq_rating_record_target", ["record_id", "target"])
        batch_op.drop_constraint("fk_rating_lead_rating_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_rating_lead_rating_id"))
        batch_op.drop_column("lead_rating_id")
        batch_op.drop_column("follow_up")
        batch_op.drop_column("stage")
