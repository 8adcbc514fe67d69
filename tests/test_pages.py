"""The report pages through the Flask test client: every page, every role, odd input."""

import json
import re
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
import sqlalchemy as sa
from flask_login.utils import _create_identifier

from tests.conftest import settings_for
from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_run
from tests.factories import make_suite
from webapp import create_app
from webapp import errors
from webapp import results
from webapp.extensions import db
from webapp.models import TestCase
from webapp.models import TestSuite

ROLES = ("viewer", "maintainer", "admin")
STARTED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=timezone.utc)
LONG_DETAILS = "\n".join(f"  frame {i}: assert response.ok" for i in range(120))


def seed(app):
    """Three builds of one instance whose results change from build to build; return their ids."""
    with app.app_context():
        instance = make_instance("checkout", "Payment and basket API")
        first = make_run(
            instance,
            {"api": {"a": "SUCCESS", "b": "FAILED", "c": "SUCCESS"}, "ui": {"x": "SUCCESS"}},
            branch="main",
            started=STARTED,
            ci_url="https://ci.example.com/job/1",
        )
        second = make_run(
            instance,
            {"api": {"a": "FAILED", "b": "FAILED", "c": "SUCCESS"}, "ui": {"x": "ERROR"}},
            branch="release/2.4",
        )
        third = make_run(
            instance,
            {"api": {"a": "SUCCESS", "b": "FAILED", "c": "SKIPPED"}, "ui": {"x": "SUCCESS", "y": "SUCCESS"}},
            branch="main",
            ci_url="javascript:alert(1)",
        )
        suite = make_suite(third, "traces")
        long_case = make_case(suite, "long", result_status="FAILED", message="boom <b>", details=LONG_DETAILS)
        api = db.session.scalar(
            sa.select(TestSuite).where(TestSuite.build_id == third.id, TestSuite.name == "api")
        )
        case_b = db.session.scalar(
            sa.select(TestCase).where(TestCase.suite_id == api.id, TestCase.name == "b")
        )
        return {
            "instance": instance.id,
            "builds": [first.id, second.id, third.id],
            "suite": api.id,
            "case": case_b.id,
            "long_case": long_case.id,
            "traces": suite.id,
        }


@pytest.fixture
def data(app):
    """The seeded ids."""
    return seed(app)


def logged_in_client(app, user_id):
    """A client whose session claims a user, without asking the database (which may be gone)."""
    client = app.test_client()
    with app.test_request_context(environ_base=client.environ_base):
        identifier = _create_identifier()
    with client.session_transaction() as session:
        session.update({"_user_id": str(user_id), "_fresh": True, "_id": identifier})
    return client


def page_paths(ids):
    """One path of each page kind."""
    return [
        "/",
        f"/instances/{ids['instance']}",
        f"/instances/{ids['instance']}/statistics",
        f"/builds/{ids['builds'][2]}",
        f"/builds/{ids['builds'][2]}/changes",
        f"/suites/{ids['suite']}",
        f"/cases/{ids['case']}",
    ]


def chart_json(html, element_id):
    """The JSON a page embeds for its charts."""
    match = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert match, f"no {element_id} in the page"
    return json.loads(match.group(1))


def table_rows(html, table_id):
    """The rows of a table's body, as HTML strings."""
    body = re.search(rf'<table[^>]*id="{table_id}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, f"no table {table_id}"
    return re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S)


def build_numbers(html):
    """The build numbers in an instance page's builds table, in order."""
    return [re.search(r">#(\d+)</a>", row).group(1) for row in table_rows(html, "builds-table")]


def case_names(html, table_id):
    """The linked case names of a table, in order."""
    return [re.search(r'href="/cases/\d+">([^<]+)</a>', row).group(1) for row in table_rows(html, table_id)]


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_page(app, client, auth, data, role):
    """Can viewers, maintainers and admins all open every report page?"""
    auth.as_role(role)
    for path in page_paths(data):
        response = client.get(path)
        assert response.status_code == 200, path
        assert "<nav" in response.text and "Greenbar" in response.text


def test_pages_need_login(app, client, data):
    """Does an anonymous visit to any report page go to the login page, with the way back?"""
    for path in page_paths(data):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/auth/login?next=")


