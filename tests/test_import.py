"""JUnit XML import: counts, dialect quirks, safety limits, one transaction, exactly once."""

import gzip
import importlib.util
import io
import json
import threading
from datetime import datetime
from pathlib import Path

import pymysql
import pytest
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.conftest import basic_auth
from tests.factories import make_build
from tests.factories import make_instance
from tests.factories import make_suite
from tests.factories import make_user
from webapp import imports
from webapp import mysql_writes
from webapp import results
from webapp.domain import Status
from webapp.exceptions import Conflict
from webapp.extensions import db
from webapp.models import IdempotencyRecord
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestSuite

XML = {"Content-Type": "application/xml"}
REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuites>
  <testsuite name="api" timestamp="2026-03-01T10:00:00" time="3.5">
    <testcase classname="api" name="test_list" time="1.5"/>
    <testcase classname="api" name="test_create" time="0.5">
      <failure message="expected 201, got 500">Traceback (most recent call last):
AssertionError: expected 201, got 500</failure>
    </testcase>
    <testcase classname="api" name="test_delete" time="0.25"><skipped message="not today"/></testcase>
  </testsuite>
  <testsuite name="db" timestamp="2026-03-01T09:59:00+00:00" time="1">
    <testcase classname="db" name="test_connect" time="1"><error message="refused" type="OSError"/></testcase>
    <testcase classname="db" name="test_retry" time="0.2"><failure message="flaky"/></testcase>
    <testcase classname="db" name="test_retry" time="0.3"/>
  </testsuite>
