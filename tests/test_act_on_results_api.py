"""Failure groups, triage, quarantine, gate, split and badges through the API, on the history of
tests/act_history.py (its table gives the worked-out answers)."""
# ruff: noqa: F811 (the history fixture, imported, is the tests' argument)

from datetime import timedelta

from tests.act_history import SIG_A
from tests.act_history import SIG_B
from tests.act_history import SIG_C
from tests.act_history import A
from tests.act_history import history  # noqa: F401 (a fixture)
from webapp import results
from webapp.extensions import db
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import utcnow
from webapp.models_actions import QuarantineEntry


def groups_path(instance_id, build_id=None):
    """The address of a build's or the instance's failure groups."""
    if build_id is None:
        return f"/api/test-instance/{instance_id}/failure-groups/"
    return f"/api/test-instance/{instance_id}/test-build/{build_id}/failure-groups/"


def test_build_failure_groups_largest_first(app, api, history):
    """Does build 2 give A (2 tests), then B and C (1 each), with normalised messages and examples?"""
    instance_id, builds = history
    body = api.get(groups_path(instance_id, builds[1])).get_json()
    assert body["count"] == 3
    assert body["failures"] == 4
    assert [group["signature"] for group in body["results"]][0] == SIG_A
    assert sorted(group["signature"] for group in body["results"][1:]) == sorted([SIG_B, SIG_C])
    first = body["results"][0]
    assert first["count"] == 2
    assert first["message"] == "AssertionError: expected <n> got <n>"
    assert [test["name"] for test in first["tests"]] == ["t1", "t2"]
    assert first["example"]["message"] == A.format(10, 11)
    assert first["example"]["url"].endswith(f"/test-case/{first['example']['case_id']}/")
    assert body["new"] == {"causes": 3, "failures": 4}
    assert body["known"] == {"causes": 0, "failures": 0}


def test_build_failure_groups_page(app, api, history):
    """Does ?limit=1 give the largest group and a link to the next page?"""
    instance_id, builds = history
    body = api.get(groups_path(instance_id, builds[1]) + "?limit=1").get_json()
    assert [group["signature"] for group in body["results"]] == [SIG_A]
    assert body["count"] == 3
    assert "offset=1" in body["next"]


def test_instance_top_causes(app, api, history):
    """Over both builds: A 4 failures/2 builds/2 tests, B 2/2/1, C 1/1/1 first and last seen in #2."""
    instance_id, builds = history
    body = api.get(groups_path(instance_id) + "?builds=2&branch=main").get_json()
    assert body["builds"] == 2
    figures = {
        group["signature"]: (
            group["count"],
            group["builds_affected"],
            group["tests_affected"],
            group["first_seen"]["number"],
            group["last_seen"]["number"],
        )
        for group in body["results"]
    }
    assert figures == {SIG_A: (4, 2, 2, 1, 2), SIG_B: (2, 2, 1, 1, 2), SIG_C: (1, 1, 1, 2, 2)}
    assert [group["signature"] for group in body["results"]] == [SIG_A, SIG_B, SIG_C]
    assert body["results"][1]["message"] == "ConnectionError: localhost:<port> refused"


def test_instance_top_causes_other_branch_is_empty(app, api, history):
    """Does a branch with no builds give no groups?"""
    body = api.get(groups_path(history[0]) + "?branch=dev").get_json()
    assert (body["count"], body["builds"], body["results"]) == (0, 0, [])


