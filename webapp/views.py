"""The report pages: instances → instance → build → suite → case, all behind login.

Views read their query parameters leniently (a bad ``page`` or ``sort`` falls
back to the default rather than failing) and leave querying to
:mod:`webapp.queries` and :mod:`webapp.stats`.
"""

from datetime import date
from datetime import datetime
from datetime import time
from datetime import timedelta
from datetime import timezone

from flask import Blueprint
from flask import abort
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import login_required

from webapp import attachments
from webapp import glance
from webapp import queries
from webapp import stats
from webapp.domain import MAX_ID
from webapp.domain import MAX_TIME
from webapp.domain import MIN_TIME
from webapp.domain import NAME_LIMIT
from webapp.domain import STATUSES
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.templating import utc_text

bp = Blueprint("pages", __name__)

MAX_SEARCH = NAME_LIMIT
TREND_SIZES = (10, 30, 100)
PANEL_ROWS = 10
CHANGES_SHOWN = 25
HISTORY_BUILDS = 50
UNFINISHED = "unfinished"
# a date range on the statistics page covers at most this many builds
RANGE_BUILDS = 500
# the window and branch parameters remembered per instance (in the session) and shared in the URL
WINDOW_ARGS = ("n", "branch", "from", "to")
REMEMBERED_INSTANCES = 20


def get_or_404(model, item_id, kind):
    """Load one row by id, or abort with a 404 that names what was missing.

    :raise 404: when no such row exists (ids beyond the domain's range never do).
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


def trend_size_problem():
    """Why the number of builds asked for (``n``) was not used, or None."""
    given = request.args.get("n", "").strip()
    if not given or int_arg("n", stats.DEFAULT_WINDOW) in TREND_SIZES:
        return None
    return f"“{given}” is not one of {', '.join(map(str, TREND_SIZES))} builds"


def date_arg(name):
    """A ``YYYY-MM-DD`` query parameter as a date, or None when absent or not a date."""
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


def period_arg():
    """The statistics page's date range, and why the dates asked for were not used.

    :return: ``(period, problem)``. ``period`` is a ``(first, last)`` UTC pair
        (``to`` included), open on the side left empty, or None when no date is
        given (or a date given cannot be used: ``problem`` says why).
    """
    given = {name: request.args.get(name, "").strip() for name in ("from", "to")}
    first, last = date_arg("from"), date_arg("to")
    for name, day in (("from", first), ("to", last)):
        if given[name] and day is None:
            return None, f"“{given[name]}” is not a day in the form YYYY-MM-DD"
    if first is None and last is None:
        return None, None
    if first is not None and last is not None and last < first:
        return None, f"The range ends ({last}) before it starts ({first})"
    start = datetime.combine(first, time.min, tzinfo=timezone.utc) if first else MIN_TIME
    # the day after the last one, unless that is past every storable time (or past the calendar)
    end = MAX_TIME
    if last is not None and last < MAX_TIME.date():
        end = datetime.combine(last, time.min, tzinfo=timezone.utc) + timedelta(days=1)
    return (max(start, MIN_TIME), end), None


def period_text():
    """How the window summary names the days asked for (both checked by :func:`period_arg`)."""
    first, last = request.args.get("from", "").strip(), request.args.get("to", "").strip()
    if first and last:
        return f"started from {first} to {last} (UTC days)"
    return f"started on or after {first} (UTC day)" if first else f"started on or before {last} (UTC day)"


def remembered_window(instance_id):
    """A redirect to this page with the instance's remembered window and branch, or None.

    A URL naming any of :data:`WINDOW_ARGS` is what the user chose: it is
    remembered for the instance (in the session, for the last few instances)
    and kept in the URL, so the view can be shared. A URL naming none of them
    gets the remembered ones put back in.
    """
    windows = session.get("windows", {})
    chosen = {name: request.args[name] for name in WINDOW_ARGS if name in request.args}
    key = str(instance_id)
    if chosen:
        if windows.get(key) != chosen:
            windows.pop(key, None)
            windows[key] = chosen
            session["windows"] = dict(list(windows.items())[-REMEMBERED_INSTANCES:])
        return None
    if windows.get(key):
        return redirect(
            url_for(request.endpoint, **request.view_args, **request.args.to_dict(), **windows[key])
        )
    return None


def base_arg(build):
    """The build named by ``?base=`` to compare ``build`` with, or None when not given.

    :raise 400: when it is not a build id of the same instance, or is the build itself.
    """
    value = request.args.get("base")
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit() and len(value) < 19):
        abort(
            400,
            description=f"“{value[:40]}” is not a build id: ?base= takes the id of a build to compare with.",
        )
    base = stats.instance_build(build.instance_id, int(value))
    if base is None:
        abort(
            400,
            description=f"Build id {value} is not a build of {build.instance.name}: "
            "a build can only be compared with a build of its own instance.",
        )
    if base.id == build.id:
        abort(400, description="A build cannot be compared with itself: pick another base build.")
    return base


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
        # for the tooltips: which branch, and when (UTC)
        "branches": [point["branch"] or "no branch" for point in trend],
        "dates": [utc_text(point["started"]) for point in trend],
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
        "branches": [run["branch"] or "no branch" for run in ordered],
        "dates": [utc_text(run["started"]) for run in ordered],
        "duration": [run["duration"] for run in ordered],
        "status": [run["status"] for run in ordered],
    }


def history_flips(runs):
    """Build ids of the runs (newest first) whose pass/fail outcome differs from the run before them."""
    ran = [run for run in reversed(runs) if run["status"] in stats.RAN]
    return {
        after["build_id"]
        for before, after in zip(ran, ran[1:], strict=False)
        if (before["status"] == "SUCCESS") != (after["status"] == "SUCCESS")
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
    """Show an instance's builds (sortable, by branch), trend charts, and tests found by name."""
    item = get_instance_or_404(instance_id)
    back = remembered_window(item.id)
    if back is not None:
        return back
    branch = text_arg("branch")
    search = text_arg("q")
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
        new_failures=glance.new_failures_by_build(page.items),
        trend=trend,
        chart_data=trend_chart_data(trend),
        trend_size=size,
        trend_sizes=TREND_SIZES,
        search=search,
        found=queries.search_tests(item.id, search, int_arg("tpage")) if search else None,
    )


