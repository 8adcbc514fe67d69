"""A whole test run recorded through the API and read back, as a CI job does it.

Also: times in and out, idempotent starts, lifecycle conflicts, counters kept
exact by edits and deletes, pagination links, search, and ``flask demo-data``.
"""

import re
from datetime import datetime
from datetime import timezone

import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.conftest import make_token_user
from tests.factories import make_build
from tests.factories import make_instance
from tests.factories import make_run
from tests.factories import make_suite
from webapp import results
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import User

ISO_MS_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
TIME_FIELDS = ("started", "finished", "created")


class Recorder:
    """Talks to the API as a CI job: posts JSON, asserts the status, returns the body."""

    def __init__(self, client, headers):
        self.client = client
        self.headers = headers

    def call(self, method, path, status, json=None):
        """Send one request and check its status; return the JSON body."""
        response = self.client.open(path, method=method, json=json, headers=self.headers)
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()

    def post(self, path, json=None, status=200):
        """POST and check."""
        return self.call("POST", path, status, json)

    def get(self, path, status=200):
        """GET and check."""
        return self.call("GET", path, status)


@pytest.fixture
def ci(client, token_auth):
    """A recorder with a maintainer's token, the CI role."""
    return Recorder(client, token_auth("maintainer"))


def assert_times_are_iso_ms_utc(item):
    """Every time field of an item is null or ISO 8601 UTC with milliseconds and a Z."""
    for field in TIME_FIELDS:
        if item.get(field) is not None:
            assert ISO_MS_Z.fullmatch(item[field]), (field, item[field])


def test_full_run_is_recorded_and_counted(ci):
    """instance → build → suite → cases started and finished (stop/ too) → counters read back."""
    instance = ci.post("/api/test-instance/", {"name": "checkout", "description": "shop"}, 201)
    base = f"/api/test-instance/{instance['id']}/test-build/"
    build = ci.post(base, {"branch": "main", "revision": "0a1b2c", "ci_url": "https://ci/1"}, 201)
    assert build["number"] == 1
    assert ci.post(base, {}, 201)["number"] == 2
    build_url = f"{base}{build['id']}/"
    assert ci.post(build_url + "start/", {"started": 1640371087})["started"] == "2021-12-24T18:38:07.000Z"
    suite = ci.post(build_url + "test-suite/", {"name": "api"}, 201)
    suite_url = f"{build_url}test-suite/{suite['id']}/"
    assert ci.post(suite_url + "start/", {"time": "2021-12-24T18:40:00.5+00:00"})["started"] == (
        "2021-12-24T18:40:00.500Z"
    )
    outcomes = [
        ("finish/", {"result_status": "SUCCESS", "duration": 1.5}),
        (
            "finish/",
            {
                "result_status": "FAILED",
                "duration": 2.0,
                "message": "assert 1 == 2",
                "details": "Traceback …\nAssertionError",
            },
        ),
        ("stop/", {"result_status": "ERROR", "duration": 0.25, "message": "boom"}),
        ("stop/", {"result_status": "SKIPPED", "duration": 0}),
    ]
    for index, (action, body) in enumerate(outcomes):
        case = ci.post(suite_url + "test-case/", {"name": f"test_{index}"}, 201)
        case_url = f"{suite_url}test-case/{case['id']}/"
        assert ci.post(case_url + "start/")["started"] is not None
        finished = ci.post(case_url + action, body)
        assert finished["result_status"] == body["result_status"]
        assert finished["duration"] == body["duration"]
        assert finished["message"] == body.get("message")
        assert_times_are_iso_ms_utc(finished)
    done = {"name": "already done", "result_status": "SUCCESS", "duration": 4}
    ci.post(suite_url + "test-case/", done, 201)
    ci.post(suite_url + "finish/")
    ci.post(build_url + "stop/", {"finished": 1640371999.25})
    expected = {
        "cases_total": 5,
        "passed": 2,
        "failed": 1,
        "errored": 1,
        "skipped": 1,
        "flaky": 0,
        "cases_duration": 7.75,
        "pass_rate": 0.5,
        "status": "ERROR",
    }
    for path in (build_url, suite_url):
        item = ci.get(path)
        assert {key: item[key] for key in expected} == expected
        assert item["finished"] is not None
        assert_times_are_iso_ms_utc(item)
    assert ci.get(build_url)["finished"] == "2021-12-24T18:53:19.250Z"
    assert ci.get(build_url)["suites_total"] == 1
    listed = ci.get(suite_url + "test-case/")
    assert listed["count"] == 5
    assert [case["name"] for case in listed["results"]] == [f"test_{n}" for n in range(4)] + ["already done"]
    assert ci.get(base)["results"][0]["passed"] == 2


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2021-12-24T18:58:07.123Z", "2021-12-24T18:58:07.123Z"),
        ("2021-12-24T21:58:07.123+03:00", "2021-12-24T18:58:07.123Z"),
        ("2021-12-24T18:58:07", "2021-12-24T18:58:07.000Z"),
        ("2021-12-24 18:58:07.123456", "2021-12-24T18:58:07.123Z"),
        (1640372287, "2021-12-24T18:58:07.000Z"),
        (1640372287.123, "2021-12-24T18:58:07.123Z"),
        (0, "1970-01-01T00:00:00.000Z"),
    ],
)
def test_times_are_accepted_as_iso_or_epoch_and_given_back_as_utc_ms(app, ci, sent, stored):
    """ISO strings (any offset) and Unix seconds (int or float) come back as UTC ISO with ms and Z."""
    with app.app_context():
        build = make_build(make_instance())
        url = f"/api/test-instance/{build.instance_id}/test-build/{build.id}/"
    assert ci.post(url + "start/", {"started": sent})["started"] == stored
    assert ci.get(url)["started"] == stored