def test_triage_label_carries_forward_and_is_recorded(app, api, history):
    """Does a label on A make A known in build 2, and are set, change and removal all recorded?"""
    instance_id, builds = history
    path = f"/api/test-instance/{instance_id}/failure-groups/{SIG_A}/label/"
    reply = api.call(
        "PUT", path, json={"label": "product_bug", "note": "rounding", "issue_url": "https://x/1"}
    )
    assert reply.status_code == 200
    assert reply.get_json()["label"]["label"] == "product_bug"
    body = api.get(groups_path(instance_id, builds[1])).get_json()
    assert body["known"] == {"causes": 1, "failures": 2}
    assert body["new"] == {"causes": 2, "failures": 2}
    assert body["results"][0]["label"]["updated_by"] == "maintainer-user"
    api.call("PUT", path, json={"label": "test_bug"})
    assert api.call("DELETE", path).status_code == 204
    history_reply = api.get(path).get_json()
    assert history_reply["label"] is None
    assert [event["label"] for event in history_reply["history"]] == [None, "test_bug", "product_bug"]
    assert {event["by"] for event in history_reply["history"]} == {"maintainer-user"}


def test_triage_refuses_unknown_label(app, api, history):
    """Is an unknown label a 400 naming the field, with nothing stored?"""
    path = f"/api/test-instance/{history[0]}/failure-groups/{SIG_A}/label/"
    reply = api.call("PUT", path, json={"label": "cosmic_rays"})
    assert reply.status_code == 400
    assert "label" in reply.get_json()["error"]["fields"]
    assert api.get(path).get_json()["history"] == []


def test_viewer_cannot_label(app, client, api, history):
    """Is triage a maintainer's job?"""
    api.as_role("viewer")
    path = f"/api/test-instance/{history[0]}/failure-groups/{SIG_A}/label/"
    assert api.call("PUT", path, json={"label": "test_bug"}).status_code == 403


def gate_path(instance_id, build_id):
    """The address of a build's gate."""
    return f"/api/test-instance/{instance_id}/test-build/{build_id}/gate/"


def test_default_gate_fails_on_the_one_new_failure(app, api, history):
    """Does the default gate (no new failures) fail build 2 on t4 alone?"""
    instance_id, builds = history
    body = api.get(gate_path(instance_id, builds[1])).get_json()
    assert body["passed"] is False
    assert [rule["rule"] for rule in body["rules"]] == ["no_new_failures"]
    assert body["rules"][0]["detail"] == "1 new failure (against build #1): s::t4"
    assert body["build"]["number"] == 2
    assert body["base"]["number"] == 1


def test_quarantine_makes_the_gate_pass_and_exports(app, api, history):
    """Does quarantining t4 pass the gate, export as text, and stop applying once removed?"""
    instance_id, builds = history
    path = f"/api/test-instance/{instance_id}/quarantine/"
    reply = api.post(path, json={"suite": "s", "name": "t4", "reason": "flaky since the DB move"})
    assert reply.status_code == 201
    entry = reply.get_json()
    assert (entry["owner"], entry["created_by"], entry["active"]) == (
        "maintainer-user",
        "maintainer-user",
        True,
    )
    assert api.get(path + "?format=text").get_data(as_text=True) == "s::t4\n"
    assert api.get(gate_path(instance_id, builds[1])).get_json()["passed"] is True
    assert api.call("DELETE", f"{path}{entry['id']}/").status_code == 204
    assert api.get(path).get_json()["count"] == 0
    assert api.get(gate_path(instance_id, builds[1])).get_json()["passed"] is False
    with app.app_context():
        stored = db.session.get(QuarantineEntry, entry["id"])
        assert stored.removed_by_name == "maintainer-user"
        assert stored.removed is not None


def test_quarantine_refuses_bad_entries(app, api, history):
    """Are a missing reason, an unknown owner and an expiry beyond the maximum 400s?"""
    path = f"/api/test-instance/{history[0]}/quarantine/"
    assert api.post(path, json={"suite": "s", "name": "t4"}).status_code == 400
    assert (
        api.post(path, json={"suite": "s", "name": "t4", "reason": "r", "owner": "nobody"}).status_code == 400
    )
    far = api.post(path, json={"suite": "s", "name": "t4", "reason": "r", "expires": "2999-01-01T00:00:00Z"})
    assert far.status_code == 400
    assert "expires" in far.get_json()["error"]["fields"]
    assert api.get(path).get_json()["count"] == 0


