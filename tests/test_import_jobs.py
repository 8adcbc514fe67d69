"""Queued imports: 202 with a job, the worker imports it once, progress and errors as a sync import."""

import gzip
import json

import boto3
import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from tests.factories import make_instance
from tests.test_import import REPORT
from tests.test_import import REPORT_COUNTS
from tests.test_import import XML
from tests.test_import import counters_match_rows
from tests.test_import import synthetic_report
from webapp import import_jobs
from webapp import import_queue
from webapp import import_runner
from webapp import storage
from webapp import telemetry
from webapp import worker
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import utcnow
from webapp.models_imports import ImportJob


@pytest.fixture
def instance_id(app):
    """An empty test instance."""
    with app.app_context():
        return make_instance().id


def queue_new_build(api, instance_id, body=REPORT, query="async=true", headers=XML):
    """POST a report for a new build, queued; return the 202 reply."""
    response = api.post(f"/api/test-instance/{instance_id}/import/?{query}", data=body, headers=headers)
    assert response.status_code == 202, response.get_json()
    return response


def stored_objects(app):
    """Keys of every object in the app's storage under the imports prefix."""
    with app.app_context():
        return [key for key, _ in storage.get().list_objects(import_jobs.STORAGE_PREFIX)]


def test_async_import_answers_202_and_the_worker_stores_it_once(app, api, instance_id):
    queued = queue_new_build(api, instance_id, query="async=true&name=nightly&branch=main")
    job = queued.get_json()
    assert queued.headers["Location"] == job["url"] == f"/api/imports/{job['id']}/"
    assert (job["state"], job["bytes_total"], job["cases_stored"]) == ("queued", len(REPORT), 0)
    assert api.get(job["url"]).get_json()["state"] == "queued"
    with app.app_context():
        build = db.session.get(TestBuild, job["build_id"])
        assert (build.name, build.branch, build.cases_total) == ("nightly", "main", 0)
    assert len(stored_objects(app)) == 1
    with app.app_context():
        assert import_runner.drain(app) == 1
    done = api.get(job["url"]).get_json()
    assert (done["state"], done["bytes_read"], done["cases_stored"]) == ("done", len(REPORT), 5)
    assert done["cases"] == REPORT_COUNTS
    assert (done["build"]["id"], done["build"]["cases_total"], done["build"]["started"]) == (
        job["build_id"],
        5,
        "2026-03-01T09:59:00.000Z",
    )
    # the stored upload goes once imported; a second drain finds nothing to do
    assert stored_objects(app) == []
    with app.app_context():
        assert import_runner.drain(app) == 0
        assert counters_match_rows(job["build_id"])
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == 5


def test_async_import_into_an_existing_build(app, api, instance_id):
    first = api.post(f"/api/test-instance/{instance_id}/import/", data=REPORT, headers=XML).get_json()
    build_id = first["build"]["id"]
    extra, expected = synthetic_report(1, 3)
    path = f"/api/test-instance/{instance_id}/test-build/{build_id}/import/?async=1"
    job = api.post(path, data=extra, headers=XML)
    assert job.status_code == 202, job.get_json()
    with app.app_context():
        import_runner.drain(app)
    done = api.get(job.get_json()["url"]).get_json()
    assert (done["state"], done["build"]["id"], done["build"]["cases_total"]) == ("done", build_id, 5 + 3)
    assert {status: done["cases"][status] for status in expected} == expected


def test_an_upload_above_the_size_is_queued_without_asking(app, api, instance_id):
    app.config["ASYNC_IMPORT_BYTES"] = len(REPORT) - 1
    response = api.post(
        f"/api/test-instance/{instance_id}/import/",
        data=gzip.compress(REPORT),
        headers={**XML, "Content-Encoding": "gzip"},
    )
    assert response.status_code == 201
    queued = queue_new_build(api, instance_id, query="")
    assert queued.get_json()["state"] == "queued"


def test_a_bad_report_fails_with_the_sync_error_and_leaves_no_build(app, api, instance_id):
    bad = b"<testsuite name='x'><testcase name='a'></testsuite>"
    sync = api.post(f"/api/test-instance/{instance_id}/import/", data=bad, headers=XML)
    assert sync.status_code == 400
    job = queue_new_build(api, instance_id, body=bad).get_json()
    with app.app_context():
        import_runner.drain(app)
    failed = api.get(job["url"]).get_json()
    assert failed["state"] == "failed"
    assert failed["error"] == {**sync.get_json()["error"], "status": 400}
    assert failed["build_id"] is None
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TestBuild)) == 0


def test_async_flag_is_true_or_false(app, api, instance_id):
    response = api.post(f"/api/test-instance/{instance_id}/import/?async=maybe", data=REPORT, headers=XML)
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"async": "true or false"}


def test_an_unknown_job_is_a_404(app, api):
    assert api.get("/api/imports/999/").status_code == 404
    assert api.get("/api/imports/99999999999/").status_code == 404


