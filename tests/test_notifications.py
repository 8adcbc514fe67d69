"""Subscriptions, the outbox and its worker, signed webhooks and mail, against a real local receiver.

The worker runs in-process (``worker.drain``) for most tests; the crash and
concurrency tests run real ``flask worker`` processes against MariaDB.
"""

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update

from tests.factories import make_instance
from tests.factories import make_run
from tests.infra.conftest import REPO
from tests.infra.conftest import wait_until
from tests.webhook_receiver import Receiver
from webapp import events
from webapp import notifications
from webapp import outbox
from webapp import results
from webapp import webhooks
from webapp import worker
from webapp.extensions import db
from webapp.models import utcnow
from webapp.models_messages import DEAD
from webapp.models_messages import DONE
from webapp.models_messages import OutboxMessage
from webapp.models_messages import WebhookDelivery

SECRET = "webhook-test-secret"


@pytest.fixture(autouse=True)
def allow_loopback(request):
    """Tests allow webhooks to 127.0.0.1 only, as GREENBAR_WEBHOOK_ALLOWED_HOSTS=127.0.0.1 would."""
    for name in ("app", "mysql_app"):
        if name in request.fixturenames:
            request.getfixturevalue(name).config["WEBHOOK_ALLOWED_HOSTS"] = ["127.0.0.1"]


@pytest.fixture
def receiver():
    """A running webhook receiver that checks signatures with :data:`SECRET`."""
    with Receiver(SECRET) as running:
        yield running


def subscribe_webhook(instance, url, when="new_failures", event="build.finished"):
    """Subscribe ``url`` to an instance's event and commit."""
    subscription = notifications.create_subscription(
        instance, "webhook", event, when=when, url=url, secret=SECRET
    )
    db.session.commit()
    return subscription


def finish_with(instance, statuses):
    """Store a build with these cases in suite "s" and finish it, as the API does; return its id."""
    build = make_run(instance, {"s": statuses})
    results.finish(build)
    db.session.commit()
    return build.id


def test_github_signature_vector():
    """Does the signature match GitHub's published test vector?"""
    assert webhooks.sign("It's a Secret to Everybody", b"Hello, World!") == (
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    )


def test_backoff_spans_about_a_day():
    """Do the waits between 8 attempts add up to about a day at the default base?"""
    waits = [16 * outbox.BACKOFF_FACTOR ** (attempt - 1) for attempt in range(1, outbox.MAX_ATTEMPTS)]
    assert 20 * 3600 < sum(waits) < 28 * 3600


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://192.168.0.10/",
        "http://[::1]:8080/",
        "http://localhost:8080/",
        "http://0.0.0.0/",
        "ftp://example.com/",
    ],
)
def test_internal_or_odd_targets_are_refused(app, api, url):
    """Is a webhook to a loopback, private, link-local or metadata address (not allowed) a 400?"""
    with app.app_context():
        instance_id = make_instance().id
    body = {"channel": "webhook", "event": "build.finished", "url": url, "secret": SECRET}
    response = api.post(f"/api/test-instance/{instance_id}/subscriptions/", json=body)
    assert response.status_code == 400
    assert "url" in response.get_json()["error"]["fields"]


def test_subscriptions_api(app, api, client, token_auth, receiver):
    """Can a maintainer add, list and delete subscriptions, never shown the secret, and viewers not?"""
    with app.app_context():
        instance_id = make_instance().id
    path = f"/api/test-instance/{instance_id}/subscriptions/"
    hook = api.post(
        path,
        json={
            "channel": "webhook",
            "event": "build.finished",
            "when": "failing",
            "url": receiver.url,
            "secret": SECRET,
        },
    )
    assert hook.status_code == 201, hook.text
    mail = api.post(path, json={"channel": "email", "event": "test.flaky", "addresses": ["qa@example.test"]})
    assert mail.status_code == 201, mail.text
    listed = api.get(path).get_json()["results"]
    assert [(item["channel"], item["event"], item["when"]) for item in listed] == [
        ("webhook", "build.finished", "failing"),
        ("email", "test.flaky", None),
    ]
    assert listed[1]["addresses"] == ["qa@example.test"]
    assert all("secret" not in item for item in listed)
    assert client.get(path, headers=token_auth("viewer")).status_code == 403
    bad = api.post(
        path,
        json={
            "channel": "email",
            "event": "build.finished",
            "when": "sometimes",
            "addresses": ["not-an-address"],
        },
    )
    assert bad.status_code == 400
    assert set(bad.get_json()["error"]["fields"]) == {"when", "addresses"}
    assert api.call("DELETE", path + f"{hook.get_json()['id']}/").status_code == 204
    assert [item["channel"] for item in api.get(path).get_json()["results"]] == ["email"]


