"""The operation log: every operation that changes stored results, recorded in its own transaction.

:func:`record` adds the row to the caller's transaction, so a rolled-back
operation leaves no record and a committed one always has one. The API
records each write it commits, the admin panel each edit, and the worker each
queued import. ``flask worker`` ships the records to storage as gzip'd JSON
Lines under ``oplog/YYYY/MM/DD/HH-<host>-<seq>.jsonl.gz``, at least once
(each record keeps its ``record_id``), and marks them shipped.
"""

import gzip
import io
import json
import socket

from sqlalchemy import select
from sqlalchemy import update

from webapp import storage
from webapp.extensions import db
from webapp.models import utcnow
from webapp.models_oplog import OperationRecord

SHIP_BATCH = 10_000
PREFIX = "oplog/"


def record(action, user=None, instance_id=None, build_id=None, target="", counts=None, request_id=""):
    """Add a record of ``action`` to the caller's transaction (the caller commits)."""
    entry = OperationRecord(
        action=action[:64],
        user_id=getattr(user, "id", None),
        username=getattr(user, "username", "") or "",
        instance_id=instance_id,
        build_id=build_id,
        target=str(target)[:255],
        counts=json.dumps(counts) if counts is not None else None,
        request_id=(request_id or "")[:64],
    )
    db.session.add(entry)
    return entry


def as_json(entry):
    """One record as a JSON Lines object."""
    return {
        "record_id": entry.record_id,
        "at": entry.at.isoformat(),
        "user_id": entry.user_id,
        "username": entry.username,
        "action": entry.action,
        "instance_id": entry.instance_id,
        "build_id": entry.build_id,
        "target": entry.target,
        "counts": json.loads(entry.counts) if entry.counts else None,
        "request_id": entry.request_id,
    }


def object_key(now, host, sequence):
    """Where a shipped batch goes: by hour, then host, then the batch's first record."""
    return f"{PREFIX}{now:%Y/%m/%d/%H}-{host}-{sequence:012d}.jsonl.gz"


def ship(batch=SHIP_BATCH, host=None):
    """Write unshipped records to storage and mark them shipped; return how many were shipped.

    The records are locked (``SKIP LOCKED`` on MySQL) while their object is
    written, so two workers never ship the same records at once. A worker that
    dies after writing and before committing ships them again next time, under
    the same key when nothing newer arrived: at least once, never lost.
    """
    entries = db.session.scalars(
        select(OperationRecord)
        .where(OperationRecord.shipped.is_(False))
        .order_by(OperationRecord.id)
        .limit(batch)
        .with_for_update(skip_locked=True)
    ).all()
    if not entries:
        db.session.commit()
        return 0
    lines = "".join(json.dumps(as_json(entry)) + "\n" for entry in entries).encode()
    key = object_key(utcnow(), host or socket.gethostname(), entries[0].id)
    storage.get().put(key, io.BytesIO(gzip.compress(lines)))
    db.session.execute(
        update(OperationRecord)
        .where(OperationRecord.id.in_([entry.id for entry in entries]))
        .values(shipped=True)
    )
    db.session.commit()
    return len(entries)
