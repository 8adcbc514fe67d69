"""Statistics over recorded results: plain query functions used by the API and the pages.

Every function takes ids or model objects and returns dicts and lists of plain
data (numbers, strings, datetimes). Cost rules, so pages stay fast as history
grows:

- per-build figures and trends read only the builds' counters;
- window statistics (top failing, slowest, flaky, regressions) read the case
  rows of the last N builds only, through indexes, and aggregate inside the
  database so that only the answer travels back; their cost grows with N and
  the builds' size, never with the total number of stored cases;
- one test's history is a range of the ``(instance_id, test_key, build_id)`` index;
- builds whose case rows retention pruned (:mod:`webapp.retention`) are read
  from their run summaries, which have the same indexes (:func:`runs_of`); a
  window without pruned builds reads the case table alone, as before.

Definitions (documented in docs/statistics.md):

- a *run* of a test is its case in one build with status SUCCESS, FAILED or
  ERROR; skipped and unfinished cases are not runs;
- a run *fails* when its status is FAILED or ERROR;
- a *flip* is a change between passing and failing from one run of a test to
  its next run (builds in number order, skips left out);
- a *retried pass* is a run that failed and then passed on a re-run in the
  same build (the case's ``is_flaky`` flag);
- the *flaky score* is ``(flips + retried passes) / runs``: 0 for a stable
  test, about 1 for one that alternates every build or needs a retry every
  time;
- the *median* duration is the middle value (the mean of the two middle values
  for an even count) and the *p95* the nearest-rank 95th percentile, over runs
  with a known duration.
"""

from sqlalchemy import and_
from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import null
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import union_all
from sqlalchemy.orm import aliased

from webapp.domain import FAILING
from webapp.domain import RAN
from webapp.domain import STATUS_COUNTER
from webapp.domain import STATUSES
from webapp.domain import Status
from webapp.domain import elapsed
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import is_test_key
from webapp.models_retention import RunSummary
from webapp.models_retention import TestName

DEFAULT_WINDOW = 30
# (instance_id, test_key, build_id): finds one test's case in a given build
TEST_KEY_INDEX = "ix_test_cases_instance_id_test_key"
# a duration regression: at least this many times the test's own median, and
# this many seconds more, over at least this many earlier runs
REGRESSION_FACTOR = 2.0
REGRESSION_MIN_INCREASE = 0.1
REGRESSION_MIN_RUNS = 3
# ranking durations looks tests up (test, build) pair by pair while they are at
# most this share of a build's cases; past it, reading the builds' covering index
# through is cheaper (30 builds x 1,000 tests: 400 tests 60 ms by pairs, 78 ms
# through; all 1,000 tests 235 ms by pairs, 66 ms through)
KEY_LOOKUP_SHARE = 1 / 3


def seconds(value):
    """Round a duration to microseconds: sums of many binary floats end in noise digits."""
    return None if value is None else round(float(value), 6)


def build_ref(build):
    """The identifying fields of a build."""
    return {
        "id": build.id,
        "number": build.number,
        "name": build.name,
        "branch": build.branch,
        "revision": build.revision,
        "started": build.started,
        "finished": build.finished,
    }


def build_summary(build):
    """Counts per status, pass rate, durations and suite count of a build, from its counters.

    ``duration`` is the sum of its cases' durations; ``elapsed`` the wall-clock
    time from start to finish; ``pending`` the cases without a result yet.
    """
    counts = {status: getattr(build, STATUS_COUNTER[status]) for status in STATUSES}
    return dict(
        build_ref(build),
        counts=counts,
        cases_total=build.cases_total,
        pending=build.cases_total - sum(counts.values()),
        flaky=build.flaky,
        pass_rate=build.pass_rate,
        duration=seconds(build.cases_duration or 0.0),
        elapsed=seconds(elapsed(build.started, build.finished)),
        suites_total=build.suites_total,
        status=build.status,
    )


def previous_build(build):
    """The build of the same instance with the next lower number, or None."""
    return db.session.scalar(
        select(TestBuild)
        .where(TestBuild.instance_id == build.instance_id, TestBuild.number < build.number)
        .order_by(TestBuild.number.desc())
        .limit(1)
    )


# the lists of a build comparison, each of test items
DIFF_LISTS = ("new_failures", "fixed", "still_failing", "new_tests", "removed_tests")
# why a comparison uses the base it does (the API's ``base_reason``)
BASE_CHOSEN = "chosen"  # asked for with ?base=
BASE_SAME_BRANCH = "same_branch"  # the previous finished build on the build's branch
BASE_OTHER_BRANCH = "other_branch"  # none on that branch: the previous finished build on any
BASE_UNFINISHED = "unfinished"  # no earlier finished build: the previous build by number


