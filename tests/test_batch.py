"""The batch results endpoint: suites on demand, re-runs, exact counters, one transaction, exactly once."""

import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.factories import make_build
from tests.factories import make_instance
from webapp.extensions import db
from webapp.models import IdempotencyRecord
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite


@pytest.fixture
def build_path(app):
    """The batch URL of a fresh build."""
    with app.app_context():
        instance = make_instance("product")
        build = make_build(instance)
        return f"/api/test-instance/{instance.id}/test-build/{build.id}/results/"


def result(suite, name, status, **fields):
    """One result of a batch."""
    return {"suite": suite, "name": name, "result_status": status, **fields}


def stored_cases(app):
    """{(suite, case): (status, attempts, is_flaky, message)} of every stored case."""
    with app.app_context():
        rows = db.session.execute(
            select(
                TestSuite.name,
                TestCase.name,
                TestCase.result_status,
                TestCase.attempts,
                TestCase.is_flaky,
                TestCase.message,
            ).join(TestSuite, TestCase.suite_id == TestSuite.id)
        )
        return {
            (suite, name): (status, attempts, flaky, message)
            for suite, name, status, attempts, flaky, message in rows
        }


def build_counters(app):
    """The only build's counters."""
    with app.app_context():
        build = db.session.scalars(select(TestBuild)).one()
        return {
            name: getattr(build, name)
            for name in ("suites_total", "cases_total", "passed", "failed", "errored", "skipped", "flaky")
        }


def test_batch_creates_suites_and_counts(api, app, build_path):
    """Cases land in suites made on demand; the reply and the counters say what was stored."""
    body = {
        "results": [
            result("tests/test_a.py", "test_one", "SUCCESS", duration=0.5, started=1767225600),
            result(
                "tests/test_a.py",
                "test_two",
                "FAILED",
                message="assert 1 == 2",
                details="Traceback…",
                system_out="out",
                system_err="err",
            ),
            result("tests/test_b.py", "TestX::test_three[1]", "SKIPPED", message="not today"),
            result("tests/test_b.py", "test_four", "ERROR", finished="2026-01-01T00:00:01Z"),
        ]
    }
    response = api.post(build_path, json=body)
    assert response.status_code == 200, response.text
    reply = response.get_json()
    assert reply["cases"] == {
        "total": 4,
        "SUCCESS": 1,
        "FAILED": 1,
        "ERROR": 1,
        "SKIPPED": 1,
        "flaky": 0,
        "merged": 0,
    }
    assert (reply["results"], reply["suites"], reply["suites_created"]) == (4, 2, 2)
    assert build_counters(app) == {
        "suites_total": 2,
        "cases_total": 4,
        "passed": 1,
        "failed": 1,
        "errored": 1,
        "skipped": 1,
        "flaky": 0,
    }
    assert stored_cases(app)[("tests/test_a.py", "test_two")] == ("FAILED", 1, False, "assert 1 == 2")
    with app.app_context():
        case = db.session.scalar(select(TestCase).where(TestCase.name == "test_two"))
        assert (case.details, case.system_out, case.system_err) == ("Traceback…", "out", "err")
        first = db.session.scalar(select(TestCase).where(TestCase.name == "test_one"))
        assert first.started.isoformat() == "2026-01-01T00:00:00+00:00"


def test_reruns_in_one_batch_and_across_batches(api, app, build_path):
    """The last attempt's status wins, attempts add up, failed-then-passed is flaky with its failure kept."""
    first = {
        "results": [
            result("s", "flaky_here", "FAILED", message="boom"),
            result("s", "flaky_here", "SUCCESS"),
            result("s", "flaky_later", "ERROR", message="setup broke"),
            result("s", "fails_twice", "FAILED", message="one"),
        ]
    }
    assert api.post(build_path, json=first).status_code == 200
    second = {
        "results": [
            result("s", "flaky_later", "SUCCESS"),
            result("s", "fails_twice", "FAILED", message="two"),
        ]
    }
    response = api.post(build_path, json=second)
    assert response.status_code == 200, response.text
    assert response.get_json()["cases"]["merged"] == 2
    assert stored_cases(app) == {
        ("s", "flaky_here"): ("SUCCESS", 2, True, "boom"),
        ("s", "flaky_later"): ("SUCCESS", 2, True, "setup broke"),
        ("s", "fails_twice"): ("FAILED", 2, False, "two"),
    }
    assert build_counters(app) == {
        "suites_total": 1,
        "cases_total": 3,
        "passed": 2,
        "failed": 1,
        "errored": 0,
        "skipped": 0,
        "flaky": 2,
    }


