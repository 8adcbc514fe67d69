"""test cases: test_key as ASCII binary; a covering index for the window statistics

The statistics over the last N builds (top failing, slowest, flaky,
regressions) scan those builds' cases by (build_id, result_status) and group
them by test_key. With test_key, duration and is_flaky in that index they never
read the rows; with test_key in ASCII binary (a hex digest needs nothing else)
its index entries are 4x smaller and grouping compares bytes, not collation
weights. On MySQL the column change rebuilds test_cases (about 15 s per million
cases on the 2-core reference machine).

Revision ID: 5b2e7c4d9a10
Revises: 8eb74f4347de
Create Date: 2026-11-23 06:45:00.000000

"""
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '5b2e7c4d9a10'
down_revision = '8eb74f4347de'
branch_labels = None
depends_on = None

ASCII_KEY = mysql.VARCHAR(32, charset="ascii", collation="ascii_bin")
UTF8_KEY = mysql.VARCHAR(32, charset="utf8mb4", collation="utf8mb4_unicode_ci")
OLD_INDEX = ("ix_test_cases_build_id_result_status", ["build_id", "result_status"])
NEW_INDEX = ("ix_test_cases_build_status_cover", ["build_id", "result_status", "test_key", "duration", "is_flaky"])


def swap_index(create, drop):
    """Create one index, then drop the other: MySQL's foreign key on build_id needs one at all times."""
    with op.batch_alter_table("test_cases", schema=None) as batch_op:
        batch_op.create_index(create[0], create[1], unique=False)
    with op.batch_alter_table("test_cases", schema=None) as batch_op:
        batch_op.drop_index(drop[0])


def upgrade():
    if op.get_bind().dialect.name == "mysql":
        op.alter_column("test_cases", "test_key", existing_type=UTF8_KEY, type_=ASCII_KEY,
                        existing_nullable=False)
    swap_index(NEW_INDEX, OLD_INDEX)


def downgrade():
    swap_index(OLD_INDEX, NEW_INDEX)
    if op.get_bind().dialect.name == "mysql":
        op.alter_column("test_cases", "test_key", existing_type=ASCII_KEY, type_=UTF8_KEY,
                        existing_nullable=False)
