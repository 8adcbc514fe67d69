"""Reports at a glance (issue 13): comparison base, health, failing since, filters, search, demo data."""

import re
from datetime import datetime
from datetime import timezone

import pytest
from sqlalchemy import select
from sqlalchemy import update

from tests.factories import make_instance
from tests.factories import make_run
from webapp import demo
from webapp import glance
from webapp import queries
from webapp import results
from webapp import stats
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import test_key

S, F, E, K = "SUCCESS", "FAILED", "ERROR", "SKIPPED"
DONE = datetime(2026, 11, 1, tzinfo=timezone.utc)


def finished_run(instance, statuses, branch, finished=True):
    """A build on ``branch`` with suite ``s`` holding ``statuses``; finished unless told otherwise."""
    build = make_run(instance, {"s": statuses}, branch=branch)
    if finished:
        build.finished = DONE
        db.session.commit()
    return build


@pytest.fixture
def branches(app):
    """Builds 1 main, 2 dev, 3 main (unfinished), 4 main, 5 dev, 6 feature; another instance's build.

    t fails in 2, 3, 4 and 5 (passes in 1), u is skipped in 3 and fails in 4 only.
    """
    with app.app_context():
        instance = make_instance("shop")
        plan = [
            ("main", S, S, True),
            ("dev", F, S, True),
            ("main", F, K, False),
            ("main", F, F, True),
            ("dev", F, S, True),
            ("feature", S, S, True),
        ]
        ids = [finished_run(instance, {"t": t, "u": u}, branch, done).id for branch, t, u, done in plan]
        other = finished_run(make_instance("elsewhere"), {"t": S}, "main").id
        return instance.id, ids, other


def build(build_id):
    """Load a build by id."""
    return db.session.get(TestBuild, build_id)


def test_default_base_is_the_previous_finished_build_on_the_branch(app, branches):
    """#4 skips unfinished #3 for #1; #5 pairs with dev #2; feature #6 falls back to #5; #1 has none."""
    _, ids, _ = branches
    with app.app_context():
        assert stats.comparison_base(build(ids[3])) == (build(ids[0]), stats.BASE_SAME_BRANCH)
        assert stats.comparison_base(build(ids[4])) == (build(ids[1]), stats.BASE_SAME_BRANCH)
        assert stats.comparison_base(build(ids[5])) == (build(ids[4]), stats.BASE_OTHER_BRANCH)
        assert stats.comparison_base(build(ids[0])) == (None, None)


def test_base_falls_back_to_an_unfinished_build_and_says_so(app):
    """With no earlier finished build, the previous build by number is the base, marked unfinished."""
    with app.app_context():
        instance = make_instance()
        first = finished_run(instance, {"t": S}, "main", finished=False)
        second = finished_run(instance, {"t": F}, "main")
        assert stats.comparison_base(second) == (first, stats.BASE_UNFINISHED)


def test_changes_page_honours_base_and_says_why(app, client, auth, branches):
    """The default base names its reason; ?base= picks another build and the picker offers the rest."""
    _, ids, _ = branches
    auth.as_role("viewer")
    page = client.get(f"/builds/{ids[5]}/changes").text
    assert f'Since build <a href="/builds/{ids[4]}">#5</a>' in page
    assert "no earlier finished build on feature, so the previous finished build on another branch" in page
    chosen = client.get(f"/builds/{ids[5]}/changes?base={ids[0]}").text
    assert f'Since build <a href="/builds/{ids[0]}">#1</a>' in chosen
    assert "Compared with the build you chose." in chosen
    assert re.search(rf'<option value="{ids[0]}"[^>]*selected>#1 ', chosen)
    dev_only = client.get(f"/builds/{ids[5]}/changes?pick_branch=dev").text
    assert re.findall(r'<option value="(\d+)" data-branch', dev_only) == [str(ids[4]), str(ids[1])]


@pytest.mark.parametrize(
    ("base", "message"),
    [
        ("abc", "is not a build id"),
        ("-3", "is not a build id"),
        ("{other}", "is not a build of shop"),
        ("99999999", "is not a build of shop"),
        ("{self}", "cannot be compared with itself"),
    ],
)
def test_a_bad_base_is_a_400_page_saying_why(app, client, auth, branches, base, message):
    """Not a number, another instance's build, a missing one or the build itself: 400 with the reason."""
    _, ids, other = branches
    auth.as_role("viewer")
    value = base.format(other=other, self=ids[3])
    for path in (f"/builds/{ids[3]}/changes?base={value}", f"/builds/{ids[3]}?base={value}"):
        response = client.get(path)
        assert response.status_code == 400
        assert message in response.text


