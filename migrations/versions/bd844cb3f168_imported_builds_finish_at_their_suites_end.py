"""imported builds finish when their report's suites end, not at upload time

Builds made from a JUnit report used to start at the report's earliest suite
timestamp and finish at upload time, so a late upload made a build look hours
long. They now finish at the latest suite end (timestamp plus time), or at
the start plus the summed times of the suites without a timestamp when that is
later; a report without any timestamp finishes at upload and starts that sum
before it. This fixes the stored builds by the same rule.

An imported build is recognised by what the import wrote: every case of it
has no start and finished at exactly the build's finish (the upload time, to
the microsecond), which no case recorded through the API shares. A suite's
time is its finish minus its start where it had a timestamp; a suite without
one counts the sum of its cases' durations (its own time attribute was not
stored). The downgrade keeps the corrected times: the old ones were wrong.

Revision ID: bd844cb3f168
Revises: fa36debca612
Create Date: 2026-12-04 17:40:00.000000

"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'bd844cb3f168'
down_revision = 'fa36debca612'
branch_labels = None
depends_on = None

builds = sa.table("test_builds", sa.column("id", sa.Integer), sa.column("started", sa.DateTime),
                  sa.column("finished", sa.DateTime))
suites = sa.table("test_suites", sa.column("build_id", sa.Integer), sa.column("started", sa.DateTime),
                  sa.column("finished", sa.DateTime), sa.column("cases_duration", sa.Float))
cases = sa.table("test_cases", sa.column("build_id", sa.Integer), sa.column("started", sa.DateTime),
                 sa.column("finished", sa.DateTime))


def imported_builds(bind):
    """``(id, started, finished)`` of the builds the JUnit import made."""
    own_cases = cases.c.build_id == builds.c.id
    not_imported = sa.or_(cases.c.started.is_not(None), cases.c.finished.is_(None),
                          cases.c.finished != builds.c.finished)
    return bind.execute(
        sa.select(builds.c.id, builds.c.started, builds.c.finished).where(
            builds.c.started.is_not(None),
            builds.c.finished.is_not(None),
            sa.exists().where(own_cases),
            ~sa.exists().where(own_cases, not_imported),
        )
    ).all()


def report_times(uploaded, suite_rows):
    """A build's start and finish from its suites, as the import now computes them."""
    timed = [(row.started, row.finished or row.started) for row in suite_rows if row.started is not None]
    untimed = timedelta(seconds=sum(row.cases_duration or 0.0 for row in suite_rows if row.started is None))
    if not timed:
        return uploaded - untimed, uploaded
    earliest = min(start for start, _ in timed)
    return earliest, max(max(end for _, end in timed), earliest + untimed)


def upgrade():
    bind = op.get_bind()
    for build_id, started, finished in imported_builds(bind):
        suite_rows = bind.execute(
            sa.select(suites.c.started, suites.c.finished, suites.c.cases_duration)
            .where(suites.c.build_id == build_id)
        ).all()
        times = report_times(finished, suite_rows)
        if times != (started, finished):
            bind.execute(sa.update(builds).where(builds.c.id == build_id)
                         .values(started=times[0], finished=times[1]))


def downgrade():
    pass
