"""The operation log: recorded in the operation's transaction, readable by admins, shipped to storage."""

import gzip
import json

import sqlalchemy as sa

from tests.factories import make_instance
from tests.factories import make_user
from tests.test_import import REPORT
from tests.test_import import XML
from webapp import import_runner
from webapp import oplog
from webapp import storage
from webapp import worker
from webapp.extensions import db
from webapp.models_actions import QuarantineEntry
from webapp.models_messages import Subscription
from webapp.models_oplog import OperationRecord


def records(app):
    """Every record, oldest first, as (action, username, target)."""
    with app.app_context():
        rows = db.session.scalars(sa.select(OperationRecord).order_by(OperationRecord.id)).all()
        return [(row.action, row.username, row.target) for row in rows]


def test_a_rolled_back_operation_leaves_no_record(app):
    with app.app_context():
        oplog.record("delete.build", target="test_builds:1")
        db.session.rollback()
        oplog.record("delete.build", target="test_builds:2")
        db.session.commit()
    assert records(app) == [("delete.build", "", "test_builds:2")]


def test_admin_edits_are_recorded_with_who_and_what(app, client, auth):
    auth.as_role("admin")
    with app.app_context():
        instance_id = make_instance("recorded").id
    response = client.post("/admin/instances/delete/", data={"id": str(instance_id)})
    assert response.status_code == 302
    assert records(app) == [("admin.instances.delete", "admin-login", f"test_instances:{instance_id}")]


def test_a_queued_import_is_recorded_with_its_counts(app, api):
    with app.app_context():
        instance_id = make_instance("queued").id
    job = api.post(
        f"/api/test-instance/{instance_id}/import/?async=true", data=REPORT, headers=XML
    ).get_json()
    with app.app_context():
        import_runner.drain(app)
        [entry] = db.session.scalars(
            sa.select(OperationRecord).where(OperationRecord.action == "import.queued")
        )
        assert (entry.username, entry.instance_id, entry.build_id, entry.target) == (
            "maintainer-user",
            instance_id,
            job["build_id"],
            f"import_job:{job['id']}",
        )
        assert json.loads(entry.counts)["total"] == 5


def shipped_objects(app):
    """``{key: [records]}`` of every shipped object."""
    with app.app_context():
        keys = sorted(key for key, _ in storage.get().list_objects(oplog.PREFIX))
        return {
            key: [json.loads(line) for line in gzip.decompress(storage.get().open(key).read()).splitlines()]
            for key in keys
        }


def test_shipping_writes_json_lines_once_and_marks_them(app):
    with app.app_context():
        user = make_user("shipper", role="maintainer")
        first = [oplog.record("import", user=user, instance_id=7, counts={"total": n}) for n in (1, 2)]
        db.session.commit()
        ids = [entry.record_id for entry in first]
        first_id = first[0].id
        assert oplog.ship(host="web-1") == 2
        assert oplog.ship(host="web-1") == 0
        oplog.record("delete.case", user=user, target="test_cases:9")
        db.session.commit()
        assert oplog.ship(host="web-1") == 1
    objects = shipped_objects(app)
    assert len(objects) == 2
    first_key, second_key = sorted(objects)
    assert first_key.startswith("oplog/")
    assert first_key.endswith(f"-web-1-{first_id:012d}.jsonl.gz")
    assert [line["record_id"] for line in objects[first_key]] == ids
    assert [(line["action"], line["username"], line["counts"]) for line in objects[first_key]] == [
        ("import", "shipper", {"total": 1}),
        ("import", "shipper", {"total": 2}),
    ]
    assert [line["target"] for line in objects[second_key]] == ["test_cases:9"]


def test_the_worker_ships_on_its_schedule(app):
    app.config["OPLOG_SHIP_SECONDS"] = 5
    worker.load_jobs()
    with app.app_context():
        oplog.record("import", target="x")
        db.session.commit()
        [task] = [item for item in worker.PERIODIC if item.task.__name__ == "ship_operation_log"]
        task.due = 0.0
        worker.run_periodic(100.0)  # the first call only schedules it, 5 s on
        assert not db.session.scalar(sa.select(OperationRecord.shipped))
        worker.run_periodic(105.0)
        db.session.remove()
        assert db.session.scalar(sa.select(OperationRecord.shipped))


