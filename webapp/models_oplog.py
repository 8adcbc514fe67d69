"""The operation log: one row per operation that changed stored results."""

import uuid
from datetime import datetime

from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from webapp.extensions import db
from webapp.models import UTCDateTime
from webapp.models import utcnow


def new_record_id():
    """A record's unique id, kept in every shipped copy so a reader can drop repeats."""
    return uuid.uuid4().hex


class OperationRecord(db.Model):
    """Who did what, when, to which ids, with what counts, under which request id.

    ``shipped`` is set once the worker has written the record to storage; the
    index on it finds the records still to ship without reading the others.
    """

    __tablename__ = "operation_log"
    __table_args__ = (
        Index("ix_operation_log_shipped_id", "shipped", "id"),
        Index("ix_operation_log_instance_id_at", "instance_id", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_record_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(255), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    instance_id: Mapped[int | None] = mapped_column(Integer)
    build_id: Mapped[int | None] = mapped_column(Integer)
    target: Mapped[str] = mapped_column(String(255), default="")
    counts: Mapped[str | None] = mapped_column(Text)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    shipped: Mapped[bool] = mapped_column(default=False)