def test_navbar_shows_admin_link_to_admins_only(app, client, auth, data):
    """Is the admin panel offered to admins and hidden from viewers, with a logout form that posts?"""
    auth.as_role("viewer")
    page = client.get("/").text
    assert 'href="/admin/"' not in page
    assert re.search(r'<form method="post" action="/auth/logout"', page)
    assert 'href="/auth/password"' in page
    auth.logout()
    auth.as_role("admin")
    assert 'href="/admin/"' in client.get("/").text


def test_instances_list(app, client, auth, data):
    """Does the list show each instance with its description, latest build, status and sparkline?"""
    auth.as_role("viewer")
    page = client.get("/").text
    assert "Total instances: <strong>1</strong>" in page
    assert "checkout" in page and "Payment and basket API" in page
    assert f'href="/builds/{data["builds"][2]}">#3</a>' in page
    assert "gb-worst-failed" in page and "gb-fill-failed" in page
    points = re.search(r'<polyline[^>]*points="([^"]+)"', page).group(1).split()
    assert len(points) == 3


def test_instances_search(app, client, auth, data):
    """Does the search keep matching instances, say when none match, and treat % literally?"""
    auth.as_role("viewer")
    with app.app_context():
        make_instance("mobile", "iOS client")
    assert "Total instances: <strong>1</strong>" in client.get("/?q=basket").text
    page = client.get("/?q=zzz").text
    assert "No instance matches" in page
    assert "No instance matches" in client.get("/?q=%25").text


def test_instances_empty_state_says_what_to_do(client, auth):
    """With nothing stored, does the home page show how to create an instance?"""
    auth.as_role("viewer")
    page = client.get("/").text
    assert "No test instances yet." in page
    assert "/api/test-instance/" in page and "curl" in page


def test_instance_page(app, client, auth, data):
    """Does the instance page list its builds with counts and pass rates, and chart them?"""
    auth.as_role("viewer")
    page = client.get(f"/instances/{data['instance']}").text
    rows = table_rows(page, "builds-table")
    assert build_numbers(page) == ["3", "2", "1"]
    assert "release/2.4" in rows[1] and "25.0 %" in rows[1]
    chart = chart_json(page, "trend-data")
    assert chart["labels"] == ["#1", "#2", "#3"]
    assert chart["pass_rate"] == [75.0, 25.0, 60.0]
    assert chart["failed"] == [1, 2, 2] and chart["errored"] == [0, 1, 0]
    assert chart["links"][0] == f"/builds/{data['builds'][0]}"
    assert 'src="/static/vendor/chart.umd.min.js"' in page


def test_instance_branch_filter(app, client, auth, data):
    """Does the branch filter narrow both the table and the charts?"""
    auth.as_role("viewer")
    page = client.get(f"/instances/{data['instance']}?branch=release/2.4").text
    assert len(table_rows(page, "builds-table")) == 1
    assert chart_json(page, "trend-data")["labels"] == ["#2"]
    assert "No builds on branch" in client.get(f"/instances/{data['instance']}?branch=nope").text


@pytest.mark.parametrize(
    ("sort", "numbers"),
    [
        ("number", ["1", "2", "3"]),
        ("-failed", ["3", "2", "1"]),
        ("pass_rate", ["2", "3", "1"]),
        ("-errored", ["2", "3", "1"]),
        ("evil", ["3", "2", "1"]),
        ("-id;drop", ["3", "2", "1"]),
    ],
)
def test_instance_sorting_is_allow_listed(app, client, auth, data, sort, numbers):
    """Does each allow-listed column sort, and does anything else fall back to newest first?"""
    auth.as_role("viewer")
    page = client.get(f"/instances/{data['instance']}?sort={sort}").text
    assert build_numbers(page) == numbers


def test_instance_sorts_by_wall_clock_duration(app, client, auth):
    """Does the duration column sort by finish minus start on both databases?"""
    auth.as_role("viewer")
    with app.app_context():
        instance = make_instance("timed")
        for seconds in (30, 10, 20):
            make_build(instance, started=STARTED, finished=STARTED + timedelta(seconds=seconds))
        instance_id = instance.id
    page = client.get(f"/instances/{instance_id}?sort=duration").text
    assert build_numbers(page) == ["2", "3", "1"]
    assert "30.0 s" in page