def test_expired_entry_stops_applying(app, api, history):
    """Does an entry past its expiry no longer count, without anyone removing it?"""
    instance_id, builds = history
    path = f"/api/test-instance/{instance_id}/quarantine/"
    entry_id = api.post(path, json={"suite": "s", "name": "t4", "reason": "r"}).get_json()["id"]
    with app.app_context():
        db.session.get(QuarantineEntry, entry_id).expires = utcnow() - timedelta(seconds=1)
        db.session.commit()
    assert api.get(path).get_json()["count"] == 0
    assert api.get(gate_path(instance_id, builds[1])).get_json()["passed"] is False


def test_gate_rules_with_quarantine_left_out(app, api, history):
    """Pass rate 1/5 = 20 %; with t4 quarantined 1/4 = 25 %: a 25 % minimum passes, 26 % fails."""
    instance_id, builds = history
    rules = f"/api/test-instance/{instance_id}/gate/"
    api.post(
        f"/api/test-instance/{instance_id}/quarantine/", json={"suite": "s", "name": "t4", "reason": "r"}
    )
    assert api.call("PUT", rules, json={"min_pass_rate": 25}).status_code == 200
    body = api.get(gate_path(instance_id, builds[1])).get_json()
    assert body["rules"] == [
        {
            "rule": "min_pass_rate",
            "passed": True,
            "detail": "pass rate 25.00 % (at least 25 % required; 1 quarantined test left out)",
        }
    ]
    api.call("PUT", rules, json={"min_pass_rate": 26, "no_new_failures": True})
    body = api.get(gate_path(instance_id, builds[1])).get_json()
    assert body["passed"] is False
    assert [rule["passed"] for rule in body["rules"]] == [False, True]


def test_gate_duration_rule(app, api, history):
    """Durations 6 s then 10 s: +66.7 %, which fails a 50 % maximum and passes 70 %."""
    instance_id, builds = history
    rules = f"/api/test-instance/{instance_id}/gate/"
    api.call("PUT", rules, json={"max_duration_increase": 50})
    rule = api.get(gate_path(instance_id, builds[1])).get_json()["rules"][0]
    assert rule == {
        "rule": "max_duration_increase",
        "passed": False,
        "detail": "duration 10.0s vs 6.0s: +66.7% (at most +50% allowed)",
    }
    api.call("PUT", rules, json={"max_duration_increase": 70})
    assert api.get(gate_path(instance_id, builds[1])).get_json()["passed"] is True


def test_gate_rules_refuse_out_of_range(app, api, history):
    """Is a pass rate above 100 a 400?"""
    reply = api.call("PUT", f"/api/test-instance/{history[0]}/gate/", json={"min_pass_rate": 101})
    assert reply.status_code == 400


def test_gate_on_unfinished_build_is_409_after_wait(app, api, history):
    """Does an unfinished build answer 409, also after waiting a second?"""
    instance_id, _ = history
    with app.app_context():
        build = results.create_build(db.session.get(TestInstance, instance_id))
        db.session.commit()
        build_id = build.id
    assert api.get(gate_path(instance_id, build_id)).status_code == 409
    assert api.get(gate_path(instance_id, build_id) + "?wait=1").status_code == 409


def test_gate_against_base_branch(app, api, history):
    """With ?base_branch=main a dev build is compared with main's newest finished build (#2)."""
    instance_id, _ = history
    with app.app_context():
        build = results.create_build(db.session.get(TestInstance, instance_id), branch="dev")
        suite = results.create_suite(build, "s")
        results.add_cases(suite, build, [{"name": "t5", "result_status": "FAILED", "message": "boom"}])
        results.finish(build)
        db.session.commit()
        build_id = build.id
    body = api.get(gate_path(instance_id, build_id) + "?base_branch=main").get_json()
    assert body["base"]["number"] == 2
    assert body["rules"][0]["detail"] == "1 new failure (against build #2): s::t5"
    own = api.get(gate_path(instance_id, build_id)).get_json()
    assert own["base"] is None


