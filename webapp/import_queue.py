"""Where queued imports wait: the database by default, SQS when ``GREENBAR_IMPORT_QUEUE_URL`` is set.

Both hand a worker a :class:`Claim`: the job id and a fresh token. The token
is what makes a job exactly-once (see :func:`webapp.import_jobs.run_job`).

- **Database:** the job rows are the queue. A claim takes the oldest queued
  job, or a running one whose lease ran out (its worker died), with ``FOR
  UPDATE SKIP LOCKED`` on MySQL so that workers never wait on each other. On
  SQLite, with no row locks, run one worker.
- **SQS:** a message per job, long-polled. The message stays invisible while
  the worker extends its visibility, and is deleted only after the import has
  committed (or failed for good); a worker that dies lets it reappear, and the
  queue's redrive policy sets it aside after 5 receives.
"""

import json
import threading
from dataclasses import dataclass
from datetime import timedelta

import boto3
from sqlalchemy import and_
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from webapp.extensions import db
from webapp.models import utcnow
from webapp.models_imports import QUEUED
from webapp.models_imports import RUNNING
from webapp.models_imports import ImportJob
from webapp.models_imports import new_token
from webapp.mysql_writes import claim_contended

# SQS's longest long poll
SQS_WAIT_SECONDS = 20


@dataclass(frozen=True)
class Claim:
    """A worker's hold on one job: its token and, on SQS, the message's receipt handle."""

    job_id: int
    token: str
    receipt: str | None = None


def take_job(job_id, lease_seconds, states):
    """Mark job ``job_id`` running under a new token and lease, if it is in one of ``states``; commit.

    :return: the token, or None when the job is done, failed or gone.
    """
    token = new_token()
    now = utcnow()
    taken = db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.state.in_(states))
        .values(
            state=RUNNING,
            token=token,
            lease_until=now + timedelta(seconds=lease_seconds),
            attempts=ImportJob.attempts + 1,
            started=db.func.coalesce(ImportJob.started, now),
        )
    )
    db.session.commit()
    return token if taken.rowcount == 1 else None


def extend_lease(claim, lease_seconds):
    """Push a running job's lease forward, on a connection of its own (the import's transaction is open)."""
    with db.engine.begin() as connection:
        connection.execute(
            update(ImportJob)
            .where(ImportJob.id == claim.job_id, ImportJob.token == claim.token, ImportJob.state == RUNNING)
            .values(lease_until=utcnow() + timedelta(seconds=lease_seconds))
        )


class DatabaseQueue:
    """The job rows themselves are the queue."""

    def __init__(self):
        # SQLite's single writer would make a lease extension wait for the import it extends
        self.heartbeats = db.engine.dialect.name != "sqlite"

    def enqueue(self, job):
        """A queued row is already in the queue."""

    def claim(self, lease_seconds):
        """Claim the oldest waiting job, or one whose worker's lease ran out; None when there is none."""
        now = utcnow()
        expired = and_(ImportJob.state == RUNNING, ImportJob.lease_until < now)
        waiting = or_(ImportJob.state == QUEUED, expired)
        try:
            job_id = db.session.scalar(
                select(ImportJob.id)
                .where(waiting)
                .order_by(ImportJob.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if job_id is None:
                db.session.commit()
                return None
            token = take_job(job_id, lease_seconds, (QUEUED, RUNNING))
        except OperationalError as error:
            db.session.rollback()
            if claim_contended(error):
                return None
            raise
        return Claim(job_id, token) if token else None

    def extend(self, claim, lease_seconds):
        """Keep the lease while the import runs."""
        if self.heartbeats:
            extend_lease(claim, lease_seconds)

    def finish(self, claim):
        """The job row records the outcome itself."""

    def release(self, claim):
        """A job another worker holds stays with it."""


class SqsQueue:
    """One SQS message per job; the job row still records state, token and progress."""

    heartbeats = True

    def __init__(self, url, client=None, wait_seconds=SQS_WAIT_SECONDS):
        self.url = url
        self.client = client or boto3.client("sqs")
        self.wait_seconds = wait_seconds

    def enqueue(self, job):
        """Send the job's message (before the job's row commits: a message for a job that never
        committed finds no job and is dropped)."""
        self.client.send_message(QueueUrl=self.url, MessageBody=json.dumps({"job": job.id}))

    def claim(self, lease_seconds):
        """Long-poll for a message and take its job; None when nothing came."""
        answer = self.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=lease_seconds,
        )
        for message in answer.get("Messages", []):
            job_id = json.loads(message["Body"])["job"]
            token = take_job(job_id, lease_seconds, (QUEUED, RUNNING))
            if token is None:
                # the job is done, failed or gone: its message has nothing left to do
                self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                return None
            return Claim(job_id, token, message["ReceiptHandle"])
        return None

    def extend(self, claim, lease_seconds):
        """Keep the message invisible (and the row's lease current) while the import runs."""
        self.client.change_message_visibility(
            QueueUrl=self.url, ReceiptHandle=claim.receipt, VisibilityTimeout=lease_seconds
        )
        extend_lease(claim, lease_seconds)

    def finish(self, claim):
        """The import committed (or failed for good): the message is done with."""
        self.client.delete_message(QueueUrl=self.url, ReceiptHandle=claim.receipt)

    def release(self, claim):
        """Another worker took the job over; its message is theirs to delete."""


def from_config(config):
    """The queue the configuration names."""
    url = config.get("IMPORT_QUEUE_URL")
    return SqsQueue(url) if url else DatabaseQueue()


class Heartbeat:
    """Extends a claim every third of its lease, from a thread, until stopped."""

    def __init__(self, app, queue, claim, lease_seconds):
        self.queue = queue
        self.stopped = threading.Event()
        self.thread = threading.Thread(
            target=self.beat, args=(app, queue, claim, lease_seconds), daemon=True, name="import-heartbeat"
        )

    def beat(self, app, queue, claim, lease_seconds):
        """Extend until stopped; a failed extension is logged and tried again next time."""
        with app.app_context():
            while not self.stopped.wait(lease_seconds / 3):
                try:
                    queue.extend(claim, lease_seconds)
                except Exception:
                    app.logger.exception("could not extend the lease of import job %s", claim.job_id)

    def __enter__(self):
        if self.queue.heartbeats:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join()
