"""attachments, the outbox, subscriptions and webhook deliveries

New tables only, so it runs on a filled database without touching existing rows.

Revision ID: 3f1a2b4c5d6e
Revises: c3a1f0d2b7e4
Create Date: 2026-12-04 17:15:00.000000

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "3f1a2b4c5d6e"
down_revision = "c3a1f0d2b7e4"
branch_labels = None
depends_on = None


def timestamp():
    """The models' UTCDateTime: DATETIME(6) on MySQL."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def long_text():
    """The models' LongText: MEDIUMTEXT on MySQL."""
    return sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql")


def upgrade():
    op.create_table(
        "attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        # test_cases.id is BIGINT on MySQL (INTEGER, SQLite's 64-bit rowid, there)
        sa.Column("case_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(127), nullable=False),
        sa.Column("storage_key", sa.String(512), nullable=False),
        sa.Column("created", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["test_cases.id"], name=op.f("fk_attachments_case_id_test_cases"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("storage_key", name=op.f("uq_attachments_storage_key")),
    )
    op.create_index("ix_attachments_case_id", "attachments", ["case_id"])
    op.create_index("ix_attachments_build_id", "attachments", ["build_id"])
    op.create_index("ix_attachments_instance_id", "attachments", ["instance_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", long_text(), nullable=False),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", timestamp(), nullable=False),
        sa.Column("created", timestamp(), nullable=False),
        sa.Column("finished", timestamp(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("delivery_id", name=op.f("uq_outbox_delivery_id")),
    )
    op.create_index("ix_outbox_state_available_at_id", "outbox", ["state", "available_at", "id"])
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("target", sa.String(2048), nullable=False),
        sa.Column("secret", sa.String(255), nullable=True),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("when", sa.String(16), nullable=True),
        sa.Column("created", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_id"],
            ["test_instances.id"],
            name=op.f("fk_subscriptions_instance_id_test_instances"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscriptions")),
    )
    op.create_index("ix_subscriptions_instance_id", "subscriptions", ["instance_id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=True),
        sa.Column("delivery_id", sa.String(36), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("response_code", sa.Integer(), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", timestamp(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name=op.f("fk_webhook_deliveries_subscription_id_subscriptions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_webhook_deliveries_outbox_id_outbox"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index("ix_webhook_deliveries_subscription_id", "webhook_deliveries", ["subscription_id"])


def downgrade():
    op.drop_table("webhook_deliveries")
    op.drop_table("subscriptions")
    op.drop_table("outbox")
    op.drop_table("attachments")