@pytest.fixture
def case_url(app):
    """The URL of an unfinished case in a fresh suite."""
    with app.app_context():
        suite = make_suite(make_build(make_instance()), "suite")
        build = suite.build
        build_url = f"/api/test-instance/{build.instance_id}/test-build/{build.id}/"
        return f"{build_url}test-suite/{suite.id}/test-case/"


def test_start_twice_keeps_the_first_time(ci, case_url):
    """A retried start answers the same start time instead of moving it."""
    case = ci.post(case_url, {"name": "retried"}, 201)
    url = f"{case_url}{case['id']}/start/"
    first = ci.post(url, {"started": "2022-01-01T00:00:00Z"})
    again = ci.post(url, {"started": "2022-01-01T00:05:00Z"})
    assert first["started"] == again["started"] == "2022-01-01T00:00:00.000Z"


def test_duration_is_measured_from_start_when_not_given(ci, case_url):
    """Without a duration, a case lasts from its start to its finish."""
    case = ci.post(case_url, {"name": "timed"}, 201)
    url = f"{case_url}{case['id']}/"
    ci.post(url + "start/", {"started": 1700000000})
    finished = ci.post(url + "finish/", {"result_status": "SUCCESS", "finished": 1700000002.5})
    assert finished["duration"] == 2.5


def test_edits_and_deletes_keep_counters_exact(app, ci, case_url):
    """Changing a status, clearing it, deleting a case and a suite all move the counters."""
    suite_url = case_url.removesuffix("test-case/")
    build_url = suite_url.rsplit("test-suite/", 1)[0]
    a = ci.post(case_url, {"name": "a", "result_status": "FAILED", "duration": 1}, 201)
    b = ci.post(case_url, {"name": "b", "result_status": "SUCCESS", "duration": 2}, 201)
    ci.post(case_url, {"name": "c"}, 201)
    ci.call("PATCH", f"{case_url}{a['id']}/", 200, {"result_status": "SUCCESS"})
    counts = ci.get(build_url)
    assert (counts["cases_total"], counts["passed"], counts["failed"]) == (3, 2, 0)
    assert counts["cases_duration"] == 3
    cleared = ci.call("PATCH", f"{case_url}{b['id']}/", 200, {"result_status": None})
    assert cleared["finished"] is None
    assert ci.get(suite_url)["passed"] == 1
    ci.post(f"{case_url}{b['id']}/finish/", {"result_status": "ERROR", "duration": 5})
    assert (ci.get(build_url)["errored"], ci.get(build_url)["cases_duration"]) == (1, 6)
    admin = Recorder(ci.client, make_token_user(app, "admin"))
    admin.call("DELETE", f"{case_url}{a['id']}/", 204)
    counts = ci.get(build_url)
    assert (counts["cases_total"], counts["passed"], counts["errored"]) == (2, 0, 1)
    assert counts["cases_duration"] == 5
    admin.call("DELETE", suite_url, 204)
    counts = ci.get(build_url)
    assert (counts["suites_total"], counts["cases_total"], counts["errored"], counts["cases_duration"]) == (
        0,
        0,
        0,
        0,
    )