def instance_build(instance_id, build_id):
    """The build ``build_id`` if it belongs to instance ``instance_id``, else None."""
    build = db.session.get(TestBuild, build_id) if 0 < build_id < 2**63 else None
    return build if build is not None and build.instance_id == instance_id else None


def comparison_base(build):
    """The build ``build`` is compared with by default, and why: ``(base or None, reason)``.

    The previous finished build on the same branch (a build without a branch
    pairs with one without); failing that, the previous finished build on any
    branch; failing that, the previous build by number. The reason is one of
    the ``BASE_*`` values, so pages can say when the base is a fallback.
    """
    earlier = (
        select(TestBuild)
        .where(TestBuild.instance_id == build.instance_id, TestBuild.number < build.number)
        .order_by(TestBuild.number.desc())
        .limit(1)
    )
    finished = earlier.where(TestBuild.finished.is_not(None))
    branch = TestBuild.branch.is_(None) if build.branch is None else TestBuild.branch == build.branch
    for statement, reason in (
        (finished.where(branch), BASE_SAME_BRANCH),
        (finished, BASE_OTHER_BRANCH),
        (earlier, BASE_UNFINISHED),
    ):
        base = db.session.scalar(statement)
        if base is not None:
            return base, reason
    return None, None


def paired_cases(build_id, base_id, condition, limit, inner=False):
    """Cases of one build with the same test's case in another build, filtered by ``condition``.

    ``condition`` is a function of the two aliases ``(case, other)``; ``other``
    is outer-joined (its columns are None when the test is absent there)
    unless ``inner``. The query always runs through ``build_id``'s cases and
    looks each one up in the other build by test key: MySQL's own estimate
    sometimes preferred scanning the whole other build once per block of rows
    (seconds on builds of 100,000 cases), so the lookup index is forced. Pass
    the smaller side as ``build_id`` where the condition allows.
    """
    here = aliased(TestCase, name="here")
    there = aliased(TestCase, name="there")
    statement = (
        select(
            here.id,
            here.suite_id,
            here.test_key,
            here.name,
            here.result_status,
            TestSuite.name.label("suite"),
            there.id.label("other_id"),
            there.result_status.label("other_status"),
            there.suite_id.label("other_suite_id"),
        )
        .join(TestSuite, TestSuite.id == here.suite_id)
        .join(
            there,
            and_(
                there.instance_id == here.instance_id,
                there.test_key == here.test_key,
                there.build_id == base_id,
            ),
            isouter=not inner,
        )
        .where(here.build_id == build_id, condition(here, there))
        .order_by(TestSuite.name, here.name)
        .with_hint(there, f"FORCE INDEX ({TEST_KEY_INDEX})", "mysql")
    )
    if limit is not None:
        statement = statement.limit(limit)
    return db.session.execute(statement).all()


def absent_cases(build, base_id, limit):
    """Cases of ``build`` whose test has no case in build ``base_id``, sorted by suite and name.

    The search reads only the build's covering index (its test keys) and looks
    each key up in the other build; rows and names are read for the tests it
    finds, usually none. Joining the names first read every row of the build.
    """
    here = aliased(TestCase, name="here")
    there = aliased(TestCase, name="there")
    absent = (
        select(here.id)
        .outerjoin(
            there,
            and_(
                there.instance_id == build.instance_id,
                there.test_key == here.test_key,
                there.build_id == base_id,
            ),
        )
        .where(here.build_id == build.id, there.id.is_(None))
        .with_hint(there, f"FORCE INDEX ({TEST_KEY_INDEX})", "mysql")
    )
    statement = (
        select(
            TestCase.id,
            TestCase.suite_id,
            TestCase.test_key,
            TestCase.name,
            TestCase.result_status,
            TestSuite.name.label("suite"),
        )
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.id.in_(absent))
        .order_by(TestSuite.name, TestCase.name)
    )
    if limit is not None:
        statement = statement.limit(limit)
    return db.session.execute(statement).all()


def diff_item(row, with_base=True):
    """One test in a build comparison."""
    item = {
        "suite": row.suite,
        "name": row.name,
        "test_key": row.test_key,
        "status": row.result_status,
        "case_id": row.id,
        "suite_id": row.suite_id,
    }
    if with_base:
        item.update(base_status=row.other_status, base_case_id=row.other_id)
    return item


def fixed_item(row):
    """A fixed test, from a row found through the base build (the same test: same names)."""
    return {
        "suite": row.suite,
        "name": row.name,
        "test_key": row.test_key,
        "status": row.other_status,
        "case_id": row.other_id,
        "suite_id": row.other_suite_id,
        "base_status": row.result_status,
        "base_case_id": row.id,
    }


