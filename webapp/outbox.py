"""The transactional outbox: background work written in the same transaction as its cause.

A request (or an import, or the worker itself) calls :func:`enqueue`; the row
commits or rolls back with everything else the transaction wrote, so nothing
is sent for a rolled-back write and nothing is lost when a process dies.
``flask worker`` (:mod:`webapp.worker`) drains the table:

1. :func:`claim`, in one short transaction, selects ready rows in index order
   with ``FOR UPDATE SKIP LOCKED`` (MySQL/MariaDB 10.6+), moves their
   ``available_at`` forward by a lease and commits. A second worker skips the
   locked rows while the claim runs and finds them leased after it commits, so
   two workers never hold the same row.
2. The worker runs the row's job outside that transaction.
3. :func:`complete` marks it done in the job's own transaction, or
   :func:`reschedule` sets the next attempt with exponential backoff.

A worker killed mid-job leaves its rows leased; when the lease ends another
worker claims them again, with the same ``delivery_id``: delivery is at least
once, and receivers drop repeats by that id. SQLite has no row locks (the
``FOR UPDATE`` is left out there), so on SQLite run a single worker.

Job kinds are registered with :func:`job`; the handler gets the claimed
:class:`Claimed` row.
"""

import json
import random
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from webapp.extensions import db
from webapp.models import utcnow
from webapp.models_messages import DEAD
from webapp.models_messages import DONE
from webapp.models_messages import READY
from webapp.models_messages import OutboxMessage
from webapp.mysql_writes import claim_contended

MAX_ATTEMPTS = 8
# each retry waits four times longer: with the default 16 s base, 8 attempts span about a day
BACKOFF_FACTOR = 4
ERROR_LIMIT = 2000

JOBS = {}


class Retry(Exception):  # noqa: N818 (an instruction to the worker, not an error)
    """Raised by a job that failed in a way worth retrying, after it wrote what it wants kept.

    Unlike any other exception, it does not roll the job's writes back (a
    webhook attempt's log line survives the failure it records).
    """


@dataclass(frozen=True)
class Claimed:
    """A claimed outbox row, detached from any session: what a job handler receives."""

    id: int
    kind: str
    payload: dict
    delivery_id: str
    attempts: int


def job(kind):
    """Register the decorated function as the handler of outbox rows of ``kind``."""

    def register(handler):
        JOBS[kind] = handler
        return handler

    return register


def enqueue(kind, payload, delivery_id=None):
    """Add a row of work to the caller's transaction (the caller commits).

    :param payload: JSON-serialisable arguments of the job.
    """
    message = OutboxMessage(kind=kind, payload=json.dumps(payload), available_at=utcnow())
    if delivery_id is not None:
        message.delivery_id = delivery_id
    db.session.add(message)
    return message


def retry_delay(attempts, base):
    """Seconds to wait after attempt number ``attempts`` failed, with a little jitter."""
    return base * BACKOFF_FACTOR ** (attempts - 1) * random.uniform(0.9, 1.1)


def due_ids(limit, now):
    """The claim's locking read: ids of due ready rows, through the covering index, skipping locked ones."""
    return (
        select(OutboxMessage.id)
        .where(OutboxMessage.state == READY, OutboxMessage.available_at <= now)
        .order_by(OutboxMessage.available_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def claim(limit, lease_seconds):
    """Lease up to ``limit`` ready rows whose time has come, and commit; return them as :class:`Claimed`.

    The locking read touches only the covering index (so it locks just the
    rows it returns); the payloads are then read by primary key. A deadlock or
    lock wait between claimers and producers (InnoDB gap locks) is not an
    error: this round claims nothing and the next one tries again.
    """
    now = utcnow()
    try:
        ids = db.session.scalars(due_ids(limit, now)).all()
        rows = []
        if ids:
            db.session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(
                    available_at=now + timedelta(seconds=lease_seconds), attempts=OutboxMessage.attempts + 1
                )
            )
            rows = db.session.execute(
                select(
                    OutboxMessage.id,
                    OutboxMessage.kind,
                    OutboxMessage.payload,
                    OutboxMessage.delivery_id,
                    OutboxMessage.attempts,
                )
                .where(OutboxMessage.id.in_(ids))
                .order_by(OutboxMessage.id)
            ).all()
        db.session.commit()
    except OperationalError as error:
        db.session.rollback()
        if claim_contended(error):
            return []
        raise
    return [Claimed(row.id, row.kind, json.loads(row.payload), row.delivery_id, row.attempts) for row in rows]


def complete(claimed):
    """Mark a row done, in the job's transaction (the caller commits)."""
    db.session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == claimed.id)
        .values(state=DONE, finished=utcnow(), last_error=None)
    )


def reschedule(claimed, error, backoff_base):
    """Set a failed row's next attempt, or mark it dead after :data:`MAX_ATTEMPTS` (caller commits)."""
    values = {"last_error": str(error)[:ERROR_LIMIT]}
    if claimed.attempts >= MAX_ATTEMPTS:
        values.update(state=DEAD, finished=utcnow())
    else:
        delay = retry_delay(claimed.attempts, backoff_base)
        values["available_at"] = utcnow() + timedelta(seconds=delay)
    db.session.execute(update(OutboxMessage).where(OutboxMessage.id == claimed.id).values(values))


def redeliver(message):
    """Queue a row again from the start, keeping its delivery id (the caller commits)."""
    message.state = READY
    message.attempts = 0
    message.available_at = utcnow()
    message.finished = None
