"""retention: per-instance policy, pinned and pruned builds, run summaries and test names

Adds each instance's policy (``keep_days``, ``keep_builds``; NULL keeps
everything), a build's ``pinned`` flag and the time its case rows were
``pruned``, and the two tables that keep what the statistics read of pruned
builds. Only new nullable or defaulted columns and new tables: instant on a
filled table.

Revision ID: b7d2e9f4c1a3
Revises: a1c7e3f90b12
Create Date: 2026-12-04 20:40:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = 'b7d2e9f4c1a3'
down_revision = 'a1c7e3f90b12'
branch_labels = None
depends_on = None

KEY = sa.String(32).with_variant(mysql.VARCHAR(32, charset="ascii", collation="ascii_bin"), "mysql")
DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
SECONDS = sa.Float().with_variant(sa.Double(), "mysql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def exact(length):
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql")


def parent(name, table):
    return sa.Column(name, sa.Integer(), sa.ForeignKey(f"{table}.id", ondelete="CASCADE"), nullable=False)


def upgrade():
    with op.batch_alter_table("test_instances", schema=None) as batch_op:
        batch_op.add_column(sa.Column("keep_days", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("keep_builds", sa.Integer(), nullable=True))
    with op.batch_alter_table("test_builds", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pinned", sa.Boolean(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("pruned", DATETIME, nullable=True))
    op.create_table(
        "run_summaries",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        parent("build_id", "test_builds"),
        parent("instance_id", "test_instances"),
        sa.Column("test_key", KEY, nullable=False),
        sa.Column("result_status", sa.String(length=8), nullable=True),
        sa.Column("duration", SECONDS, nullable=True),
        sa.Column("is_flaky", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_summaries_build_status_cover", "run_summaries",
                    ["build_id", "result_status", "test_key", "duration", "is_flaky"], unique=False)
    op.create_index("ix_run_summaries_instance_id_test_key", "run_summaries",
                    ["instance_id", "test_key", "build_id"], unique=False)
    op.create_table(
        "test_names",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        parent("instance_id", "test_instances"),
        sa.Column("test_key", KEY, nullable=False),
        sa.Column("suite", exact(255), nullable=False),
        sa.Column("name", exact(512), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("instance_id", "test_key"),
    )


def downgrade():
    op.drop_table("test_names")
    # its indexes go with it (MySQL refuses to drop them first: the foreign keys use them)
    op.drop_table("run_summaries")
    with op.batch_alter_table("test_builds", schema=None) as batch_op:
        batch_op.drop_column("pruned")
        batch_op.drop_column("pinned")
    with op.batch_alter_table("test_instances", schema=None) as batch_op:
        batch_op.drop_column("keep_builds")
        batch_op.drop_column("keep_days")