def compare_builds(build, other=None, limit=None):
    """What changed from ``other`` (default: :func:`comparison_base`) to ``build``.

    - ``new_failures``: failing now, and passing, skipped, unfinished or absent in the base;
    - ``fixed``: passing now and failing in the base;
    - ``still_failing``: failing in both;
    - ``new_tests``: present now, absent from the base;
    - ``removed_tests``: present in the base, absent now (status and case are the base's).

    Items are ``{suite, name, test_key, status, case_id}``; the first three
    lists add the base's ``base_status`` and ``base_case_id``. Without a base
    every list is empty. ``limit`` caps each list (sorted by suite and name).
    ``base_reason`` says how the base was chosen (see :func:`comparison_base`).
    """
    base, reason = (other, BASE_CHOSEN) if other is not None else comparison_base(build)
    empty = {
        "base": None,
        "base_reason": None,
        "new_failures": [],
        "fixed": [],
        "still_failing": [],
        "new_tests": [],
        "removed_tests": [],
    }
    if base is None:
        return empty

    def failing(column):
        return column.result_status.in_(FAILING)

    def not_failing(column):
        return or_(column.id.is_(None), column.result_status.is_(None), column.result_status.not_in(FAILING))

    def pairs(condition, inner=False, swapped=False):
        ids = (base.id, build.id) if swapped else (build.id, base.id)
        return paired_cases(*ids, condition, limit, inner)

    return {
        "base": build_ref(base),
        "base_reason": reason,
        "new_failures": [diff_item(r) for r in pairs(lambda c, o: and_(failing(c), not_failing(o)))],
        # through the base's few failures, not the build's many passes
        "fixed": [
            fixed_item(r)
            for r in pairs(
                lambda c, o: and_(failing(c), o.result_status == Status.SUCCESS), inner=True, swapped=True
            )
        ],
        "still_failing": [diff_item(r) for r in pairs(lambda c, o: and_(failing(c), failing(o)), inner=True)],
        "new_tests": [diff_item(r, False) for r in absent_cases(build, base.id, limit)],
        "removed_tests": [diff_item(r, False) for r in absent_cases(base, build.id, limit)],
    }


def instance_trend(instance_id, limit=DEFAULT_WINDOW, branch=None, between=None):
    """The last ``limit`` builds (of one branch, or started ``between`` two times), oldest first."""
    statement = in_period(select(TestBuild).where(TestBuild.instance_id == instance_id), between)
    if branch is not None:
        statement = statement.where(TestBuild.branch == branch)
    builds = db.session.scalars(statement.order_by(TestBuild.number.desc()).limit(limit)).all()
    return [
        dict(
            build_ref(build),
            pass_rate=build.pass_rate,
            duration=seconds(build.cases_duration or 0.0),
            elapsed=seconds(elapsed(build.started, build.finished)),
            cases_total=build.cases_total,
            passed=build.passed,
            failed=build.failed,
            errored=build.errored,
            skipped=build.skipped,
            flaky=build.flaky,
            status=build.status,
        )
        for build in reversed(builds)
    ]


def in_period(statement, between):
    """``statement`` narrowed to builds started within ``between``, a ``(first, last)`` datetime pair."""
    if between is None:
        return statement
    first, last = between
    return statement.where(TestBuild.started >= first, TestBuild.started < last)


def window_builds(instance_id, limit_builds=DEFAULT_WINDOW, branch=None, before=None, between=None):
    """The ids, numbers and counters of the last ``limit_builds`` builds, newest first.

    :param before: only builds numbered below this.
    :param between: only builds started in this ``(first, last)`` period, last excluded.
    """
    statement = select(
        TestBuild.id, TestBuild.number, TestBuild.flaky, TestBuild.cases_total, TestBuild.pruned
    ).where(TestBuild.instance_id == instance_id)
    statement = in_period(statement, between)
    if branch is not None:
        statement = statement.where(TestBuild.branch == branch)
    if before is not None:
        statement = statement.where(TestBuild.number < before)
    return db.session.execute(statement.order_by(TestBuild.number.desc()).limit(limit_builds)).all()


RUN_COLUMNS = ("build_id", "instance_id", "test_key", "result_status", "duration", "is_flaky")


def runs_of(window):
    """Where the runs of a window's builds are read: a table with the case table's run columns.

    The case table itself while none of the builds was pruned (the usual window
    of recent builds: its queries do not change); otherwise the kept builds'
    case rows and the pruned builds' run summaries together, with ``id`` NULL
    for the summaries (they have no case to point at).
    """
    pruned = [row.id for row in window if row.pruned is not None]
    if not pruned:
        return TestCase.__table__
    kept = [row.id for row in window if row.pruned is None]
    cases = select(TestCase.id, *(getattr(TestCase, name) for name in RUN_COLUMNS)).where(
        TestCase.build_id.in_(kept)
    )
    summaries = select(null().label("id"), *(getattr(RunSummary, name) for name in RUN_COLUMNS)).where(
        RunSummary.build_id.in_(pruned)
    )
    return union_all(cases, summaries).subquery("runs")


