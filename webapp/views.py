"""The report pages: instances → instance → build → suite → case, all behind login.

Views read their query parameters leniently (a bad ``page`` or ``sort`` falls
back to the default rather than failing) and leave querying to
:mod:`webapp.queries` and :mod:`webapp.stats`.
"""

from flask import Blueprint
from flask import abort
from flask import render_template
from flask import request
from flask import url_for
from flask_login import login_required

from webapp import attachments
from webapp import queries
from webapp import stats
from webapp.extensions import db
from webapp.models import STATUSES
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite

bp = Blueprint("pages", __name__)

MAX_SEARCH = 255
MAX_ID = 2**63 - 1
TREND_SIZES = (10, 30, 100)
PANEL_ROWS = 10
CHANGES_SHOWN = 25
HISTORY_BUILDS = 50
UNFINISHED = "unfinished"


def get_or_404(model, item_id, kind):
    """Load one row by id, or abort with a 404 that names what was missing.

    :raise 404: when no such row exists (ids beyond BIGINT never do).
    """
    item = db.session.get(model, item_id) if item_id <= MAX_ID else None
    if item is None:
        abort(404, description=f"There is no {kind} with id {item_id}.")
    return item


def get_instance_or_404(instance_id):
    """Load a test instance or abort 404."""
    return get_or_404(TestInstance, instance_id, "test instance")


def get_build_or_404(build_id):
    """Load a test build or abort 404."""
    return get_or_404(TestBuild, build_id, "test build")


def get_suite_or_404(suite_id):
    """Load a test suite or abort 404."""
    return get_or_404(TestSuite, suite_id, "test suite")


def get_case_or_404(case_id):
    """Load a test case or abort 404."""
    return get_or_404(TestCase, case_id, "test case")


def int_arg(name, default=1):
    """A positive integer query parameter; anything else gives the default."""
    value = request.args.get(name, "")
    # isdigit() alone admits digits such as "²" that int() refuses
    usable = value.isascii() and value.isdigit() and len(value) < 10
    return int(value) if usable and int(value) > 0 else default


def text_arg(name):
    """A text query parameter, stripped and cut to a sane length, or None."""
    return request.args.get(name, "").strip()[:MAX_SEARCH] or None


def fragment_or_page(fragment, page):
    """The template to render: the bare fragment when a page loads it (``?partial=1``), else a whole page."""
    return fragment if request.args.get("partial") else page


def trend_size_arg():
    """How many recent builds the charts and statistics cover: one of :data:`TREND_SIZES`."""
    size = int_arg("n", stats.DEFAULT_WINDOW)
    return size if size in TREND_SIZES else stats.DEFAULT_WINDOW


def status_arg():
    """The suite page's status filter: a status, None for unfinished cases, or all of them."""
    value = request.args.get("status", "")
    if value in STATUSES:
        return value
    if value == UNFINISHED:
        return None
    return queries.STATUS_ORDER


def as_percent(rate):
    """A 0..1 rate as a percentage rounded for a chart, or None."""
    return None if rate is None else round(rate * 100, 2)


def trend_chart_data(trend):
    """The instance page's chart series from :func:`stats.instance_trend`, with each point's build link."""
    return {
        "labels": [f"#{point['number']}" for point in trend],
        "links": [url_for("pages.build", build_id=point["id"]) for point in trend],
        "pass_rate": [as_percent(point["pass_rate"]) for point in trend],
        # wall-clock time when known; the sum of case durations otherwise
        "duration": [point["elapsed"] or point["duration"] for point in trend],
        "passed": [point["passed"] for point in trend],
        "failed": [point["failed"] for point in trend],
        "errored": [point["errored"] for point in trend],
        "skipped": [point["skipped"] for point in trend],
    }


def history_chart_data(runs):
    """The case page's series from :func:`stats.test_history` (newest first), oldest first."""
    ordered = list(reversed(runs))
    return {
        "labels": [f"#{run['build_number']}" for run in ordered],
        "links": [url_for("pages.build", build_id=run["build_id"]) for run in ordered],
        "duration": [run["duration"] for run in ordered],
        "status": [run["status"] for run in ordered],
    }


