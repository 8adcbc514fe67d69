"""The statistics JSON endpoints: shapes, links, parameters, 404s and roles."""

import pytest

from tests.factories import make_instance
from tests.factories import make_run
from webapp import results
from webapp.extensions import db
from webapp.models import test_key

S, F = "SUCCESS", "FAILED"


@pytest.fixture
def history(app):
    """Four builds (build 2 on branch "dev", the others on "main").

    t1 fails in build 2 only (two flips), t2 fails from build 2 on, and t3
    takes 5 s in build 4 against 1 s before.
    """
    with app.app_context():
        instance = make_instance()
        ids = []
        for number, (t1, t2, t3) in enumerate([(S, S, 1.0), (F, F, 1.0), (S, F, 1.0), (S, F, 5.0)], 1):
            build = make_run(instance, {"s": {"t1": t1, "t2": t2}}, branch="main" if number != 2 else "dev")
            suite = build.suites[0]
            results.add_cases(suite, build, [{"name": "t3", "result_status": S, "duration": t3}])
            db.session.commit()
            ids.append(build.id)
        return instance.id, ids


def test_viewer_reads_every_statistic(app, api, history):
    """A viewer may read all of them, in both spellings."""
    instance_id, builds = history
    api.as_role("viewer")
    paths = [
        f"/api/test-instance/{instance_id}/trend/",
        f"/api/test-instance/{instance_id}/top-failing/",
        f"/api/test-instance/{instance_id}/slowest/",
        f"/api/test-instance/{instance_id}/flaky/",
        f"/api/test-instance/{instance_id}/regressions/",
        f"/api/test-instance/{instance_id}/test-history/{test_key('s', 't1')}/",
        f"/api/test-instance/{instance_id}/test-build/{builds[2]}/summary/",
        f"/api/test-instance/{instance_id}/test-build/{builds[2]}/diff/",
    ]
    for path in paths:
        for spelled in (path, path.replace("test-", "test_")):
            response = api.get(spelled)
            assert response.status_code == 200, (spelled, response.get_json())


def test_anonymous_callers_get_401(app, client, history):
    """Statistics need a login like the rest of the API."""
    assert client.get(f"/api/test-instance/{history[0]}/trend/").status_code == 401


def test_trend_and_summary(app, api, history):
    """Trend points are oldest first with ISO times; the summary counts per status."""
    instance_id, builds = history
    trend = api.get(f"/api/test-instance/{instance_id}/trend/?limit=3").get_json()
    assert [point["id"] for point in trend["results"]] == builds[1:]
    rates = [round(1 / 3, 4), round(2 / 3, 4), round(2 / 3, 4)]
    assert [point["pass_rate"] for point in trend["results"]] == rates
    assert trend["results"][0]["started"] is None or trend["results"][0]["started"].endswith("Z")
    main = api.get(f"/api/test-instance/{instance_id}/trend/?branch=main").get_json()
    assert [point["number"] for point in main["results"]] == [1, 3, 4]
    summary = api.get(f"/api/test-instance/{instance_id}/test-build/{builds[1]}/summary/").get_json()
    assert summary["counts"] == {"SUCCESS": 1, "FAILED": 2, "ERROR": 0, "SKIPPED": 0}
    assert summary["number"] == 2 and summary["pass_rate"] == round(1 / 3, 4)


def test_diff_against_previous_and_given_base(app, api, history):
    """Build 3 against build 2: t1 fixed, t2 still failing; against build 1: t2 is a new failure."""
    instance_id, builds = history
    base = f"/api/test-instance/{instance_id}/test-build/{builds[2]}/diff/"
    diff = api.get(base).get_json()
    assert diff["base"]["id"] == builds[1] and diff["build"]["id"] == builds[2]
    assert [item["name"] for item in diff["fixed"]] == ["t1"]
    assert [item["name"] for item in diff["still_failing"]] == ["t2"]
    fixed = diff["fixed"][0]
    assert fixed["url"] == (
        f"/api/test-instance/{instance_id}/test-build/{builds[2]}/test-suite/{fixed['suite_id']}"
        f"/test-case/{fixed['case_id']}/"
    )
    assert api.get(fixed["url"]).get_json()["name"] == "t1"
    assert api.get(fixed["history_url"]).status_code == 200
    other = api.get(base + f"?base={builds[0]}").get_json()
    assert [item["name"] for item in other["new_failures"]] == ["t2"]
    assert other["fixed"] == []


