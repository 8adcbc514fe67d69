"""suite and case properties: the <properties> of JUnit reports, kept

A nullable text column on test_suites and test_cases holding the (name, value)
pairs as JSON; adding a nullable column leaves the rows as they are.

Revision ID: fa36debca612
Revises: bcd1319a383f
Create Date: 2026-12-04 17:31:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = 'fa36debca612'
down_revision = 'bcd1319a383f'
branch_labels = None
depends_on = None

TABLES = ("test_suites", "test_cases")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("properties", sa.Text().with_variant(mysql.MEDIUMTEXT(), "mysql"),
                                       nullable=True))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("properties")