def test_a_stale_claim_stores_nothing(app, api, instance_id):
    """A worker whose lease ran out (and whose job another claim took over) cannot store the report."""
    job_id = queue_new_build(api, instance_id).get_json()["id"]
    with app.app_context():
        queue = import_queue.DatabaseQueue()
        stale = queue.claim(lease_seconds=60)
        db.session.execute(update(ImportJob).values(lease_until=utcnow()))
        db.session.commit()
        fresh = queue.claim(lease_seconds=60)
        assert (stale.job_id, fresh.job_id) == (job_id, job_id)
        assert stale.token != fresh.token
        with pytest.raises(import_jobs.Superseded):
            import_jobs.run_job(job_id, stale.token, app.config["MAX_REPORT_BYTES"])
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == 0
        import_jobs.run_job(job_id, fresh.token, app.config["MAX_REPORT_BYTES"])
        with pytest.raises(import_jobs.Superseded):
            import_jobs.run_job(job_id, fresh.token, app.config["MAX_REPORT_BYTES"])
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == 5
        assert db.session.get(ImportJob, job_id).attempts == 2


def test_the_queue_depth_is_in_the_metrics(app, api, instance_id):
    queue_new_build(api, instance_id)
    queue_new_build(api, instance_id)
    with app.app_context():
        figures = {name: value for name, _, value in telemetry.depths()}
        assert figures["greenbar_import_queue_depth"] == 2
        assert figures["greenbar_oldest_job_age_seconds"] >= 0
        import_runner.drain(app)
        figures = {name: value for name, _, value in telemetry.depths()}
        # each finished build left a build.finished event in the outbox, which now waits the longest
        assert (figures["greenbar_import_queue_depth"], figures["greenbar_outbox_depth"]) == (0, 2)
        assert figures["greenbar_oldest_job_age_seconds"] > 0
        worker.drain()
        figures = {name: value for name, _, value in telemetry.depths()}
    assert figures == {
        "greenbar_import_queue_depth": 0,
        "greenbar_outbox_depth": 0,
        "greenbar_oldest_job_age_seconds": 0.0,
    }


@pytest.fixture
def sqs_queue(moto_url):
    """An import queue with a dead-letter queue after 5 receives, on moto."""
    client = boto3.client("sqs")
    dlq = client.create_queue(QueueName="imports-dlq")["QueueUrl"]
    dlq_arn = client.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = client.create_queue(
        QueueName="imports",
        Attributes={
            "RedrivePolicy": json.dumps({"maxReceiveCount": 5, "deadLetterTargetArn": dlq_arn}),
        },
    )["QueueUrl"]
    yield url
    client.delete_queue(QueueUrl=url)
    client.delete_queue(QueueUrl=dlq)


def visible_messages(url):
    """How many messages wait in a queue."""
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return sum(int(value) for value in attributes.values())


def test_sqs_queue_deletes_the_message_only_after_the_import(app, api, instance_id, sqs_queue):
    app.config["IMPORT_QUEUE_URL"] = sqs_queue
    job = queue_new_build(api, instance_id).get_json()
    assert visible_messages(sqs_queue) == 1
    with app.app_context():
        queue = import_queue.SqsQueue(sqs_queue, wait_seconds=1)
        claim = queue.claim(lease_seconds=30)
        assert claim.job_id == job["id"]
        # claimed but not yet imported: the message is still there, only invisible
        assert visible_messages(sqs_queue) == 1
        import_jobs.run_job(claim.job_id, claim.token, app.config["MAX_REPORT_BYTES"])
        queue.finish(claim)
    assert visible_messages(sqs_queue) == 0
    assert api.get(job["url"]).get_json()["state"] == "done"


def test_sqs_drops_a_redelivered_message_of_a_finished_job(app, api, instance_id, sqs_queue):
    """A worker that died after its import committed, before deleting the message, stores nothing twice."""
    app.config["IMPORT_QUEUE_URL"] = sqs_queue
    job = queue_new_build(api, instance_id).get_json()
    with app.app_context():
        queue = import_queue.SqsQueue(sqs_queue, wait_seconds=1)
        claim = queue.claim(lease_seconds=1)
        import_jobs.run_job(claim.job_id, claim.token, app.config["MAX_REPORT_BYTES"])
        # no finish(): the message comes back once its visibility runs out
        again = None
        for _ in range(10):
            again = queue.claim(lease_seconds=1)
            if visible_messages(sqs_queue) == 0:
                break
        assert again is None
        assert visible_messages(sqs_queue) == 0
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == 5
    assert api.get(job["url"]).get_json()["cases_stored"] == 5


def test_the_build_page_shows_a_waiting_import(app, api, auth, client, instance_id):
    job = queue_new_build(api, instance_id).get_json()
    auth.as_role("viewer")
    page = client.get(f"/builds/{job['build_id']}")
    assert page.status_code == 200
    assert f'id="import-{job["id"]}"' in page.text
    assert "Waiting to import a report" in page.text
    assert f'max="{len(REPORT)}" value="0"' in page.text
    with app.app_context():
        import_runner.drain(app)
    assert f'id="import-{job["id"]}"' not in client.get(f"/builds/{job['build_id']}").text