@bp.get("/instances/<int:instance_id>/statistics")
@login_required
def instance_statistics(instance_id):
    """The analysis page: trends, failing, slowest and flaky tests, duration regressions.

    Over the last 10, 30 or 100 builds or a date range, on one branch or all.
    The panels read case rows, so the instance page loads this view's
    ``partial`` form (the three lists) after it opens.
    """
    item = get_instance_or_404(instance_id)
    back = None if request.args.get("partial") else remembered_window(item.id)
    if back is not None:
        return back
    branch = text_arg("branch")
    period, period_problem = period_arg()
    size = RANGE_BUILDS if period else trend_size_arg()
    size_problem = None if period else trend_size_problem()
    problems = [problem for problem in (period_problem, size_problem) if problem]
    window = {"limit_builds": size, "branch": branch, "between": period}
    trend = stats.instance_trend(item.id, size, branch, between=period)
    return render_template(
        fragment_or_page("pages/_instance_stats.html", "pages/instance_statistics.html"),
        instance=item,
        branch=branch,
        branches=queries.instance_branches(item.id),
        period=period,
        period_text=period_text() if period else None,
        window_problems=problems,
        trend_size=size,
        trend_sizes=TREND_SIZES,
        trend=trend,
        chart_data=trend_chart_data(trend),
        builds=len(trend),
        top_failing=stats.top_failing(item.id, top=PANEL_ROWS, **window),
        slowest=stats.slowest_tests(item.id, top=PANEL_ROWS, **window),
        flaky=stats.flaky_tests(item.id, top=PANEL_ROWS, **window),
        regressions=None if request.args.get("partial") else stats.duration_regressions(item.id, **window),
    )


@bp.get("/builds/<int:build_id>")
@login_required
def build(build_id):
    """Show a build's summary, its failed and errored cases (or those of one status), then its suites."""
    item = get_build_or_404(build_id)
    chosen = base_arg(item)
    base, reason = (chosen, stats.BASE_CHOSEN) if chosen else stats.comparison_base(item)
    asked = request.args.get("status", "").strip()
    status = asked.upper() if asked.upper() in STATUSES else None
    status_problem = None
    if status is not None:
        problems, case_sort = queries.build_cases_with_status(
            item, status, int_arg("fpage"), request.args.get("sort")
        )
    else:
        if asked:
            status_problem = f"“{asked}” is not a status ({', '.join(STATUSES[:-1])} or {STATUSES[-1]})"
        case_sort = None
        problems = queries.build_problem_cases(item, int_arg("fpage"))
    return render_template(
        "pages/build.html",
        build=item,
        status_problem=status_problem,
        instance=item.instance,
        previous=stats.previous_build(item),
        following=queries.next_build(item),
        base=base,
        base_reason=reason,
        new_count=glance.new_failure_count(item, base),
        status=status,
        case_sort=case_sort,
        problems=problems,
        failing_since=glance.failing_since(
            item, {c.test_key for c in problems.items if c.result_status in stats.FAILING}
        ),
        suite_names=queries.suite_names({case.suite_id for case in problems.items}),
        suites=queries.suites_page(item, int_arg("page")),
    )


@bp.get("/builds/<int:build_id>/changes")
@login_required
def build_changes(build_id):
    """Show what changed since the base build: new failures, fixes, tests still failing.

    The base is ``?base=`` (a build id of the same instance) or, by default, the
    previous finished build on the same branch. Comparing reads both builds'
    cases, so the build page loads this view's ``partial`` form after it opens.
    """
    item = get_build_or_404(build_id)
    chosen = base_arg(item)
    pick_branch = text_arg("pick_branch")
    return render_template(
        fragment_or_page("pages/_changes.html", "pages/changes.html"),
        build=item,
        instance=item.instance,
        changes=stats.compare_builds(item, chosen, limit=CHANGES_SHOWN + 1),
        changes_shown=CHANGES_SHOWN,
        pick_branch=pick_branch,
        branches=queries.instance_branches(item.instance_id),
        candidates=[b for b in queries.recent_builds(item.instance_id, pick_branch) if b.id != item.id],
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
    build = item.suite.build
    since = glance.failing_since(build, {item.test_key}) if item.result_status in stats.FAILING else {}
    return render_template(
        "pages/case.html",
        failing_since=since.get(item.test_key),
        flips=history_flips(history["history"]),
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