def test_instance_pagination(app, client, auth):
    """Are builds paginated 25 to a page, with a Total above the table?"""
    auth.as_role("viewer")
    with app.app_context():
        instance = make_instance("many")
        for _ in range(27):
            make_build(instance)
        instance_id = instance.id
    first = client.get(f"/instances/{instance_id}").text
    assert "Total builds: <strong>27</strong>" in first
    assert len(table_rows(first, "builds-table")) == 25
    second = client.get(f"/instances/{instance_id}?page=2").text
    assert build_numbers(second) == ["2", "1"]
    assert 'aria-current="page"><span class="page-link">2</span>' in second


def test_instance_without_builds_says_how_to_post_one(app, client, auth):
    """Does an empty instance explain how to post a build?"""
    auth.as_role("viewer")
    with app.app_context():
        instance_id = make_instance("empty").id
    page = client.get(f"/instances/{instance_id}").text
    assert "No builds yet." in page
    assert f"/api/test-instance/{instance_id}/test-build/" in page


def test_instance_statistics(app, client, auth, data):
    """Do the statistics name the most failing test, the slowest and the flaky ones?"""
    auth.as_role("viewer")
    fragment = client.get(f"/instances/{data['instance']}/statistics?partial=1").text
    assert "<html" not in fragment
    failing = re.search(r'id="top-failing".*?</table>', fragment, re.S).group(0)
    assert re.search(r">b</a>.*?3/3", failing, re.S)
    flaky = re.search(r'id="flaky".*?</div>\s*</div>', fragment, re.S).group(0)
    assert ">a</a>" in flaky and ">x</a>" in flaky
    page = client.get(f"/instances/{data['instance']}/statistics").text
    assert "<html" in page and ": analysis" in page


def test_build_page(app, client, auth, data):
    """Does the build page show counts, metadata, failures first and its suites?"""
    auth.as_role("viewer")
    page = client.get(f"/builds/{data['builds'][0]}").text
    assert re.search(r'id="count-total">4<', page) and re.search(r'id="count-failed">1<', page)
    # 75 % is red under the default thresholds (green 100 %, amber from 90 %)
    assert re.search(r'id="pass-rate"><span class="gb-rate gb-level-red"[^>]*>75.0 %<', page)
    assert 'href="https://ci.example.com/job/1"' in page
    assert f'datetime="{STARTED:%Y-%m-%dT%H:%M:%S}Z"' in page
    assert case_names(page, "problems-table") == ["b"]
    assert len(table_rows(page, "suites-table")) == 2
    assert "1970" not in page


def test_build_page_links_only_web_ci_urls(app, client, auth, data):
    """Is a CI URL that is not http(s) shown as text, never as a link?"""
    auth.as_role("viewer")
    page = client.get(f"/builds/{data['builds'][2]}").text
    assert "javascript:alert(1)" in page
    assert 'href="javascript:' not in page


def test_build_unset_times_show_a_dash(app, client, auth, data):
    """Do unset start and finish times show a dash rather than 1970?"""
    auth.as_role("viewer")
    page = client.get(f"/builds/{data['builds'][1]}").text
    assert re.search(r"Started</dt><dd[^>]*><span[^>]*>—</span>", page)
    assert "1970" not in page


def test_build_lists_errors_then_failures_across_pages(app, client, auth):
    """Are a big build's errored then failed cases listed first, 25 to a page, none twice?"""
    auth.as_role("viewer")
    statuses = {f"e{i:02d}": "ERROR" for i in range(4)}
    statuses.update({f"f{i:02d}": "FAILED" for i in range(30)})
    statuses.update({f"s{i:02d}": "SUCCESS" for i in range(10)})
    with app.app_context():
        build_id = make_run(make_instance("big"), {"one": statuses}).id
    first = client.get(f"/builds/{build_id}").text
    second = client.get(f"/builds/{build_id}?fpage=2").text
    assert "Total failed and errored cases: <strong>34</strong>" in first
    names = case_names(first, "problems-table") + case_names(second, "problems-table")
    assert names == sorted(name for name in statuses if name[0] in "ef")


