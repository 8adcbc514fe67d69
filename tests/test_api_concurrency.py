"""Parallel CI workers writing into one build at once, on MySQL (SQLite cannot express this).

Each thread has its own test client, so each request runs in its own app
context with its own session and pooled connection, as gunicorn threads do.
"""

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.conftest import make_token_user
from tests.factories import make_build
from tests.factories import make_instance
from tests.factories import make_suite
from webapp import results
from webapp.domain import STATUSES
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite

THREADS = 8


def run_in_threads(app, jobs, work):
    """Run ``work(client, job)`` for every job on THREADS threads released together; return the results."""
    barrier = threading.Barrier(THREADS)
    chunks = [jobs[index::THREADS] for index in range(THREADS)]

    def worker(chunk):
        client = app.test_client()
        barrier.wait()
        return [work(client, job) for job in chunk]

    with ThreadPoolExecutor(THREADS) as pool:
        return [answer for chunk in pool.map(worker, chunks) for answer in chunk]


@pytest.fixture(autouse=True)
def no_deadlocks(caplog):
    """Fail a test whose writes needed a rerun because InnoDB saw a deadlock: the lock order is wrong."""
    caplog.set_level(logging.INFO, logger="webapp")
    yield
    deadlocks = [record for record in caplog.records if "Deadlock found" in record.getMessage()]
    assert deadlocks == []


@pytest.fixture
def suite_ids(mysql_app):
    """An instance with one build and one empty suite: their ids."""
    with mysql_app.app_context():
        instance = make_instance("parallel product")
        build = make_build(instance)
        suite = make_suite(build, "parallel suite")
        return {"instance": instance.id, "build": build.id, "suite": suite.id}


@pytest.fixture
def headers(mysql_app):
    """Token credentials of a maintainer, the CI role."""
    return make_token_user(mysql_app, "maintainer")


def suite_url(ids):
    """The suite's URL."""
    return f"/api/test-instance/{ids['instance']}/test-build/{ids['build']}/test-suite/{ids['suite']}/"


def stored_counters(app, ids):
    """The suite's and build's counters, and the same numbers counted from case rows."""
    with app.app_context():
        suite = db.session.get(TestSuite, ids["suite"])
        build = db.session.get(TestBuild, ids["build"])
        rows = dict(
            db.session.execute(
                select(TestCase.result_status, func.count())
                .where(TestCase.suite_id == ids["suite"])
                .group_by(TestCase.result_status)
            ).all()
        )
        fields = ("cases_total", "passed", "failed", "errored", "skipped")
        counted = {
            "cases_total": sum(rows.values()),
            **{results.STATUS_COUNTER[status]: rows.get(status, 0) for status in STATUSES},
        }
        return (
            {name: getattr(suite, name) for name in fields},
            {name: getattr(build, name) for name in fields},
            counted,
            round(suite.cases_duration, 3),
            round(build.cases_duration, 3),
        )


def test_eight_threads_finishing_cases_of_one_suite_count_exactly(mysql_app, suite_ids, headers):
    """8 threads × 40 finishes into one suite: every counter is exact and matches the rows."""
    with mysql_app.app_context():
        suite = db.session.get(TestSuite, suite_ids["suite"])
        results.add_cases(suite, suite.build, [{"name": f"case {n:03d}"} for n in range(THREADS * 40)])
        db.session.commit()
        case_ids = db.session.scalars(select(TestCase.id).where(TestCase.suite_id == suite.id)).all()
    jobs = [(case_id, STATUSES[index % 4]) for index, case_id in enumerate(case_ids)]

    def finish(client, job):
        case_id, status = job
        url = suite_url(suite_ids) + f"test-case/{case_id}/finish/"
        return client.post(url, json={"result_status": status, "duration": 0.25}, headers=headers).status_code

    assert run_in_threads(mysql_app, jobs, finish) == [200] * len(jobs)
    suite_counts, build_counts, counted, suite_duration, build_duration = stored_counters(
        mysql_app, suite_ids
    )
    expected = {"cases_total": 320, "passed": 80, "failed": 80, "errored": 80, "skipped": 80}
    assert suite_counts == build_counts == counted == expected
    assert suite_duration == build_duration == 80.0


def test_eight_threads_creating_finished_cases_in_one_suite(mysql_app, suite_ids, headers):
    """Creates racing into one suite and build neither deadlock nor lose counts."""
    jobs = [(f"created {n:03d}", STATUSES[n % 4]) for n in range(THREADS * 25)]

    def create(client, job):
        name, status = job
        body = {"name": name, "result_status": status, "duration": 0.5}
        return client.post(suite_url(suite_ids) + "test-case/", json=body, headers=headers).status_code

    assert run_in_threads(mysql_app, jobs, create) == [201] * len(jobs)
    suite_counts, build_counts, counted, suite_duration, build_duration = stored_counters(
        mysql_app, suite_ids
    )
    expected = {"cases_total": 200, "passed": 50, "failed": 50, "errored": 50, "skipped": 50}
    assert suite_counts == build_counts == counted == expected
    assert suite_duration == build_duration == 100.0


