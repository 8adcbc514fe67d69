"""Retention: delete the case rows of builds beyond each instance's policy, keeping their statistics.

An instance keeps the case rows of builds created in its last ``keep_days``
days or among its newest ``keep_builds`` builds (with both set, a build either
rule keeps stays; with neither, everything stays). Pinned builds always stay.

Pruning a build moves its cases out a batch of at most :data:`BATCH` rows per
transaction, so a live write never waits long on a lock. Each batch, in one
transaction, copies what the statistics read of the cases into
``run_summaries`` and the tests' names into ``test_names``
(:mod:`webapp.models_retention`), deletes the cases' attachments (their stored
objects go once the transaction commits) and then the cases. The build's and
suites' counters are left as they are, so lists, trends and pass rates do not
change. A last transaction clears the suites' captured output and stamps the
build ``pruned``, from when the statistics read it from its run summaries.

A run killed part-way leaves whole batches: the next run goes on from there.
Runs at the same time (the daily timer fires on every machine of a fleet)
take turns on each build's row, so no case is summarised twice.
"""

import dataclasses
import types
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from webapp import attachments
from webapp import oplog
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import utcnow
from webapp.models_messages import Attachment
from webapp.models_retention import RunSummary
from webapp.models_retention import TestName

# case rows moved per transaction: small enough that a live write waits milliseconds, not seconds
BATCH = 1000
# who the operation log names for pruning
RETENTION_ACTOR = types.SimpleNamespace(id=None, username="retention")


@dataclasses.dataclass
class Plan:
    """What a run does to one instance: the builds beyond its policy and what they hold."""

    instance: TestInstance
    build_ids: list
    cases: int
    attachments: int
    pinned_kept: int


def has_policy(instance):
    """Whether the instance limits what it keeps."""
    return instance.keep_days is not None or instance.keep_builds is not None


def beyond_policy(instance, now=None):
    """The conditions on an instance's builds that no rule of its policy keeps (pins aside)."""
    conditions = []
    if instance.keep_builds is not None:
        newest_kept = db.session.scalar(
            select(TestBuild.number)
            .where(TestBuild.instance_id == instance.id)
            .order_by(TestBuild.number.desc())
            .offset(instance.keep_builds - 1)
            .limit(1)
        )
        if newest_kept is None:
            return None
        conditions.append(TestBuild.number < newest_kept)
    if instance.keep_days is not None:
        conditions.append(TestBuild.created < (now or utcnow()) - timedelta(days=instance.keep_days))
    return conditions


def plan(instance, now=None):
    """The builds of ``instance`` to prune, oldest first, with the cases and attachments they hold."""
    conditions = beyond_policy(instance, now) if has_policy(instance) else None
    if not conditions:
        return Plan(instance, [], 0, 0, 0)
    beyond = [TestBuild.instance_id == instance.id, *conditions]
    rows = db.session.execute(
        select(TestBuild.id, TestBuild.cases_total, TestBuild.pinned, TestBuild.pruned)
        .where(*beyond)
        .order_by(TestBuild.number)
    ).all()
    # a pruned build comes back only if results were posted into it since
    late = set(
        db.session.scalars(
            select(TestCase.build_id)
            .where(TestCase.build_id.in_([row.id for row in rows if row.pruned is not None]))
            .distinct()
        )
    )
    rows = [row for row in rows if row.pruned is None or row.id in late]
    build_ids = [row.id for row in rows if not row.pinned]
    files = 0
    if build_ids:
        files = db.session.scalar(select(func.count()).where(Attachment.build_id.in_(build_ids)))
    return Plan(
        instance,
        build_ids,
        sum(row.cases_total for row in rows if not row.pinned),
        files,
        sum(1 for row in rows if row.pinned),
    )


def plans(instance_name=None, now=None):
    """A :class:`Plan` per instance by name, or for the named one (empty without a policy)."""
    statement = select(TestInstance).order_by(TestInstance.name)
    if instance_name is not None:
        statement = statement.where(TestInstance.name == instance_name)
    return [plan(instance, now) for instance in db.session.scalars(statement)]