</testsuites>
"""
NOTHING = {"test_builds": 0, "test_suites": 0, "test_cases": 0, "idempotency_records": 0}
REPORT_COUNTS = {"total": 5, "SUCCESS": 2, "FAILED": 1, "ERROR": 1, "SKIPPED": 1, "flaky": 1, "merged": 0}


CORPUS = Path(__file__).parent / "junit_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())
STATUS_FIELDS = {
    "SUCCESS": "passed",
    "FAILED": "failed",
    "ERROR": "errored",
    "SKIPPED": "skipped",
    "flaky": "flaky",
}


def load_synthetic():
    """The corpus's generator of large reports (tests/junit_corpus/synthetic.py)."""
    path = CORPUS / "synthetic.py"
    spec = importlib.util.spec_from_file_location("junit_synthetic", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def synthetic_report(suites, cases_per_suite):
    """A generated report and its expected counts per status."""
    synthetic = load_synthetic()
    out = io.BytesIO()
    synthetic.write_report(out, suites=suites, cases_per_suite=cases_per_suite, trace_lines=3)
    return out.getvalue(), synthetic.expected_counts(suites, cases_per_suite)


def count(model):
    """Rows stored in a table."""
    return db.session.scalar(select(func.count()).select_from(model))


def stored_totals():
    """How many builds, suites, cases and idempotency records are stored."""
    db.session.expire_all()
    tables = (TestBuild, TestSuite, TestCase, IdempotencyRecord)
    return {model.__tablename__: count(model) for model in tables}


def counters_match_rows(build_id):
    """Whether a build's counters equal what its case rows say."""
    db.session.expire_all()
    build = db.session.get(TestBuild, build_id)
    rows = dict(
        db.session.execute(
            select(TestCase.result_status, func.count())
            .where(TestCase.build_id == build_id)
            .group_by(TestCase.result_status)
        ).all()
    )
    flaky = db.session.scalar(select(func.count()).where(TestCase.build_id == build_id, TestCase.is_flaky))
    return (build.cases_total, build.passed, build.failed, build.errored, build.skipped, build.flaky) == (
        sum(rows.values()),
        rows.get("SUCCESS", 0),
        rows.get("FAILED", 0),
        rows.get("ERROR", 0),
        rows.get("SKIPPED", 0),
        flaky,
    )


@pytest.fixture
def instance_id(app):
    """An empty test instance."""
    with app.app_context():
        return make_instance().id


def new_build_path(instance_id, query=""):
    """The path that creates a build from a report."""
    return f"/api/test-instance/{instance_id}/import/" + (f"?{query}" if query else "")


def test_import_creates_a_build_with_counts(app, api, instance_id):
    """The reply names the new build and counts what was stored per status."""
    query = "number=42&name=nightly&branch=main&revision=abc123&ci_url=https://ci.example/42"
    response = api.post(new_build_path(instance_id, query), data=REPORT, headers=XML)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["cases"] == REPORT_COUNTS
    assert (body["suites"], body["suites_created"], body["files"]) == (2, 2, 1)
    build = body["build"]
    assert (build["number"], build["name"], build["branch"], build["revision"], build["ci_url"]) == (
        42,
        "nightly",
        "main",
        "abc123",
        "https://ci.example/42",
    )
    assert (build["cases_total"], build["passed"], build["failed"], build["errored"], build["skipped"]) == (
        5,
        2,
        1,
        1,
        1,
    )
    assert build["started"] == "2026-03-01T09:59:00.000Z"
    assert build["finished"] is not None
    with app.app_context():
        assert counters_match_rows(build["id"])
        suite = db.session.scalar(select(TestSuite).where(TestSuite.name == "api"))
        assert suite.started.isoformat() == "2026-03-01T10:00:00+00:00"
        assert (suite.finished - suite.started).total_seconds() == pytest.approx(3.5)


def test_import_keeps_messages_reruns_and_durations(app, api, instance_id):
    """Failure texts are stored; a failed-then-passed re-run is one flaky case with two attempts."""
    api.post(new_build_path(instance_id), data=REPORT, headers=XML)
    with app.app_context():
        cases = {case.name: case for case in db.session.scalars(select(TestCase))}
        assert cases["test_create"].message == "expected 201, got 500"
        assert "AssertionError" in cases["test_create"].details
        assert cases["test_connect"].message == "refused"
        assert (cases["test_retry"].result_status, cases["test_retry"].attempts) == ("SUCCESS", 2)
        assert cases["test_retry"].is_flaky
        assert cases["test_list"].duration == pytest.approx(1.5)
        assert cases["test_list"].finished is not None


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_imports_with_exact_counts(app, api, instance_id, name):
    """Every corpus report: suites, counts per status, flaky cases and attempts as worked out by hand."""
    expected = EXPECTED[name]
    response = api.post(new_build_path(instance_id), data=(CORPUS / name).read_bytes(), headers=XML)
    if "error" in expected:
        assert response.status_code == 400
        assert expected["error"] in response.get_json()["error"]["message"]
        with app.app_context():
            assert stored_totals() == NOTHING
        return
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    wanted = {field: sum(suite[field] for suite in expected["suites"]) for field in STATUS_FIELDS}
    assert {field: body["cases"][field] for field in STATUS_FIELDS} == wanted
    assert body["cases"]["total"] == sum(wanted[status] for status in STATUS_FIELDS if status != "flaky")
    with app.app_context():
        build_id = body["build"]["id"]
        suites = db.session.scalars(select(TestSuite).where(TestSuite.build_id == build_id)).all()
        stored = {
            suite.name: {field: getattr(suite, column) for field, column in STATUS_FIELDS.items()}
            for suite in suites
        }
        assert stored == {
            suite["name"]: {field: suite[field] for field in STATUS_FIELDS} for suite in expected["suites"]
        }
        attempts = db.session.scalar(select(func.sum(TestCase.attempts)).where(TestCase.build_id == build_id))
        assert attempts == sum(suite["attempts"] for suite in expected["suites"])
        assert counters_match_rows(build_id)


def test_underscore_spelling_and_automatic_number(app, api, instance_id):
    """The underscore alias works; without a number the build gets the next one."""
    first = api.post(f"/api/test_instance/{instance_id}/import/", data=REPORT, headers=XML)
    second = api.post(new_build_path(instance_id), data=REPORT, headers=XML)
    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.get_json()["build"]["number"], second.get_json()["build"]["number"]) == (1, 2)


