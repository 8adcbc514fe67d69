"""Health at a glance: pass-rate colours, new failures since the base, failing-since streaks.

Plain query functions used by the pages (and the API where it shows the same
figures). Each reads counters or a few index ranges: the new failures of a
build are found through its failing cases only, and a failing test's streak
through the ``(instance_id, test_key, build_id)`` index.
"""

from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.orm import aliased

from webapp import stats
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase

GREEN = "green"
AMBER = "amber"
RED = "red"
# how far back a failing streak is followed; older starts show as "at least"
STREAK_BUILDS = 100


def pass_level(rate, instance):
    """The colour of a pass rate under an instance's thresholds: green, amber, red, or None without a rate."""
    if rate is None:
        return None
    if rate >= instance.pass_green:
        return GREEN
    if rate >= instance.pass_amber:
        return AMBER
    return RED


def new_failure_count(build, base):
    """How many of ``build``'s failing tests were not failing (or absent) in ``base``.

    Read through the build's failing cases (a short range of the status index),
    each looked up in the base by test key.
    """
    if base is None:
        return None
    there = aliased(TestCase, name="there")
    statement = (
        select(func.count(TestCase.id))
        .outerjoin(
            there,
            and_(
                there.instance_id == TestCase.instance_id,
                there.test_key == TestCase.test_key,
                there.build_id == base.id,
            ),
        )
        .where(
            TestCase.build_id == build.id,
            TestCase.result_status.in_(stats.FAILING),
            or_(there.id.is_(None), there.result_status.is_(None), there.result_status.not_in(stats.FAILING)),
        )
        .with_hint(there, f"FORCE INDEX ({stats.TEST_KEY_INDEX})", "mysql")
    )
    return db.session.scalar(statement)


def new_failures_by_build(builds):
    """``{build id: new failures since its default base}`` for a page of builds (None without a base).

    A build without failures has no new ones, so only failing builds cost queries.
    """
    counts = {}
    for build in builds:
        if not (build.failed or build.errored):
            counts[build.id] = 0
            continue
        base, _ = stats.comparison_base(build)
        counts[build.id] = new_failure_count(build, base)
    return counts


def branch_builds(build, limit=STREAK_BUILDS):
    """Ids and numbers of ``build`` and the builds before it on its branch, newest first."""
    branch = TestBuild.branch.is_(None) if build.branch is None else TestBuild.branch == build.branch
    return db.session.execute(
        select(TestBuild.id, TestBuild.number)
        .where(TestBuild.instance_id == build.instance_id, TestBuild.number <= build.number, branch)
        .order_by(TestBuild.number.desc())
        .limit(limit)
    ).all()


def failing_since(build, test_keys):
    """Since which build each of some tests has been failing, on ``build``'s branch.

    :return: ``{test key: {"build_id", "number", "streak", "complete"}}`` for the
        keys failing in ``build``: the first build of the unbroken run of failures
        that ends at ``build`` (skipped runs neither break nor extend it), how
        many builds failed in it, and whether its start lies within the
        :data:`STREAK_BUILDS` builds looked at (False: "at least").
    """
    if not test_keys:
        return {}
    window = branch_builds(build)
    numbers = {row.id: row.number for row in window}
    rows = db.session.execute(
        select(TestCase.test_key, TestCase.build_id, TestCase.result_status)
        .where(
            TestCase.instance_id == build.instance_id,
            TestCase.test_key.in_(list(test_keys)),
            TestCase.build_id.in_(list(numbers)),
        )
        .with_hint(TestCase, f"FORCE INDEX ({stats.TEST_KEY_INDEX})", "mysql")
    ).all()
    runs = {}
    for row in rows:
        runs.setdefault(row.test_key, []).append((numbers[row.build_id], row.build_id, row.result_status))
    found = {}
    for key, entries in runs.items():
        entries.sort(reverse=True)
        streak = streak_of(entries)
        if streak is not None:
            # the start is known when a pass ended the run, or the window holds the branch's first build
            streak["complete"] = streak.pop("passed_before") or len(window) < STREAK_BUILDS
            found[key] = streak
    return found


def streak_of(entries):
    """The failing run at the head of ``(number, build id, status)`` entries, newest first, or None.

    ``passed_before`` says whether a passing run ended it (else the entries ran out).
    """
    start, streak, passed_before = None, 0, False
    for number, build_id, status in entries:
        if status in stats.FAILING:
            start, streak = (build_id, number), streak + 1
        elif status in stats.RAN:
            passed_before = True
            break
    if start is None:
        return None
    return {"build_id": start[0], "number": start[1], "streak": streak, "passed_before": passed_before}