def test_build_changes(app, client, auth, data):
    """Does the comparison with the previous build list new failures, fixes and tests still failing?"""
    auth.as_role("viewer")
    build_page = client.get(f"/builds/{data['builds'][2]}").text
    assert f'data-fragment="/builds/{data["builds"][2]}/changes?partial=1"' in build_page
    fragment = client.get(f"/builds/{data['builds'][2]}/changes?partial=1").text

    def listed(key):
        block = re.search(rf'id="changes-{key}".*?</div>', fragment, re.S).group(0)
        return re.findall(r'href="/cases/\d+">([^<]+)</a>', block)

    assert listed("new-failures") == ["long"]
    assert listed("fixed") == ["a", "x"]
    assert listed("still-failing") == ["b"]


def test_first_build_has_nothing_to_compare(app, client, auth, data):
    """Does the first build say there is nothing to compare it with, instead of a comparison panel?"""
    auth.as_role("viewer")
    assert 'id="changes"' not in client.get(f"/builds/{data['builds'][0]}").text
    assert "nothing to compare" in client.get(f"/builds/{data['builds'][0]}/changes").text


def test_suite_page_lists_problems_first(app, client, auth, data):
    """Does the suite page show failures before passes and skips?"""
    auth.as_role("viewer")
    page = client.get(f"/suites/{data['suite']}").text
    assert case_names(page, "cases-table") == ["b", "a", "c"]
    assert "Total cases: <strong>3</strong>" in page


def test_suite_status_filter_and_search(app, client, auth, data):
    """Do the status filter and the name search narrow the cases, and can they combine?"""
    auth.as_role("viewer")
    path = f"/suites/{data['suite']}"
    assert case_names(client.get(f"{path}?status=SKIPPED").text, "cases-table") == ["c"]
    assert case_names(client.get(f"{path}?q=a").text, "cases-table") == ["a"]
    assert "No case matches" in client.get(f"{path}?status=ERROR").text
    assert "No case matches" in client.get(f"{path}?status=SUCCESS&q=b").text


def test_suite_unfinished_filter(app, client, auth, data):
    """Does the unfinished filter find cases that have no result yet?"""
    auth.as_role("viewer")
    with app.app_context():
        suite = db.session.get(TestSuite, data["suite"])
        make_case(suite, "pending")
    page = client.get(f"/suites/{data['suite']}?status=unfinished").text
    assert case_names(page, "cases-table") == ["pending"]
    assert "gb-pill-none" in page


def test_suite_pages_cross_status_boundaries(app, client, auth):
    """Does paging through a suite list each case once, errors, failures, passes, skips, unfinished?"""
    auth.as_role("viewer")
    statuses = {f"c{i:03d}": ("ERROR", "FAILED", "SUCCESS", "SKIPPED")[i % 4] for i in range(57)}
    with app.app_context():
        build = make_run(make_instance("paged"), {"one": statuses})
        suite = db.session.scalar(sa.select(TestSuite).where(TestSuite.build_id == build.id))
        make_case(suite, "zz-pending")
        suite_id = suite.id
    listed = []
    for number in (1, 2, 3):
        listed += case_names(client.get(f"/suites/{suite_id}?page={number}").text, "cases-table")
    rank = {"ERROR": 0, "FAILED": 1, "SUCCESS": 2, "SKIPPED": 3}
    expected = sorted(statuses, key=lambda name: (rank[statuses[name]], name)) + ["zz-pending"]
    assert listed == expected


def test_case_page(app, client, auth, data):
    """Does the case page show its message escaped, fold long details, and link its history to builds?"""
    auth.as_role("viewer")
    page = client.get(f"/cases/{data['case']}").text
    assert "History in checkout" in page
    strip = re.findall(r'href="(/builds/\d+)"\s+title="#(\d+) \([^)]*\): (\w+)', page)
    builds = enumerate(data["builds"], 1)
    assert strip == [(f"/builds/{build_id}", str(number), "FAILED") for number, build_id in builds]
    chart = chart_json(page, "history-data")
    assert chart["status"] == ["FAILED", "FAILED", "FAILED"]
    assert chart["links"] == [f"/builds/{build_id}" for build_id in data["builds"]]
    long_page = client.get(f"/cases/{data['long_case']}").text
    assert "boom &lt;b&gt;" in long_page
    assert re.search(r"<details\s+class=\"mb-3\">\s*<summary[^>]*>Details", long_page)
    assert "only build of checkout that ran this test" in long_page