def test_import_into_an_existing_build(app, api, instance_id):
    """Suites are added to the build; a suite already there gets the new cases."""
    with app.app_context():
        from webapp.models import TestInstance

        build = make_build(db.session.get(TestInstance, instance_id))
        build_id = build.id
    path = f"/api/test-instance/{instance_id}/test-build/{build_id}/import/"
    first = api.post(path, data=REPORT, headers=XML)
    assert first.status_code == 200 and first.get_json()["cases"]["total"] == 5
    more = b"""<testsuite name="api"><testcase classname="api" name="test_patch" time="0.1"/></testsuite>"""
    second = api.post(path.replace("test-", "test_"), data=more, headers=XML)
    body = second.get_json()
    assert (body["suites"], body["suites_created"], body["build"]["cases_total"]) == (1, 0, 6)
    with app.app_context():
        assert stored_totals()["test_suites"] == 2
        assert counters_match_rows(build_id)


def test_reuploaded_case_is_merged_as_a_retry(app, api, instance_id):
    """A case uploaded again into its build: the new result wins, attempts add, fail→pass is flaky."""
    created = api.post(new_build_path(instance_id), data=REPORT, headers=XML).get_json()
    build_id = created["build"]["id"]
    rerun = b"""<testsuite name="api"><testcase classname="api" name="test_create" time="0.7"/></testsuite>"""
    response = api.post(
        f"/api/test-instance/{instance_id}/test-build/{build_id}/import/", data=rerun, headers=XML
    )
    body = response.get_json()
    assert body["cases"] == {
        "total": 1,
        "SUCCESS": 1,
        "FAILED": 0,
        "ERROR": 0,
        "SKIPPED": 0,
        "flaky": 1,
        "merged": 1,
    }
    assert (body["build"]["failed"], body["build"]["passed"], body["build"]["flaky"]) == (0, 3, 2)
    with app.app_context():
        case = db.session.scalar(select(TestCase).where(TestCase.name == "test_create"))
        assert (case.result_status, case.attempts, case.is_flaky) == ("SUCCESS", 2, True)
        assert case.duration == pytest.approx(0.7)
        assert counters_match_rows(build_id)


def test_gzip_body_and_sniffed_gzip(app, api, instance_id):
    """Content-Encoding: gzip is decompressed, and so is a gzip body sent without the header."""
    headers = dict(XML, **{"Content-Encoding": "gzip"})
    declared = api.post(new_build_path(instance_id), data=gzip.compress(REPORT), headers=headers)
    sniffed = api.post(new_build_path(instance_id), data=gzip.compress(REPORT), headers=XML)
    assert declared.status_code == sniffed.status_code == 201
    assert declared.get_json()["cases"] == sniffed.get_json()["cases"] == REPORT_COUNTS


