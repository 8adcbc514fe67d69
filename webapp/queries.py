"""Queries behind the report pages.

Lists page with LIMIT/OFFSET over indexed columns and take their totals from
the builds' and suites' counters, so a build with 100,000 cases opens as fast
as one with ten: no page counts case rows, except a suite page filtered by
status or searched by name, whose count is bounded by one suite's index range.
"""

import math
from dataclasses import dataclass

from sqlalchemy import case
from sqlalchemy import func
from sqlalchemy import literal_column
from sqlalchemy import or_
from sqlalchemy import select

from webapp.domain import WORST_FIRST
from webapp.domain import Status
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import test_key

PER_PAGE = 25
SPARKLINE_BUILDS = 20

# failed and errored cases first, then the rest; the values follow the index order
STATUS_RANK = case(
    (TestCase.result_status == Status.ERROR, 0),
    (TestCase.result_status == Status.FAILED, 1),
    else_=2,
)


@dataclass
class Page:
    """One page of a list: its rows, its number, and the size of the whole list."""

    items: list
    page: int
    per_page: int
    total: int

    @property
    def pages(self):
        """Number of pages (at least one, so an empty list still has page 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self):
        """Whether a previous page exists."""
        return self.page > 1

    @property
    def has_next(self):
        """Whether a next page exists."""
        return self.page < self.pages

    @property
    def offset(self):
        """Rows before this page."""
        return (self.page - 1) * self.per_page

    def window(self, around=2):
        """Page numbers to show: first, last and a few around the current one; None marks a gap."""
        shown = {1, self.pages, *range(self.page - around, self.page + around + 1)}
        numbers = sorted(n for n in shown if 1 <= n <= self.pages)
        result = []
        for previous, number in zip([0, *numbers], numbers, strict=False):
            if number - previous > 1:
                result.append(None)
            result.append(number)
        return result


def clamp_page(page, total, per_page=PER_PAGE):
    """Return a page number within the list's pages."""
    last = max(1, math.ceil(total / per_page))
    return min(max(page, 1), last)


def fetch_page(statement, page, total, per_page=PER_PAGE):
    """Run ``statement`` for one page, given the list's total."""
    page = clamp_page(page, total, per_page)
    rows = db.session.scalars(statement.limit(per_page).offset((page - 1) * per_page)).all()
    return Page(items=list(rows), page=page, per_page=per_page, total=total)


def like_pattern(term):
    """A LIKE pattern matching ``term`` anywhere, with its wildcards taken literally."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column, term):
    """The condition that ``column`` holds ``term`` in any letter case, alike on every database.

    Names compare exactly on MySQL (utf8mb4_bin), where LIKE then minds case, and
    SQLite's LIKE folds ASCII letters only; so both sides are lowered. On SQLite
    ``lower()`` is Python's, which the app registers on every connection.
    """
    return func.lower(column).like(like_pattern(term.lower()), escape="\\")


def instances_page(page, search=None):
    """Instances by name, optionally those whose name or description contains ``search``."""
    condition = True
    if search:
        condition = or_(contains(TestInstance.name, search), contains(TestInstance.description, search))
    total = db.session.scalar(select(func.count(TestInstance.id)).where(condition))
    statement = select(TestInstance).where(condition).order_by(TestInstance.name, TestInstance.id)
    return fetch_page(statement, page, total)


def recent_builds_by_instance(instance_ids, limit=SPARKLINE_BUILDS):
    """The newest ``limit`` builds of each instance, oldest first: ``{instance_id: [build, ...]}``."""
    if not instance_ids:
        return {}
    rank = (
        func.row_number()
        .over(partition_by=TestBuild.instance_id, order_by=TestBuild.number.desc())
        .label("rank")
    )
    ranked = select(TestBuild.id, rank).where(TestBuild.instance_id.in_(instance_ids)).subquery()
    statement = (
        select(TestBuild)
        .join(ranked, ranked.c.id == TestBuild.id)
        .where(ranked.c.rank <= limit)
        .order_by(TestBuild.instance_id, TestBuild.number)
    )
    grouped = {instance_id: [] for instance_id in instance_ids}
    for build in db.session.scalars(statement):
        grouped[build.instance_id].append(build)
    return grouped


# build columns people may sort by: the allow-list maps a name in the URL to an expression
def build_sort_columns():
    """The allow-listed sort keys of the builds table."""
    ran = TestBuild.passed + TestBuild.failed + TestBuild.errored
    return {
        "number": TestBuild.number,
        "started": TestBuild.started,
        "duration": seconds_between(TestBuild.started, TestBuild.finished),
        "passed": TestBuild.passed,
        "failed": TestBuild.failed,
        "errored": TestBuild.errored,
        "skipped": TestBuild.skipped,
        "pass_rate": TestBuild.passed * 1.0 / func.nullif(ran, 0),
    }


def seconds_between(start, end):
    """An SQL expression for the seconds from ``start`` to ``end`` on MySQL or SQLite."""
    if db.session.get_bind().dialect.name == "mysql":
        return func.timestampdiff(literal_column("MICROSECOND"), start, end) / 1e6
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def parse_sort(value, columns, default):
    """Return ``(key, descending)`` for a ``sort`` value like ``-number``; unknown keys get the default."""
    value = value or default
    key = value.lstrip("-")
    if key not in columns:
        value, key = default, default.lstrip("-")
    return key, value.startswith("-")


def instance_branches(instance_id):
    """The distinct branches an instance's builds ran on, by name."""
    statement = (
        select(TestBuild.branch)
        .where(TestBuild.instance_id == instance_id, TestBuild.branch.is_not(None))
        .distinct()
        .order_by(TestBuild.branch)
    )
    return list(db.session.scalars(statement))


