"""Models of files and messages: attachments, the outbox, subscriptions and webhook deliveries.

They live beside :mod:`webapp.models` (which holds the results tree) so that
the tables of this concern read as one unit.
"""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from webapp.extensions import db
from webapp.models import BigId
from webapp.models import LongText
from webapp.models import UTCDateTime
from webapp.models import utcnow

# outbox states: ready (waiting, or claimed while available_at is in the future),
# done (delivered), dead (gave up after the last attempt)
READY = "ready"
DONE = "done"
DEAD = "dead"
CHANNELS = ("email", "webhook")
EVENTS = ("build.finished", "test.flaky", "gate.failed")
BUILD_WHEN = ("always", "failing", "new_failures")


def new_delivery_id():
    """A delivery id: stable across retries, so receivers can drop repeats."""
    return str(uuid.uuid4())


class Attachment(db.Model):
    """A file attached to a test case; its bytes live in :mod:`webapp.storage` under ``storage_key``.

    ``build_id`` and ``instance_id`` repeat what the case knows, so deleting a
    build or instance finds its objects with one index lookup.
    """

    __tablename__ = "attachments"
    __table_args__ = (
        Index("ix_attachments_build_id", "build_id"),
        Index("ix_attachments_instance_id", "instance_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(BigId, ForeignKey("test_cases.id", ondelete="CASCADE"), index=True)
    build_id: Mapped[int] = mapped_column(Integer)
    instance_id: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(127))
    storage_key: Mapped[str] = mapped_column(String(512), unique=True)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxMessage(db.Model):
    """One unit of background work, written in the transaction of the event that caused it.

    The worker claims ready rows whose ``available_at`` has come; claiming
    moves ``available_at`` forward by a lease, so a worker that dies leaves
    the row to be claimed again once the lease ends, with the same
    ``delivery_id``. The index covers the claim's WHERE and ORDER BY.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_state_available_at_id", "state", "available_at", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[str] = mapped_column(LongText)
    delivery_id: Mapped[str] = mapped_column(String(36), unique=True, default=new_delivery_id)
    state: Mapped[str] = mapped_column(String(8), default=READY)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class Subscription(db.Model):
    """Who hears about an instance's events, and how: by e-mail or by a signed webhook."""

    __tablename__ = "subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    # e-mail: comma-separated addresses; webhook: the target URL
    target: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str | None] = mapped_column(String(255))
    event: Mapped[str] = mapped_column(String(32))
    # build.finished only: always, failing or new_failures
    when: Mapped[str | None] = mapped_column(String(16))
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def addresses(self):
        """The e-mail addresses of an e-mail subscription (None for a webhook)."""
        return [item for item in self.target.split(",") if item] if self.channel == "email" else None

    @property
    def url(self):
        """The target URL of a webhook (None for e-mail)."""
        return self.target if self.channel == "webhook" else None


class WebhookDelivery(db.Model):
    """One attempt to deliver a webhook: what maintainers read in the delivery log."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id", ondelete="SET NULL"))
    delivery_id: Mapped[str] = mapped_column(String(36))
    event: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    response_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
