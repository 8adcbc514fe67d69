"""per-instance pass-rate thresholds for the health colours

Two columns on test_instances: the pass rate (0..1) from which a build shows
green (default 1.0) and from which it shows amber (default 0.9); below that it
shows red. Existing instances get the defaults through the server default.

Revision ID: c3a1f0d2b7e4
Revises: b3c1f0a2d9e4
Create Date: 2026-12-04 17:20:00.000000

"""

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = "c3a1f0d2b7e4"
down_revision = "b3c1f0a2d9e4"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("test_instances") as batch:
        batch.add_column(sa.Column("pass_green", sa.Float(), nullable=False, server_default="1.0"))
        batch.add_column(sa.Column("pass_amber", sa.Float(), nullable=False, server_default="0.9"))


def downgrade():
    with op.batch_alter_table("test_instances") as batch:
        batch.drop_column("pass_amber")
        batch.drop_column("pass_green")