def name_rows(case_ids):
    """``INSERT … SELECT`` of the tests' names, skipping tests already named."""
    names = (
        select(TestCase.instance_id, TestCase.test_key, TestSuite.name, TestCase.name)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.id.in_(case_ids))
    )
    return (
        insert(TestName)
        .from_select(["instance_id", "test_key", "suite", "name"], names)
        .prefix_with("IGNORE", dialect="mysql")
        .prefix_with("OR IGNORE", dialect="sqlite")
    )


def summary_rows(case_ids):
    """``INSERT … SELECT`` of the cases' run summaries."""
    columns = ["build_id", "instance_id", "test_key", "result_status", "duration", "is_flaky"]
    runs = select(*(getattr(TestCase, column) for column in columns)).where(TestCase.id.in_(case_ids))
    return insert(RunSummary).from_select(columns, runs)


def prune_batch(build_id, batch=BATCH):
    """Move up to ``batch`` cases of a build into run summaries in one transaction; return how many.

    :return: ``(cases, attachments)`` moved and deleted.
    """
    # the build's row first, as every case write takes it: two runs (one per machine of a fleet)
    # take turns per batch, and the second finds the first one's cases gone, never copies them twice
    db.session.execute(select(TestBuild.id).where(TestBuild.id == build_id).with_for_update())
    case_ids = list(
        db.session.scalars(
            select(TestCase.id)
            .where(TestCase.build_id == build_id)
            .order_by(TestCase.id)
            .limit(batch)
            .with_for_update()
        )
    )
    if not case_ids:
        db.session.rollback()
        return 0, 0
    db.session.execute(name_rows(case_ids))
    db.session.execute(summary_rows(case_ids))
    keys = list(db.session.scalars(select(Attachment.storage_key).where(Attachment.case_id.in_(case_ids))))
    if keys:
        db.session.execute(delete(Attachment).where(Attachment.case_id.in_(case_ids)))
        attachments.delete_after_commit(db.session, keys)
    db.session.execute(delete(TestCase).where(TestCase.id.in_(case_ids)))
    db.session.commit()
    return len(case_ids), len(keys)


def finish_pruning(build_id, counts):
    """Stamp the build pruned and drop its suites' captured output, unless cases came in meanwhile.

    The build row is locked first, as every case write locks it, so no case
    lands between the check and the stamp.
    """
    build = db.session.execute(
        select(TestBuild).where(TestBuild.id == build_id).with_for_update()
    ).scalar_one()
    if db.session.scalar(select(TestCase.id).where(TestCase.build_id == build_id).limit(1)) is not None:
        db.session.rollback()
        return False
    db.session.execute(
        update(TestSuite).where(TestSuite.build_id == build_id).values(system_out=None, system_err=None)
    )
    build.pruned = utcnow()
    oplog.record(
        "retention.prune",
        user=RETENTION_ACTOR,
        instance_id=build.instance_id,
        build_id=build_id,
        target=f"build #{build.number}",
        counts=counts,
    )
    db.session.commit()
    return True


def prune_build(build_id, batch=BATCH):
    """Move every case of a build into run summaries, batch by batch; return ``{"cases", "attachments"}``."""
    counts = {"cases": 0, "attachments": 0}
    while True:
        cases, files = prune_batch(build_id, batch)
        counts["cases"] += cases
        counts["attachments"] += files
        if cases == 0 and finish_pruning(build_id, counts):
            return counts


def run(plan_of_instance, batch=BATCH, progress=None):
    """Prune the builds of one plan; ``progress(build_id, counts)`` hears of each build done."""
    totals = {"builds": 0, "cases": 0, "attachments": 0}
    for build_id in plan_of_instance.build_ids:
        counts = prune_build(build_id, batch)
        add_to(totals, {"builds": 1, **counts})
        if progress is not None:
            progress(build_id, counts)
    return totals


def add_to(totals, counts):
    """Add ``counts`` into ``totals``, name by name."""
    for name, value in counts.items():
        totals[name] += value
