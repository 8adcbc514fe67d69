"""The queued import's job: a stored upload waiting for, or going through, ``flask worker``."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import Integer
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from webapp.extensions import db
from webapp.models import UTCDateTime
from webapp.models import utcnow

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
STATES = (QUEUED, RUNNING, DONE, FAILED)


def new_token():
    """A claim's token: only the worker holding the latest claim may mark the job done."""
    return uuid.uuid4().hex


class ImportJob(db.Model):
    """One queued JUnit import into ``build_id``, made when the upload was accepted.

    ``files`` is a JSON list of ``{"key", "label", "compressed", "size"}``: the
    stored report files, read back by the worker. A claim sets ``token`` and a
    lease (``lease_until``); a worker that dies leaves the lease to run out, and
    the next claim, with a new token, runs the job again. The import's own
    transaction marks the job done only if its token is still the job's, so a
    report is stored once however often the job ran.
    """

    __tablename__ = "import_jobs"
    __table_args__ = (Index("ix_import_jobs_state_lease_until_id", "state", "lease_until", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"), index=True)
    # a failed import's new build goes, and the job stays to say why
    build_id: Mapped[int | None] = mapped_column(
        ForeignKey("test_builds.id", ondelete="SET NULL"), index=True
    )
    # the build was made for this import: it takes the reports' times, and goes if the import fails
    new_build: Mapped[bool] = mapped_column(default=False)
    user_id: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(8), default=QUEUED)
    files: Mapped[str] = mapped_column(Text)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    cases_stored: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reply: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    created: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished: Mapped[datetime | None] = mapped_column(UTCDateTime)