def recent_runs(instance_id, keys, window):
    """Every run of the given tests in a window's builds, oldest build first (index lookups).

    Runs of pruned builds come from their run summaries, with the tests' kept
    names and no case or suite id.
    """
    if not keys:
        return []
    kept = [row.id for row in window if row.pruned is None]
    rows = db.session.execute(
        select(
            TestCase.test_key,
            TestCase.id,
            TestCase.suite_id,
            TestCase.name,
            TestCase.result_status,
            TestCase.duration,
            TestCase.is_flaky,
            TestSuite.name.label("suite"),
            TestBuild.number,
            TestBuild.id.label("build_id"),
        )
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .join(TestBuild, TestBuild.id == TestCase.build_id)
        .where(TestCase.instance_id == instance_id, TestCase.test_key.in_(keys), TestCase.build_id.in_(kept))
        .order_by(TestBuild.number)
    ).all()
    pruned = [row.id for row in window if row.pruned is not None]
    if pruned:
        rows = sorted(rows + pruned_runs(instance_id, keys, pruned), key=lambda row: row.number)
    return rows


def pruned_runs(instance_id, keys, build_ids):
    """The run summaries of some tests in some pruned builds, shaped as :func:`recent_runs` rows."""
    return db.session.execute(
        select(
            RunSummary.test_key,
            null().label("id"),
            null().label("suite_id"),
            TestName.name,
            RunSummary.result_status,
            RunSummary.duration,
            RunSummary.is_flaky,
            TestName.suite,
            TestBuild.number,
            TestBuild.id.label("build_id"),
        )
        .join(TestName, and_(TestName.instance_id == instance_id, TestName.test_key == RunSummary.test_key))
        .join(TestBuild, TestBuild.id == RunSummary.build_id)
        .where(
            RunSummary.instance_id == instance_id,
            RunSummary.test_key.in_(keys),
            RunSummary.build_id.in_(build_ids),
        )
    ).all()


def latest_by_key(rows):
    """The newest row per test key, from rows sorted oldest first."""
    return {row.test_key: row for row in rows}


def test_identity(row):
    """A test (suite, name, key) and the case of it a row holds, with that case's suite and build."""
    return {
        "suite": row.suite,
        "name": row.name,
        "test_key": row.test_key,
        "case_id": row.id,
        "suite_id": row.suite_id,
        "build_id": row.build_id,
    }


def test_ref(row):
    """The identity of a test and its newest case."""
    return dict(test_identity(row), last_status=row.result_status)


def top_failing(instance_id, limit_builds=DEFAULT_WINDOW, branch=None, top=10, between=None):
    """The tests that failed most often in the last builds.

    Sorted by failures, then the most recent failure, then name. Each item has
    ``failures``, ``runs``, ``failure_rate`` (failures / runs) and
    ``last_failed`` (a build number), plus the test's newest case.
    """
    window = window_builds(instance_id, limit_builds, branch, between=between)
    ids = [row.id for row in window]
    if not ids:
        return []
    ranked = (
        most_failing(window, top)
        if runs_of(window) is TestCase.__table__
        else most_failing_pruned(instance_id, window, top)
    )
    rows = recent_runs(instance_id, [r.test_key for r in ranked], window)
    latest = latest_by_key(rows)
    runs = {}
    for row in rows:
        runs[row.test_key] = runs.get(row.test_key, 0) + (row.result_status in RAN)
    return [
        dict(
            test_ref(latest[r.test_key]),
            failures=r.failures,
            runs=runs[r.test_key],
            failure_rate=round(r.failures / runs[r.test_key], 4),
            last_failed=r.last_failed,
        )
        for r in ranked
    ]


def most_failing(window, top):
    """``(test_key, failures, last_failed)`` of the ``top`` most failing tests, from the case rows."""
    failures = func.count().label("failures")
    last_failed = func.max(TestBuild.number).label("last_failed")
    suite_name = func.min(TestSuite.name)
    case_name = func.min(TestCase.name)
    return db.session.execute(
        select(TestCase.test_key, failures, last_failed)
        .join(TestBuild, TestBuild.id == TestCase.build_id)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.build_id.in_([row.id for row in window]), TestCase.result_status.in_(FAILING))
        .group_by(TestCase.test_key)
        .order_by(failures.desc(), last_failed.desc(), suite_name, case_name)
        .limit(top)
    ).all()


