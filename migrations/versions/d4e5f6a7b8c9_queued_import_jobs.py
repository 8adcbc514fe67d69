"""queued import jobs

A new table only, so it runs on a filled database without touching existing rows.

Revision ID: d4e5f6a7b8c9
Revises: 3f1a2b4c5d6e
Create Date: 2026-12-04 17:55:00.000000

"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = "d4e5f6a7b8c9"
down_revision = "3f1a2b4c5d6e"
branch_labels = None
depends_on = None


def timestamp():
    """The models' UTCDateTime: DATETIME(6) on MySQL."""
    return sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade():
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("instance_id", sa.Integer(), nullable=False),
        sa.Column("build_id", sa.Integer(), nullable=True),
        sa.Column("new_build", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("files", sa.Text(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("cases_stored", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("token", sa.String(32), nullable=True),
        sa.Column("lease_until", timestamp(), nullable=True),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created", timestamp(), nullable=False),
        sa.Column("started", timestamp(), nullable=True),
        sa.Column("finished", timestamp(), nullable=True),
        sa.ForeignKeyConstraint(["instance_id"], ["test_instances.id"],
                                name=op.f("fk_import_jobs_instance_id_test_instances"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["build_id"], ["test_builds.id"],
                                name=op.f("fk_import_jobs_build_id_test_builds"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_jobs")),
    )
    op.create_index("ix_import_jobs_state_lease_until_id", "import_jobs", ["state", "lease_until", "id"])
    op.create_index(op.f("ix_import_jobs_instance_id"), "import_jobs", ["instance_id"])
    op.create_index(op.f("ix_import_jobs_build_id"), "import_jobs", ["build_id"])


def downgrade():
    op.drop_table("import_jobs")
