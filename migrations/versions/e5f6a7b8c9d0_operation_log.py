"""the operation log

A new table only, so it runs on a filled database without touching existing rows.

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-12-04 18:15:00.000000

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "e5f6a7b8c9d0"
down_revision = "d4e5f6a7b8c9"
branch_labels = None
depends_on = None


def upgrade():
    timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
    op.create_table(
        "operation_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.String(32), nullable=False),
        sa.Column("at", timestamp, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("username", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=True),
        sa.Column("build_id", sa.Integer(), nullable=True),
        sa.Column("target", sa.String(255), nullable=False),
        sa.Column("counts", sa.Text(), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("shipped", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operation_log")),
        sa.UniqueConstraint("record_id", name=op.f("uq_operation_log_record_id")),
    )
    op.create_index("ix_operation_log_shipped_id", "operation_log", ["shipped", "id"])
    op.create_index("ix_operation_log_instance_id_at", "operation_log", ["instance_id", "at"])
    op.create_index(op.f("ix_operation_log_at"), "operation_log", ["at"])
    op.create_index(op.f("ix_operation_log_action"), "operation_log", ["action"])


def downgrade():
    op.drop_table("operation_log")