@bp.get("/")
@login_required
def instances():
    """List the instances with their latest build and a pass-rate sparkline."""
    search = text_arg("q")
    page = queries.instances_page(int_arg("page"), search)
    recent = queries.recent_builds_by_instance([instance.id for instance in page.items])
    return render_template("pages/instances.html", page=page, recent=recent, search=search)


@bp.get("/instances/<int:instance_id>")
@login_required
def instance(instance_id):
    """Show an instance's builds (sortable, by branch), trend charts and test statistics."""
    item = get_instance_or_404(instance_id)
    branch = text_arg("branch")
    page, sort = queries.builds_page(item.id, int_arg("page"), request.args.get("sort"), branch)
    size = trend_size_arg()
    trend = stats.instance_trend(item.id, size, branch)
    return render_template(
        "pages/instance.html",
        instance=item,
        page=page,
        sort=sort,
        branch=branch,
        branches=queries.instance_branches(item.id),
        trend=trend,
        chart_data=trend_chart_data(trend),
        trend_size=size,
        trend_sizes=TREND_SIZES,
    )


@bp.get("/instances/<int:instance_id>/statistics")
@login_required
def instance_statistics(instance_id):
    """Show the failing, slowest and flaky tests of the last builds.

    These read case rows, so the instance page opens without them and loads
    this view's ``partial`` form afterwards; without script it is a page of its own.
    """
    item = get_instance_or_404(instance_id)
    branch = text_arg("branch")
    size = trend_size_arg()
    return render_template(
        fragment_or_page("pages/_instance_stats.html", "pages/instance_statistics.html"),
        instance=item,
        branch=branch,
        builds=min(size, queries.build_count(item.id, branch)),
        top_failing=stats.top_failing(item.id, size, branch, top=PANEL_ROWS),
        slowest=stats.slowest_tests(item.id, size, branch, top=PANEL_ROWS),
        flaky=stats.flaky_tests(item.id, size, branch, top=PANEL_ROWS),
    )


@bp.get("/builds/<int:build_id>")
@login_required
def build(build_id):
    """Show a build's summary, its failed and errored cases, then its suites."""
    item = get_build_or_404(build_id)
    problems = queries.build_problem_cases(item, int_arg("fpage"))
    return render_template(
        "pages/build.html",
        build=item,
        instance=item.instance,
        previous=stats.previous_build(item),
        following=queries.next_build(item),
        problems=problems,
        suite_names=queries.suite_names({case.suite_id for case in problems.items}),
        suites=queries.suites_page(item, int_arg("page")),
    )


@bp.get("/builds/<int:build_id>/changes")
@login_required
def build_changes(build_id):
    """Show what changed since the previous build: new failures, fixes, tests still failing.

    Comparing reads both builds' cases, so the build page opens without it and
    loads this view's ``partial`` form afterwards; without script it is a page of its own.
    """
    item = get_build_or_404(build_id)
    return render_template(
        fragment_or_page("pages/_changes.html", "pages/changes.html"),
        build=item,
        instance=item.instance,
        changes=stats.compare_builds(item, limit=CHANGES_SHOWN + 1),
        changes_shown=CHANGES_SHOWN,
    )


@bp.get("/suites/<int:suite_id>")
@login_required
def suite(suite_id):
    """Show a suite's cases, problems first, with a status filter and a name search."""
    item = get_suite_or_404(suite_id)
    status = status_arg()
    search = text_arg("q")
    page = queries.suite_cases(item, int_arg("page"), status, search)
    return render_template(
        "pages/suite.html",
        suite=item,
        build=item.build,
        instance=item.build.instance,
        page=page,
        status=request.args.get("status") if status != queries.STATUS_ORDER else "",
        search=search,
        counts=queries.status_counts(item),
    )


@bp.get("/cases/<int:case_id>")
@login_required
def case(case_id):
    """Show a case's result, message and details, and its history in earlier builds."""
    item = get_case_or_404(case_id)
    history = stats.test_history(item.instance_id, item.test_key, limit=HISTORY_BUILDS)
    return render_template(
        "pages/case.html",
        case=item,
        suite=item.suite,
        build=item.suite.build,
        instance=item.suite.build.instance,
        history=history,
        chart_data=history_chart_data(history["history"]),
        attachments=attachments.of_case(item.id),
        inline_types=attachments.INLINE_TYPES,
    )


def init_app(app):
    """Register the pages blueprint."""
    app.register_blueprint(bp)