def test_signatures_on_per_case_api_writes(app, api, history):
    """Do cases created and finished through the per-case API get signatures, and lose them on success?"""
    instance_id, builds = history
    base = f"/api/test-instance/{instance_id}/test-build/{builds[1]}/test-suite/"
    suite_id = api.post(base, json={"name": "api"}).get_json()["id"]
    cases = f"{base}{suite_id}/test-case/"
    created = api.post(cases, json={"name": "c1", "result_status": "FAILED", "message": A.format(1, 1)})
    pending = api.post(cases, json={"name": "c2"}).get_json()["id"]
    api.post(f"{cases}{pending}/finish/", json={"result_status": "ERROR", "message": "KeyError: 'user'"})
    with app.app_context():
        assert db.session.get(TestCase, created.get_json()["id"]).signature == SIG_A
        stored = db.session.get(TestCase, pending)
        assert (stored.signature, stored.signature_text) == (SIG_C, "KeyError: 'user'")
        results.update_case(stored, result_status="SUCCESS")
        db.session.commit()
        assert db.session.get(TestCase, pending).signature is None


def test_split_balances_by_median_duration(app, api, history):
    """Medians t1..t3 1 s, t4 2 s, t5 3 s over two builds: two shards of 4 s each."""
    body = api.get(f"/api/test-instance/{history[0]}/split/?shards=2").get_json()
    assert body["tests"] == 5
    assert [shard["expected_duration"] for shard in body["results"]] == [4.0, 4.0]
    names = sorted(test["node_id"] for shard in body["results"] for test in shard["tests"])
    assert names == ["s::t1", "s::t2", "s::t3", "s::t4", "s::t5"]
    with app.app_context():
        # the build a sharded CI job has just created: still empty, it must not empty the split
        results.create_build(db.session.get(TestInstance, history[0]), branch="main")
        db.session.commit()
    again = api.get(f"/api/test-instance/{history[0]}/split/?shards=2").get_json()
    assert (again["tests"], again["builds"]) == (5, 2)


def test_split_needs_shards(app, api, history):
    """Is a missing or zero shard count a 400?"""
    assert api.get(f"/api/test-instance/{history[0]}/split/").status_code == 400
    assert api.get(f"/api/test-instance/{history[0]}/split/?shards=0").status_code == 400


def test_badges_need_the_token(app, api, client, history):
    """Is a badge served with the right token only, cacheable, with an ETag that revalidates?"""
    instance_id, _ = history
    token = api.post(f"/api/test-instance/{instance_id}/badge-token/").get_json()["token"]
    response = client.get(f"/badges/{instance_id}/{token}/status.svg")
    assert response.status_code == 200
    assert response.mimetype == "image/svg+xml"
    assert response.headers["Cache-Control"] == "max-age=60"
    assert "failing 20%" in response.get_data(as_text=True)
    again = client.get(
        f"/badges/{instance_id}/{token}/status.svg", headers={"If-None-Match": response.headers["ETag"]}
    )
    assert again.status_code == 304
    assert client.get(f"/badges/{instance_id}/wrong-token/status.svg").status_code == 404
    assert client.get(f"/badges/{instance_id}/{token}/other.svg").status_code == 404
    assert ">5<" in client.get(f"/badges/{instance_id}/{token}/tests.svg").get_data(as_text=True)
    rotated = api.post(f"/api/test-instance/{instance_id}/badge-token/").get_json()["token"]
    assert client.get(f"/badges/{instance_id}/{token}/status.svg").status_code == 404
    assert client.get(f"/badges/{instance_id}/{rotated}/flaky.svg").status_code == 200