def test_api_diff_uses_the_same_base_and_honours_base(app, api, branches):
    """The API's diff/ defaults to the same-branch base, says so, and takes ?base=."""
    instance_id, ids, other = branches
    url = f"/api/test-instance/{instance_id}/test-build/{ids[3]}/diff/"
    default = api.get(url).get_json()
    assert (default["base"]["id"], default["base_reason"]) == (ids[0], "same_branch")
    assert [item["name"] for item in default["new_failures"]] == ["t", "u"]
    chosen = api.get(f"{url}?base={ids[4]}").get_json()
    assert (chosen["base"]["id"], chosen["base_reason"]) == (ids[4], "chosen")
    assert [item["name"] for item in chosen["new_failures"]] == ["u"]
    # another instance's build is no build of this one: 404, as for any missing item; a non-number is a 400
    assert api.get(f"{url}?base={other}").status_code == 404
    assert api.get(f"{url}?base=abc").get_json()["error"]["fields"] == {"base": "must be an integer"}


def test_new_failures_and_failing_since(app, branches):
    """#4 (base #1): t and u are new. On main, t fails since #3 (2 builds); u since #4 (1 build)."""
    _, ids, _ = branches
    with app.app_context():
        assert glance.new_failure_count(build(ids[3]), build(ids[0])) == 2
        assert glance.new_failures_by_build([build(ids[3]), build(ids[4]), build(ids[5])]) == {
            ids[3]: 2,
            ids[4]: 0,
            ids[5]: 0,
        }
        since = glance.failing_since(build(ids[3]), {test_key("s", "t"), test_key("s", "u")})
        assert since[test_key("s", "t")] == {"build_id": ids[2], "number": 3, "streak": 2, "complete": True}
        # u was skipped in #3: a skip neither breaks nor extends the run that starts at #4
        assert since[test_key("s", "u")] == {"build_id": ids[3], "number": 4, "streak": 1, "complete": True}


def test_build_page_shows_health_new_and_failing_since(app, client, auth, branches):
    """The build page: pass rate coloured red (0 %), "2 new" since #1, and t failing since #3."""
    _, ids, _ = branches
    auth.as_role("viewer")
    page = client.get(f"/builds/{ids[3]}").text
    assert re.search(r'id="pass-rate"><span class="gb-rate gb-level-red"', page)
    assert re.search(r'id="count-new">2<', page) and "new since #1" in page
    assert re.search(
        rf'failing since <a href="/builds/{ids[2]}">#3</a>\s*<span class="gb-muted">\(2 builds\)', page
    )
    assert '<svg class="gb-status-bar"' in page and "style=" not in page


def test_case_page_names_the_branch_its_failing_streak_counts(app, client, auth, branches):
    """Build 4 (main) fails t since #3 on main, though dev's #2 failed too: the case page says "on main"."""
    _, ids, _ = branches
    with app.app_context():
        case_id = db.session.scalar(
            select(TestCase.id).where(TestCase.build_id == ids[3], TestCase.name == "t")
        )
    auth.as_role("viewer")
    page = client.get(f"/cases/{case_id}").text
    since = re.search(r'id="failing-since">(.*?)</span></span>', page, re.S).group(1)
    assert re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", since)).strip() == "failing since #3 (2 builds on main)"


def test_pass_rate_colours_follow_the_instance_thresholds(app):
    """Defaults: green at 100 %, amber from 90 %, red below; an instance's own thresholds move them."""
    with app.app_context():
        instance = make_instance()
        assert instance.pass_green == 1.0 and instance.pass_amber == 0.9
        assert [glance.pass_level(rate, instance) for rate in (1.0, 0.97, 0.9, 0.89, None)] == [
            "green",
            "amber",
            "amber",
            "red",
            None,
        ]
        instance.pass_green, instance.pass_amber = 0.95, 0.5
        db.session.commit()
        stored = db.session.get(TestInstance, instance.id)
        assert [glance.pass_level(rate, stored) for rate in (0.97, 0.6, 0.4)] == ["green", "amber", "red"]


@pytest.fixture
def mixed(app):
    """One build: suites a and b with skipped cases of various durations, failures and passes."""
    with app.app_context():
        instance = make_instance()
        build = make_run(instance, {"a": {"p1": S, "f1": F}, "b": {"p2": S}})
        suites = {suite.name: suite for suite in build.suites}
        results.add_cases(
            suites["a"],
            build,
            [{"name": f"k{i}", "result_status": K, "duration": i * 0.5} for i in range(20)],
        )
        results.add_cases(
            suites["b"],
            build,
            [{"name": f"k{i}", "result_status": K, "duration": 30 - i} for i in range(20, 30)],
        )
        db.session.commit()
        return instance.id, build.id


