"""Retention: the policy, pinned builds, batches, attachments, and statistics that survive pruning."""

import io
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.conftest import basic_auth
from tests.factories import make_instance
from tests.factories import make_run
from tests.factories import make_user
from webapp import attachments
from webapp import results
from webapp import retention
from webapp import stats
from webapp import storage
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import test_key
from webapp.models import utcnow
from webapp.models_messages import Attachment
from webapp.models_oplog import OperationRecord
from webapp.models_retention import RunSummary
from webapp.models_retention import TestName

# eight builds of four tests: t1 flips, t2 is retried once, slow is slow, gone leaves after build 3
PATTERN = {
    "t1": "SFSFSSFS",
    "t2": "SSSSSSSS",
    "slow": "SSSSSSSS",
    "gone": "FSF",
}
BUILDS = 8


def make_history(name="product"):
    """An instance with eight builds following :data:`PATTERN`; returns it."""
    instance = make_instance(name)
    code = {"S": "SUCCESS", "F": "FAILED"}
    for number in range(1, BUILDS + 1):
        build = results.create_build(instance, number=number, branch="main")
        suite = results.create_suite(build, "pkg.Suite")
        rows = []
        for test, outcomes in PATTERN.items():
            if number > len(outcomes):
                continue
            rows.append(
                {
                    "name": test,
                    "result_status": code[outcomes[number - 1]],
                    "duration": (5.0 if test == "slow" else 0.1) + number / 100,
                    "message": "boom" if outcomes[number - 1] == "F" else None,
                    "attempts": 2 if (test == "t2" and number == 2) else 1,
                    "is_flaky": test == "t2" and number == 2,
                    "system_out": "captured output",
                }
            )
        results.add_cases(suite, build, rows)
        results.finish(build)
    db.session.commit()
    return instance


def prune(instance, **policy):
    """Give the instance a policy and apply it, as ``flask retention run`` does; return the totals."""
    for name, value in policy.items():
        setattr(instance, name, value)
    db.session.commit()
    return retention.run(retention.plan(instance))


def statistics(instance_id):
    """What the reports show of the instance, without the ids that point at (pruned) rows."""

    def figures(items):
        return [
            {k: v for k, v in item.items() if k not in ("case_id", "suite_id", "build_id")} for item in items
        ]

    def history(key):
        found = stats.test_history(instance_id, key)
        runs = [(e["build_number"], e["status"], e["duration"], e["is_flaky"]) for e in found["history"]]
        return found["suite"], found["name"], found["runs"], found["failures"], found["flakiness"], runs

    return {
        "top_failing": figures(stats.top_failing(instance_id)),
        "flaky": figures(stats.flaky_tests(instance_id)),
        "slowest": figures(stats.slowest_tests(instance_id)),
        "trend": stats.instance_trend(instance_id),
        "history": {test: history(test_key("pkg.Suite", test)) for test in PATTERN},
    }


def build_ids(instance_id):
    """``{number: id}`` of the instance's builds."""
    rows = db.session.execute(
        select(TestBuild.number, TestBuild.id).where(TestBuild.instance_id == instance_id)
    )
    return dict(rows.all())


def history_losing_its_first_build():
    """:func:`make_history` with a policy of its newest 7 builds; returns it and build 1's id."""
    instance = make_history()
    instance.keep_builds = 7
    db.session.commit()
    return instance, build_ids(instance.id)[1]


def stored_keys():
    """The keys of every stored object."""
    return {key for key, _ in storage.get().list_objects("")}


def case_count(build_id):
    """How many case rows a build has."""
    return db.session.scalar(select(func.count()).where(TestCase.build_id == build_id))


def test_without_a_policy_nothing_is_pruned(app):
    """Does the default policy keep every build?"""
    with app.app_context():
        instance = make_history()
        plan = retention.plan(instance)
        assert (plan.build_ids, plan.cases) == ([], 0)


def test_keep_builds_prunes_the_older_builds_but_not_the_pinned_one(app):
    """Newest 5 of 8 kept, build 2 pinned: are builds 1 and 3 pruned, counters and suites kept?"""
    with app.app_context():
        instance = make_history()
        ids = build_ids(instance.id)
        db.session.get(TestBuild, ids[2]).pinned = True
        instance.keep_builds = 5
        db.session.commit()
        counters = {n: db.session.get(TestBuild, i).passed for n, i in ids.items()}
        plan = retention.plan(instance)
        assert plan.build_ids == [ids[1], ids[3]]
        assert (plan.cases, plan.pinned_kept) == (8, 1)
        assert retention.run(plan) == {"builds": 2, "cases": 8, "attachments": 0}
        db.session.expire_all()
        assert [n for n in sorted(ids) if case_count(ids[n]) == 0] == [1, 3]
        assert [n for n in sorted(ids) if db.session.get(TestBuild, ids[n]).pruned] == [1, 3]
        assert {n: db.session.get(TestBuild, i).passed for n, i in ids.items()} == counters
        suite = db.session.scalar(select(TestSuite).where(TestSuite.build_id == ids[1]))
        assert (suite.cases_total, suite.system_out) == (4, None)
        assert db.session.scalar(select(func.count()).select_from(RunSummary)) == 8
        assert db.session.scalar(select(func.count()).select_from(TestName)) == 4
        assert retention.plan(instance).build_ids == []