def most_failing_pruned(instance_id, window, top):
    """:func:`most_failing` over a window with pruned builds: counted in the database, named here.

    Run summaries have no suite to join for the names that break ties, so the
    tests at the cut (ties included) are named by :func:`test_names`, as the flaky list does.
    """
    runs = runs_of(window)
    grouped = db.session.execute(
        select(
            runs.c.test_key,
            func.count().label("failures"),
            func.max(TestBuild.number).label("last_failed"),
            func.max(runs.c.id).label("case_id"),
        )
        .join(TestBuild, TestBuild.id == runs.c.build_id)
        .where(runs.c.build_id.in_([row.id for row in window]), runs.c.result_status.in_(FAILING))
        .group_by(runs.c.test_key)
    ).all()

    def strength(row):
        return (-row.failures, -row.last_failed)

    grouped = reaching_the_cut(grouped, strength, top)
    names = test_names(instance_id, [(row.test_key, None, row.case_id) for row in grouped])
    return sorted(grouped, key=lambda row: (*strength(row), *names[row.test_key]))[:top]


def reaching_the_cut(entries, strength, top):
    """The entries that can be among the ``top`` strongest (ties at the cut included), strongest first.

    Names break the ties, and reading names costs a query, so only these are named.
    """
    entries = sorted(entries, key=strength)
    if len(entries) > top:
        cut = strength(entries[top - 1])
        entries = [entry for entry in entries if strength(entry) <= cut]
    return entries


def duration_ranks(instance_id, window, keys):
    """Each run's duration with its rank and its test's run count, for some tests over some builds.

    When the tests are few next to a build's cases (:data:`KEY_LOOKUP_SHARE`),
    their runs are looked up pair by pair in the (instance_id, test_key,
    build_id) index, which is forced: MariaDB otherwise took the covering
    (build_id, result_status, test_key) index and looked up every build x
    status x test triple, three times the pairs and mostly empty (28 -> 11 ms
    for 43 tests x 30 builds). For many tests it keeps its own plan.

    :param window: the builds, rows of :func:`window_builds`.
    :param keys: the tests (the candidates an earlier query left).
    """
    runs = runs_of(window)
    statement = select(
        runs.c.test_key,
        runs.c.duration,
        func.row_number().over(partition_by=runs.c.test_key, order_by=runs.c.duration).label("nth"),
        func.count().over(partition_by=runs.c.test_key).label("runs"),
    ).where(runs.c.test_key.in_(keys), *ran_with_duration([row.id for row in window], runs))
    if runs is TestCase.__table__ and len(keys) <= KEY_LOOKUP_SHARE * max(row.cases_total for row in window):
        statement = statement.where(TestCase.instance_id == instance_id).with_hint(
            TestCase.__table__, f"FORCE INDEX ({TEST_KEY_INDEX})", "mysql"
        )
    return statement.subquery()


