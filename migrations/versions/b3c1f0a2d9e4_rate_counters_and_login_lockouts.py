"""rate_counters (shared rate limits without Redis) and login_lockouts (visible to admins)

rate_counters holds the failed-login and reset-request counters when app
servers share a MySQL database but no Redis. login_lockouts records each
username-at-address (or whole address) whose failed password attempts used up
a counter, so admins can list lockouts and lift them. Both tables are new, so
the upgrade is quick on a filled database.

Revision ID: b3c1f0a2d9e4
Revises: bd844cb3f168
Create Date: 2026-12-04 17:30:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

# revision identifiers, used by Alembic.
revision = 'b3c1f0a2d9e4'
down_revision = "bd844cb3f168"
branch_labels = None
depends_on = None

DATETIME6 = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade():
    op.create_table(
        'rate_counters',
        sa.Column('key', sa.String(length=64), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('expires', sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint('key', name=op.f('pk_rate_counters')),
    )
    op.create_table(
        'login_lockouts',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('username', sa.String(length=191), nullable=False),
        sa.Column('address', sa.String(length=64), nullable=False),
        sa.Column('until', DATETIME6, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_login_lockouts')),
        sa.UniqueConstraint('username', 'address', name=op.f('uq_login_lockouts_username_address')),
    )


def downgrade():
    op.drop_table('login_lockouts')
    op.drop_table('rate_counters')