def test_only_admins_read_the_log(app, client, auth):
    auth.as_role("maintainer")
    assert client.get("/admin/oplog/").status_code == 403
    auth.logout()
    auth.as_role("admin")
    with app.app_context():
        oplog.record("import", target="listed-target")
        db.session.commit()
    page = client.get("/admin/oplog/?search=listed")
    assert page.status_code == 200
    assert "listed-target" in page.text


def test_api_imports_batches_and_deletes_are_recorded(app, api, token_auth):
    with app.app_context():
        instance_id = make_instance("logged").id
    api.headers = {**api.headers, "X-Request-ID": "req-42"}
    imported = api.post(f"/api/test-instance/{instance_id}/import/", data=REPORT, headers=XML).get_json()
    build_id = imported["build"]["id"]
    batch = {"results": [{"suite": "s", "name": "t", "result_status": "SUCCESS"}]}
    assert (
        api.post(f"/api/test_instance/{instance_id}/test_build/{build_id}/results/", json=batch).status_code
        == 200
    )
    admin = token_auth("admin")
    assert (
        api.client.delete(
            f"/api/test-instance/{instance_id}/test-build/{build_id}/", headers=admin
        ).status_code
        == 204
    )
    with app.app_context():
        rows = db.session.scalars(sa.select(OperationRecord).order_by(OperationRecord.id)).all()
        logged = [(row.action, row.username, row.instance_id, row.build_id, row.request_id) for row in rows]
        counts = [json.loads(row.counts)["total"] if row.counts else None for row in rows]
    assert logged == [
        ("importNewBuild", "maintainer-user", instance_id, build_id, "req-42"),
        ("addResults", "maintainer-user", instance_id, build_id, "req-42"),
        ("deleteBuild", "admin-token-user", instance_id, build_id, ""),
    ]
    assert counts == [5, 1, None]


def test_a_refused_write_is_not_recorded(app, api):
    with app.app_context():
        instance_id = make_instance("refused").id
    refused = api.post(f"/api/test-instance/{instance_id}/import/", data=b"<not-junit/>", headers=XML)
    assert refused.status_code == 400
    assert records(app) == []


def test_quarantine_and_subscription_changes_are_recorded(app, api, client, auth):
    """Are quarantining (API and page), ending it, and (un)subscribing on the page all in the log?"""
    with app.app_context():
        instance_id = make_instance("acted").id
    body = {"suite": "s", "name": "t", "reason": "flaky on CI"}
    assert api.post(f"/api/test-instance/{instance_id}/quarantine/", json=body).status_code == 201
    auth.as_role("maintainer")
    form = {"suite": "s", "name": "u", "reason": "slow", "owner": "", "expires": ""}
    assert client.post(f"/instances/{instance_id}/quarantine", data=form).status_code == 302
    with app.app_context():
        entry_id = db.session.scalar(sa.select(QuarantineEntry.id).where(QuarantineEntry.name == "u"))
    assert client.post(f"/instances/{instance_id}/quarantine/{entry_id}/remove").status_code == 302
    subscription = {
        "channel": "email",
        "event": "build.finished",
        "when": "always",
        "addresses": "a@example.com",
    }
    assert client.post(f"/instances/{instance_id}/subscriptions", data=subscription).status_code == 302
    with app.app_context():
        subscription_id = db.session.scalar(sa.select(Subscription.id))
    path = f"/instances/{instance_id}/subscriptions/{subscription_id}/delete"
    assert client.post(path).status_code == 302
    assert [(action, user) for action, user, _ in records(app)] == [
        ("createQuarantine", "maintainer-user"),
        ("createQuarantine", "maintainer-login"),
        ("deleteQuarantine", "maintainer-login"),
        ("createSubscription", "maintainer-login"),
        ("deleteSubscription", "maintainer-login"),
    ]