def test_new_failures_reach_webhook_and_mail(app, receiver, caplog, monkeypatch):
    """Does a build with a new failure send one signed webhook and one mail, each linking the case?"""
    # the migrations' logging setup disables existing loggers (see test_accounts.mail_log)
    monkeypatch.setattr(logging.getLogger("webapp.mail"), "disabled", False)
    with app.app_context():
        instance = make_instance()
        subscribe_webhook(instance, receiver.url)
        notifications.create_subscription(
            instance, "email", "build.finished", when="new_failures", addresses="qa@example.test"
        )
        db.session.commit()
        finish_with(instance, {"a": "SUCCESS", "b": "SUCCESS"})
        worker.drain()
        assert receiver.received == []
        build_id = finish_with(instance, {"a": "SUCCESS", "b": "FAILED"})
        worker.drain()
        case_id = db.session.scalar(
            select(results.TestCase.id).where(
                results.TestCase.build_id == build_id, results.TestCase.name == "b"
            )
        )
    [delivery] = receiver.received
    assert (delivery["event"], delivery["signed"]) == ("build.finished", True)
    assert len(delivery["delivery"]) == 36
    [group] = delivery["body"]["new_failures"]
    assert [(test["name"], test["url"]) for test in group["tests"]] == [
        ("b", f"{app.config['EXTERNAL_URL']}/cases/{case_id}")
    ]
    assert delivery["body"]["build"]["id"] == build_id
    mails = [record.getMessage() for record in caplog.records if "To: qa@example.test" in record.getMessage()]
    assert len(mails) == 1
    assert "1 new failure" in mails[0] and f"/cases/{case_id}" in mails[0]


def test_nothing_is_sent_for_a_rolled_back_finish(app, receiver):
    """Does a finish that rolls back leave nothing in the outbox?"""
    with app.app_context():
        instance = make_instance()
        subscribe_webhook(instance, receiver.url, when="always")
        build = make_run(instance, {"s": {"a": "FAILED"}})
        results.finish(build)
        db.session.rollback()
        assert db.session.scalars(select(OutboxMessage)).all() == []
        worker.drain()
    assert receiver.received == []


def test_failed_delivery_is_retried_with_backoff_and_can_be_redelivered(app, client, auth, receiver):
    """Is a 500 retried later with the same delivery id, logged, and sent again by the redeliver button?"""
    receiver.statuses = [500]
    with app.app_context():
        instance = make_instance()
        instance_id = instance.id
        subscribe_webhook(instance, receiver.url, when="always")
        finish_with(instance, {"a": "SUCCESS"})
        worker.drain()
        message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "webhook"))
        wait = (message.available_at - utcnow()).total_seconds()
        assert (message.attempts, message.state) == (1, "ready")
        assert 14 < wait < 18
        db.session.execute(
            update(OutboxMessage).where(OutboxMessage.id == message.id).values(available_at=utcnow())
        )
        db.session.commit()
        worker.drain()
        logs = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert [(log.status, log.response_code, log.attempt) for log in logs] == [
            ("failed", 500, 1),
            ("delivered", 200, 2),
        ]
        assert all(log.duration_ms is not None for log in logs)
        log_id = logs[-1].id
    assert [item["delivery"] for item in receiver.received] == [receiver.received[0]["delivery"]] * 2
    auth.as_role("maintainer")
    page = client.get(f"/instances/{instance_id}/deliveries")
    assert page.status_code == 200 and "Redeliver" in page.text
    response = client.post(f"/instances/{instance_id}/deliveries/{log_id}/redeliver")
    assert response.status_code == 302
    with app.app_context():
        worker.drain()
    assert len(receiver.received) == 3
    assert len({item["delivery"] for item in receiver.received}) == 1


