"""failure signatures on failing cases; triage labels, quarantine, gate rules, badge tokens

Every FAILED and ERROR case gets its failure signature (webapp.signatures):
a short hash, indexed with build_id and test_key so that failure groups are
counted from the index, and the normalised text. Existing failing cases are
signed in batches of BATCH rows by id, each batch its own UPDATEs, so a filled
table is never locked as a whole for long. The downgrade drops the columns
and the tables.

Revision ID: a1c7e3f90b12
Revises: e5f6a7b8c9d0
Create Date: 2026-12-04 17:20:00.000000

"""
from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from webapp.signatures import signature_for

# revision identifiers, used by Alembic.
revision = 'a1c7e3f90b12'
down_revision = 'e5f6a7b8c9d0'
branch_labels = None
depends_on = None

BATCH = 2000
HASH = sa.String(16).with_variant(mysql.VARCHAR(16, charset="ascii", collation="ascii_bin"), "mysql")
KEY = sa.String(32).with_variant(mysql.VARCHAR(32, charset="ascii", collation="ascii_bin"), "mysql")
DATETIME = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
SECONDS = sa.Float().with_variant(sa.Double(), "mysql")


def exact(length):
    return sa.String(length).with_variant(
        mysql.VARCHAR(length, charset="utf8mb4", collation="utf8mb4_bin"), "mysql")


def instance_key():
    return sa.Column("instance_id", sa.Integer(), sa.ForeignKey("test_instances.id", ondelete="CASCADE"),
                     nullable=False)


def user_key(name):
    return sa.Column(name, sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True)


def sign_existing():
    """Sign the failing cases already stored, a batch of ids at a time."""
    bind = op.get_bind()
    cases = sa.table("test_cases", sa.column("id", sa.Integer), sa.column("result_status", sa.String),
                     sa.column("message", sa.Text), sa.column("details", sa.Text),
                     sa.column("signature", HASH), sa.column("signature_text", sa.Text))
    update = (sa.update(cases).where(cases.c.id == sa.bindparam("case_id"))
              .values(signature=sa.bindparam("sig"), signature_text=sa.bindparam("text")))
    last = 0
    while True:
        rows = bind.execute(
            sa.select(cases.c.id, cases.c.message, cases.c.details)
            .where(cases.c.id > last, cases.c.result_status.in_(("FAILED", "ERROR")))
            .order_by(cases.c.id).limit(BATCH)
        ).all()
        if not rows:
            return
        parameters = []
        for row in rows:
            digest, text = signature_for(row.message, row.details)
            parameters.append({"case_id": row.id, "sig": digest, "text": text})
        bind.execute(update, parameters)
        last = rows[-1].id


def upgrade():
    with op.batch_alter_table("test_cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signature", HASH, nullable=True))
        batch_op.add_column(sa.Column("signature_text", sa.Text(), nullable=True))
    sign_existing()
    with op.batch_alter_table("test_cases", schema=None) as batch_op:
        batch_op.create_index("ix_test_cases_build_signature", ["build_id", "signature", "test_key"],
                              unique=False)

    op.create_table(
        "failure_labels",
        sa.Column("id", sa.Integer(), primary_key=True),
        instance_key(),
        sa.Column("signature", HASH, nullable=False),
        sa.Column("label", sa.String(16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("issue_url", sa.String(2048), nullable=False),
        user_key("updated_by_id"),
        sa.Column("updated_by_name", sa.String(80), nullable=False),
        sa.Column("updated", DATETIME, nullable=False),
        sa.UniqueConstraint("instance_id", "signature"),
    )
    op.create_table(
        "failure_label_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        instance_key(),
        sa.Column("signature", HASH, nullable=False),
        sa.Column("label", sa.String(16), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("issue_url", sa.String(2048), nullable=False),
        user_key("user_id"),
        sa.Column("username", sa.String(80), nullable=False),
        sa.Column("created", DATETIME, nullable=False),
    )
    op.create_index("ix_failure_label_events_instance_signature", "failure_label_events",
                    ["instance_id", "signature"])
    op.create_table(
        "quarantine_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        instance_key(),
        sa.Column("suite", exact(255), nullable=False),
        sa.Column("name", exact(512), nullable=False),
        sa.Column("test_key", KEY, nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        user_key("owner_id"),
        sa.Column("owner_name", sa.String(80), nullable=False),
        user_key("created_by_id"),
        sa.Column("created_by_name", sa.String(80), nullable=False),
        sa.Column("created", DATETIME, nullable=False),
        sa.Column("expires", DATETIME, nullable=False),
        sa.Column("removed", DATETIME, nullable=True),
        user_key("removed_by_id"),
        sa.Column("removed_by_name", sa.String(80), nullable=True),
    )
    op.create_index("ix_quarantine_entries_instance_key", "quarantine_entries", ["instance_id", "test_key"])
    op.create_table(
        "gate_rules",
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("test_instances.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("min_pass_rate", SECONDS, nullable=True),
        sa.Column("no_new_failures", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("max_flaky", sa.Integer(), nullable=True),
        sa.Column("max_duration_increase", SECONDS, nullable=True),
        sa.Column("updated_by_name", sa.String(80), nullable=False),
        sa.Column("updated", DATETIME, nullable=False),
    )
    op.create_table(
        "badge_tokens",
        sa.Column("instance_id", sa.Integer(), sa.ForeignKey("test_instances.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("rotated_by_name", sa.String(80), nullable=False),
        sa.Column("rotated", DATETIME, nullable=False),
    )


def downgrade():
    op.drop_table("badge_tokens")
    op.drop_table("gate_rules")
    op.drop_table("quarantine_entries")
    op.drop_table("failure_label_events")
    op.drop_table("failure_labels")
    with op.batch_alter_table("test_cases", schema=None) as batch_op:
        batch_op.drop_index("ix_test_cases_build_signature")
        batch_op.drop_column("signature_text")
        batch_op.drop_column("signature")
