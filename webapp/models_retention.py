"""What retention keeps of a pruned build: one compact run row per test, and each test's names.

:mod:`webapp.retention` deletes the case rows (messages, tracebacks, output,
properties, attachments) of builds beyond an instance's policy. So that trends,
flaky and slowest tests and one test's history still answer for those builds,
it first copies what the statistics read of each case into a :class:`RunSummary`
(about a tenth of a case row with its indexes), and each test's suite and case
name into a :class:`TestName`, in the same transaction as the delete.
"""

from sqlalchemy import Boolean
from sqlalchemy import ForeignKey
from sqlalchemy import Index
from sqlalchemy import String
from sqlalchemy import UniqueConstraint
from sqlalchemy import false
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from webapp.domain import CASE_NAME_LIMIT
from webapp.domain import NAME_LIMIT
from webapp.extensions import db
from webapp.models import BigId
from webapp.models import Seconds
from webapp.models import TestKey
from webapp.models import exact_name


class RunSummary(db.Model):
    """One test's run in a pruned build: what flaky, slowest and history read of its case."""

    __tablename__ = "run_summaries"
    __table_args__ = (
        # the same shape as the case table's covering index: a window of builds is read from it alone
        Index(
            "ix_run_summaries_build_status_cover",
            "build_id",
            "result_status",
            "test_key",
            "duration",
            "is_flaky",
        ),
        Index("ix_run_summaries_instance_id_test_key", "instance_id", "test_key", "build_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    build_id: Mapped[int] = mapped_column(ForeignKey("test_builds.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    test_key: Mapped[str] = mapped_column(TestKey)
    result_status: Mapped[str | None] = mapped_column(String(8))
    duration: Mapped[float | None] = mapped_column(Seconds)
    is_flaky: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class TestName(db.Model):
    """A test's suite and case name, kept for tests whose every case row may be pruned."""

    __tablename__ = "test_names"
    __test__ = False
    __table_args__ = (UniqueConstraint("instance_id", "test_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("test_instances.id", ondelete="CASCADE"))
    test_key: Mapped[str] = mapped_column(TestKey)
    suite: Mapped[str] = mapped_column(exact_name(NAME_LIMIT))
    name: Mapped[str] = mapped_column(exact_name(CASE_NAME_LIMIT))
