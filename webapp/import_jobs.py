"""Queued imports: the upload is stored and answered at once; ``flask worker`` imports it later.

A queued import keeps big reports off the request path. :func:`queue_import`
stores the upload's report files in :mod:`webapp.storage`, makes the job row
(and, for a new build, the build, so its page can show the progress) and hands
the job to the queue. The worker claims a job (:mod:`webapp.import_queue`),
reads the files back and runs the same import as a synchronous upload in one
transaction, which also marks the job done: a job that runs twice (a worker
killed mid-import, one message handed to two workers) stores its report once.
"""

import json
import time
import uuid

from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update

from webapp import imports
from webapp import oplog
from webapp import storage
from webapp import telemetry
from webapp.exceptions import GreenbarError
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import User
from webapp.models import utcnow
from webapp.models_imports import DONE
from webapp.models_imports import FAILED
from webapp.models_imports import QUEUED
from webapp.models_imports import RUNNING
from webapp.models_imports import ImportJob
from webapp.models_messages import OutboxMessage

STORAGE_PREFIX = "imports/"
# how often a running import writes its progress (bytes read, cases stored)
PROGRESS_SECONDS = 0.5
# runs that died without an outcome (a crash, a lost connection) before a job is given up
MAX_ATTEMPTS = 5


class Superseded(Exception):  # noqa: N818 (an outcome, not a fault)
    """The job was finished, or claimed again, by another worker: this run stores nothing."""


def queue_import(build, files, user_id, request_id="", new_build=False):
    """Store the report files and queue their import into ``build``; the caller commits.

    :param files: ``(label, binary stream, compressed)`` as :func:`webapp.imports.report_files` gives.
    """
    folder = f"{STORAGE_PREFIX}{uuid.uuid4().hex}/"
    stored, total = [], 0
    for number, (label, stream, compressed) in enumerate(files):
        stream.seek(0, 2)
        size = stream.tell()
        stream.seek(0)
        key = f"{folder}{number}"
        storage.get().put(key, stream)
        stored.append({"key": key, "label": label, "compressed": bool(compressed), "size": size})
        total += size
    job = ImportJob(
        instance_id=build.instance_id,
        build_id=build.id,
        new_build=new_build,
        user_id=user_id,
        request_id=request_id,
        files=json.dumps(stored),
        bytes_total=total,
        state=QUEUED,
    )
    db.session.add(job)
    db.session.flush()
    return job


def job_files(job):
    """The stored report files of ``job`` as the import takes them, counting the bytes read."""
    counter = ByteCounter()
    files = []
    for item in json.loads(job.files):
        files.append(
            (
                item["label"],
                CountingReader(storage.get().open(item["key"]), counter),
                item["compressed"] or None,
            )
        )
    return files, counter


class ByteCounter:
    """Bytes read so far across a job's files."""

    def __init__(self):
        self.count = 0


class CountingReader:
    """A read-only stream that counts what is read through it (seeking back to the start only)."""

    def __init__(self, stream, counter):
        self.stream = stream
        self.counter = counter

    def read(self, size=-1):
        """Read and count."""
        data = self.stream.read(size)
        self.counter.count += len(data)
        return data

    def seek(self, offset, whence=0):
        """The import rewinds each file before reading it; a fresh stream is already there."""
        if (offset, whence) != (0, 0):
            raise OSError("a stored report is read from its start only")
        return 0


class Progress:
    """Writes a running job's progress at most every :data:`PROGRESS_SECONDS`, on its own connection.

    The import's transaction is still open, so progress goes through a second
    connection that commits at once; the build page and the job's JSON read it.
    SQLite has one writer at a time, so there progress is written at the end only.
    """

    def __init__(self, job_id, counter):
        self.job_id = job_id
        self.counter = counter
        self.last = 0.0
        self.live = db.engine.dialect.name != "sqlite"

    def __call__(self, cases):
        """Note ``cases`` stored so far; write if it is time."""
        now = time.monotonic()
        if not self.live or now - self.last < PROGRESS_SECONDS:
            return
        self.last = now
        with db.engine.begin() as connection:
            connection.execute(
                update(ImportJob)
                .where(ImportJob.id == self.job_id, ImportJob.state == RUNNING)
                .values(bytes_read=self.counter.count, cases_stored=cases)
            )


