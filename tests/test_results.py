"""The write path keeps suite and build counters equal to what the case rows say."""

import math
from datetime import datetime
from datetime import timezone

import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite
from webapp import results
from webapp.api.resources import case_record_query
from webapp.domain import DETAILS_LIMIT
from webapp.domain import clip
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite
from webapp.models import test_key


def counted_from_rows(parent_column, parent_id):
    """Count case rows directly: what the counters must equal."""
    rows = db.session.execute(
        select(TestCase.result_status, func.count(), func.coalesce(func.sum(TestCase.duration), 0))
        .where(parent_column == parent_id)
        .group_by(TestCase.result_status)
    ).all()
    counts = {"cases_total": 0, "passed": 0, "failed": 0, "errored": 0, "skipped": 0, "cases_duration": 0.0}
    for status, number, duration in rows:
        counts["cases_total"] += number
        if status is not None:
            counts[results.STATUS_COUNTER[status]] += number
            counts["cases_duration"] += float(duration)
    counts["cases_duration"] = round(counts["cases_duration"], 6)
    return counts


def stored_counters(model, item_id):
    """Read the stored counters of a suite or build afresh."""
    db.session.expire_all()
    item = db.session.get(model, item_id)
    counts = {name: getattr(item, name) for name in ("cases_total", "passed", "failed", "errored", "skipped")}
    counts["cases_duration"] = round(item.cases_duration, 6)
    return counts


def assert_exact(suite_id, build_id):
    """Counters of the suite and build match their case rows."""
    assert stored_counters(TestSuite, suite_id) == counted_from_rows(TestCase.suite_id, suite_id)
    assert stored_counters(TestBuild, build_id) == counted_from_rows(TestCase.build_id, build_id)


@pytest.fixture
def tree(app):
    """An instance with one build and one suite, inside an app context."""
    with app.app_context():
        instance = make_instance()
        build = make_build(instance)
        suite = make_suite(build)
        yield build, suite


def test_create_and_finish_cases_count_once(tree):
    """Do creating, finishing and creating-finished cases each count exactly once?"""
    build, suite = tree
    pending = make_case(suite, "pending")
    make_case(suite, "done", result_status="SKIPPED", duration=0.5)
    results.finish_case(pending, "FAILED", duration=1.25, message="boom")
    db.session.commit()
    assert_exact(suite.id, build.id)
    assert stored_counters(TestSuite, suite.id)["failed"] == 1


def test_finishing_twice_is_a_conflict_and_counts_once(tree):
    """Is a second finish refused without touching the counters?"""
    build, suite = tree
    case = make_case(suite, "once")
    results.finish_case(case, "SUCCESS")
    db.session.commit()
    with pytest.raises(results.Conflict):
        results.finish_case(db.session.get(TestCase, case.id), "FAILED")
    db.session.rollback()
    assert stored_counters(TestSuite, suite.id)["passed"] == 1
    assert_exact(suite.id, build.id)


def test_status_edit_moves_counts(tree):
    """Does changing FAILED to SUCCESS move one count from failed to passed?"""
    build, suite = tree
    case = make_case(suite, "edited", result_status="FAILED", duration=2.0)
    results.update_case(case, result_status="SUCCESS", duration=3.0)
    db.session.commit()
    counts = stored_counters(TestBuild, build.id)
    assert (counts["failed"], counts["passed"], counts["cases_duration"]) == (0, 1, 3.0)
    assert_exact(suite.id, build.id)


def test_deletes_keep_counters_exact(tree):
    """Do case and suite deletes take exactly their counts off?"""
    build, suite = tree
    other = make_suite(build, "other")
    for index, status in enumerate(["SUCCESS", "FAILED", "ERROR", None]):
        make_case(suite, f"case{index}", result_status=status, duration=1.0 if status else None)
        make_case(other, f"case{index}", result_status=status, duration=1.0 if status else None)
    victim = db.session.scalar(
        select(TestCase).where(TestCase.suite_id == suite.id, TestCase.name == "case1")
    )
    results.delete_case(victim)
    db.session.commit()
    assert_exact(suite.id, build.id)
    results.delete_suite(db.session.get(TestSuite, other.id))
    db.session.commit()
    assert_exact(suite.id, build.id)
    assert db.session.get(TestBuild, build.id).suites_total == 1