def test_build_status_filter_across_suites_sorted_by_duration(app, client, auth, mixed):
    """?status=SKIPPED lists the 30 skipped cases of both suites, slowest first with -duration, 25 a page."""
    _, build_id = mixed
    auth.as_role("viewer")
    with app.app_context():
        first, sort = queries.build_cases_with_status(build(build_id), K, 1, "-duration")
        second, _ = queries.build_cases_with_status(build(build_id), K, 2, "-duration")
    assert sort == "-duration" and first.total == 30
    durations = [case.duration for case in first.items + second.items]
    assert durations == sorted(durations, reverse=True) and len(durations) == 30
    assert {case.result_status for case in first.items + second.items} == {K}
    page = client.get(f"/builds/{build_id}?status=SKIPPED&sort=-duration").text
    assert "Total skipped cases: <strong>30</strong>" in page
    names = re.findall(r'<td class="gb-name"><a href="/cases/\d+">([^<]+)</a>', page)
    # 10 s, 9.5 s, then two of 9 s in the order they were stored
    assert names[:4] == ["k20", "k19", "k18", "k21"] and len(names) == 25


def test_build_status_filter_takes_any_letter_case_and_says_why_it_ignores_a_bad_one(
    app, client, auth, mixed
):
    """?status=skipped is the skipped filter; ?status=BOGUS shows the failing cases and says why."""
    _, build_id = mixed
    auth.as_role("viewer")
    assert "Total skipped cases: <strong>30</strong>" in client.get(f"/builds/{build_id}?status=skipped").text
    page = client.get(f"/builds/{build_id}?status=BOGUS").text
    notice = re.search(r'id="status-problem">(.*?)</div>', page).group(1)
    assert notice == (
        "“BOGUS” is not a status (SUCCESS, FAILED, ERROR or SKIPPED), "
        "so these are the failed and errored cases."
    )
    assert "Failed and errored cases" in page
    assert 'id="status-problem"' not in client.get(f"/builds/{build_id}").text


def test_test_search_any_case_with_latest_status_and_rate(app, client, auth):
    """ "LOGIN" finds test_login and Login_retry (not logout), with latest status and failure rate."""
    with app.app_context():
        instance = make_instance()
        for statuses in (
            {"test_login": S, "Login_retry": F, "logout": S},
            {"test_login": F, "Login_retry": F, "logout": S},
        ):
            make_run(instance, {"auth": statuses})
        found = queries.search_tests(instance.id, "LOGIN", 1)
        literal = queries.search_tests(instance.id, "log%", 1)
        instance_id = instance.id
    assert [(t["suite"], t["name"], t["latest_status"], t["failure_rate"]) for t in found.items] == [
        ("auth", "Login_retry", F, 1.0),
        ("auth", "test_login", F, 0.5),
    ]
    assert found.items[0]["test_key"] == test_key("auth", "Login_retry")
    assert literal.total == 0
    auth.as_role("viewer")
    page = client.get(f"/instances/{instance_id}?q=login").text
    assert "Total tests matching “login”: <strong>2</strong>" in page


def test_test_search_pages_count_every_match_and_clamp_past_the_end(app, api):
    """30 matching tests: the total 30 on every page, page 2 the last 5, a page past the end the last?"""
    with app.app_context():
        instance = make_instance()
        make_run(instance, {"suite": {f"check_{n:02d}": S for n in range(30)} | {"other": S}})
        pages = [queries.search_tests(instance.id, "CHECK", page) for page in (1, 2, 9)]
        instance_id = instance.id
    assert [(found.page, found.total, len(found.items)) for found in pages] == [
        (1, 30, 25),
        (2, 30, 5),
        (2, 30, 5),
    ]
    assert pages[1].items[-1]["name"] == "check_29"
    path = f"/api/test-instance/{instance_id}/tests/?search=check&limit=10"
    first, beyond = api.get(path).get_json(), api.get(path + "&offset=40").get_json()
    assert (first["count"], len(first["results"]), first["results"][0]["name"]) == (30, 10, "check_00")
    assert (beyond["count"], beyond["results"], beyond["next"]) == (30, [], None)


def test_search_window_reads_the_newest_builds_a_batch_at_a_time(app):
    """The window is the newest builds up to the case budget (at least one), whatever the batch size."""
    with app.app_context():
        instance = make_instance()
        for _ in range(7):
            make_run(instance, {"suite": {"a": S, "b": S}})
        newest_first = list(
            db.session.scalars(
                select(TestBuild.id)
                .where(TestBuild.instance_id == instance.id)
                .order_by(TestBuild.number.desc())
            )
        )
        for batch in (1, 2, 3, 100):
            assert queries.search_window(instance.id, budget=5, batch=batch) == newest_first[:2]
            assert queries.search_window(instance.id, budget=100, batch=batch) == newest_first
            assert queries.search_window(instance.id, budget=1, batch=batch) == newest_first[:1]
        assert queries.search_window(make_instance("empty").id, batch=2) == []