def run_job(job_id, token, max_bytes):
    """Import the stored files of a claimed job and mark it done, in one transaction.

    :raise Superseded: another claim finished or took the job; nothing was stored.
    """
    job = db.session.get(ImportJob, job_id)
    if job is None or job.state != RUNNING or job.token != token:
        db.session.rollback()
        raise Superseded(job_id)
    if job.attempts > MAX_ATTEMPTS:
        fail(
            job_id,
            token,
            {
                "status": 500,
                "fields": {},
                "message": f"the import failed {MAX_ATTEMPTS} times; the worker's log says why",
            },
        )
        return
    build = db.session.get(TestBuild, job.build_id)
    files, counter = job_files(job)
    try:
        reply = imports.import_files(
            build, files, max_bytes, new_build=job.new_build, progress=Progress(job_id, counter)
        )
    except GreenbarError as error:
        db.session.rollback()
        fail(job_id, token, error_body(error))
        return
    finished = db.session.execute(
        update(ImportJob)
        .where(ImportJob.id == job_id, ImportJob.token == token, ImportJob.state == RUNNING)
        .values(
            state=DONE,
            finished=utcnow(),
            bytes_read=counter.count,
            cases_stored=reply["cases"]["total"],
            reply=json.dumps(reply),
            lease_until=None,
        )
    )
    if finished.rowcount != 1:
        db.session.rollback()
        raise Superseded(job_id)
    oplog.record(
        "import.queued",
        user=db.session.get(User, job.user_id) if job.user_id else None,
        instance_id=job.instance_id,
        build_id=job.build_id,
        target=f"import_job:{job_id}",
        counts=reply["cases"],
        request_id=job.request_id,
    )
    db.session.commit()
    storage.get().delete_many(item["key"] for item in json.loads(job.files))


def error_body(error):
    """The error a synchronous import would have answered, as ``{"status", "message", "fields"}``."""
    return {"status": error.status, "message": error.message, "fields": getattr(error, "fields", {})}


def fail(job_id, token, error):
    """Mark a job failed with ``error``; a build made for it goes, as a failed upload stores nothing."""
    job = db.session.get(ImportJob, job_id)
    if job is None or job.token != token or job.state != RUNNING:
        db.session.rollback()
        raise Superseded(job_id)
    job.state, job.finished, job.error, job.lease_until = FAILED, utcnow(), json.dumps(error), None
    build_id = job.build_id
    if job.new_build:
        job.build_id = None
        db.session.flush()
        db.session.execute(delete(TestBuild).where(TestBuild.id == build_id))
    db.session.commit()
    storage.get().delete_many(item["key"] for item in json.loads(job.files))


def pending_for_build(build_id):
    """The queued and running imports into a build, oldest first (the build page shows their progress)."""
    return db.session.scalars(
        select(ImportJob)
        .where(ImportJob.build_id == build_id, ImportJob.state.in_((QUEUED, RUNNING)))
        .order_by(ImportJob.id)
    ).all()


def settled(job_id):
    """Whether the job is done or failed (so a re-delivered message for it can go)."""
    db.session.rollback()
    return db.session.scalar(select(ImportJob.state).where(ImportJob.id == job_id)) in (DONE, FAILED, None)


def backlog():
    """Depth and age figures of the waiting work, for /metrics and CloudWatch."""
    now = utcnow()
    queued = db.session.execute(
        select(db.func.count(), db.func.min(ImportJob.created)).where(ImportJob.state.in_((QUEUED, RUNNING)))
    ).one()
    outbox = db.session.execute(
        select(db.func.count(), db.func.min(OutboxMessage.created)).where(
            OutboxMessage.state == "ready", OutboxMessage.available_at <= now
        )
    ).one()
    oldest = min((when for when in (queued[1], outbox[1]) if when is not None), default=None)
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    return [
        ("greenbar_import_queue_depth", "Queued and running imports.", queued[0]),
        ("greenbar_outbox_depth", "Outbox messages due for delivery.", outbox[0]),
        ("greenbar_oldest_job_age_seconds", "Age of the oldest waiting import or outbox message.", age),
    ]


telemetry.DEPTH_PROBES.append(backlog)