def duration_figures(ranks):
    """Median and p95 columns aggregated per test over :func:`duration_ranks`."""
    runs, rank = ranks.c.runs, ranks.c.nth
    middle = or_(rank == (runs + 1) // 2, rank == runs // 2 + 1)
    nearest_95 = (runs * 95 + 99) // 100
    return (
        func.max(runs).label("runs"),
        func.avg(case((middle, ranks.c.duration))).label("median"),
        func.max(case((rank == nearest_95, ranks.c.duration))).label("p95"),
    )


def ran_with_duration(build_ids, runs=TestCase.__table__):
    """The conditions for runs with a known duration in the given builds (of :func:`runs_of`)."""
    return (runs.c.build_id.in_(build_ids), runs.c.result_status.in_(RAN), runs.c.duration.is_not(None))


def slowest_candidates(window, top):
    """Tests that can be among the ``top`` slowest by median: one grouped index scan.

    A median lies between the fastest and the slowest run, so at least ``top``
    tests have a median at or above the ``top``-th highest fastest run; a test
    whose every run was quicker than that cannot make the list. It all runs in
    the database, over one grouping: only the candidates' keys come back, not
    one row per test. That run is taken by a window over the groups: a CTE read
    twice for it was grouped twice by MariaDB (40 -> 18 ms on 30 builds x 1,000 tests).
    """
    runs = runs_of(window)
    low = func.min(runs.c.duration)
    all_groups = (None, None)
    bounds = (
        select(
            runs.c.test_key,
            func.max(runs.c.duration).label("high"),
            func.nth_value(low, top).over(order_by=low.desc(), rows=all_groups).label("floor"),
        )
        .where(*ran_with_duration([row.id for row in window], runs))
        .group_by(runs.c.test_key)
        .subquery("bounds")
    )
    return db.session.scalars(
        select(bounds.c.test_key).where(bounds.c.high >= func.coalesce(bounds.c.floor, 0.0))
    ).all()


def slowest_tests(instance_id, limit_builds=DEFAULT_WINDOW, branch=None, top=10, between=None):
    """The tests with the highest median duration in the last builds (ties: higher p95).

    Each item has ``median``, ``p95``, ``runs`` (with a known duration) and
    ``latest`` (the newest run's duration), plus the test's newest case.
    """
    window = window_builds(instance_id, limit_builds, branch, between=between)
    ids = [row.id for row in window]
    keys = slowest_candidates(window, top) if ids else []
    if not keys:
        return []
    ranks = duration_ranks(instance_id, window, keys)
    runs, median, p95 = duration_figures(ranks)
    ranked = db.session.execute(
        select(ranks.c.test_key, runs, median, p95)
        .group_by(ranks.c.test_key)
        .order_by(median.desc(), p95.desc(), ranks.c.test_key)
        .limit(top)
    ).all()
    latest = latest_by_key(
        row
        for row in recent_runs(instance_id, [r.test_key for r in ranked], window)
        if row.result_status in RAN and row.duration is not None
    )
    return [
        dict(
            test_ref(latest[r.test_key]),
            runs=int(r.runs),
            median=seconds(r.median),
            p95=seconds(r.p95),
            latest=seconds(latest[r.test_key].duration),
        )
        for r in ranked
    ]


def flaky_score(runs, flips, retried):
    """The flaky score: (flips + retried passes) per run, 0 when the test never ran."""
    return round((flips + retried) / runs, 4) if runs else 0.0


def flakiness(runs):
    """Runs, flips, retried passes and score of one test's cases, given oldest first.

    :param runs: ``(result_status, is_flaky)`` pairs; skipped and unfinished ones are left out.
    """
    outcomes = [(status != Status.SUCCESS, bool(flaky)) for status, flaky in runs if status in RAN]
    failing = [failed for failed, _ in outcomes]
    flips = sum(1 for before, after in zip(failing, failing[1:], strict=False) if before != after)
    retried = sum(1 for _, flaky in outcomes if flaky)
    return {
        "runs": len(outcomes),
        "flips": flips,
        "retried": retried,
        "score": flaky_score(len(outcomes), flips, retried),
    }


def flaky_candidates(window):
    """Tests that failed, or passed on retry, in the window: the only ones that can score.

    Fetched as a list first: MariaDB runs an ``IN (… UNION …)`` subquery once per
    outer row, that is over every case of the instance.
    """
    runs = runs_of(window)
    ids = [row.id for row in window]
    keys = set(
        db.session.scalars(
            select(runs.c.test_key).where(runs.c.build_id.in_(ids), runs.c.result_status.in_(FAILING))
        )
    )
    retried_builds = [row.id for row in window if row.flaky]
    if retried_builds:
        keys.update(
            db.session.scalars(
                select(runs.c.test_key).where(runs.c.build_id.in_(retried_builds), runs.c.is_flaky)
            )
        )
    return sorted(keys)


def flaky_tests(instance_id, limit_builds=DEFAULT_WINDOW, branch=None, top=10, between=None):
    """The tests with the highest flaky score in the last builds (only scores above 0).

    Each item has ``score``, ``runs``, ``flips``, ``retried`` and ``failures``,
    plus the test's newest case. Ties go to more flips and retries, then name.
    """
    window = window_builds(instance_id, limit_builds, branch, between=between)
    if not window:
        return []
    candidates = flaky_candidates(window)
    if not candidates:
        return []
    runs = runs_of(window)
    failing = case((runs.c.result_status == Status.SUCCESS, 0), else_=1)
    per_run = (
        select(
            runs.c.test_key,
            failing.label("failing"),
            func.lag(failing).over(partition_by=runs.c.test_key, order_by=TestBuild.number).label("before"),
            case((runs.c.is_flaky, 1), else_=0).label("retried"),
            runs.c.id,
        )
        .join(TestBuild, TestBuild.id == runs.c.build_id)
        # no instance condition: the window's builds say it, and without it the
        # covering (build_id, result_status, test_key, …) index answers alone
        .where(
            runs.c.build_id.in_([row.id for row in window]),
            runs.c.result_status.in_(RAN),
            runs.c.test_key.in_(candidates),
        )
        .subquery()
    )
    flipped = case((and_(per_run.c.before.is_not(None), per_run.c.before != per_run.c.failing), 1), else_=0)
    totals = db.session.execute(
        select(
            per_run.c.test_key,
            func.count().label("runs"),
            func.sum(flipped).label("flips"),
            func.sum(per_run.c.retried).label("retried"),
            func.sum(per_run.c.failing).label("failures"),
            func.max(per_run.c.id).label("case_id"),
        ).group_by(per_run.c.test_key)
    ).all()
    scored = []
    for row in totals:
        figures = {
            "runs": row.runs,
            "flips": int(row.flips),
            "retried": int(row.retried),
            "failures": int(row.failures),
        }
        figures["score"] = flaky_score(figures["runs"], figures["flips"], figures["retried"])
        if figures["score"] > 0:
            scored.append((row.test_key, figures, row.case_id))
    return named_top(instance_id, window, scored, top)


def test_names(instance_id, scored):
    """``{test key: (suite name, case name)}`` of scored tests: from a case, else from the kept names.

    :param scored: ``(test key, figures, a case id of the test or None)`` triples.
    """
    case_ids = {case_id: key for key, _, case_id in scored if case_id is not None}
    rows = db.session.execute(
        select(TestCase.id, TestSuite.name, TestCase.name)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.id.in_(case_ids))
    )
    names = {case_ids[case_id]: (suite, name) for case_id, suite, name in rows}
    unnamed = [key for key, _, _ in scored if key not in names]
    if unnamed:
        rows = db.session.execute(
            select(TestName.test_key, TestName.suite, TestName.name).where(
                TestName.instance_id == instance_id, TestName.test_key.in_(unnamed)
            )
        )
        names.update({key: (suite, name) for key, suite, name in rows})
    return names