def test_periodic_tasks_run_on_their_schedule(app, monkeypatch):
    """Does a task registered with worker.every run once per period, not at start-up?"""
    runs = []
    monkeypatch.setattr(worker, "PERIODIC", [])
    worker.every(60)(lambda: runs.append(1))
    with app.app_context():
        for now in (1000.0, 1030.0, 1060.0, 1090.0, 1120.0):
            worker.run_periodic(now)
    assert len(runs) == 2


def test_gives_up_after_eight_attempts(app):
    """Is a job that always fails marked dead after its eighth attempt?"""
    with app.app_context():
        outbox.enqueue("no-such-kind", {})
        db.session.commit()
        for _ in range(outbox.MAX_ATTEMPTS):
            db.session.execute(update(OutboxMessage).values(available_at=utcnow() - timedelta(seconds=1)))
            db.session.commit()
            worker.drain()
        message = db.session.scalar(select(OutboxMessage))
        assert (message.state, message.attempts) == (DEAD, outbox.MAX_ATTEMPTS)


def test_target_is_checked_again_at_delivery(app, receiver):
    """Is a target allowed when saved but not when delivered (as after DNS rebinding) refused, unsent?"""
    with app.app_context():
        instance = make_instance()
        subscribe_webhook(instance, receiver.url, when="always")
        app.config["WEBHOOK_ALLOWED_HOSTS"] = []
        finish_with(instance, {"a": "SUCCESS"})
        worker.drain()
        log = db.session.scalar(select(WebhookDelivery))
        assert (log.status, log.response_code) == ("failed", None)
        assert "internal address" in log.error
    assert receiver.received == []


def test_newly_flaky_tests_are_announced_once(app, receiver):
    """Does test.flaky fire for a test that turned flaky, and not again while it stays flaky?"""
    with app.app_context():
        instance = make_instance()
        subscribe_webhook(instance, receiver.url, event="test.flaky")
        for _ in range(2):
            build = make_run(instance, {})
            suite = results.create_suite(build, "s")
            results.add_cases(
                suite,
                build,
                [{"name": "wobbly", "result_status": "SUCCESS", "is_flaky": True, "attempts": 2}],
            )
            results.finish(build)
            db.session.commit()
            worker.drain()
    [delivery] = receiver.received
    assert delivery["event"] == "test.flaky"
    assert [test["name"] for test in delivery["body"]["newly_flaky"]] == ["wobbly"]


def test_gate_failed_has_its_place(app, receiver):
    """Does an emitted gate.failed reach its subscribers with the reasons?"""
    with app.app_context():
        instance = make_instance()
        subscribe_webhook(instance, receiver.url, event="gate.failed")
        build_id = finish_with(instance, {"a": "FAILED"})
        events.emit(events.GATE_FAILED, build_id=build_id, reasons=["pass rate 0% < 95%"])
        db.session.commit()
        worker.drain()
    [delivery] = receiver.received
    assert (delivery["event"], delivery["body"]["reasons"]) == ("gate.failed", ["pass rate 0% < 95%"])


# real worker processes on MariaDB


