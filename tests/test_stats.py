"""The statistics engine on small histories whose answers were worked out by hand.

Each scenario's expected figures are derived in its docstring or comments, so
a wrong answer points at the rule it breaks.
"""

import pytest

from tests.factories import make_instance
from tests.factories import make_run
from webapp import results
from webapp import stats
from webapp.extensions import db
from webapp.models import test_key

S, F, E, K = "SUCCESS", "FAILED", "ERROR", "SKIPPED"


def record(instance, suites, **build_fields):
    """Store a finished build; each case is a status or ``(status, duration[, retried])``."""
    build = results.create_build(instance, **build_fields)
    for suite_name, cases in suites.items():
        suite = results.create_suite(build, suite_name)
        rows = []
        for name, spec in cases.items():
            status, duration, retried = (spec, 0.1, False) if isinstance(spec, str) else (*spec, False)[:3]
            rows.append(
                {
                    "name": name,
                    "result_status": status,
                    "duration": duration,
                    "is_flaky": retried,
                    "attempts": 2 if retried else 1,
                }
            )
        results.add_cases(suite, build, rows)
    db.session.commit()
    return build


def keyed(items):
    """``(suite, name)`` pairs of a list of test items, in order."""
    return [(item["suite"], item["name"]) for item in items]


@pytest.fixture
def ctx(app):
    """An app context on each database."""
    with app.app_context():
        yield app


@pytest.fixture
def history(ctx):
    """Six builds of four tests in suite "s" (the flaky/failing scenario).

    ======  ==  ==  ==========  ==
    build   t1  t2  t3          t4
    ======  ==  ==  ==========  ==
    1       S   F   S           S
    2       F   F   S           S
    3       S   F   S (retried) K
    4       F   S   S           S
    5       S   F   S           F      (branch "feature", the others "main")
    6       S   F   S           S
    ======  ==  ==  ==========  ==
    """
    instance = make_instance()
    table = [
        (S, F, S, S),
        (F, F, S, S),
        (S, F, (S, 0.1, True), K),
        (F, S, S, S),
        (S, F, S, F),
        (S, F, S, S),
    ]
    builds = []
    for number, row in enumerate(table, start=1):
        cases = dict(zip(("t1", "t2", "t3", "t4"), row, strict=True))
        branch = "feature" if number == 5 else "main"
        builds.append(record(instance, {"s": cases}, branch=branch))
    return instance, builds


def test_build_summary_reads_the_counters(history):
    """Build 3: 2 passed, 1 failed, 1 skipped, 1 retried; 3 ran so the pass rate is 2/3."""
    build = history[1][2]
    summary = stats.build_summary(build)
    assert summary["counts"] == {"SUCCESS": 2, "FAILED": 1, "ERROR": 0, "SKIPPED": 1}
    assert summary["pass_rate"] == round(2 / 3, 4)
    assert summary["flaky"] == 1
    assert summary["cases_total"] == 4 and summary["pending"] == 0
    assert summary["suites_total"] == 1
    assert summary["duration"] == pytest.approx(0.4)
    assert summary["status"] == "FAILED"
    assert summary["number"] == 3


def test_trend_is_oldest_first_and_follows_pass_rate(history):
    """Pass rates: 3/4, 2/4, 2/3 (t4 skipped), 3/4, 2/4, 3/4."""
    trend = stats.instance_trend(history[0].id)
    assert [point["number"] for point in trend] == [1, 2, 3, 4, 5, 6]
    assert [point["pass_rate"] for point in trend] == [0.75, 0.5, round(2 / 3, 4), 0.75, 0.5, 0.75]
    assert [point["failed"] for point in trend] == [1, 2, 1, 1, 2, 1]
    assert [point["number"] for point in stats.instance_trend(history[0].id, limit=3)] == [4, 5, 6]


def test_trend_of_one_branch(history):
    """Only build 5 is on "feature"; "main" skips it."""
    instance_id = history[0].id
    assert [p["number"] for p in stats.instance_trend(instance_id, branch="feature")] == [5]
    assert [p["number"] for p in stats.instance_trend(instance_id, branch="main")] == [1, 2, 3, 4, 6]