def named_top(instance_id, window, scored, top):
    """Sort scored tests (score, then flips + retries, then name) and keep ``top`` with their cases.

    :param scored: ``(test key, figures, any case id of the test or None)`` triples. Names
        are read only for the tests that reach the cut, ties included.
    """

    def strength(entry):
        return (-entry[1]["score"], -(entry[1]["flips"] + entry[1]["retried"]))

    scored = reaching_the_cut(scored, strength, top)
    names = test_names(instance_id, scored)
    chosen = sorted(scored, key=lambda entry: (*strength(entry), *names[entry[0]]))[:top]
    latest = latest_by_key(recent_runs(instance_id, [key for key, _, _ in chosen], window))
    return [dict(test_ref(latest[key]), **figures) for key, figures, _ in chosen]


def regression_candidates(build_id, baseline, factor, min_increase, min_runs):
    """Tests of a build that may have regressed: one grouped index scan of the baseline.

    The median is at least the fastest run, so a test regressed only if it took
    ``factor`` times its fastest baseline run and ``min_increase`` more than it.
    """
    lows = (
        select(TestCase.test_key, func.min(TestCase.duration).label("low"), func.count().label("runs"))
        .where(*ran_with_duration(baseline))
        .group_by(TestCase.test_key)
        .subquery()
    )
    return list(
        db.session.scalars(
            select(TestCase.test_key)
            .join(lows, lows.c.test_key == TestCase.test_key)
            .where(
                *ran_with_duration([build_id]),
                lows.c.runs >= min_runs,
                TestCase.duration >= lows.c.low * factor,
                TestCase.duration - lows.c.low >= min_increase,
            )
        )
    )


def duration_regressions(
    instance_id,
    limit_builds=DEFAULT_WINDOW,
    branch=None,
    build=None,
    factor=REGRESSION_FACTOR,
    min_increase=REGRESSION_MIN_INCREASE,
    min_runs=REGRESSION_MIN_RUNS,
    top=20,
    between=None,
):
    """Tests that became markedly slower than their own recent median.

    A test of ``build`` (default: the newest build, of ``branch`` if given)
    regressed when its duration is at least ``factor`` times its median over
    the ``limit_builds`` earlier builds (same branch filter), and at least
    ``min_increase`` seconds more, with ``min_runs`` earlier runs at least.
    Sorted by seconds lost, worst first. ``between`` limits both the build and
    the baseline to builds started in a ``(first, last)`` period.

    :return: ``{"build": the build compared, "baseline_builds": n, "tests": [...]}``;
        each test has ``duration``, ``median``, ``runs``, ``increase`` and ``ratio``.
    """
    if build is None:
        newest = window_builds(instance_id, 1, branch, between=between)
        build = db.session.get(TestBuild, newest[0].id) if newest else None
    if build is None:
        return {"build": None, "baseline_builds": 0, "tests": []}
    window = window_builds(instance_id, limit_builds, branch, before=build.number, between=between)
    result = {"build": build_ref(build), "baseline_builds": len(window), "tests": []}
    if not window:
        return result
    keys = regression_candidates(build.id, [row.id for row in window], factor, min_increase, min_runs)
    if not keys:
        return result
    ranks = duration_ranks(instance_id, window, keys)
    runs, median, _ = duration_figures(ranks)
    medians = select(ranks.c.test_key, runs, median).group_by(ranks.c.test_key).subquery()
    increase = TestCase.duration - medians.c.median
    rows = db.session.execute(
        select(
            TestCase.id,
            TestCase.suite_id,
            TestCase.test_key,
            TestCase.name,
            TestCase.duration,
            TestSuite.name.label("suite"),
            medians.c.median,
            medians.c.runs,
        )
        .join(medians, medians.c.test_key == TestCase.test_key)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(
            TestCase.build_id == build.id,
            TestCase.result_status.in_(RAN),
            TestCase.duration >= medians.c.median * factor,
            increase >= min_increase,
            medians.c.runs >= min_runs,
        )
        .order_by(increase.desc(), TestSuite.name, TestCase.name)
        .limit(top)
    ).all()
    result["tests"] = [
        {
            "suite": row.suite,
            "name": row.name,
            "test_key": row.test_key,
            "case_id": row.id,
            "suite_id": row.suite_id,
            "build_id": build.id,
            "duration": seconds(row.duration),
            "median": seconds(row.median),
            "runs": int(row.runs),
            "increase": seconds(row.duration - row.median),
            "ratio": round(row.duration / row.median, 2) if row.median else None,
        }
        for row in rows
    ]
    return result