def test_list_pages_link_to_each_other(app, ci):
    """limit/offset pages carry next and previous URLs that keep the other parameters."""
    with app.app_context():
        for number in range(5):
            make_instance(f"product {number}")
    first = ci.get("/api/test-instance/?limit=2&search=product")
    assert first["count"] == 5
    assert first["previous"] is None
    assert [item["name"] for item in first["results"]] == ["product 0", "product 1"]
    second = ci.get(first["next"].removeprefix("http://localhost"))
    assert [item["name"] for item in second["results"]] == ["product 2", "product 3"]
    assert "search=product" in second["next"]
    last = ci.get(second["next"].removeprefix("http://localhost"))
    assert [item["name"] for item in last["results"]] == ["product 4"]
    assert last["next"] is None
    back = ci.get(last["previous"].removeprefix("http://localhost"))
    assert back["results"] == second["results"]
    beyond = ci.get("/api/test-instance/?offset=50")
    assert (beyond["count"], beyond["results"], beyond["next"]) == (5, [], None)
    assert ci.get("/api/test-instance/?limit=1000")["count"] == 5


def test_default_limit_is_50(app, ci):
    """Without a limit a page holds 50 items."""
    with app.app_context():
        suite = make_suite(make_build(make_instance()), "big")
        results.add_cases(suite, suite.build, [{"name": f"case {n:03d}"} for n in range(60)])
        db.session.commit()
        build = suite.build
        url = f"/api/test-instance/{build.instance_id}/test-build/{build.id}/test-suite/{suite.id}/"
    page = ci.get(url + "test-case/")
    assert (page["count"], len(page["results"])) == (60, 50)
    assert "offset=50" in page["next"]


def test_search_is_a_case_insensitive_substring(app, ci):
    """search matches any part of the name in any case; % and _ are literal."""
    with app.app_context():
        for name in ("Checkout API", "checkout-ui", "Billing", "100% done", "under_score"):
            make_instance(name)
    names = lambda term: [item["name"] for item in ci.get(f"/api/test-instance/?search={term}")["results"]]  # noqa: E731
    assert names("CHECKOUT") == ["Checkout API", "checkout-ui"]
    assert names("out") == ["Checkout API", "checkout-ui"]
    assert names("%25") == ["100% done"]
    assert names("_") == ["under_score"]
    assert names("nothing") == []


def test_builds_are_found_by_name_or_number(app, ci):
    """A build list's search matches names as substrings and numbers exactly."""
    with app.app_context():
        instance = make_instance()
        for number in (1, 2, 12):
            make_build(instance, number=number, name=f"Nightly {number}")
        make_build(instance, number=3, name="release candidate")
        url = f"/api/test-instance/{instance.id}/test-build/"
    numbers = lambda term: [item["number"] for item in ci.get(f"{url}?search={term}")["results"]]  # noqa: E731
    assert numbers("nightly") == [1, 2, 12]
    assert numbers("12") == [12]
    assert numbers("3") == [3]
    assert numbers("CANDIDATE") == [3]