def test_admins_get_an_edit_link_on_the_case_page(app, client, auth, data):
    """Is the admin edit form linked from the case page for admins only?"""
    auth.as_role("viewer")
    assert "/admin/cases/edit/" not in client.get(f"/cases/{data['case']}").text
    auth.logout()
    auth.as_role("admin")
    assert f"/admin/cases/edit/?id={data['case']}" in client.get(f"/cases/{data['case']}").text


@pytest.mark.parametrize(
    "path",
    [
        "/instances/{big}",
        "/builds/{big}",
        "/suites/0",
        "/cases/999999",
        "/builds/{big}/changes",
        "/instances/{big}/statistics",
    ],
)
def test_missing_items_are_404_pages(app, client, auth, path):
    """Does an unknown id, even one beyond 64 bits, answer a styled 404 page?"""
    auth.as_role("viewer")
    response = client.get(path.format(big=2**70))
    assert response.status_code == 404
    assert "gb-error" in response.text and "Not found" in response.text


def test_an_address_no_page_matches_is_a_short_404_page(app, client, auth):
    """Does a mistyped address say there is no page there, not werkzeug's paragraph?"""
    auth.as_role("viewer")
    response = client.get("/instances/shop")
    assert response.status_code == 404
    assert "There is no page at this address." in response.text
    assert "If you entered the URL manually" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        "page=-1&fpage=-1&sort=evil&n=-5&status=evil",
        "page=abc&fpage=1e9&sort=&n=7&partial=yes",
        "page=%C2%B2&fpage=%EF%BC%91&n=%D9%A3",
        "page=99999999999999999999&fpage=99999999999999999999&sort=-id;drop",
        "branch=" + "b" * 5000 + "&q=" + "%" * 300,
        "page=0&sort=-pass_rate&n=100&status=unfinished",
    ],
)
def test_odd_query_parameters_never_fail(app, client, auth, data, query):
    """Do odd or hostile query parameters fall back to defaults rather than a 500?"""
    auth.as_role("viewer")
    for path in page_paths(data):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 200, (path, query)


def test_pages_make_no_external_requests(app, client, auth, data):
    """Are every stylesheet and script served by Greenbar itself (the air-gapped rule)?"""
    auth.as_role("viewer")
    for path in page_paths(data):
        page = client.get(path).text
        for url in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', page):
            assert url.startswith("/"), (path, url)
            assert client.get(url).status_code == 200, url


def test_times_are_machine_readable_utc(app, client, auth, data):
    """Does each set time carry its UTC value for the browser to localise?"""
    auth.as_role("viewer")
    page = client.get(f"/instances/{data['instance']}").text
    stamp = f"{STARTED:%Y-%m-%dT%H:%M:%S}Z"
    assert f'<time datetime="{stamp}" title="2026-03-04 05:06 UTC">2026-03-04 05:06 UTC</time>' in page


def test_error_page_renders_without_a_database(database_urls, tmp_path, monkeypatch):
    """With the database gone, does a logged-in visitor still get the styled 500 page?"""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    app = create_app(settings_for("sqlite:///" + str(tmp_path / "missing" / "nowhere.db"), str(tmp_path)))
    client = logged_in_client(app, user_id=1)
    response = client.get("/")
    assert response.status_code == 500
    assert "Something went wrong" in response.text and "gb-navbar" in response.text


@pytest.mark.parametrize(
    ("status", "words"),
    [(403, "Not allowed"), (404, "Not found"), (429, "Wait a minute"), (500, "Something went wrong")],
)
def test_error_page_in_the_apps_style(sqlite_app, status, words):
    """Do 403, 404, 429 and 500 answers use the app's layout with a way back?"""
    with sqlite_app.test_request_context("/somewhere"):
        body, code = errors.render_error(status, "details here")
    assert code == status
    assert words in body and "details here" in body and "Back to the instances" in body


def test_counts_follow_a_changed_case(app, client, auth, data):
    """After a case changes from FAILED to SUCCESS, does the build page show the new counts?"""
    auth.as_role("viewer")
    with app.app_context():
        results.update_case(db.session.get(TestCase, data["case"]), result_status="SUCCESS")
        db.session.commit()
    page = client.get(f"/builds/{data['builds'][2]}").text
    assert re.search(r'id="count-failed">1<', page) and re.search(r'id="count-passed">4<', page)