def test_eight_threads_creating_suites_in_one_build(mysql_app, suite_ids, headers):
    """Suites created at once into one build all arrive, and suites_total is exact."""
    url = f"/api/test-instance/{suite_ids['instance']}/test-build/{suite_ids['build']}/test-suite/"
    jobs = [f"suite {n:02d}" for n in range(THREADS * 6)]

    def create(client, name):
        return client.post(url, json={"name": name}, headers=headers).status_code

    assert run_in_threads(mysql_app, jobs, create) == [201] * len(jobs)
    with mysql_app.app_context():
        build = db.session.get(TestBuild, suite_ids["build"])
        stored = db.session.scalar(select(func.count()).where(TestSuite.build_id == build.id))
        assert build.suites_total == stored == len(jobs) + 1


def test_auto_numbered_builds_created_at_once_get_distinct_numbers(mysql_app, suite_ids, headers):
    """Builds created at once without a number get distinct consecutive numbers, no 409 or 500."""
    url = f"/api/test-instance/{suite_ids['instance']}/test-build/"

    def create(client, _):
        response = client.post(url, json={"branch": "main"}, headers=headers)
        return response.status_code, (response.get_json() or {}).get("number")

    answers = run_in_threads(mysql_app, list(range(THREADS * 3)), create)
    assert [status for status, _ in answers] == [201] * len(answers)
    assert sorted(number for _, number in answers) == list(range(2, 2 + len(answers)))


def test_racing_finishes_of_one_case_count_once(mysql_app, suite_ids, headers):
    """Eight finishes of the same case: one 200, seven 409s, and the case is counted once."""
    with mysql_app.app_context():
        suite = db.session.get(TestSuite, suite_ids["suite"])
        case = results.create_case(suite, suite.build, "contested")
        db.session.commit()
        url = suite_url(suite_ids) + f"test-case/{case.id}/finish/"

    def finish(client, status):
        return client.post(url, json={"result_status": status}, headers=headers).status_code

    answers = run_in_threads(mysql_app, [STATUSES[n % 4] for n in range(THREADS)], finish)
    assert sorted(answers) == [200] + [409] * (THREADS - 1)
    suite_counts, build_counts, counted, _, _ = stored_counters(mysql_app, suite_ids)
    assert suite_counts == build_counts == counted
    assert sum(suite_counts[name] for name in ("passed", "failed", "errored", "skipped")) == 1


def test_racing_creates_of_one_name_give_one_item_and_409s_with_it(mysql_app, suite_ids, headers):
    """A name created by eight clients at once is stored once; the losers get 409 with that item."""
    url = suite_url(suite_ids) + "test-case/"

    def create(client, _):
        response = client.post(url, json={"name": "same name"}, headers=headers)
        return response.status_code, response.get_json()

    answers = run_in_threads(mysql_app, list(range(THREADS)), create)
    created = [body for status, body in answers if status == 201]
    conflicts = [body for status, body in answers if status == 409]
    assert len(created) == 1
    assert len(conflicts) == THREADS - 1
    assert all(body["error"]["existing"]["id"] == created[0]["id"] for body in conflicts)
    suite_counts, _, counted, _, _ = stored_counters(mysql_app, suite_ids)
    assert suite_counts["cases_total"] == counted["cases_total"] == 1


def test_eight_ci_workers_recording_cases_into_two_suites(mysql_app, suite_ids, headers):
    """Create, start and finish racing into two suites of one build: exact counters, no deadlock."""
    base = f"/api/test-instance/{suite_ids['instance']}/test-build/{suite_ids['build']}/test-suite/"
    with mysql_app.app_context():
        second = results.create_suite(db.session.get(TestBuild, suite_ids["build"]), "second suite")
        db.session.commit()
        suites = [f"{base}{suite_ids['suite']}/", f"{base}{second.id}/"]
    jobs = [(suites[n % 2], f"recorded {n:03d}", STATUSES[n % 4]) for n in range(THREADS * 20)]

    def record(client, job):
        suite_url, name, status = job
        created = client.post(suite_url + "test-case/", json={"name": name}, headers=headers)
        case_url = f"{suite_url}test-case/{created.get_json()['id']}/"
        started = client.post(case_url + "start/", headers=headers)
        result = {"result_status": status, "duration": 1}
        finished = client.post(case_url + "finish/", json=result, headers=headers)
        return created.status_code, started.status_code, finished.status_code

    assert set(run_in_threads(mysql_app, jobs, record)) == {(201, 200, 200)}
    with mysql_app.app_context():
        build = db.session.get(TestBuild, suite_ids["build"])
        counts = {name: getattr(build, name) for name in ("cases_total", *results.STATUS_COUNTER.values())}
        assert counts == {"cases_total": 160, "passed": 40, "failed": 40, "errored": 40, "skipped": 40}
        assert build.cases_duration == 160
        suite_totals = db.session.scalars(select(TestSuite.cases_total).where(TestSuite.build_id == build.id))
        assert sorted(suite_totals) == [80, 80]