def test_multipart_with_several_files(app, api, instance_id):
    """Every file of a form is imported into the same build, compressed ones too."""
    other = REPORT.replace(b'name="api"', b'name="web"').replace(b'name="db"', b'name="ui"')
    data = {
        "report": (io.BytesIO(REPORT), "TEST-one.xml"),
        "more": (io.BytesIO(gzip.compress(other)), "TEST-two.xml.gz"),
    }
    response = api.post(new_build_path(instance_id), data=data, content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert (body["files"], body["suites"], body["cases"]["total"]) == (2, 4, 10)
    assert body["build"]["cases_total"] == 10


def test_multipart_without_files(app, api, instance_id):
    """A form with no file is a 400 and creates no build."""
    response = api.post(new_build_path(instance_id), data={"note": "x"}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"file": "attach one or more reports"}
    with app.app_context():
        assert stored_totals()["test_builds"] == 0


def test_large_report_in_batches(app, api, instance_id):
    """3 suites x 1,500 cases cross the 1,000-row batches; every count is exact."""
    body, expected = synthetic_report(3, 1500)
    response = api.post(
        new_build_path(instance_id),
        data=gzip.compress(body),
        headers=dict(XML, **{"Content-Encoding": "gzip"}),
    )
    assert response.status_code == 201
    counts = response.get_json()["cases"]
    assert {status: counts[status] for status in expected} == expected
    assert counts["total"] == 4500
    with app.app_context():
        assert stored_totals()["test_cases"] == 4500
        assert counters_match_rows(response.get_json()["build"]["id"])


def test_long_names_are_shortened_stably(app, api, instance_id):
    """Names longer than their columns keep their head, stay distinct and are the same every time."""
    suite, case_a, case_b = "S" * 300, "c" * 600 + "a", "c" * 600 + "b"
    report = (
        f'<testsuite name="{suite}"><testcase classname="{suite}" name="{case_a}"/>'
        f'<testcase classname="{suite}" name="{case_b}"/></testsuite>'
    ).encode()
    first = api.post(new_build_path(instance_id), data=report, headers=XML)
    second = api.post(new_build_path(instance_id), data=report, headers=XML)
    assert first.status_code == second.status_code == 201
    with app.app_context():
        names = db.session.execute(
            select(TestSuite.name, TestCase.name, TestCase.test_key).join(
                TestSuite, TestSuite.id == TestCase.suite_id
            )
        ).all()
        assert {len(s) for s, _, _ in names} == {255} and {len(c) for _, c, _ in names} == {512}
        assert len({key for _, _, key in names}) == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<testsuites><testsuite name='a'><testcase name='x'></testsuite>", "line 1, column"),
        (b"<testsuites>\n<testsuite name='a'>\n<testcase name='x'/>\n</testsuites>", "line 4, column"),
        (b"", "empty"),
        (b"<html><body>not a report</body></html>", "not a JUnit report"),
        (b"\x00\x01\x02 binary", "line 1, column"),
    ],
)
def test_malformed_xml_is_a_400_naming_the_place(app, api, instance_id, body, expected):
    """Invalid XML: 400 with line and column, and nothing stored."""
    response = api.post(new_build_path(instance_id), data=body, headers=XML)
    assert response.status_code == 400
    assert expected in response.get_json()["error"]["message"]
    with app.app_context():
        assert stored_totals() == NOTHING


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<testsuites><testsuite name="&lol3;"><testcase name="x"/></testsuite></testsuites>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<testsuite name="s"><testcase name="x"><failure message="&xxe;"/></testcase></testsuite>"""
EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE testsuite SYSTEM "http://127.0.0.1:9/evil.dtd">
<testsuite name="s"><testcase name="x"/></testsuite>"""


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, EXTERNAL_DTD], ids=["bomb", "xxe", "dtd"])
def test_entity_bombs_and_xxe_are_refused(app, api, instance_id, body):
    """Any DTD is refused with a 400 before an entity is expanded or a file read."""
    response = api.post(new_build_path(instance_id), data=body, headers=XML)
    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert "DOCTYPE" in message and "root:" not in message
    with app.app_context():
        assert stored_totals()["test_builds"] == 0


def test_oversized_body_is_a_413(app, api, instance_id):
    """Above MAX_CONTENT_LENGTH: 413 in JSON, nothing stored."""
    app.config["MAX_CONTENT_LENGTH"] = 1000
    body, _ = synthetic_report(1, 100)
    response = api.post(new_build_path(instance_id), data=body, headers=XML)
    assert response.status_code == 413
    assert response.get_json()["error"]["status"] == 413
    with app.app_context():
        assert stored_totals()["test_builds"] == 0