def test_window_statistics(app, api, history):
    """All four builds: t2 failed 3 times, t1 once; t1 flipped twice (S F S S: 2/4)."""
    instance_id, _ = history
    top = api.get(f"/api/test-instance/{instance_id}/top-failing/").get_json()
    assert [(item["name"], item["failures"]) for item in top["results"]] == [("t2", 3), ("t1", 1)]
    assert (top["limit_builds"], top["top"], top["branch"]) == (30, 10, None)
    flaky = api.get(f"/api/test-instance/{instance_id}/flaky/?builds=4&top=1").get_json()
    assert [(item["name"], item["score"]) for item in flaky["results"]] == [("t1", 0.5)]
    slow = api.get(f"/api/test-instance/{instance_id}/slowest/?top=1").get_json()
    assert [(item["name"], item["median"], item["p95"]) for item in slow["results"]] == [("t3", 1.0, 5.0)]


def test_regressions_endpoint(app, api, history):
    """Build 4's t3 took 5 s against a median of 1 s; a factor of 6 finds nothing."""
    instance_id, builds = history
    found = api.get(f"/api/test-instance/{instance_id}/regressions/").get_json()
    assert found["build"]["id"] == builds[3] and found["baseline_builds"] == 3
    assert [(item["name"], item["ratio"]) for item in found["results"]] == [("t3", 5.0)]
    assert api.get(f"/api/test-instance/{instance_id}/regressions/?factor=6").get_json()["results"] == []
    older = api.get(f"/api/test-instance/{instance_id}/regressions/?build={builds[2]}").get_json()
    assert older["results"] == [] and older["baseline_builds"] == 2


def test_history_by_key_and_by_name(app, api, history):
    """A test's history by its key, or by suite and name; newest first, with links."""
    instance_id, builds = history
    by_key = api.get(f"/api/test-instance/{instance_id}/test-history/{test_key('s', 't1')}/").get_json()
    by_name = api.get(f"/api/test-instance/{instance_id}/test-history/?suite=s&name=t1").get_json()
    assert by_key == by_name
    assert [entry["build_id"] for entry in by_key["history"]] == builds[::-1]
    assert [entry["status"] for entry in by_key["history"]] == [S, S, F, S]
    assert by_key["failure_rate"] == 0.25 and by_key["flakiness"]["flips"] == 2
    assert api.get(by_key["history"][0]["url"]).get_json()["id"] == by_key["history"][0]["case_id"]
    limited = api.get(f"/api/test-instance/{instance_id}/test-history/?suite=s&name=t1&limit=1").get_json()
    assert len(limited["history"]) == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/test-instance/{i}/test-history/{missing}/", 404),
        ("/api/test-instance/{i}/test-history/short/", 404),
        ("/api/test-instance/{i}/test-history/?suite=s", 400),
        ("/api/test-instance/{gone}/trend/", 404),
        ("/api/test-instance/{gone}/flaky/", 404),
        ("/api/test-instance/{i}/test-build/999999/summary/", 404),
        ("/api/test-instance/{i}/test-build/{b}/diff/?base=999999", 404),
        ("/api/test-instance/{i}/top-failing/?builds=0", 400),
        ("/api/test-instance/{i}/top-failing/?builds=x", 400),
        ("/api/test-instance/{i}/slowest/?top=1000", 400),
        ("/api/test-instance/{i}/trend/?limit=-1", 400),
        ("/api/test-instance/{i}/trend/?branch=" + "b" * 300, 400),
        ("/api/test-instance/{i}/regressions/?factor=nan", 400),
        ("/api/test-instance/{i}/regressions/?factor=0.5", 400),
        ("/api/test-instance/{i}/regressions/?build=999999", 404),
    ],
)
def test_bad_parameters_and_missing_things(app, api, history, path, status):
    """Bad parameters are 400s naming the field; things that do not exist are 404s; all JSON."""
    instance_id, builds = history
    url = path.format(i=instance_id, gone=instance_id + 1000, b=builds[0], missing="0" * 32)
    response = api.get(url)
    assert response.status_code == status
    assert response.get_json()["error"]["status"] == status


def test_statistics_of_an_empty_instance(app, api):
    """No builds yet: empty lists, not errors."""
    with app.app_context():
        instance_id = make_instance("empty").id
    for name in ("trend", "top-failing", "slowest", "flaky", "regressions"):
        body = api.get(f"/api/test-instance/{instance_id}/{name}/").get_json()
        assert body["results"] == []