def worker_process(app, tmp_path, name, lease=3):
    """Start ``flask worker`` against the test's MySQL database."""
    env = dict(
        os.environ,
        DATABASE_URL=app.config["SQLALCHEMY_DATABASE_URI"],
        SECRET_KEY="worker-test",
        GREENBAR_EXTERNAL_URL="http://127.0.0.1:5000",
        GREENBAR_INSTANCE_PATH=str(tmp_path),
        GREENBAR_WEBHOOK_ALLOWED_HOSTS="127.0.0.1",
        GREENBAR_OUTBOX_LEASE_SECONDS=str(lease),
        GREENBAR_WORKER_POLL_SECONDS="0.2",
    )
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115 (the child writes it; closed with the test)
    return subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "wsgi", "worker"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def stop_worker(process):
    """Stop a worker we started: SIGTERM lets it finish its round."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(20)


def test_worker_killed_mid_delivery_delivers_once_back_with_the_same_id(mysql_app, receiver, tmp_path):
    """After kill -9 during a delivery, does the next worker deliver it, with the same delivery id?"""
    with mysql_app.app_context():
        instance = make_instance()
        subscribe_webhook(instance, receiver.url, when="always")
        finish_with(instance, {"a": "FAILED"})
    receiver.hold_next = True
    first = worker_process(mysql_app, tmp_path, "first")
    try:
        assert receiver.holding.wait(60), (tmp_path / "first.log").read_text()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        receiver.release.set()
    second = worker_process(mysql_app, tmp_path, "second")
    try:
        wait_until(lambda: len(receiver.answered) >= 2, 60, "the redelivery")
    finally:
        stop_worker(second)
    ids = [item["delivery"] for item in receiver.received]
    assert len(ids) == 2 and ids[0] == ids[1]
    with mysql_app.app_context():
        message = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "webhook"))
        assert (message.state, message.attempts, message.delivery_id) == (DONE, 2, ids[0])
        logs = db.session.scalars(select(WebhookDelivery)).all()
        assert [(log.status, log.delivery_id) for log in logs] == [("delivered", ids[0])]


def test_three_workers_never_send_a_message_twice(mysql_app, receiver, tmp_path):
    """Do three workers draining one outbox deliver each of 60 messages exactly once?"""
    with mysql_app.app_context():
        instance = make_instance()
        subscription = subscribe_webhook(instance, receiver.url, when="always")
        for number in range(60):
            webhooks.enqueue(subscription, "build.finished", f'{{"n": {number}}}')
        db.session.commit()
    workers = [worker_process(mysql_app, tmp_path, f"w{index}", lease=120) for index in range(3)]
    try:
        wait_until(lambda: len(receiver.answered) >= 60, 120, "60 deliveries")
        time.sleep(1.0)
    finally:
        for process in workers:
            stop_worker(process)
    ids = [item["delivery"] for item in receiver.received]
    assert len(ids) == 60 and len(set(ids)) == 60
    assert sorted(item["body"]["n"] for item in receiver.received) == list(range(60))
    with mysql_app.app_context():
        assert set(db.session.scalars(select(OutboxMessage.state))) == {DONE}


def test_claim_skips_rows_another_worker_holds(mysql_app):
    """While one transaction holds claimed rows locked, does a second claim get the others, not wait?"""
    with mysql_app.app_context():
        for number in range(4):
            outbox.enqueue("noop", {"n": number})
        db.session.commit()
        engine = db.engine
        with engine.connect() as holder:
            holder.begin()
            held = holder.execute(outbox.due_ids(2, utcnow())).scalars().all()
            started = time.monotonic()
            claimed = outbox.claim(10, 60)
            assert time.monotonic() - started < 2
            holder.rollback()
        assert sorted(item.id for item in claimed) == sorted(
            set(db.session.scalars(select(OutboxMessage.id))) - set(held)
        )


def test_claim_reads_through_the_covering_index(mysql_app):
    """Does MariaDB answer the claim's locking read from the (state, available_at, id) index alone?

    Otherwise InnoDB would lock every row it scans and a second worker would get nothing.
    """
    with mysql_app.app_context():
        for number in range(50):
            outbox.enqueue("noop", {"n": number})
        db.session.commit()
        statement = outbox.due_ids(10, utcnow()).compile(db.engine, compile_kwargs={"literal_binds": True})
        plan = db.session.execute(text(f"EXPLAIN {statement}")).mappings().one()
        assert plan["key"] == "ix_outbox_state_available_at_id"
        assert "Using index" in plan["Extra"] and "filesort" not in plan["Extra"]


def test_the_worker_refuses_to_start_without_the_external_url(sqlite_app):
    """Like gunicorn, does `flask worker` stop with one line rather than mail links to a guessed address?"""
    sqlite_app.config["EXTERNAL_URL"] = ""
    result = sqlite_app.test_cli_runner().invoke(args=["worker", "--drain"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: GREENBAR_EXTERNAL_URL is not set: mailed links need the address users open "
        "(such as https://greenbar.example.com)"
    )
