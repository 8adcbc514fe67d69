"""durations and duration counters in double precision on MySQL

MySQL's FLOAT is single precision (24-bit mantissa, about 7 digits): a build's
cases_duration drifted 0.002 s over 10,000 cases, and a duration near 1.8e9 s
lost its fractional digits. DOUBLE keeps 53 bits like Python's float. SQLite's
REAL is double already, so nothing changes there. On MySQL this rebuilds
test_builds, test_suites and test_cases; the downgrade rounds back to FLOAT.

Revision ID: 748b7efd5a74
Revises: 7c9d1e2f3a45
Create Date: 2026-11-23 08:12:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '748b7efd5a74'
down_revision = '7c9d1e2f3a45'
branch_labels = None
depends_on = None

# MODIFY COLUMN restates the whole column, so its nullability and default go along
COLUMNS = (
    ("test_builds", "cases_duration", {"existing_nullable": False, "existing_server_default": "0"}),
    ("test_suites", "cases_duration", {"existing_nullable": False, "existing_server_default": "0"}),
    ("test_cases", "duration", {"existing_nullable": True}),
)


def retype(old, new):
    """Change every duration column from type ``old`` to ``new`` (MySQL only)."""
    if op.get_bind().dialect.name != "mysql":
        return
    for table, column, existing in COLUMNS:
        op.alter_column(table, column, existing_type=old, type_=new, **existing)


def upgrade():
    retype(mysql.FLOAT(), sa.Double())


def downgrade():
    retype(sa.Double(), mysql.FLOAT())
