"""Models for acting on results: triage labels, quarantine, quality-gate rules and badge tokens.

All of them belong to a test instance and go with it. Who did what is kept as
a user id (cleared when the user goes) and the username of the time, so a
record still reads after the account is deleted.
"""

from datetime import datetime

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import UniqueConstraint
from sqlalchemy import true
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column
from sqlalchemy.orm import relationship

from webapp.extensions import db
from webapp.models import Seconds
from webapp.models import SignatureHash
from webapp.models import TestKey
from webapp.models import User
from webapp.models import UTCDateTime
from webapp.models import exact_name
from webapp.models import utcnow

LABELS = ("product_bug", "test_bug", "environment", "to_investigate")
LABEL_NAMES = {
    "product_bug": "product bug",
    "test_bug": "test bug",
    "environment": "environment",
    "to_investigate": "to investigate",
}


def user_ref():
    """A foreign key to a user that is cleared when the user is deleted."""
    return mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class FailureLabel(db.Model):
    """A maintainer's triage of one failure signature in one instance; it applies to every build."""

    __tablename__ = "failure_labels"
    __table_args__ = (UniqueConstraint("instance_id", "signature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    signature: Mapped[str] = mapped_column(SignatureHash)
    label: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    issue_url: Mapped[str] = mapped_column(String(2048), default="")
    updated_by_id: Mapped[int | None] = user_ref()
    updated_by_name: Mapped[str] = mapped_column(String(80), default="")
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FailureLabelEvent(db.Model):
    """One change of a triage label: set (with its values) or removed (``label`` NULL)."""

    __tablename__ = "failure_label_events"
    __table_args__ = (Index("ix_failure_label_events_instance_signature", "instance_id", "signature"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    signature: Mapped[str] = mapped_column(SignatureHash)
    label: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    issue_url: Mapped[str] = mapped_column(String(2048), default="")
    user_id: Mapped[int | None] = user_ref()
    username: Mapped[str] = mapped_column(String(80), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantineEntry(db.Model):
    """A test whose failures stop counting until ``expires`` or until someone removes the entry.

    Removed entries stay, with who removed them and when, as the record.
    """

    __tablename__ = "quarantine_entries"
    __table_args__ = (Index("ix_quarantine_entries_instance_key", "instance_id", "test_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    suite: Mapped[str] = mapped_column(exact_name(255))
    name: Mapped[str] = mapped_column(exact_name(512))
    test_key: Mapped[str] = mapped_column(TestKey)
    reason: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = user_ref()
    owner_name: Mapped[str] = mapped_column(String(80), default="")
    created_by_id: Mapped[int | None] = user_ref()
    created_by_name: Mapped[str] = mapped_column(String(80), default="")
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires: Mapped[datetime] = mapped_column(UTCDateTime)
    removed: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_by_id: Mapped[int | None] = user_ref()
    removed_by_name: Mapped[str | None] = mapped_column(String(80))

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])


class GateRules(db.Model):
    """An instance's quality-gate rules; an instance without a row has only "no new failures".

    A rule left NULL is off.
    """

    __tablename__ = "gate_rules"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("test_instances.id", ondelete="CASCADE"), primary_key=True
    )
    # percent, 0..100, of the cases that ran (skips excluded)
    min_pass_rate: Mapped[float | None] = mapped_column(Seconds)
    no_new_failures: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    max_flaky: Mapped[int | None] = mapped_column(Integer)
    # percent by which the summed case durations may exceed the base build's
    max_duration_increase: Mapped[float | None] = mapped_column(Seconds)
    updated_by_name: Mapped[str] = mapped_column(String(80), default="")
    updated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BadgeToken(db.Model):
    """The secret in an instance's badge URLs; rotating it breaks every published badge link."""

    __tablename__ = "badge_tokens"

    instance_id: Mapped[int] = mapped_column(
        ForeignKey("test_instances.id", ondelete="CASCADE"), primary_key=True
    )
    token: Mapped[str] = mapped_column(String(64))
    rotated_by_name: Mapped[str] = mapped_column(String(80), default="")
    rotated: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
