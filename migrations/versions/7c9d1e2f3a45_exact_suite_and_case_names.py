"""suite and case names compare exactly (utf8mb4_bin) on MySQL

A suite's or case's name is its identity. Under utf8mb4_unicode_ci the unique
indexes on (build_id, name) and (suite_id, name) took "testA" and "testa", or
"café" and "cafe", for the same name, so a real report holding both could not
be stored. SQLite compares bytes already. On MySQL this rebuilds test_suites and
test_cases.

Revision ID: 7c9d1e2f3a45
Revises: 5b2e7c4d9a10
Create Date: 2026-11-23 07:50:00.000000

"""
from alembic import op
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = '7c9d1e2f3a45'
down_revision = '5b2e7c4d9a10'
branch_labels = None
depends_on = None

COLUMNS = (("test_suites", 255), ("test_cases", 512))


def collate(collation):
    """Give both name columns this utf8mb4 collation (MySQL only)."""
    if op.get_bind().dialect.name != "mysql":
        return
    for table, length in COLUMNS:
        op.alter_column(table, "name", existing_nullable=False,
                        type_=mysql.VARCHAR(length, charset="utf8mb4", collation=collation))


def upgrade():
    collate("utf8mb4_bin")


def downgrade():
    collate("utf8mb4_unicode_ci")