def test_history(instance_id, test_key, limit=50):
    """One test's last ``limit`` runs, newest first, with its failure rate and flakiness.

    Each entry has the build's id and number, the case and suite ids, status,
    duration and ``started`` (the case's start, else its build's). A run of a
    pruned build comes from its run summary: no case, suite, start or message,
    and ``pruned`` true. Returns None when the instance has no such test.
    """
    if not is_test_key(test_key):
        return None
    rows = db.session.execute(
        select(
            TestCase.id,
            TestCase.suite_id,
            TestCase.build_id,
            TestCase.name,
            TestCase.result_status,
            TestCase.duration,
            TestCase.started,
            TestCase.attempts,
            TestCase.is_flaky,
            TestCase.message,
            TestSuite.name.label("suite"),
            TestBuild.number,
            TestBuild.branch,
            TestBuild.started.label("build_started"),
        )
        .join(TestBuild, TestBuild.id == TestCase.build_id)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.instance_id == instance_id, TestCase.test_key == test_key)
        .order_by(TestBuild.number.desc())
        .limit(limit)
    ).all()
    entries = [history_entry(row) for row in rows]
    names = (rows[0].suite, rows[0].name) if rows else None
    summaries = []
    newest_pruned = newest_pruned_number(instance_id)
    if newest_pruned is not None and (len(rows) < limit or rows[-1].number < newest_pruned):
        summaries = pruned_history(instance_id, test_key, limit)
    if summaries:
        entries = sorted(entries + summaries, key=lambda entry: entry["build_number"], reverse=True)[:limit]
        names = names or kept_name(instance_id, test_key)
    if not entries:
        return None
    figures = flakiness([(entry["status"], entry["is_flaky"]) for entry in reversed(entries)])
    failures = sum(1 for entry in entries if entry["status"] in FAILING)
    return {
        "suite": names[0],
        "name": names[1],
        "test_key": test_key,
        "runs": figures["runs"],
        "failures": failures,
        "failure_rate": round(failures / figures["runs"], 4) if figures["runs"] else None,
        "flakiness": figures,
        "history": entries,
    }


def history_entry(row):
    """One run of a test's history, from its case row."""
    return {
        "build_id": row.build_id,
        "build_number": row.number,
        "branch": row.branch,
        "case_id": row.id,
        "suite_id": row.suite_id,
        "status": row.result_status,
        "duration": seconds(row.duration),
        "started": row.started or row.build_started,
        "attempts": row.attempts,
        "is_flaky": bool(row.is_flaky),
        "message": row.message,
    }


def newest_pruned_number(instance_id):
    """The number of the instance's newest pruned build, or None: a history newer than it has no summaries."""
    return db.session.scalar(
        select(func.max(TestBuild.number)).where(
            TestBuild.instance_id == instance_id, TestBuild.pruned.is_not(None)
        )
    )


def pruned_history(instance_id, test_key, limit):
    """A test's newest ``limit`` runs in pruned builds, as history entries from their run summaries."""
    rows = db.session.execute(
        select(
            RunSummary.build_id,
            RunSummary.result_status,
            RunSummary.duration,
            RunSummary.is_flaky,
            TestBuild.number,
            TestBuild.branch,
            TestBuild.started,
        )
        .join(TestBuild, TestBuild.id == RunSummary.build_id)
        .where(RunSummary.instance_id == instance_id, RunSummary.test_key == test_key)
        .order_by(TestBuild.number.desc())
        .limit(limit)
    ).all()
    return [
        {
            "build_id": row.build_id,
            "build_number": row.number,
            "branch": row.branch,
            "case_id": None,
            "suite_id": None,
            "status": row.result_status,
            "duration": seconds(row.duration),
            "started": row.started,
            "is_flaky": bool(row.is_flaky),
            "pruned": True,
        }
        for row in rows
    ]


def kept_name(instance_id, test_key):
    """A test's ``(suite, name)`` as retention kept them."""
    return db.session.execute(
        select(TestName.suite, TestName.name).where(
            TestName.instance_id == instance_id, TestName.test_key == test_key
        )
    ).one()