def test_gzip_bomb_is_a_413_while_streaming(app, api, instance_id):
    """50 MB of whitespace squeezed into 50 KB stops at the decompressed limit."""
    app.config["MAX_REPORT_BYTES"] = 5 * 1024 * 1024
    bomb = gzip.compress(b"<testsuites>" + b" " * (50 * 1024 * 1024) + b"</testsuites>", compresslevel=9)
    assert len(bomb) < 100 * 1024
    response = api.post(
        new_build_path(instance_id), data=bomb, headers=dict(XML, **{"Content-Encoding": "gzip"})
    )
    assert response.status_code == 413
    assert "decompressed" in response.get_json()["error"]["message"]
    with app.app_context():
        assert stored_totals()["test_builds"] == 0


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}, 400),
        (REPORT[:200], {"Content-Encoding": "gzip"}, 400),
        (REPORT, {"Content-Encoding": "br"}, 415),
    ],
    ids=["corrupt-gzip", "not-gzip", "brotli"],
)
def test_bad_encodings(app, api, instance_id, body, headers, status):
    """A corrupt or undeclared compression is refused cleanly."""
    response = api.post(new_build_path(instance_id), data=body, headers=dict(XML, **headers))
    assert response.status_code == status
    assert response.get_json()["error"]["status"] == status


def test_failure_late_in_a_big_report_stores_nothing(app, api, instance_id):
    """Batches already inserted are rolled back when the report turns out broken."""
    body, _ = synthetic_report(2, 1500)
    broken = body.replace(b"</testsuites>", b"<testsuite name='tail'><testcase name='x'></testsuites>")
    response = api.post(new_build_path(instance_id, "number=9"), data=broken, headers=XML)
    assert response.status_code == 400
    assert "line" in response.get_json()["error"]["message"]
    with app.app_context():
        assert stored_totals() == NOTHING


def test_failure_into_an_existing_build_leaves_it_unchanged(app, api, instance_id):
    """A broken report sent to an existing build changes neither its cases nor its counters."""
    created = api.post(new_build_path(instance_id), data=REPORT, headers=XML).get_json()["build"]
    body, _ = synthetic_report(2, 1200)
    path = f"/api/test-instance/{instance_id}/test-build/{created['id']}/import/"
    response = api.post(path, data=body[:-40], headers=XML)
    assert response.status_code == 400
    after = api.get(f"/api/test-instance/{instance_id}/test-build/{created['id']}/").get_json()
    assert (after["cases_total"], after["suites_total"]) == (5, 2)
    with app.app_context():
        assert stored_totals()["test_cases"] == 5


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("number=abc", "number"),
        ("number=0", "number"),
        ("colour=red", "colour"),
        ("name=" + "n" * 300, "name"),
    ],
)
def test_bad_query_parameters(app, api, instance_id, query, field):
    """Build fields in the query are checked like the JSON API's: 400 naming the field."""
    response = api.post(new_build_path(instance_id, query), data=REPORT, headers=XML)
    assert response.status_code == 400
    assert field in response.get_json()["error"]["fields"]


def test_taken_build_number_is_a_409(app, api, instance_id):
    """A number already used: 409 with the existing build, and the report is not stored."""
    api.post(new_build_path(instance_id, "number=3"), data=REPORT, headers=XML)
    response = api.post(new_build_path(instance_id, "number=3"), data=REPORT, headers=XML)
    assert response.status_code == 409
    assert response.get_json()["error"]["existing"]["number"] == 3
    with app.app_context():
        assert stored_totals()["test_cases"] == 5


def test_unknown_instance_and_build(app, api, instance_id):
    """Imports into things that do not exist are 404s."""
    assert api.post(new_build_path(instance_id + 1000), data=REPORT, headers=XML).status_code == 404
    path = f"/api/test-instance/{instance_id}/test-build/999999/import/"
    assert api.post(path, data=REPORT, headers=XML).status_code == 404


def test_roles(app, client, instance_id):
    """Viewers may not import; anonymous callers are asked to log in."""
    with app.app_context():
        make_user("viewer", role="viewer", password="pw-viewer-1")
    anonymous = client.post(new_build_path(instance_id), data=REPORT, headers=XML)
    viewer = client.post(
        new_build_path(instance_id), data=REPORT, headers=dict(XML, **basic_auth("viewer", "pw-viewer-1"))
    )
    assert (anonymous.status_code, viewer.status_code) == (401, 403)


