"""JSON statistics endpoints: build summary and diff, instance trends, top lists, test history.

The figures come from :mod:`webapp.stats`; these views read and check the
query parameters, add links to the cases, and write times as ISO 8601.
"""

import math
from datetime import datetime

from flask import abort
from flask import request
from flask import url_for

from webapp import stats
from webapp.api import payload as p
from webapp.api.resources import get_build
from webapp.api.resources import get_instance
from webapp.api.serializers import iso
from webapp.models import test_key as make_test_key

MAX_WINDOW = 500
MAX_TOP = 100
MAX_HISTORY = 1000
MAX_LIST = 10000


def plain(value):
    """Turn datetimes anywhere inside ``value`` into ISO 8601 strings."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


def branch_arg():
    """The optional ``branch`` query parameter."""
    branch = request.args.get("branch")
    if branch is not None and len(branch) > 255:
        raise p.ValidationError("branch must be at most 255 characters", {"branch": "too long"})
    return branch


def float_arg(name, default, minimum, maximum):
    """A number query parameter within bounds."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and minimum <= value <= maximum):
        message = f"must be a number between {minimum} and {maximum}"
        raise p.ValidationError(f"{name} {message}", {name: message})
    return value


def window_args():
    """The shared parameters of the instance statistics: ``builds``, ``branch`` and ``top``."""
    return {
        "limit_builds": p.query_int("builds", stats.DEFAULT_WINDOW, 1, MAX_WINDOW),
        "branch": branch_arg(),
        "top": p.query_int("top", 10, 1, MAX_TOP),
    }


def case_url(instance_id, item):
    """The API address of the case an item points at."""
    return url_for("api.case", instance_id=instance_id, build_id=item["build_id"],
                   suite_id=item["suite_id"], case_id=item["case_id"])


def history_url(instance_id, key):
    """The API address of a test's history."""
    return url_for("api.test_history", instance_id=instance_id, test_key=key)


def linked(instance_id, items):
    """Add the case and history links to test items."""
    for item in items:
        item["url"] = case_url(instance_id, item)
        item["history_url"] = history_url(instance_id, item["test_key"])
    return items


def windowed(instance_id, compute):
    """Answer an instance statistic over a window of builds, with its parameters echoed."""
    get_instance(instance_id)
    args = window_args()
    return plain({**args, "results": linked(instance_id, compute(instance_id, **args))})


def build_summary(instance_id, build_id):
    """Counts per status, pass rate, durations and suite count of a build."""
    return plain(stats.build_summary(get_build(instance_id, build_id)))


def build_diff(instance_id, build_id):
    """New failures, fixed, still failing, new and removed tests against another build.

    ``base`` is the other build's id (default: :func:`stats.comparison_base`,
    the previous finished build on the same branch); ``base_reason`` says which.

    :raise ValidationError: for a ``base`` that is not a build of this instance.
    """
    build = get_build(instance_id, build_id)
    base_id = p.query_int("base", None, 1, 2**31 - 1)
    other = None
    if base_id is not None:
        other = stats.instance_build(instance_id, base_id)
        if other is None:
            message = f"base must be the id of a build of test instance {instance_id}"
            raise p.ValidationError(message, {"base": "no such build in this instance"})
    limit = p.query_int("limit", 1000, 1, MAX_LIST)
    diff = stats.compare_builds(build, other, limit=limit)
    for name in stats.DIFF_LISTS:
        for item in diff[name]:
            item["build_id"] = build.id if name != "removed_tests" else diff["base"]["id"]
        linked(instance_id, diff[name])
    return plain(dict(build=stats.build_ref(build), **diff))


def trend(instance_id):
    """Pass rate, duration and counts of the last builds, oldest first."""
    get_instance(instance_id)
    limit = p.query_int("limit", stats.DEFAULT_WINDOW, 1, MAX_HISTORY)
    branch = branch_arg()
    points = stats.instance_trend(instance_id, limit, branch)
    return plain({"limit": limit, "branch": branch, "results": points})


def top_failing(instance_id):
    """The tests that failed most often in the last builds."""
    return windowed(instance_id, stats.top_failing)


def slowest(instance_id):
    """The tests with the highest median duration in the last builds, with p95."""
    return windowed(instance_id, stats.slowest_tests)


def flaky(instance_id):
    """The tests with the highest flaky score in the last builds."""
    return windowed(instance_id, stats.flaky_tests)


def regressions(instance_id):
    """Tests of a build (default: the newest) markedly slower than their recent median."""
    get_instance(instance_id)
    args = window_args()
    build_id = p.query_int("build", None, 1, 2**31 - 1)
    build = get_build(instance_id, build_id) if build_id is not None else None
    found = stats.duration_regressions(
        instance_id, args["limit_builds"], args["branch"], build,
        factor=float_arg("factor", stats.REGRESSION_FACTOR, 1.0, 1000.0),
        min_increase=float_arg("min_increase", stats.REGRESSION_MIN_INCREASE, 0.0, 86400.0),
        min_runs=p.query_int("min_runs", stats.REGRESSION_MIN_RUNS, 1, MAX_WINDOW),
        top=args["top"],
    )
    return plain(dict(args, build=found["build"], baseline_builds=found["baseline_builds"],
                      results=linked(instance_id, found["tests"])))


def test_history(instance_id, test_key):
    """One test's results across builds, newest first, with failure rate and flakiness."""
    get_instance(instance_id)
    limit = p.query_int("limit", 50, 1, MAX_HISTORY)
    found = stats.test_history(instance_id, test_key, limit)
    if found is None:
        abort(404, description=f"no test with key {test_key!r} in test instance {instance_id}")
    for entry in found["history"]:
        entry["url"] = case_url(instance_id, entry)
    return plain(found)


def find_test(instance_id):
    """A test's history found by ``suite`` and ``name`` instead of its key."""
    suite, name = request.args.get("suite"), request.args.get("name")
    if not suite or not name:
        fields = {field: "is required" for field, value in (("suite", suite), ("name", name)) if not value}
        raise p.ValidationError("give the test's suite and name", fields)
    return test_history(instance_id, make_test_key(suite, name))