def test_keep_days_prunes_builds_created_before_the_cutoff(app):
    """Do builds created over N days ago lose their cases, and newer ones keep them?"""
    with app.app_context():
        instance = make_history()
        ids = build_ids(instance.id)
        for number, build_id in ids.items():
            db.session.get(TestBuild, build_id).created = utcnow() - timedelta(days=20.5 - number)
        instance.keep_days = 14
        db.session.commit()
        # created 19.5, 18.5, ... 12.5 days ago: builds 1 to 6 are older than 14 days
        plan = retention.plan(instance)
        assert plan.build_ids == [ids[n] for n in (1, 2, 3, 4, 5, 6)]
        instance.keep_builds = 6
        db.session.commit()
        # with both rules a build either keeps stays: the newest 6 are 3..8
        assert retention.plan(instance).build_ids == [ids[1], ids[2]]


def test_statistics_answer_the_same_after_pruning(app):
    """Do top failing, flaky, slowest, trend and each test's history answer the same from run summaries?"""
    with app.app_context():
        instance = make_history()
        before = statistics(instance.id)
        instance.keep_builds = 2
        db.session.commit()
        assert retention.run(retention.plan(instance))["builds"] == 6
        db.session.expire_all()
        after = statistics(instance.id)
        assert after == before
        assert before["top_failing"] and before["flaky"] and before["slowest"]


def test_a_pruned_run_in_the_history_points_at_its_build(app, client):
    """Does the API history mark pruned runs and link them to their build, not a case?"""
    with app.app_context():
        make_user("viewer", password="viewer-pass")
        instance = make_history()
        prune(instance, keep_builds=7)
        instance_id, first = instance.id, build_ids(instance.id)[1]
    key = test_key("pkg.Suite", "gone")
    reply = client.get(
        f"/api/test-instance/{instance_id}/test-history/{key}/", headers=basic_auth("viewer", "viewer-pass")
    )
    assert reply.status_code == 200
    oldest = reply.get_json()["history"][-1]
    assert (oldest["build_number"], oldest["pruned"], oldest["case_id"]) == (1, True, None)
    assert oldest["url"] == f"/api/test-instance/{instance_id}/test-build/{first}/"
    assert "pruned" not in reply.get_json()["history"][0]


def test_a_test_whose_every_case_was_pruned_keeps_its_names(app):
    """Is a test that stopped running still named in its history once all its cases are gone?"""
    with app.app_context():
        instance = make_history()
        prune(instance, keep_builds=3)
        found = stats.test_history(instance.id, test_key("pkg.Suite", "gone"))
        assert (found["suite"], found["name"], found["runs"], found["failures"]) == (
            "pkg.Suite",
            "gone",
            3,
            2,
        )


def test_batches_move_at_most_their_size_and_an_interrupted_run_resumes(app):
    """Does one batch move only its rows, and does a later run finish without copying twice?"""
    with app.app_context():
        instance, first = history_losing_its_first_build()
        # as if the process died after its first committed batch
        assert retention.prune_batch(first, batch=3) == (3, 0)
        db.session.expire_all()
        assert case_count(first) == 1
        assert db.session.get(TestBuild, first).pruned is None
        assert retention.run(retention.plan(instance), batch=3) == {"builds": 1, "cases": 1, "attachments": 0}
        assert db.session.scalar(select(func.count()).where(RunSummary.build_id == first)) == 4


def test_pruning_deletes_attachments_and_their_objects(app):
    """Are a pruned case's attachment rows and stored objects deleted once the batch commits?"""
    with app.app_context():
        instance, first = history_losing_its_first_build()
        case = db.session.scalar(select(TestCase).where(TestCase.build_id == first))
        stored = attachments.upload(case, [("screen.png", io.BytesIO(b"\x89PNG\r\n\x1a\n" + b"0" * 64))])
        db.session.commit()
        key = stored[0].storage_key
        assert key in stored_keys()
        assert retention.run(retention.plan(instance))["attachments"] == 1
        assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
        assert key not in stored_keys()