def test_a_rerun_among_new_cases_undoes_the_first_attempt(api, app, build_path):
    """On MySQL the rows go in as new first; one stored name undoes that, and each case is stored once."""
    first = {"results": [result("s", "old", "FAILED", message="x")]}
    assert api.post(build_path, json=first).status_code == 200
    second = {
        "results": [
            result("s", "new_one", "SUCCESS"),
            result("s", "old", "SUCCESS"),
            result("s", "new_two", "SKIPPED"),
            result("t", "elsewhere", "ERROR", message="y"),
        ]
    }
    response = api.post(build_path, json=second)
    assert response.status_code == 200, response.text
    assert response.get_json()["cases"] == {
        "total": 4,
        "SUCCESS": 2,
        "FAILED": 0,
        "ERROR": 1,
        "SKIPPED": 1,
        "flaky": 1,
        "merged": 1,
    }
    assert stored_cases(app) == {
        ("s", "old"): ("SUCCESS", 2, True, "x"),
        ("s", "new_one"): ("SUCCESS", 1, False, None),
        ("s", "new_two"): ("SKIPPED", 1, False, None),
        ("t", "elsewhere"): ("ERROR", 1, False, "y"),
    }
    assert build_counters(app) == {
        "suites_total": 2,
        "cases_total": 4,
        "passed": 2,
        "failed": 0,
        "errored": 1,
        "skipped": 1,
        "flaky": 1,
    }


def test_idempotent_replay_stores_nothing(api, app, build_path):
    """The same batch sent again with its key gets the first reply and adds nothing."""
    body = {"results": [result("s", f"t{index}", "SUCCESS") for index in range(5)]}
    headers = {"Idempotency-Key": "batch-1"}
    first = api.post(build_path, json=body, headers=headers)
    again = api.post(build_path, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert build_counters(app)["cases_total"] == 5
    assert stored_cases(app)[("s", "t0")][1] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"results": [result("s", " ", "SUCCESS")]}, "results.0.name"),
        ({"results": [result("s", "n", "PASSED")]}, "results.0.result_status"),
        ({"results": [result("s" * 256, "n", "SUCCESS")]}, "results.0.suite"),
        ({"results": [result("s", "n" * 513, "SUCCESS")]}, "results.0.name"),
        ({"results": [result("s", "n", "SUCCESS", duration=-1)]}, "results.0.duration"),
        ({"results": [result("s", "n", "SUCCESS", started="30 Feb")]}, "results.0.started"),
        ({"results": [result("s", "n", "SUCCESS", extra=1)]}, "results.0.extra"),
        ({"results": [{"suite": "s", "name": "n"}]}, "results.0.result_status"),
        ({"results": [result("s", "n", "SUCCESS")] * 1001}, "results"),
        ({}, "results"),
    ],
)
def test_bad_batches_are_refused_whole(api, app, build_path, body, field):
    """One bad result refuses the batch with a 400 naming it; nothing is stored."""
    good = [result("s", "good", "SUCCESS")]
    if "results" in body and len(body["results"]) < 1000:
        body = {"results": good + body["results"]}
        field = field.replace("results.0.", "results.1.")
    response = api.post(build_path, json=body)
    assert response.status_code == 400, response.text
    assert field in response.get_json()["error"]["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == 0
        assert db.session.scalar(select(func.count()).select_from(TestSuite)) == 0
        assert db.session.scalar(select(func.count()).select_from(IdempotencyRecord)) == 0


def test_the_refusal_counts_the_bad_fields(api, build_path):
    """The message says how many fields are wrong, in good English for one."""
    one = api.post(build_path, json={"results": [result("s", "", "SUCCESS")]})
    two = api.post(build_path, json={"results": [result("s", "", "PASSED")]})
    assert one.get_json()["error"]["message"] == "1 field of the batch is not valid"
    assert two.get_json()["error"]["message"] == "2 fields of the batch are not valid"


def test_invalid_json_is_a_400(api, build_path):
    """A body that is not JSON is refused with the envelope, never a 500."""
    response = api.post(build_path, data=b'{"results": [', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == "the request body is not valid JSON (UTF-8)"


def test_viewer_may_not_post_and_unknown_build_is_404(app, client, token_auth, build_path):
    """Writing needs the maintainer role; a build of another instance is not found."""
    body = {"results": [result("s", "n", "SUCCESS")]}
    viewer = client.post(build_path, json=body, headers=token_auth("viewer"))
    assert viewer.status_code == 403
    maintainer = token_auth("maintainer")
    wrong = build_path.replace("/test-instance/", "/test-instance/9").replace("test-", "test_")
    assert client.post(wrong, json=body, headers=maintainer).status_code == 404
    alias = build_path.replace("test-", "test_")
    assert client.post(alias, json=body, headers=maintainer).status_code == 200