def test_top_failing_counts_failures_in_the_window(history):
    """All six builds: t2 failed 5 times of 6 runs, t1 2 of 6, t4 1 of 5 (one skip)."""
    top = stats.top_failing(history[0].id)
    assert keyed(top) == [("s", "t2"), ("s", "t1"), ("s", "t4")]
    assert [(t["failures"], t["runs"], t["failure_rate"], t["last_failed"]) for t in top] == [
        (5, 6, round(5 / 6, 4), 6),
        (2, 6, round(2 / 6, 4), 4),
        (1, 5, 0.2, 5),
    ]
    assert top[0]["test_key"] == test_key("s", "t2")
    assert top[0]["last_status"] == "FAILED"


def test_top_failing_in_a_short_window_breaks_ties_by_recency(history):
    """Builds 4-6: t2 failed twice; t4 (build 5) and t1 (build 4) once, t4 more recently."""
    top = stats.top_failing(history[0].id, limit_builds=3)
    assert keyed(top) == [("s", "t2"), ("s", "t4"), ("s", "t1")]
    assert stats.top_failing(history[0].id, limit_builds=3, top=1)[0]["name"] == "t2"


def test_top_failing_of_one_branch(history):
    """On "main" (no build 5) t4 never failed: t2 failed 4 times, t1 twice."""
    top = stats.top_failing(history[0].id, branch="main")
    assert [(t["name"], t["failures"]) for t in top] == [("t2", 4), ("t1", 2)]


def test_flaky_scores_count_flips_and_retried_passes(history):
    """Scores over six builds, skips left out.

    t1: S F S F S S  -> 4 flips / 6 runs = 0.6667
    t4: S S - S F S  -> 2 flips / 5 runs = 0.4
    t2: F F F S F F  -> 2 flips / 6 runs = 0.3333
    t3: all S, one retried pass -> 1 / 6 = 0.1667
    """
    flaky = stats.flaky_tests(history[0].id)
    assert keyed(flaky) == [("s", "t1"), ("s", "t4"), ("s", "t2"), ("s", "t3")]
    figures = [(t["runs"], t["flips"], t["retried"], t["score"]) for t in flaky]
    assert figures == [(6, 4, 0, 0.6667), (5, 2, 0, 0.4), (6, 2, 0, 0.3333), (6, 0, 1, 0.1667)]
    assert flaky[2]["failures"] == 5


def test_flaky_in_a_short_window_drops_stable_tests(history):
    """Builds 4-6: t4 S F S (2/3); t1 F S S and t2 S F F (1/3, tie broken by name); t3 stable."""
    flaky = stats.flaky_tests(history[0].id, limit_builds=3)
    assert [(t["name"], t["score"]) for t in flaky] == [("t4", 0.6667), ("t1", 0.3333), ("t2", 0.3333)]
    assert len(stats.flaky_tests(history[0].id, limit_builds=3, top=2)) == 2


def test_test_history_is_newest_first_with_rates(history):
    """t1 newest first: S S F S F S; 2 failures of 6 runs; 4 flips."""
    instance, builds = history
    found = stats.test_history(instance.id, test_key("s", "t1"))
    assert [entry["build_number"] for entry in found["history"]] == [6, 5, 4, 3, 2, 1]
    assert [entry["status"] for entry in found["history"]] == [S, S, F, S, F, S]
    assert found["history"][0]["build_id"] == builds[5].id
    assert found["failure_rate"] == round(2 / 6, 4)
    assert found["flakiness"] == {"runs": 6, "flips": 4, "retried": 0, "score": 0.6667}
    assert (found["suite"], found["name"]) == ("s", "t1")


def test_test_history_limit_and_retries(history):
    """The last two runs of t1 both passed; t3's history shows its retried pass in build 3."""
    instance_id = history[0].id
    short = stats.test_history(instance_id, test_key("s", "t1"), limit=2)
    assert [e["build_number"] for e in short["history"]] == [6, 5]
    assert short["failure_rate"] == 0.0 and short["flakiness"]["score"] == 0.0
    t3 = stats.test_history(instance_id, test_key("s", "t3"))
    assert [e["is_flaky"] for e in t3["history"]] == [False, False, False, True, False, False]
    assert t3["flakiness"]["retried"] == 1
    t4 = stats.test_history(instance_id, test_key("s", "t4"))
    assert t4["runs"] == 5 and t4["failure_rate"] == 0.2