def test_bulk_add_matches_single_creates(tree):
    """Does add_cases leave the same counters as creating each case alone?"""
    build, suite = tree
    rows = [
        {"name": f"bulk{i}", "result_status": s, "duration": 0.25}
        for i, s in enumerate(["SUCCESS", "SUCCESS", "FAILED", "SKIPPED", None])
    ]
    rows[0]["is_flaky"] = True
    results.add_cases(suite, build, rows)
    db.session.commit()
    assert_exact(suite.id, build.id)
    assert stored_counters(TestSuite, suite.id)["cases_total"] == 5
    assert db.session.get(TestSuite, suite.id).flaky == 1


def test_long_durations_read_back_exactly(tree):
    """Do long durations, and the counters they feed, keep every digit (MySQL's FLOAT kept about 7)?"""
    build, suite = tree
    other = make_suite(build, "other")
    long_case = make_case(suite, "long", result_status="SUCCESS", duration=1234567.891)
    huge_case = make_case(other, "huge", result_status="FAILED", duration=1799999999.123)
    db.session.expire_all()
    assert db.session.get(TestCase, long_case.id).duration == 1234567.891
    assert db.session.get(TestCase, huge_case.id).duration == 1799999999.123
    assert db.session.get(TestSuite, suite.id).cases_duration == 1234567.891
    assert db.session.get(TestBuild, build.id).cases_duration == 1234567.891 + 1799999999.123


def test_many_small_durations_add_up_without_drift(tree):
    """Do 2,000 cases of 1 ms, each bumping the counters on its own, total 2 s to within 1e-9?"""
    build, suite = tree
    for index in range(2000):
        case = {"name": f"quick{index}", "result_status": "SUCCESS", "duration": 0.001}
        results.add_cases(suite, build, [case])
    db.session.commit()
    expected = math.fsum([0.001] * 2000)
    db.session.expire_all()
    for stored in (db.session.get(TestSuite, suite.id), db.session.get(TestBuild, build.id)):
        assert stored.cases_duration == pytest.approx(expected, rel=1e-9, abs=0)
    summed = db.session.scalar(select(func.sum(TestCase.duration)).where(TestCase.build_id == build.id))
    assert summed == pytest.approx(expected, rel=1e-9, abs=0)


def test_deleting_a_build_removes_its_tree(tree):
    """Does deleting a build cascade to its suites and cases on both databases?"""
    build, suite = tree
    make_case(suite, "gone", result_status="SUCCESS")
    results.delete_build(db.session.get(TestBuild, build.id))
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(TestCase)) == 0
    assert db.session.scalar(select(func.count()).select_from(TestSuite)) == 0


def test_long_text_is_clipped_to_the_limit_with_a_marker(tree):
    """Are tracebacks cut to the documented limit, keeping head and tail, saying how much was dropped?"""
    build, suite = tree
    details = "head" + "x" * DETAILS_LIMIT + "tail"
    case = make_case(suite, "long", result_status="FAILED", details=details)
    stored = db.session.scalar(select(TestCase.details).where(TestCase.id == case.id))
    assert stored == clip(details, DETAILS_LIMIT)
    assert stored.startswith("headx") and stored.endswith("xtail")


def test_renaming_a_suite_rekeys_its_cases(tree):
    """Is a test's identity (suite name + case name) kept right after a rename?"""
    build, suite = tree
    case = make_case(suite, "keyed")
    results.rename_suite(suite, "renamed")
    db.session.commit()
    assert db.session.get(TestCase, case.id).test_key == test_key("renamed", "keyed")


def case_record(case_id):
    """The case as the live API's start and finish read it."""
    return results.CaseRecord(**results.run(case_record_query(), {"case_id": case_id}).one()._asdict())


def test_a_start_that_lost_a_race_answers_with_the_winners_time(tree):
    """Does a record read before another request started the case come back with the stored start?"""
    _, suite = tree
    case_id = make_case(suite, "raced").id
    record = case_record(case_id)
    first = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
    results.start(db.session.get(TestCase, case_id), first)
    db.session.commit()
    results.start(record, datetime(2026, 3, 4, 5, 6, 9, tzinfo=timezone.utc))
    assert record.started == first
    assert db.session.get(TestCase, case_id).started == first


def test_a_start_that_lost_a_race_to_a_finish_is_a_conflict(tree):
    """Is a case finished after its record was read refused a start, its result kept?"""
    _, suite = tree
    case_id = make_case(suite, "finished meanwhile").id
    record = case_record(case_id)
    results.finish_case(case_record(case_id), "SUCCESS")
    db.session.commit()
    with pytest.raises(results.Conflict, match="has already finished"):
        results.start(record)
    db.session.rollback()
    assert db.session.get(TestCase, case_id).result_status == "SUCCESS"