def test_same_idempotency_key_replays_the_first_reply(app, api, instance_id):
    """A re-post with the same key stores nothing new and gets the first reply back."""
    headers = dict(XML, **{"Idempotency-Key": "ci-run-77"})
    first = api.post(new_build_path(instance_id, "branch=main"), data=REPORT, headers=headers)
    again = api.post(new_build_path(instance_id, "branch=main"), data=REPORT, headers=headers)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    with app.app_context():
        assert stored_totals() == {
            "test_builds": 1,
            "test_suites": 2,
            "test_cases": 5,
            "idempotency_records": 1,
        }


def test_idempotency_key_into_an_existing_build(app, api, instance_id):
    """Adding to a build with a key twice adds the cases once."""
    build_id = api.post(new_build_path(instance_id), data=REPORT, headers=XML).get_json()["build"]["id"]
    other = REPORT.replace(b'name="api"', b'name="web"').replace(b'name="db"', b'name="ui"')
    path = f"/api/test-instance/{instance_id}/test-build/{build_id}/import/"
    headers = dict(XML, **{"Idempotency-Key": "shard-2"})
    replies = [api.post(path, data=other, headers=headers) for _ in range(3)]
    assert [reply.status_code for reply in replies] == [200, 200, 200]
    assert replies[2].get_json()["build"]["cases_total"] == 10
    with app.app_context():
        assert stored_totals()["test_cases"] == 10


def test_idempotency_key_for_another_request_is_a_409(app, api, instance_id):
    """The same key with other query parameters is a client bug: 409, nothing stored."""
    headers = dict(XML, **{"Idempotency-Key": "k"})
    api.post(new_build_path(instance_id, "number=1"), data=REPORT, headers=headers)
    response = api.post(new_build_path(instance_id, "number=2"), data=REPORT, headers=headers)
    assert response.status_code == 409
    with app.app_context():
        assert stored_totals()["test_builds"] == 1


def test_failed_import_does_not_burn_its_key(app, api, instance_id):
    """A refused report stores no key, so the corrected retry with the same key is imported."""
    headers = dict(XML, **{"Idempotency-Key": "retry-me"})
    broken = api.post(new_build_path(instance_id), data=REPORT[:-30], headers=headers)
    fixed = api.post(new_build_path(instance_id), data=REPORT, headers=headers)
    assert (broken.status_code, fixed.status_code) == (400, 201)
    assert "Idempotent-Replayed" not in fixed.headers


def test_keys_belong_to_their_user(app, api, client, instance_id):
    """Another user's request with the same key is a request of its own."""
    with app.app_context():
        make_user("other-ci", role="maintainer", password="pw-other-1")
    headers = dict(XML, **{"Idempotency-Key": "shared"})
    api.post(new_build_path(instance_id), data=REPORT, headers=headers)
    theirs = client.post(
        new_build_path(instance_id),
        data=REPORT,
        headers=dict(headers, **basic_auth("other-ci", "pw-other-1")),
    )
    assert theirs.status_code == 201 and "Idempotent-Replayed" not in theirs.headers
    with app.app_context():
        assert stored_totals()["test_builds"] == 2