def test_pruning_is_in_the_operation_log(app):
    """Does each pruned build leave a record with its counts?"""
    with app.app_context():
        instance = make_history()
        prune(instance, keep_builds=7)
        entry = db.session.scalar(select(OperationRecord).where(OperationRecord.action == "retention.prune"))
        assert (entry.username, entry.target, entry.counts) == (
            "retention",
            "build #1",
            '{"cases": 4, "attachments": 0}',
        )


def test_cli_dry_run_deletes_nothing_and_run_prunes(app):
    """Does --dry-run only report, and run prune what it reported?"""
    runner = app.test_cli_runner()
    with app.app_context():
        instance = make_history()
        instance.keep_builds = 6
        make_instance("unlimited")
        db.session.commit()
    dry = runner.invoke(args=["retention", "run", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "product: keeps newest 6 builds; 2 builds to prune (8 cases, 0 attachments)" in dry.output
    assert "unlimited: keeps everything; 0 builds to prune" in dry.output
    assert "dry run: nothing deleted" in dry.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RunSummary)) == 0
    done = runner.invoke(args=["retention", "run"])
    assert done.exit_code == 0, done.output
    assert "pruned 2 builds: 8 cases, 0 attachments" in done.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RunSummary)) == 8


def test_cli_names_an_unknown_instance_in_one_line(app):
    """Is an unknown --instance a one-line error, not a traceback?"""
    result = app.test_cli_runner().invoke(args=["retention", "run", "--instance", "nope"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: no instance named 'nope'"


@pytest.mark.parametrize("role, status", [("maintainer", 200), ("viewer", 403)])
def test_pin_through_the_api(app, client, role, status):
    """Can a maintainer pin and unpin a build with PATCH, and a viewer not?"""
    with app.app_context():
        make_user("someone", role=role, password="some-pass")
        build = make_run(make_instance(), {"s": {"c": "SUCCESS"}})
        path = f"/api/test-instance/{build.instance_id}/test-build/{build.id}/"
    headers = basic_auth("someone", "some-pass")
    reply = client.patch(path, json={"pinned": True}, headers=headers)
    assert reply.status_code == status
    if status == 200:
        assert (reply.get_json()["pinned"], reply.get_json()["pruned"]) == (True, None)
        echoed = client.put(path, json=reply.get_json(), headers=headers)
        assert echoed.get_json()["pinned"] is True
        assert client.patch(path, json={"pinned": False}, headers=headers).get_json()["pinned"] is False


def test_the_policy_through_the_api(app, client):
    """Does an instance take keep_days and keep_builds, refuse bad ones, and clear them with null?"""
    with app.app_context():
        make_user("maint", role="maintainer", password="maint-pass")
    headers = basic_auth("maint", "maint-pass")
    created = client.post("/api/test-instance/", json={"name": "p", "keep_builds": 100}, headers=headers)
    assert (created.status_code, created.get_json()["keep_builds"], created.get_json()["keep_days"]) == (
        201,
        100,
        None,
    )
    path = f"/api/test-instance/{created.get_json()['id']}/"
    assert client.patch(path, json={"keep_days": 0}, headers=headers).status_code == 400
    assert client.patch(path, json={"keep_days": 30}, headers=headers).get_json()["keep_days"] == 30
    # a PUT that leaves the policy out keeps it
    assert client.put(path, json={"name": "p"}, headers=headers).get_json()["keep_builds"] == 100
    assert client.patch(path, json={"keep_builds": None}, headers=headers).get_json()["keep_builds"] is None


def test_pin_and_unpin_on_the_build_page(app, client):
    """Does the build page's button pin and unpin, and show the pin and a pruned build's note?"""
    with app.app_context():
        make_user("maint", role="maintainer", password="maint-pass")
        build = make_run(make_instance(), {"s": {"c": "SUCCESS"}})
        build_id = build.id
    client.post("/auth/login", data={"username": "maint", "password": "maint-pass"})
    page = client.post(f"/builds/{build_id}/pin", data={"pinned": "1"}, follow_redirects=True)
    assert b'id="pinned-badge"' in page.data and b">Unpin</button>" in page.data
    with app.app_context():
        assert db.session.get(TestBuild, build_id).pinned is True
        record = db.session.scalar(select(OperationRecord).where(OperationRecord.action == "pinBuild"))
        assert record.build_id == build_id
    page = client.post(f"/builds/{build_id}/pin", data={"pinned": "0"}, follow_redirects=True)
    assert b'id="pinned-badge"' not in page.data and b">Pin</button>" in page.data
    with app.app_context():
        db.session.get(TestBuild, build_id).pruned = utcnow()
        db.session.commit()
    assert b'id="pruned-note"' in client.get(f"/builds/{build_id}").data
    with app.app_context():
        suite_id = db.session.scalar(select(TestSuite.id).where(TestSuite.build_id == build_id))
    # (this build still has its case: what a page of a pruned build shows without cases is below)
    assert b"gb-pruned-cases" not in client.get(f"/suites/{suite_id}").data


def test_the_pages_of_a_pruned_build_say_why_its_cases_are_gone(app, client):
    """Do the build and suite pages of a pruned build explain the empty lists, with the counts kept?"""
    with app.app_context():
        make_user("viewer", password="viewer-pass")
        instance = make_history()
        prune(instance, keep_builds=7)
        first = build_ids(instance.id)[1]
        suite_id = db.session.scalar(select(TestSuite.id).where(TestSuite.build_id == first))
    client.post("/auth/login", data={"username": "viewer", "password": "viewer-pass"})
    build_page = client.get(f"/builds/{first}").text
    assert "pruned by the retention policy" in build_page and 'id="count-total">4<' in build_page
    suite_page = client.get(f"/suites/{suite_id}").text
    assert "Retention pruned this build" in suite_page and 'id="cases-table"' not in suite_page
    with app.app_context():
        instance_id = db.session.get(TestBuild, first).instance_id
    listed = client.get(
        f"/api/test-instance/{instance_id}/test-build/{first}/test-suite/{suite_id}/test-case/?limit=2"
    )
    assert (listed.get_json()["count"], listed.get_json()["results"], listed.get_json()["next"]) == (
        0,
        [],
        None,
    )


def test_a_viewer_cannot_pin_from_a_page(app, client):
    """Is the pin form refused to a viewer on the server, whatever the page shows?"""
    with app.app_context():
        make_user("viewer", password="viewer-pass")
        build_id = make_run(make_instance(), {"s": {"c": "SUCCESS"}}).id
    client.post("/auth/login", data={"username": "viewer", "password": "viewer-pass"})
    assert b'id="pin-form"' not in client.get(f"/builds/{build_id}").data
    assert client.post(f"/builds/{build_id}/pin", data={"pinned": "1"}).status_code == 403
    with app.app_context():
        assert db.session.get(TestBuild, build_id).pinned is False


def test_two_runs_at_once_summarise_each_case_once(mysql_app):
    """With the timer firing on two machines at once, is every case moved exactly once?"""
    with mysql_app.app_context():
        instance = make_history()
        instance.keep_builds = 1
        db.session.commit()
        instance_id = instance.id
    outcomes, errors = [], []

    def prune():
        try:
            with mysql_app.app_context():
                plan = retention.plan(db.session.get(TestInstance, instance_id))
                outcomes.append(retention.run(plan, batch=2))
                db.session.remove()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=prune) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with mysql_app.app_context():
        # builds 1-7 hold 4 + 4 + 4 + 3 x 4 = 24 cases; build 8's 3 stay
        assert db.session.scalar(select(func.count()).select_from(RunSummary)) == 24
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == 3
        assert sum(outcome["cases"] for outcome in outcomes) == 24


def test_a_short_history_takes_pruned_runs_newer_than_an_old_pinned_build(app):
    """With old build 2 pinned, are the newest two runs builds 8 and 7 (pruned), not 8 and 2?"""
    with app.app_context():
        instance = make_history()
        db.session.get(TestBuild, build_ids(instance.id)[2]).pinned = True
        prune(instance, keep_builds=1)
        found = stats.test_history(instance.id, test_key("pkg.Suite", "t1"), limit=2)
        assert [(entry["build_number"], "pruned" in entry) for entry in found["history"]] == [
            (8, False),
            (7, True),
        ]
        everything = stats.test_history(instance.id, test_key("pkg.Suite", "t1"))
        assert [entry["build_number"] for entry in everything["history"]] == [8, 7, 6, 5, 4, 3, 2, 1]


def test_results_posted_into_a_pruned_build_are_pruned_by_the_next_run(app):
    """Does a case added to a pruned build make the next run move it too, and only that build?"""
    with app.app_context():
        instance = make_history()
        prune(instance, keep_builds=7)
        first = build_ids(instance.id)[1]
        assert retention.plan(instance).build_ids == []
        build = db.session.get(TestBuild, first)
        suite = db.session.scalar(select(TestSuite).where(TestSuite.build_id == first))
        results.add_cases(suite, build, [{"name": "late", "result_status": "SUCCESS"}])
        db.session.commit()
        plan = retention.plan(instance)
        assert plan.build_ids == [first]
        assert retention.run(plan) == {"builds": 1, "cases": 1, "attachments": 0}
        assert case_count(first) == 0
