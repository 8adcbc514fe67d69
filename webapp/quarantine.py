"""Quarantine: tests whose failures stop counting for a while, with a reason and an owner.

An entry applies from its creation until it expires or is removed, whichever
comes first; expiry needs no job, since every reader asks for entries that
have not expired yet. Removed entries are kept as the record of who removed
them and when.
"""

from datetime import datetime
from datetime import timedelta
from datetime import timezone

from flask import current_app
from sqlalchemy import select

from webapp.exceptions import FieldError
from webapp.extensions import db
from webapp.models import User
from webapp.models import test_key
from webapp.models import utcnow
from webapp.models_actions import QuarantineEntry

DEFAULT_DAYS = 30
REASON_LIMIT = 4000


class QuarantineError(FieldError):
    """An entry that cannot be stored; ``field`` names the culprit."""


def max_days():
    """The longest an entry may last, in days (``GREENBAR_QUARANTINE_MAX_DAYS``)."""
    return current_app.config.get("QUARANTINE_MAX_DAYS", 90)


def active_condition(instance_id, now=None):
    """The SQL condition of an instance's entries that apply now."""
    now = now or utcnow()
    return (
        (QuarantineEntry.instance_id == instance_id)
        & QuarantineEntry.removed.is_(None)
        & (QuarantineEntry.expires > now)
    )


def active_entries(instance_id):
    """The entries that apply now, oldest first."""
    return db.session.scalars(
        select(QuarantineEntry).where(active_condition(instance_id)).order_by(QuarantineEntry.id)
    ).all()


def quarantined_keys(instance_id):
    """The test keys of the tests quarantined now: what the gate and the lists leave out or mark."""
    return set(db.session.scalars(select(QuarantineEntry.test_key).where(active_condition(instance_id))))


def entry_for(instance_id, key):
    """The entry that applies now to one test, or None."""
    return db.session.scalar(
        select(QuarantineEntry)
        .where(active_condition(instance_id), QuarantineEntry.test_key == key)
        .order_by(QuarantineEntry.id.desc())
        .limit(1)
    )


def get_entry(instance_id, entry_id):
    """An entry of the instance (applying or not), or None."""
    entry = db.session.get(QuarantineEntry, entry_id) if entry_id <= 2**31 - 1 else None
    return entry if entry is not None and entry.instance_id == instance_id else None


def check_expiry(expires, now):
    """The expiry of a new entry: the default when None, else within the configured maximum.

    :raise QuarantineError: for a time in the past or beyond the maximum.
    """
    if expires is None:
        return now + timedelta(days=min(DEFAULT_DAYS, max_days()))
    if expires.tzinfo is None:
        expires = expires.replace(tzinfo=timezone.utc)
    if expires <= now:
        raise QuarantineError("expires must be in the future", "expires")
    if expires > now + timedelta(days=max_days()):
        raise QuarantineError(f"expires must be at most {max_days()} days ahead", "expires")
    return expires


def add_entry(instance_id, suite, name, reason, creator, owner=None, expires=None):
    """Quarantine one test of an instance; an entry that applies to it already is replaced.

    :param owner: a :class:`User`, or None for the creator.
    :raise QuarantineError: for a missing reason or suite or name, or a bad expiry.
    """
    for field, value, limit in (("suite", suite, 255), ("name", name, 512), ("reason", reason, REASON_LIMIT)):
        if not value or not value.strip():
            raise QuarantineError(f"{field} is required", field)
        if len(value) > limit:
            raise QuarantineError(f"{field} must be at most {limit} characters", field)
    now = utcnow()
    expires = check_expiry(expires, now)
    owner = owner or creator
    key = test_key(suite, name)
    previous = entry_for(instance_id, key)
    if previous is not None:
        remove_entry(previous, creator)
    entry = QuarantineEntry(
        instance_id=instance_id,
        suite=suite,
        name=name,
        test_key=key,
        reason=reason,
        owner_id=owner.id,
        owner_name=owner.username,
        created_by_id=creator.id,
        created_by_name=creator.username,
        created=now,
        expires=expires,
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def remove_entry(entry, user):
    """End an entry now, recording who did; an entry already ended stays as it was."""
    if entry.removed is None:
        entry.removed, entry.removed_by_id, entry.removed_by_name = utcnow(), user.id, user.username
        db.session.flush()
    return entry


def is_active(entry, now=None):
    """Whether an entry applies now."""
    return entry.removed is None and entry.expires > (now or utcnow())


def user_named(username):
    """An active user by username, or None."""
    return db.session.scalar(select(User).where(User.username == username, User.active.is_(True)))


def node_id(entry):
    """The line of the CI export: ``suite::name``, a pytest node id when the suite is a file."""
    return f"{entry.suite}::{entry.name}"


def parse_expiry(value):
    """Read a form's ``YYYY-MM-DD`` expiry as the end of that day, UTC; None when blank.

    :raise QuarantineError: when it is no such date.
    """
    value = (value or "").strip()
    if not value:
        return None
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise QuarantineError("expires must be a date like 2030-01-31", "expires") from None
    return day.replace(hour=23, minute=59, second=59, tzinfo=timezone.utc)