def test_test_history_of_an_unknown_test(history):
    """No such test: None, so the API can answer 404."""
    assert stats.test_history(history[0].id, test_key("s", "nope")) is None


@pytest.fixture
def changes(ctx):
    """Two builds for the comparison.

    build 1: s1: a S, b F, c F, d S, e K;  s2: x S
    build 2: s1: a F, b S, c E, e F, f F, g S   (d and the whole of s2 are gone)
    """
    instance = make_instance()
    first = make_run(instance, {"s1": {"a": S, "b": F, "c": F, "d": S, "e": K}, "s2": {"x": S}})
    second = make_run(instance, {"s1": {"a": F, "b": S, "c": E, "e": F, "f": F, "g": S}})
    return instance, first, second


def test_compare_with_the_previous_build(changes):
    """a broke (was S), e broke (was skipped), f is new and failing; b fixed; c still failing."""
    _, first, second = changes
    diff = stats.compare_builds(second)
    assert diff["base"]["id"] == first.id
    assert keyed(diff["new_failures"]) == [("s1", "a"), ("s1", "e"), ("s1", "f")]
    assert [item["base_status"] for item in diff["new_failures"]] == [S, K, None]
    assert keyed(diff["fixed"]) == [("s1", "b")]
    assert diff["fixed"][0]["base_status"] == F and diff["fixed"][0]["status"] == S
    assert keyed(diff["still_failing"]) == [("s1", "c")]
    assert (diff["still_failing"][0]["status"], diff["still_failing"][0]["base_status"]) == (E, F)
    assert keyed(diff["new_tests"]) == [("s1", "f"), ("s1", "g")]
    assert keyed(diff["removed_tests"]) == [("s1", "d"), ("s2", "x")]


def test_compare_items_point_at_their_cases(changes):
    """Current items link the new build's case; removed ones the base build's case."""
    _, first, second = changes
    diff = stats.compare_builds(second)
    from webapp.models import TestCase

    new_failure = db.session.get(TestCase, diff["new_failures"][0]["case_id"])
    assert (new_failure.build_id, new_failure.name) == (second.id, "a")
    base_case = db.session.get(TestCase, diff["new_failures"][0]["base_case_id"])
    assert (base_case.build_id, base_case.name) == (first.id, "a")
    fixed = db.session.get(TestCase, diff["fixed"][0]["case_id"])
    assert (fixed.build_id, fixed.name, fixed.suite_id) == (second.id, "b", diff["fixed"][0]["suite_id"])
    assert db.session.get(TestCase, diff["fixed"][0]["base_case_id"]).build_id == first.id
    removed = db.session.get(TestCase, diff["removed_tests"][1]["case_id"])
    assert (removed.build_id, removed.name, diff["removed_tests"][1]["status"]) == (first.id, "x", S)


def test_compare_first_build_and_explicit_base(changes):
    """The first build has nothing to compare with; comparing the other way swaps the lists."""
    instance, first, second = changes
    assert stats.compare_builds(first)["base"] is None
    assert stats.compare_builds(first)["new_failures"] == []
    backwards = stats.compare_builds(first, second)
    assert backwards["base"]["id"] == second.id
    assert keyed(backwards["new_failures"]) == [("s1", "b")]
    assert keyed(backwards["fixed"]) == [("s1", "a")]
    assert keyed(backwards["new_tests"]) == [("s1", "d"), ("s2", "x")]
    assert keyed(backwards["removed_tests"]) == [("s1", "f"), ("s1", "g")]
    assert len(stats.compare_builds(second, limit=1)["new_failures"]) == 1


@pytest.fixture
def timings(ctx):
    """Five builds of suite "perf"; durations in seconds (K = skipped).

    ====  ====  ===  ====  =====  ===
    test   b1    b2   b3    b4     b5
    ====  ====  ===  ====  =====  ===
    p1     1     2    3     4      10
    p2     5     5    6     6      K
    p3     0.5  0.5  0.5   0.5    0.5
    p4     .01  .01  .01   .01    .05
    p5     -     -    -     1      5
    ====  ====  ===  ====  =====  ===
    """
    instance = make_instance()
    columns = {
        "p1": [1, 2, 3, 4, 10],
        "p2": [5, 5, 6, 6, None],
        "p3": [0.5] * 5,
        "p4": [0.01, 0.01, 0.01, 0.01, 0.05],
        "p5": [None, None, None, 1, 5],
    }
    builds = []
    for index in range(5):
        cases = {}
        for name, durations in columns.items():
            if durations[index] is not None:
                cases[name] = (S, durations[index])
            elif name == "p2":
                cases[name] = (K, 0.0)
        builds.append(record(instance, {"perf": cases}))
    return instance, builds