def test_eight_threads_posting_batches_into_one_build(mysql_app, suite_ids, headers):
    """Batches racing into one build (an existing suite and new ones): exact counters, no deadlock."""
    build_url = f"/api/test-instance/{suite_ids['instance']}/test-build/{suite_ids['build']}/results/"
    jobs = list(range(THREADS * 4))

    def post(client, job):
        suite = "parallel suite" if job % 2 else f"batch suite {job % 8}"
        body = {
            "results": [
                {"suite": suite, "name": f"batch {job:02d} case {n:02d}", "result_status": STATUSES[n % 4]}
                for n in range(20)
            ]
        }
        return client.post(build_url, json=body, headers=headers).status_code

    assert run_in_threads(mysql_app, jobs, post) == [200] * len(jobs)
    suite_counts, build_counts, counted, _, _ = stored_counters(mysql_app, suite_ids)
    assert (
        suite_counts
        == counted
        == {
            "cases_total": 320,
            "passed": 80,
            "failed": 80,
            "errored": 80,
            "skipped": 80,
        }
    )
    assert build_counts == {"cases_total": 640, "passed": 160, "failed": 160, "errored": 160, "skipped": 160}
    with mysql_app.app_context():
        assert db.session.get(TestBuild, suite_ids["build"]).suites_total == 5


def test_batches_and_live_creates_racing_into_one_suite(mysql_app, suite_ids, headers):
    """A batch's rows go in before its counters, a live create's after: mixed, they neither deadlock
    nor lose counts."""
    build_url = f"/api/test-instance/{suite_ids['instance']}/test-build/{suite_ids['build']}/results/"
    jobs = list(range(THREADS * 6))

    def write(client, job):
        if job % 2:
            case = {"name": f"live {job:02d}", "result_status": STATUSES[job % 4], "duration": 1}
            created = client.post(suite_url(suite_ids) + "test-case/", json=case, headers=headers)
            return job, created.status_code
        batch = [
            {"suite": "parallel suite", "name": f"batch {job:02d} case {n}", "result_status": STATUSES[n % 4]}
            for n in range(8)
        ]
        return job, client.post(build_url, json={"results": batch}, headers=headers).status_code

    assert dict(run_in_threads(mysql_app, jobs, write)) == {job: 201 if job % 2 else 200 for job in jobs}
    suite_counts, build_counts, counted, _, _ = stored_counters(mysql_app, suite_ids)
    # 24 batches of 8 (2 of each status) and 24 live cases (12 FAILED, 12 SKIPPED)
    expected = {"cases_total": 216, "passed": 48, "failed": 60, "errored": 48, "skipped": 60}
    assert suite_counts == build_counts == counted == expected


@pytest.fixture
def round_trips(monkeypatch):
    """Counts every command PyMySQL sends to the server (a query, COMMIT, ping): the round trips."""
    sent = []
    real = pymysql.connections.Connection._execute_command

    def counting(connection, command, sql):
        sent.append(sql)
        return real(connection, command, sql)

    monkeypatch.setattr(pymysql.connections.Connection, "_execute_command", counting)
    return sent


def test_round_trips_per_request_stay_low(mysql_app, round_trips):
    """A design limit, not a timing: finish 3 round trips (auth + case, one UPDATE, COMMIT).

    Create 4, start 3, a read 2 (the read's transaction ends with a ROLLBACK).
    Before the work on it a finish took 12 and a create 14; a ping on every
    request was one more until only idle connections were pinged. The token's
    owner is looked up once and then kept for a few seconds (webapp.security's
    TokenCache), so a warm-up call pays that lookup before the counted ones.
    """
    app = mysql_app  # with the production engine options (tests.conftest.settings_for)
    headers = make_token_user(app, "maintainer")
    with app.app_context():
        suite = make_suite(make_build(make_instance()), "suite")
        build = suite.build
        url = f"/api/test-instance/{build.instance_id}/test-build/{build.id}/test-suite/{suite.id}/test-case/"
    client = app.test_client()

    def trips(method, path, expected, **kwargs):
        round_trips.clear()
        response = client.open(path, method=method, headers=headers, **kwargs)
        assert response.status_code == expected
        return len(round_trips), response.get_json()

    trips("GET", url, 200)
    for number in range(3):
        created_trips, case = trips("POST", url, 201, json={"name": f"case {number}"})
        start_trips, _ = trips("POST", f"{url}{case['id']}/start/", 200)
        finish_trips, _ = trips("POST", f"{url}{case['id']}/finish/", 200, json={"result_status": "SUCCESS"})
        read_trips, _ = trips("GET", f"{url}{case['id']}/", 200)
        assert created_trips <= 4 and start_trips <= 3 and finish_trips <= 3 and read_trips <= 2
    conflict_trips, _ = trips("POST", f"{url}{case['id']}/finish/", 409, json={"result_status": "FAILED"})
    assert conflict_trips <= 3
    with app.app_context():
        stored = db.session.get(TestSuite, suite.id)
        assert (stored.cases_total, stored.passed, stored.failed) == (3, 3, 0)