def build_conditions(instance_id, branch):
    """The conditions selecting an instance's builds, on one branch if given."""
    conditions = [TestBuild.instance_id == instance_id]
    if branch:
        conditions.append(TestBuild.branch == branch)
    return conditions


def build_count(instance_id, branch=None):
    """How many builds an instance has (on one branch if given)."""
    return db.session.scalar(select(func.count(TestBuild.id)).where(*build_conditions(instance_id, branch)))


def builds_page(instance_id, page, sort="-number", branch=None):
    """An instance's builds, sorted by an allow-listed column and optionally on one branch."""
    conditions = build_conditions(instance_id, branch)
    columns = build_sort_columns()
    key, descending = parse_sort(sort, columns, "-number")
    order = columns[key].desc() if descending else columns[key].asc()
    total = build_count(instance_id, branch)
    statement = select(TestBuild).where(*conditions).order_by(order, TestBuild.number.desc())
    return fetch_page(statement, page, total), ("-" if descending else "") + key


def next_build(build):
    """The build numbered just after ``build`` in its instance, or None."""
    return db.session.scalar(
        select(TestBuild)
        .where(TestBuild.instance_id == build.instance_id, TestBuild.number > build.number)
        .order_by(TestBuild.number)
        .limit(1)
    )


def suites_page(build, page):
    """A build's suites, those with errors or failures first, then by name; total from the counter."""
    statement = (
        select(TestSuite)
        .where(TestSuite.build_id == build.id)
        .order_by((TestSuite.errored + TestSuite.failed > 0).desc(), TestSuite.name)
    )
    return fetch_page(statement, page, build.suites_total)


# the order cases are listed in: problems first, unfinished last
STATUS_ORDER = (*WORST_FIRST, None)


def status_counts(item):
    """How many cases of a build or suite have each status (None: not finished), from its counters."""
    counts = {status: item.count(status) for status in WORST_FIRST}
    counts[None] = max(item.cases_total - sum(counts.values()), 0)
    return counts


# the index whose (parent, result_status) ranges hold a build's or a suite's cases of one status
STATUS_INDEX = {
    "build_id": "ix_test_cases_build_status_cover",
    "suite_id": "ix_test_cases_suite_id_result_status",
}


def cases_by_status(parent_column, parent_id, counts, statuses, page, per_page=PER_PAGE):
    """One page of the cases with ``statuses``, in that order, each status by id.

    Each status is a contiguous range of the ``(parent, result_status)`` index,
    and ``counts`` (from counters) says how long each range is, so a page is
    one or two short index range reads however many cases the parent holds.
    The index is forced on MySQL: once its statistics change (ANALYZE after
    retention pruned half a million cases) MariaDB preferred walking the
    primary key in id order until 25 rows matched, which for a build stored
    after those cases read them all (a 100,000-case build's skipped cases:
    17 ms became 886 ms).
    """
    index = STATUS_INDEX[parent_column.key]
    total = sum(counts[status] for status in statuses)
    page = clamp_page(page, total, per_page)
    skip, wanted, rows = (page - 1) * per_page, per_page, []
    for status in statuses:
        if wanted == 0:
            break
        if skip >= counts[status]:
            skip -= counts[status]
            continue
        statement = (
            select(TestCase)
            .where(parent_column == parent_id, status_condition(status))
            .order_by(TestCase.id)
            .limit(wanted)
            .offset(skip)
            .with_hint(TestCase, f"FORCE INDEX ({index})", "mysql")
        )
        found = db.session.scalars(statement).all()
        rows.extend(found)
        wanted -= len(found)
        skip = 0
    return Page(items=rows, page=page, per_page=per_page, total=total)