def test_slowest_by_median_with_p95(timings):
    """p2: median of 5,5,6,6 is 5.5, p95 (rank 4 of 4) 6; p1: median 3, p95 (rank 5) 10."""
    slow = stats.slowest_tests(timings[0].id, top=3)
    assert keyed(slow) == [("perf", "p2"), ("perf", "p1"), ("perf", "p5")]
    figures = [(t["median"], t["p95"], t["runs"]) for t in slow]
    assert figures == [(5.5, 6.0, 4), (3.0, 10.0, 5), (3.0, 5.0, 2)]
    assert slow[1]["latest"] == 10.0
    assert slow[0]["latest"] == 6.0


def test_slowest_in_a_short_window(timings):
    """Builds 4-5: p5 median (1+5)/2 = 3, p2 one run of 6, p1 (4+10)/2 = 7."""
    slow = stats.slowest_tests(timings[0].id, limit_builds=2, top=3)
    assert [(t["name"], t["median"]) for t in slow] == [("p1", 7.0), ("p2", 6.0), ("p5", 3.0)]


def test_duration_regression_of_the_newest_build(timings):
    """Build 5 against builds 1-4: p1 took 10 s, its median was 2.5 s.

    p4 is 5x slower but only 0.04 s more (noise); p5 has one earlier run (< 3);
    p2 was skipped; p3 did not change.
    """
    found = stats.duration_regressions(timings[0].id)
    assert found["build"]["number"] == 5 and found["baseline_builds"] == 4
    assert [
        (t["name"], t["duration"], t["median"], t["runs"], t["ratio"], t["increase"]) for t in found["tests"]
    ] == [("p1", 10.0, 2.5, 4, 4.0, 7.5)]


def test_duration_regression_of_a_given_build(timings):
    """Build 4 against builds 1-3: p1 took 4 s against a median of 2 s: exactly twice, a regression."""
    instance, builds = timings
    found = stats.duration_regressions(instance.id, build=builds[3])
    assert found["baseline_builds"] == 3
    assert [(t["name"], t["ratio"]) for t in found["tests"]] == [("p1", 2.0)]
    assert stats.duration_regressions(instance.id, build=builds[3], factor=2.5)["tests"] == []
    assert stats.duration_regressions(instance.id, build=builds[0])["tests"] == []


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_duration_figures_by_either_lookup(timings, monkeypatch, share):
    """Tests ranked pair by pair in the history index (share 1) or read through (share 0): same answers."""
    instance, builds = timings
    monkeypatch.setattr(stats, "KEY_LOOKUP_SHARE", share)
    slow = stats.slowest_tests(instance.id, top=3)
    assert [(t["name"], t["median"], t["p95"], t["runs"]) for t in slow] == [
        ("p2", 5.5, 6.0, 4),
        ("p1", 3.0, 10.0, 5),
        ("p5", 3.0, 5.0, 2),
    ]
    found = stats.duration_regressions(instance.id)
    assert [(t["name"], t["median"], t["runs"]) for t in found["tests"]] == [("p1", 2.5, 4)]


def test_statistics_of_an_empty_instance(ctx):
    """No builds: empty answers, no errors."""
    instance = make_instance()
    assert stats.instance_trend(instance.id) == []
    assert stats.top_failing(instance.id) == []
    assert stats.slowest_tests(instance.id) == []
    assert stats.flaky_tests(instance.id) == []
    assert stats.duration_regressions(instance.id) == {"build": None, "baseline_builds": 0, "tests": []}


def test_flakiness_counts_only_runs():
    """Skips and unfinished cases are not runs; error and failure are both failing."""
    runs = [(S, False), (K, False), (F, False), (E, False), (None, False), (S, True)]
    assert stats.flakiness(runs) == {"runs": 4, "flips": 2, "retried": 1, "score": 0.75}
    assert stats.flakiness([]) == {"runs": 0, "flips": 0, "retried": 0, "score": 0.0}