def test_suites_and_cases_are_searchable(app, ci):
    """Suites and cases lists take search too."""
    with app.app_context():
        build = make_run(
            make_instance(),
            {"Unit": {"test_Login": "SUCCESS", "test_logout": "FAILED"}, "e2e": {"test_cart": "SUCCESS"}},
        )
        suite = db.session.scalar(select(TestSuite).where(TestSuite.name == "Unit"))
        url = f"/api/test-instance/{build.instance_id}/test-build/{build.id}/test-suite/"
    assert [item["name"] for item in ci.get(f"{url}?search=UNI")["results"]] == ["Unit"]
    found = ci.get(f"{url}{suite.id}/test-case/?search=LOG")
    assert found["count"] == 2
    assert [item["result_status"] for item in found["results"]] == ["SUCCESS", "FAILED"]


def test_bootstrap_creates_the_admin_and_says_it_loaded_demo_data_once(app):
    """flask bootstrap on an empty database: an admin whose password is printed once, and the demo data."""
    with app.app_context():
        first = app.test_cli_runner().invoke(args=["bootstrap"])
        assert first.exit_code == 0, first.output
        password = re.search(r"Created user 'admin' with password: (\S+)", first.output).group(1)
        assert db.session.scalar(select(User).where(User.username == "admin")).check_password(password)
        assert re.search(r"Loaded demo data to look around: 3 instances, 90 builds, \d+ cases", first.output)
        again = app.test_cli_runner().invoke(args=["bootstrap"])
        assert again.output == "users exist already; nothing to bootstrap\n"


def test_demo_data_counters_match_the_case_rows(app):
    """flask demo-data: 3 instances, 30 builds each, suites with cases of every status, exact counters."""
    # the flask command pushes an app context for every command; the test runner does not
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["demo-data"])
        assert result.exit_code == 0, result.output
        assert "loaded 3 instances, 90 builds" in result.output
        assert db.session.scalar(select(func.count()).select_from(TestInstance)) == 3
        per_instance = db.session.execute(
            select(TestBuild.instance_id, func.count()).group_by(TestBuild.instance_id)
        ).all()
        assert sorted(count for _, count in per_instance) == [30, 30, 30]
        rows = (
            select(
                TestCase.build_id.label("build_id"),
                func.count().label("total"),
                *[
                    func.sum((TestCase.result_status == status).cast(db.Integer)).label(status)
                    for status in ("SUCCESS", "FAILED", "ERROR", "SKIPPED")
                ],
                func.sum(TestCase.is_flaky.cast(db.Integer)).label("flaky"),
            )
            .group_by(TestCase.build_id)
            .subquery()
        )
        mismatches = db.session.execute(
            select(TestBuild.id)
            .join(rows, rows.c.build_id == TestBuild.id)
            .where(
                (TestBuild.cases_total != rows.c.total)
                | (TestBuild.passed != rows.c.SUCCESS)
                | (TestBuild.failed != rows.c.FAILED)
                | (TestBuild.errored != rows.c.ERROR)
                | (TestBuild.skipped != rows.c.SKIPPED)
                | (TestBuild.flaky != rows.c.flaky)
            )
        ).all()
        assert mismatches == []
        totals = db.session.execute(
            select(
                func.sum(TestBuild.failed),
                func.sum(TestBuild.errored),
                func.sum(TestBuild.skipped),
                func.sum(TestBuild.flaky),
                func.min(TestBuild.cases_total),
            )
        ).one()
        assert all(total > 0 for total in totals[:4])
        assert totals[4] >= 100
        failed = select(TestCase.details).where(TestCase.result_status == "FAILED").limit(1)
        assert "Traceback" in db.session.scalar(failed)


def test_now_is_used_when_no_time_is_given(ci, case_url):
    """start/ and finish/ without a body stamp the current time."""
    before = datetime.now(timezone.utc).replace(microsecond=0)
    case = ci.post(case_url, {"name": "now"}, 201)
    started = ci.post(f"{case_url}{case['id']}/start/")["started"]
    stamped = datetime.fromisoformat(started)
    assert before <= stamped <= datetime.now(timezone.utc)