def test_window_and_branch_are_remembered_per_instance_and_shared_in_the_url(app, client, auth, branches):
    """A chosen window and branch come back on the next visit, as a redirect to a URL that names them."""
    instance_id, _, _ = branches
    auth.as_role("viewer")
    assert client.get(f"/instances/{instance_id}/statistics").status_code == 200
    assert client.get(f"/instances/{instance_id}/statistics?n=10&branch=dev").status_code == 200
    again = client.get(f"/instances/{instance_id}/statistics")
    assert again.status_code == 302
    assert "n=10" in again.location and "branch=dev" in again.location
    assert client.get(again.location).status_code == 200


def test_statistics_page_window_by_dates(app, client, auth, branches):
    """A date range covers the builds started in it; the page has trends, regressions and controls."""
    instance_id, _, _ = branches
    auth.as_role("viewer")
    page = client.get(f"/instances/{instance_id}/statistics?from=2000-01-01&to=2000-01-02").text
    assert "0 builds started from 2000-01-01 to 2000-01-02" in page
    whole = client.get(f"/instances/{instance_id}/statistics?n=10").text
    for part in (
        'id="trend-data"',
        'id="top-failing"',
        'id="slowest"',
        'id="flaky"',
        'id="regressions"',
        'id="window-from"',
        'id="window-branch"',
    ):
        assert part in whole, part


def test_demo_data_is_coherent(app):
    """Messages match tracebacks, timeouts take their time, branches vary, one build is wholly green."""
    with app.app_context():
        demo.load()
        db.session.commit()
        failures = db.session.execute(
            select(TestCase.message, TestCase.details, TestCase.duration).where(
                TestCase.result_status.in_((F, E))
            )
        ).all()
        assert failures
        for message, details, duration in failures:
            assert message in details.splitlines()
            if message.startswith("TimeoutError"):
                assert duration >= 5.0
        builds = db.session.scalars(select(TestBuild)).all()
        assert {b.branch for b in builds} == {"main", "release/2.4", "feature/faster-sync"}
        assert any(b.passed == b.cases_total for b in builds)
        assert sum(b.flaky for b in builds) > 0
        checkout = db.session.scalar(select(TestInstance).where(TestInstance.name == "checkout-service"))
        # two tests per product slow down from build 26; timeouts and retries may add one or two, not more
        regressed = stats.duration_regressions(checkout.id)["tests"]
        assert 2 <= len(regressed) <= 5, [(t["name"], t["ratio"]) for t in regressed]


@pytest.mark.parametrize(
    ("query", "summary"),
    [
        ("from=2000-01-01", "6 builds started on or after 2000-01-01 (UTC day)"),
        ("to=2000-01-01", "0 builds started on or before 2000-01-01 (UTC day)"),
        ("to=9999-12-31", "6 builds started on or before 9999-12-31 (UTC day)"),
        ("from=0001-01-01&to=9999-12-31", "6 builds started from 0001-01-01 to 9999-12-31 (UTC days)"),
    ],
)
def test_statistics_window_open_on_one_side(app, client, auth, branches, query, summary):
    """A range with one day left empty runs from the first build, or up to now; no problem is shown."""
    instance_id, _, _ = branches
    with app.app_context():
        db.session.execute(update(TestBuild).values(started=datetime(2026, 6, 15, tzinfo=timezone.utc)))
        db.session.commit()
    auth.as_role("viewer")
    page = client.get(f"/instances/{instance_id}/statistics?{query}").text
    assert " ".join(page.split()).count(summary) == 1
    assert 'id="window-problem"' not in page


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("from=2026-11-20&to=2026-11-10", "The range ends (2026-11-10) before it starts (2026-11-20)."),
        ("from=garbage", "“garbage” is not a day in the form YYYY-MM-DD."),
        ("from=2026-11-20&to=soon", "“soon” is not a day in the form YYYY-MM-DD."),
        ("n=7", "“7” is not one of 10, 30, 100 builds."),
    ],
)
def test_statistics_window_says_why_it_ignored_what_was_asked(app, client, auth, branches, query, problem):
    """A window that cannot be used is not dropped silently: the page says why and what it shows."""
    instance_id, _, _ = branches
    auth.as_role("viewer")
    response = client.get(f"/instances/{instance_id}/statistics?{query}")
    assert response.status_code == 200
    notice = re.search(r'id="window-problem">(.*?)</div>', response.text, re.S).group(1)
    assert " ".join(notice.split()) == f"{problem} This shows the last 30 builds instead."
    assert "6 builds, the last 30 at most" in " ".join(response.text.split())
