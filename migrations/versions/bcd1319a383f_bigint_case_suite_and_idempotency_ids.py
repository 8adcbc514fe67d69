"""test_cases, test_suites and idempotency_records ids as BIGINT on MySQL

A 100,000-case import every build passes INT's 2**31 case ids after about
21,000 builds; suites and idempotency records (one per keyed request) can get
there too. test_cases.suite_id follows test_suites.id: a foreign key joins
columns of one type, so that key is dropped and made again around the change.
Each table is rebuilt once (one ALTER per table), rows kept. SQLite's INTEGER
primary key is 64-bit already, so nothing changes there. The downgrade fails
if an id has passed 2**31 - 1 meanwhile.

Revision ID: bcd1319a383f
Revises: 748b7efd5a74
Create Date: 2026-12-04 17:30:00.000000

"""
from alembic import op

# revision identifiers, used by Alembic.
revision = 'bcd1319a383f'
down_revision = '748b7efd5a74'
branch_labels = None
depends_on = None

SUITE_KEY = "fk_test_cases_suite_id_test_suites"


def retype(kind):
    """Give the ids (and the suite id that points at one) the integer type ``kind`` (MySQL only)."""
    if op.get_bind().dialect.name != "mysql":
        return
    op.drop_constraint(SUITE_KEY, "test_cases", type_="foreignkey")
    op.execute(f"ALTER TABLE test_suites MODIFY id {kind} NOT NULL AUTO_INCREMENT")
    op.execute(f"ALTER TABLE test_cases MODIFY id {kind} NOT NULL AUTO_INCREMENT, MODIFY suite_id {kind} NOT NULL")
    op.execute(f"ALTER TABLE idempotency_records MODIFY id {kind} NOT NULL AUTO_INCREMENT")
    op.create_foreign_key(SUITE_KEY, "test_cases", "test_suites", ["suite_id"], ["id"], ondelete="CASCADE")


def upgrade():
    retype("BIGINT")


def downgrade():
    retype("INTEGER")
