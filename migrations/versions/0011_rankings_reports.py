"""monthly reports (月度报告) published in frozen versions, and rectification texts reviewed for publication

`monthlyreport` holds each published version of a scope's month: the figures as canonical JSON, the
HTML, CSV and XLSX rendered from them, byte for byte, and their SHA-256. A correction is a new row
naming the version it corrects (`corrects_id`) and why. On PostgreSQL a trigger refuses UPDATE and
DELETE on it: a published version never changes. `rectificationdisclosure` holds each closed case's
rectification text as it may be published (整改情况公开): masked by the redaction check, with what was
found (kinds and counts), and a supervisor's decision.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import models.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUS = sa.Enum("pending", "approved", "withheld", name="disclosurestatus", native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        "monthlyreport",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_key", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=True),
        sa.Column("region_id", sa.Integer(), nullable=True),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("corrects_id", sa.Integer(), nullable=True),
        sa.Column("correction_reason", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
        sa.Column("title", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        sa.Column("html", sa.Text(), nullable=False),
        sa.Column("csv", sa.LargeBinary(), nullable=False),
        sa.Column("xlsx", sa.LargeBinary(), nullable=False),
        sa.Column("content_sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("artifact_sha256", sa.JSON(), nullable=False),
        sa.Column("published_by", sa.Integer(), nullable=False),
        sa.Column("published_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["corrects_id"], ["monthlyreport.id"]),
        sa.ForeignKeyConstraint(["published_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["region_id"], ["region.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope_key", "month", "version", name="uq_monthlyreport_scope_month_version"),
    )
    with op.batch_alter_table("monthlyreport", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_monthlyreport_scope_key"), ["scope_key"], unique=False)
    op.create_table(
        "rectificationdisclosure",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("month", sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
        sa.Column("proposed", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("public_text", sqlmodel.sql.sqltypes.AutoString(length=8000), nullable=False),
        sa.Column("reviewed_by", sa.Integer(), nullable=True),
        sa.Column("reviewed_at", models.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("review_note", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("collected_at", models.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.ForeignKeyConstraint(["item_id"], ["serviceitem.id"]),
        sa.ForeignKeyConstraint(["reviewed_by"], ["user.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["unit.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id"),
    )
    with op.batch_alter_table("rectificationdisclosure", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rectificationdisclosure_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_rectificationdisclosure_month"), ["month"], unique=False)
        batch_op.create_index(batch_op.f("ix_rectificationdisclosure_status"), ["status"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION monthlyreport_frozen() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'a published monthly report is frozen: publish a correction instead';
            END;
            $$ LANGUAGE plpgsql;
            CREATE TRIGGER monthlyreport_frozen BEFORE UPDATE OR DELETE ON monthlyreport
                FOR EACH ROW EXECUTE FUNCTION monthlyreport_frozen();
            """
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER monthlyreport_frozen ON monthlyreport; DROP FUNCTION monthlyreport_frozen();")
    with op.batch_alter_table("rectificationdisclosure", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rectificationdisclosure_status"))
        batch_op.drop_index(batch_op.f("ix_rectificationdisclosure_month"))
        batch_op.drop_index(batch_op.f("ix_rectificationdisclosure_unit_id"))
    op.drop_table("rectificationdisclosure")
    with op.batch_alter_table("monthlyreport", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monthlyreport_scope_key"))
    op.drop_table("monthlyreport")