def suite_names(suite_ids):
    """Names of some suites: ``{suite_id: name}``."""
    if not suite_ids:
        return {}
    statement = select(TestSuite.id, TestSuite.name).where(TestSuite.id.in_(suite_ids))
    return {row.id: row.name for row in db.session.execute(statement)}


def build_problem_cases(build, page):
    """A build's errored then failed cases, one page at a time."""
    return cases_by_status(
        TestCase.build_id, build.id, status_counts(build), (Status.ERROR, Status.FAILED), page
    )


def suite_cases(suite, page, status=STATUS_ORDER, search=None):
    """A suite's cases, problems first; ``status`` narrows them, ``search`` matches names.

    Without a search the page comes from the status index and the counters;
    a name search has to read the suite's rows, so it counts its matches.
    """
    statuses = status if isinstance(status, tuple) else (status,)
    if not search:
        return cases_by_status(TestCase.suite_id, suite.id, status_counts(suite), statuses, page)
    conditions = [TestCase.suite_id == suite.id, contains(TestCase.name, search)]
    if statuses != STATUS_ORDER:
        conditions.append(status_condition(statuses[0]))
    total = db.session.scalar(select(func.count(TestCase.id)).where(*conditions))
    statement = select(TestCase).where(*conditions).order_by(STATUS_RANK, TestCase.name)
    return fetch_page(statement, page, total)


def status_condition(status):
    """The SQL condition for one case status, where None means not finished yet."""
    return TestCase.result_status.is_(None) if status is None else TestCase.result_status == status


# the picker of a comparison's base offers this many of the instance's newest builds
PICKER_BUILDS = 50


def recent_builds(instance_id, branch=None, limit=PICKER_BUILDS):
    """An instance's newest builds (on one branch if given), newest first."""
    statement = select(TestBuild).where(*build_conditions(instance_id, branch))
    return list(db.session.scalars(statement.order_by(TestBuild.number.desc()).limit(limit)))


# sort keys of a build's cases filtered by status: id (the order they were stored) or duration
CASE_SORTS = {"id": TestCase.id, "duration": TestCase.duration}


def build_cases_with_status(build, status, page, sort=None):
    """One page of a build's cases with one status (None: unfinished), across its suites.

    Sorted by id (the stored order, served from the status index and the
    counters) or by ``duration``/``-duration`` (slowest first with ``-``;
    unknown durations last). :return: ``(page, sort key used)``.
    """
    key, descending = parse_sort(sort, CASE_SORTS, "id")
    counts = status_counts(build)
    if key == "id":
        return cases_by_status(TestCase.build_id, build.id, counts, (status,), page), "id"
    statement = build_cases_statement(build, status, key, descending)
    return fetch_page(statement, page, counts[status]), ("-" if descending else "") + key


def build_cases_statement(build, status, key, descending):
    """A build's cases with one status (or all, for ``STATUS_ORDER``), ordered by a :data:`CASE_SORTS` key.

    Unknown durations sort last either way; ties keep the stored order.
    """
    conditions = [TestCase.build_id == build.id]
    if status != STATUS_ORDER:
        conditions.append(status_condition(status))
    column = CASE_SORTS[key]
    order = column.desc() if descending else column.asc()
    return select(TestCase).where(*conditions).order_by(column.is_(None), order, TestCase.id)


# the test search reads the names of the newest builds' cases, newest first, until this many
# (at least one build): a build's tests mostly repeat the last one's, and each case read costs
SEARCH_CASES = 50_000
# builds read at a time while the window is measured out
SEARCH_BUILDS_BATCH = 100
# the failure rate of a found test is over its runs in this many of the newest builds
SEARCH_RATE_BUILDS = 50


def search_window(instance_id, budget=SEARCH_CASES, batch=SEARCH_BUILDS_BATCH):
    """Ids of the newest builds whose cases a test search reads: at least one, up to ``budget`` cases.

    The builds are read newest first, ``batch`` at a time, so an instance's
    whole history is not fetched to keep the newest few.
    """
    ids, cases, before = [], 0, None
    while True:
        statement = (
            select(TestBuild.id, TestBuild.number, TestBuild.cases_total)
            .where(TestBuild.instance_id == instance_id)
            .order_by(TestBuild.number.desc())
            .limit(batch)
        )
        if before is not None:
            statement = statement.where(TestBuild.number < before)
        rows = db.session.execute(statement).all()
        for row in rows:
            if ids and cases + row.cases_total > budget:
                return ids
            ids.append(row.id)
            cases += row.cases_total
        if len(rows) < batch:
            return ids
        before = rows[-1].number