def test_too_long_idempotency_key(app, api, instance_id):
    """Keys are at most 255 characters."""
    response = api.post(
        new_build_path(instance_id), data=REPORT, headers=dict(XML, **{"Idempotency-Key": "k" * 256})
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in response.get_json()["error"]["fields"]


def test_concurrent_posts_with_one_key_store_once(mysql_app):
    """Two uploads racing with the same key: one imports, the other waits and replays its reply."""
    with mysql_app.app_context():
        make_user("racer", role="maintainer", password="pw-racer-1")
        instance_id = make_instance().id
    body, _ = synthetic_report(2, 2000)
    headers = dict(XML, **basic_auth("racer", "pw-racer-1"), **{"Idempotency-Key": "race"})
    barrier = threading.Barrier(2)
    replies = []

    def post():
        client = mysql_app.test_client()
        barrier.wait()
        replies.append(client.post(new_build_path(instance_id), data=body, headers=headers))

    threads = [threading.Thread(target=post) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(reply.status_code for reply in replies) == [201, 201]
    assert replies[0].get_json() == replies[1].get_json()
    assert sorted(reply.headers.get("Idempotent-Replayed", "no") for reply in replies) == ["no", "true"]
    with mysql_app.app_context():
        assert stored_totals() == {
            "test_builds": 1,
            "test_suites": 2,
            "test_cases": 4000,
            "idempotency_records": 1,
        }


def test_parallel_shards_into_one_build(mysql_app):
    """Four shards uploading into the same build at once, one suite name shared: all stored, counts exact."""
    with mysql_app.app_context():
        make_user("shards", role="maintainer", password="pw-shards-1")
        instance = make_instance()
        build_id = make_build(instance).id
        instance_id = instance.id
    headers = dict(XML, **basic_auth("shards", "pw-shards-1"))
    path = f"/api/test-instance/{instance_id}/test-build/{build_id}/import/"
    reports = [
        (
            '<testsuites><testsuite name="shared">'
            + "".join(f'<testcase classname="shared" name="s{shard}_{i}"/>' for i in range(300))
            + f'</testsuite><testsuite name="own{shard}">'
            + "".join(
                f'<testcase classname="own{shard}" name="c{i}"><failure message="x"/></testcase>'
                for i in range(200)
            )
            + "</testsuite></testsuites>"
        ).encode()
        for shard in range(4)
    ]
    barrier = threading.Barrier(len(reports))
    statuses = []

    def post(report):
        client = mysql_app.test_client()
        barrier.wait()
        statuses.append(client.post(path, data=report, headers=headers).status_code)

    threads = [threading.Thread(target=post, args=(report,)) for report in reports]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 4
    with mysql_app.app_context():
        assert stored_totals()["test_cases"] == 2000
        assert stored_totals()["test_suites"] == 5
        assert counters_match_rows(build_id)
        build = db.session.get(TestBuild, build_id)
        assert (build.suites_total, build.passed, build.failed) == (5, 1200, 800)


def test_names_differing_in_case_or_accents_are_different_tests(app, api, instance_id):
    """ "testA"/"testa", "café"/"cafe" and suites "Suite"/"suite" are distinct on both databases."""
    body = (
        '<testsuites><testsuite name="Suite"><testcase classname="Suite" name="testA"/>'
        '<testcase classname="Suite" name="testa"/><testcase classname="Suite" name="café"/>'
        '<testcase classname="Suite" name="cafe"/></testsuite>'
        '<testsuite name="suite"><testcase classname="suite" name="testA"/></testsuite></testsuites>'
    )
    response = api.post(new_build_path(instance_id), data=body.encode(), headers=XML)
    assert response.status_code == 201, response.get_json()
    assert (response.get_json()["suites"], response.get_json()["cases"]["total"]) == (2, 5)
    with app.app_context():
        names = sorted(db.session.scalars(select(TestCase.name)))
        assert names == sorted(["testA", "testa", "café", "cafe", "testA"])


def test_insert_pipe_raises_the_helper_threads_error(mysql_app):
    """A batch failing in the helper thread is raised by drain() as SQLAlchemy's error; rollback is clean."""
    with mysql_app.app_context():
        suite = make_suite(make_build(make_instance()))
        pipe = imports.InsertPipe()
        results.add_cases(suite, suite.build, [{"name": "ok", "result_status": "SUCCESS"}], pipe)
        results.add_cases(suite, suite.build, [{"name": "twin"}, {"name": "twin"}], pipe)
        with pytest.raises(IntegrityError):
            pipe.drain()
        db.session.rollback()
        assert stored_totals()["test_cases"] == 0
        assert counters_match_rows(suite.build_id)


def foreign_key_checks():
    """The session connection's foreign_key_checks setting."""
    return db.session.execute(text("SELECT @@SESSION.foreign_key_checks")).scalar()


def test_an_unchecked_insert_turns_the_checks_back_on_even_when_it_fails(mysql_app):
    """A batch's rows go in with foreign-key checks off; the pooled connection never keeps them off."""
    with mysql_app.app_context():
        suite = make_suite(make_build(make_instance()))
        pipe = imports.InsertPipe(threaded=False, unchecked=True)
        results.add_cases(suite, suite.build, [{"name": "ok", "result_status": "SUCCESS"}], pipe)
        assert foreign_key_checks() == 1
        with pytest.raises(IntegrityError):
            results.add_cases(suite, suite.build, [{"name": "twin"}, {"name": "twin"}], pipe)
        assert foreign_key_checks() == 1
        db.session.rollback()
        assert foreign_key_checks() == 1


def test_unchecked_rows_into_a_suite_deleted_meanwhile_fail_the_write(mysql_app):
    """Without the checks the counters' UPDATE finds the parents: a suite gone refuses the rows."""
    with mysql_app.app_context():
        suite = make_suite(make_build(make_instance()))
        db.session.commit()
        build, suite_id = suite.build, suite.id
        with db.engine.begin() as elsewhere:
            elsewhere.execute(delete(TestSuite).where(TestSuite.id == suite_id))
        pipe = imports.InsertPipe(threaded=False, unchecked=True)
        with pytest.raises(Conflict, match="deleted"):
            results.add_cases(suite, build, [{"name": "orphan", "result_status": "FAILED"}], pipe)
        db.session.rollback()
        assert stored_totals()["test_cases"] == 0
        assert db.session.get(TestBuild, build.id).cases_total == 0


TRICKY_VALUES = [
    "plain",
    "",
    "quote ' double \" backslash \\ end\\",
    "nul \0 ctrl-z \x1a cr \r lf \n tab \t",
    "already escaped \\n and \\'",
    "Жук 日本語 ✓ 😀 عربى",
    "%s %(name)s %%",
    None,
    0,
    -7,
    2**40,
    True,
    False,
    0.0,
    1e-7,
    123456.789,
    -2.5e300,
    datetime(2026, 12, 5, 1, 2, 3, 456789),
    Status.FAILED,
]


def test_row_literals_write_what_pymysql_writes(mysql_app):
    """The import's own literals are PyMySQL's text, value for value, for every type a case row holds."""
    with mysql_app.app_context():
        dbapi_connection = db.session.connection().connection.dbapi_connection
        cursor = dbapi_connection.cursor()
        literals = mysql_writes.RowLiterals(dbapi_connection)
        template = "(" + ",".join(["%s"] * len(TRICKY_VALUES)) + ",5)"
        assert literals.row(template, TRICKY_VALUES) == cursor.mogrify(template, TRICKY_VALUES)
        with pytest.raises(pymysql.ProgrammingError):
            literals.literal(float("inf"))


def test_imported_texts_come_back_exactly_as_sent(mysql_app):
    """Texts with every character PyMySQL escapes are stored unchanged by a batch's multi-row INSERT."""
    texts = [value for value in TRICKY_VALUES if isinstance(value, str) and value]
    with mysql_app.app_context():
        suite = make_suite(make_build(make_instance()))
        cases = [
            {"name": f"case {index}", "result_status": "FAILED", "message": text, "details": text}
            for index, text in enumerate(texts)
        ]
        results.add_cases(suite, suite.build, cases, imports.InsertPipe(threaded=False, unchecked=True))
        db.session.commit()
        stored = db.session.execute(select(TestCase.name, TestCase.message, TestCase.details)).all()
        assert sorted(stored) == sorted((f"case {index}", text, text) for index, text in enumerate(texts))
