"""JSON statistics views: build summary and diff, instance trends, top lists, test history.

The figures come from :mod:`webapp.stats`; these views add links to the cases.
Their query strings and replies are declared in :mod:`webapp.api.models`.
"""

from flask import abort
from flask import url_for

from webapp import stats
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.models import test_key as make_test_key


def case_url(instance_id, item):
    """The API address of the case an item points at (its build's, when retention pruned the case)."""
    if item["case_id"] is None:
        return url_for("api.readBuild", instance_id=instance_id, build_id=item["build_id"])
    return url_for(
        "api.readCase",
        instance_id=instance_id,
        build_id=item["build_id"],
        suite_id=item["suite_id"],
        case_id=item["case_id"],
    )


def history_url(instance_id, key):
    """The API address of a test's history."""
    return url_for("api.testHistory", instance_id=instance_id, test_key=key)


def linked(instance_id, items):
    """Add the case and history links to test items."""
    for item in items:
        item["url"] = case_url(instance_id, item)
        item["history_url"] = history_url(instance_id, item["test_key"])
    return items


def window(query):
    """The shared parameters of the instance statistics: ``builds``, ``branch`` and ``top``."""
    builds = query.builds if query.builds is not None else stats.DEFAULT_WINDOW
    return {"limit_builds": builds, "branch": query.branch, "top": query.top}


def windowed(instance_id, query, compute):
    """An instance statistic over a window of builds, with its parameters echoed."""
    get_instance(instance_id)
    args = window(query)
    return {**args, "results": linked(instance_id, compute(instance_id, **args))}


def build_summary(instance_id, build_id):
    """Counts per status, pass rate, durations and suite count of a build."""
    return stats.build_summary(get_build(instance_id, build_id))


def build_diff(instance_id, build_id, query):
    """New failures, fixed, still failing, new and removed tests against another build.

    ``base`` is the other build's id (default: :func:`stats.comparison_base`,
    the previous finished build on the same branch); ``base_reason`` says which.

    :raise 404: for a ``base`` that is not a build of this instance.
    """
    build = get_build(instance_id, build_id)
    # a well-formed base that names no build of this instance is a 404, like any missing item
    other = get_build(instance_id, query.base) if query.base is not None else None
    diff = stats.compare_builds(build, other, limit=query.limit)
    for name in stats.DIFF_LISTS:
        for item in diff[name]:
            item["build_id"] = build.id if name != "removed_tests" else diff["base"]["id"]
        linked(instance_id, diff[name])
    return dict(build=stats.build_ref(build), **diff)


def trend(instance_id, query):
    """Pass rate, duration and counts of the last builds, oldest first."""
    get_instance(instance_id)
    limit = query.limit if query.limit is not None else stats.DEFAULT_WINDOW
    points = stats.instance_trend(instance_id, limit, query.branch)
    return {"limit": limit, "branch": query.branch, "results": points}


def top_failing(instance_id, query):
    """The tests that failed most often in the last builds."""
    return windowed(instance_id, query, stats.top_failing)


def slowest(instance_id, query):
    """The tests with the highest median duration in the last builds, with p95."""
    return windowed(instance_id, query, stats.slowest_tests)


def flaky(instance_id, query):
    """The tests with the highest flaky score in the last builds."""
    return windowed(instance_id, query, stats.flaky_tests)


def regressions(instance_id, query):
    """Tests of a build (default: the newest) markedly slower than their recent median."""
    get_instance(instance_id)
    args = window(query)
    build = get_build(instance_id, query.build) if query.build is not None else None
    found = stats.duration_regressions(
        instance_id,
        args["limit_builds"],
        args["branch"],
        build,
        factor=default(query.factor, stats.REGRESSION_FACTOR),
        min_increase=default(query.min_increase, stats.REGRESSION_MIN_INCREASE),
        min_runs=default(query.min_runs, stats.REGRESSION_MIN_RUNS),
        top=args["top"],
    )
    return dict(
        args,
        build=found["build"],
        baseline_builds=found["baseline_builds"],
        results=linked(instance_id, found["tests"]),
    )


def default(value, fallback):
    """``value`` unless the client left it out."""
    return fallback if value is None else value


def test_history(instance_id, test_key, query):
    """One test's results across builds, newest first, with failure rate and flakiness."""
    get_instance(instance_id)
    found = stats.test_history(instance_id, test_key, query.limit)
    if found is None:
        abort(404, description=f"no test with key {test_key!r} in test instance {instance_id}")
    for entry in found["history"]:
        entry["url"] = case_url(instance_id, entry)
    return found


def find_test(instance_id, query):
    """A test's history found by ``suite`` and ``name`` instead of its key."""
    return test_history(instance_id, make_test_key(query.suite, query.name), query)
