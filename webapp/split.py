"""Test splitting: N shards of an instance's tests with about equal expected time.

The window is the newest finished builds that hold cases (a build still
running, such as the one a sharded CI job is filling, is left out); the tests
are those of the newest of them, and each test's expected time is its median
duration over the window. Timed tests go, longest
first, to the shard with the least time so far (the LPT rule: the longest
shard is at most 4/3 of the optimum, and close to the mean when no single test
dominates). Tests with no recorded duration are then dealt round-robin,
starting from the lightest shard, so every shard gets its share of them.
"""

import heapq
import statistics

from sqlalchemy import select

from webapp import stats
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite

DEFAULT_WINDOW = 10
MAX_SHARDS = 1000


def finished_window(instance_id, window, branch=None, before=None):
    """The ids of the newest ``window`` finished builds with cases (on ``branch``), newest first.

    :param before: only builds numbered below this: the build the shards run as. Its shards
        share its number, and the first to end finishes it with only its own tests, so a
        later shard must not split by it.
    """
    statement = select(TestBuild.id).where(
        TestBuild.instance_id == instance_id, TestBuild.finished.is_not(None), TestBuild.cases_total > 0
    )
    if branch is not None:
        statement = statement.where(TestBuild.branch == branch)
    if before is not None:
        statement = statement.where(TestBuild.number < before)
    return db.session.scalars(statement.order_by(TestBuild.number.desc()).limit(window)).all()


def latest_tests(build_id):
    """``(test_key, suite, name)`` of every case of a build, in suite and name order."""
    return db.session.execute(
        select(TestCase.test_key, TestSuite.name, TestCase.name)
        .join(TestSuite, TestSuite.id == TestCase.suite_id)
        .where(TestCase.build_id == build_id)
        .order_by(TestSuite.name, TestCase.name)
    ).all()


def median_durations(build_ids):
    """``{test_key: median duration}`` over the builds' finished cases (read from the covering index)."""
    durations = {}
    rows = db.session.execute(
        select(TestCase.test_key, TestCase.duration).where(
            TestCase.build_id.in_(build_ids),
            TestCase.result_status.in_(stats.RAN + ("SKIPPED",)),
            TestCase.duration.is_not(None),
        )
    )
    for key, duration in rows:
        durations.setdefault(key, []).append(duration)
    return {key: statistics.median(values) for key, values in durations.items()}


def balance(tests, durations, shards):
    """Deal ``tests`` into ``shards`` lists; return the lists and each shard's expected seconds.

    :param tests: ``(key, suite, name)`` tuples.
    :param durations: ``{key: seconds}``; tests missing from it have no history.
    """
    lists = [[] for _ in range(shards)]
    totals = [0.0] * shards
    timed = sorted(
        (test for test in tests if test[0] in durations),
        key=lambda test: (-durations[test[0]], test[1], test[2]),
    )
    heap = [(0.0, index) for index in range(shards)]
    for test in timed:
        total, index = heapq.heappop(heap)
        lists[index].append(test)
        total += durations[test[0]]
        totals[index] = total
        heapq.heappush(heap, (total, index))
    order = sorted(range(shards), key=lambda index: (totals[index], index))
    untimed = [test for test in tests if test[0] not in durations]
    for position, test in enumerate(untimed):
        lists[order[position % shards]].append(test)
    return lists, totals


def split_tests(instance_id, shards, branch=None, window=DEFAULT_WINDOW, before=None):
    """The instance's tests in ``shards`` balanced lists.

    :return: ``{"shards", "branch", "builds", "tests", "results": [{"index", "expected_duration",
        "tests": [{"suite", "name", "node_id", "expected_duration"}]}]}``; empty lists when the
        instance has no build (on that branch).
    """
    builds = finished_window(instance_id, window, branch, before)
    tests = latest_tests(builds[0]) if builds else []
    durations = median_durations(builds) if builds else {}
    lists, totals = balance(tests, durations, shards)
    return {
        "shards": shards,
        "branch": branch,
        "builds": len(builds),
        "tests": len(tests),
        "results": [
            {
                "index": index,
                "expected_duration": round(totals[index], 3),
                "tests": [
                    {
                        "suite": suite,
                        "name": name,
                        "node_id": f"{suite}::{name}",
                        "expected_duration": durations.get(key),
                    }
                    for key, suite, name in shard
                ],
            }
            for index, shard in enumerate(lists)
        ],
    }