def search_tests(instance_id, term, page, per_page=PER_PAGE):
    """The tests of an instance whose case name contains ``term`` (any letter case), by suite and name.

    A test is one test key; it is found among the cases of the newest builds
    (:func:`search_window`), through the ``(suite_id, name)`` index, so the cost
    follows the window, not the instance's whole history. Each item is a dict
    with ``suite``, ``name``, ``test_key``, ``case_id`` (its newest case),
    ``build_id``, ``latest_status`` and ``failure_rate`` (failed or errored
    runs over runs in the newest :data:`SEARCH_RATE_BUILDS` builds, None without runs).
    """
    matches = test_matches(instance_id, term)
    items, total = found_tests(instance_id, matches, (page - 1) * per_page, per_page)
    if not items and page > 1:
        # past the last page: show the last one
        page = clamp_page(page, total, per_page)
        items, total = found_tests(instance_id, matches, (page - 1) * per_page, per_page)
    return Page(items=items, page=page, per_page=per_page, total=total)


def test_matches(instance_id, term):
    """The conditions of a test search (see :func:`search_tests`), or None when the window is empty."""
    build_ids = search_window(instance_id)
    if not build_ids:
        return None
    suites = list(db.session.scalars(select(TestSuite.id).where(TestSuite.build_id.in_(build_ids))))
    if not suites:
        return None
    return (
        TestCase.suite_id.in_(suites),
        func.lower(TestCase.name).like(like_pattern((term or "").lower()), escape="\\"),
    )


def matching_tests(matches):
    """A search's tests: its matching cases grouped by suite and case name (a test key's two parts).

    Suite id, name and the row's id are all in the ``(suite_id, name)`` index, so
    the search reads that index alone, no case row: at a million cases (50,000
    in the window) 12-21 ms instead of 48 ms grouped by the stored test key.
    """
    return (
        select(TestSuite.name.label("suite"), TestCase.name, func.max(TestCase.id).label("case_id"))
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(*matches)
        .group_by(TestSuite.name, TestCase.name)
    )


def count_tests(matches):
    """How many tests a search's conditions match."""
    if matches is None:
        return 0
    return db.session.scalar(select(func.count()).select_from(matching_tests(matches).subquery()))


def found_tests(instance_id, matches, offset, limit):
    """One slice of a search's tests, by suite and name, and how many it found: ``(items, total)``.

    The items are described by :func:`describe_tests`. The total is counted in
    the same scan, by a window over the grouped tests (the window's cases were
    read twice, for a count and then for the slice, before); only a slice past
    the end counts again.
    """
    if matches is None:
        return [], 0
    rows = db.session.execute(
        matching_tests(matches)
        .add_columns(func.count().over().label("total"))
        .order_by(TestSuite.name, TestCase.name)
        .limit(limit)
        .offset(offset)
    ).all()
    total = rows[0].total if rows else count_tests(matches) if offset else 0
    found = [FoundTest(test_key(row.suite, row.name), row.case_id) for row in rows]
    return describe_tests(instance_id, found), total


@dataclass(frozen=True)
class FoundTest:
    """One test a search found: its key and its newest matching case."""

    test_key: str
    case_id: int


def describe_tests(instance_id, found):
    """Search results as dicts: names and status of each newest case, failure rate of recent runs."""
    if not found:
        return []
    newest = {
        row.id: row
        for row in db.session.execute(
            select(
                TestCase.id,
                TestCase.build_id,
                TestCase.suite_id,
                TestCase.name,
                TestCase.result_status,
                TestSuite.name.label("suite"),
            )
            .join(TestSuite, TestSuite.id == TestCase.suite_id)
            .where(TestCase.id.in_([row.case_id for row in found]))
        )
    }
    recent = list(
        db.session.scalars(
            select(TestBuild.id)
            .where(TestBuild.instance_id == instance_id)
            .order_by(TestBuild.number.desc())
            .limit(SEARCH_RATE_BUILDS)
        )
    )
    runs, failures = {}, {}
    for key, status in db.session.execute(
        select(TestCase.test_key, TestCase.result_status).where(
            TestCase.instance_id == instance_id,
            TestCase.test_key.in_([row.test_key for row in found]),
            TestCase.build_id.in_(recent),
            TestCase.result_status.in_(("SUCCESS", "FAILED", "ERROR")),
        )
    ):
        runs[key] = runs.get(key, 0) + 1
        failures[key] = failures.get(key, 0) + (status != "SUCCESS")
    items = []
    for row in found:
        case_row = newest[row.case_id]
        rate = round(failures[row.test_key] / runs[row.test_key], 4) if runs.get(row.test_key) else None
        items.append(
            {
                "suite": case_row.suite,
                "name": case_row.name,
                "test_key": row.test_key,
                "case_id": case_row.id,
                "suite_id": case_row.suite_id,
                "build_id": case_row.build_id,
                "latest_status": case_row.result_status,
                "failure_rate": rate,
            }
        )
    return items
