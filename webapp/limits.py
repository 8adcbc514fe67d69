"""Slowing down password guessing and reset-mail floods: counters shared by every app server.

Failed password attempts are counted per username *at* a client address
(``LOGIN_FAILURE_LIMIT``, default 10 a minute) and per address, whatever the
name (``LOGIN_ADDRESS_FAILURE_LIMIT``, default 50 a minute, against one address
trying many names). Once either is used up, further password attempts from
there are refused with a 429 *before*
the password is checked, so a right guess made while blocked reveals nothing.
A stranger elsewhere cannot lock a user out, and a valid API token is never
refused (:mod:`webapp.security` checks tokens first). Each lockout is recorded
(:class:`~webapp.models.LoginLockout`) so admins can see it and lift it.

Requests for password-reset links are limited too, since each one sends an
e-mail: ``PASSWORD_RESET_ACCOUNT_LIMIT`` (default 5 an hour) per username or
e-mail address asked for and ``PASSWORD_RESET_ADDRESS_LIMIT`` (default 20 an
hour) per client address. Every request counts, and by what was typed, so
whether a request is refused never depends on whether the account exists.

Where the counters live decides whether the limits hold as configured: with
several gunicorn workers or hosts, counters of their own would multiply them.

- ``REDIS_URL`` set (``GREENBAR_REDIS_URL``): Redis, moving windows.
- otherwise a MySQL database: the ``rate_counters`` table (:class:`DatabaseStorage`),
  fixed windows.
- otherwise (SQLite, a single machine): in this process's memory.

``RATELIMIT_ENABLED = False`` switches the counting off. The ``limits`` library
is used directly, not through Flask-Limiter: no route has a declared limit,
and that extension's checks around every request would only cost time.
"""

import hashlib
import math
import random
import time
from datetime import datetime
from datetime import timezone

from flask import current_app
from flask import request
from limits import parse as parse_limit
from limits.storage import MemoryStorage
from limits.storage import Storage
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from limits.strategies import MovingWindowRateLimiter
from sqlalchemy import case
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import TooManyRequests

from webapp.extensions import db
from webapp.models import LOCKOUT_NAME_LENGTH
from webapp.models import LoginLockout
from webapp.models import RateCounter

EXTENSION = "greenbar_login_limiter"
NAMESPACE = "greenbar-failed-login"
RESET_NAMESPACE = "greenbar-reset-request"
RESET_MAIL_NAMESPACE = "greenbar-reset-mail"
# one incr in this many also deletes long-expired counters, so one-off keys do not pile up
SWEEP_ODDS = 200
SWEEP_AFTER_SECONDS = 86400


class RetryLater(TooManyRequests):
    """A 429 that knows when to try again (the ``Retry-After`` seconds, sent by :mod:`webapp.errors`)."""

    def __init__(self, retry_after):
        super().__init__()
        self.retry_after = retry_after


class TooManyAttempts(RetryLater):
    """Too many failed logins for a username at an address, or from an address."""

    description = (
        "Too many failed login attempts for this account from this address, or from this address. "
        "Wait a minute, then try again (an API token is never refused)."
    )


class TooManyResetRequests(RetryLater):
    """Too many reset links asked for one username or e-mail address, or from one client address."""

    description = (
        "Too many password-reset requests for this username or e-mail address, or from this "
        "address. No e-mail was sent."
    )


class DatabaseStorage(Storage):
    """Fixed-window counters in the ``rate_counters`` table of a MySQL database.

    Each call runs in a transaction of its own on its own connection, so a
    count is kept even when the request that made it is rolled back.
    """

    STORAGE_SCHEME = None

    def __init__(self, engine):
        super().__init__()
        self.engine = engine

    @property
    def base_exceptions(self):
        """What the database driver raises."""
        return DBAPIError

    @staticmethod
    def row_key(key):
        """The stored key: a digest, bounded and ASCII whatever the client typed."""
        return hashlib.sha256(key.encode()).hexdigest()

    def incr(self, key, expiry, amount=1):
        """Add ``amount`` to the counter, starting a new window of ``expiry`` seconds if it ended."""
        now = time.time()
        table = RateCounter.__table__
        statement = mysql_insert(table).values(key=self.row_key(key), count=amount, expires=now + expiry)
        fresh = table.c.expires <= now
        # MySQL assigns left to right: count is decided while expires still holds the old value
        statement = statement.on_duplicate_key_update(
            count=case((fresh, amount), else_=table.c.count + amount),
            expires=case((fresh, now + expiry), else_=table.c.expires),
        )
        with self.engine.begin() as connection:
            connection.execute(statement)
            count = connection.scalar(select(table.c.count).where(table.c.key == self.row_key(key)))
            if random.randrange(SWEEP_ODDS) == 0:  # noqa: S311 (housekeeping, not security)
                connection.execute(delete(table).where(table.c.expires < now - SWEEP_AFTER_SECONDS))
        return count

    def get(self, key):
        """The counter's value in its current window (0 once the window ended)."""
        table = RateCounter.__table__
        with self.engine.connect() as connection:
            count = connection.scalar(
                select(table.c.count).where(table.c.key == self.row_key(key), table.c.expires > time.time())
            )
        return count or 0

    def get_expiry(self, key):
        """When the counter's window ends, in epoch seconds."""
        table = RateCounter.__table__
        with self.engine.connect() as connection:
            expires = connection.scalar(select(table.c.expires).where(table.c.key == self.row_key(key)))
        return expires or time.time()

    def check(self):
        """Whether the database answers."""
        with self.engine.connect() as connection:
            return connection.scalar(select(1)) == 1

    def reset(self):
        """Delete every counter."""
        with self.engine.begin() as connection:
            return connection.execute(delete(RateCounter.__table__)).rowcount

    def clear(self, key):
        """Delete one counter."""
        with self.engine.begin() as connection:
            connection.execute(delete(RateCounter.__table__).where(RateCounter.key == self.row_key(key)))


def make_limiter(app):
    """The limiter over the store the configuration calls for (see the module docstring)."""
    redis_url = app.config.get("REDIS_URL")
    if redis_url:
        storage = storage_from_string(redis_url, key_prefix=app.config["RATELIMIT_KEY_PREFIX"])
        return MovingWindowRateLimiter(storage)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("mysql"):
        with app.app_context():
            return FixedWindowRateLimiter(DatabaseStorage(db.engine))
    return MovingWindowRateLimiter(MemoryStorage())


def get_remote_address():
    """The client's address (the proxy's forwarded one, through ProxyFix)."""
    return request.remote_addr or "127.0.0.1"


def login_counters(username, address):
    """The counters one password attempt touches: ``(username, address)`` pairs, "" for any name."""
    return ((username.strip().lower()[:LOCKOUT_NAME_LENGTH], address), ("", address))


def login_limit(username, address):
    """The limit of one login counter: a username at an address, or (with "") the whole address."""
    return parse_limit(
        current_app.config["LOGIN_FAILURE_LIMIT" if username else "LOGIN_ADDRESS_FAILURE_LIMIT"]
    )


def counter_key(username, address):
    """The limiter key of one login counter."""
    return f"user:{username}@address:{address}" if username else f"address:{address}"


def seconds_to_wait(limiter, namespace, counters):
    """Seconds until the first used-up counter frees up, or None when none is used up.

    :param counters: ``(limit item, key)`` pairs.
    """
    for item, key in counters:
        if not limiter.test(item, namespace, key):
            reset_at = limiter.get_window_stats(item, namespace, key).reset_time
            return max(1, math.ceil(reset_at - time.time()))
    return None


def attempt_login(username, check):
    """Run ``check()`` (which returns a user or None) unless this attempt is blocked.

    :param username: the name the client claims, counted even when no such user exists.
    :param check: verifies the credentials; a None result counts as a failure.
    :raise TooManyAttempts: when the username at this address, or the address, has used up its failures.
    """
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return check()
    counters = [(login_limit(*pair), pair) for pair in login_counters(username, get_remote_address())]
    wait = seconds_to_wait(limiter, NAMESPACE, [(item, counter_key(*pair)) for item, pair in counters])
    if wait is not None:
        raise TooManyAttempts(retry_after=wait)
    user = check()
    if user is None:
        for item, pair in counters:
            key = counter_key(*pair)
            limiter.hit(item, NAMESPACE, key)
            if not limiter.test(item, NAMESPACE, key):
                record_lockout(*pair, limiter.get_window_stats(item, NAMESPACE, key).reset_time)
    return user


def record_lockout(username, address, reset_time):
    """Note a used-up login counter for admins, in a transaction of its own."""
    until = datetime.fromtimestamp(reset_time, timezone.utc)
    with db.engine.begin() as connection:
        table = LoginLockout.__table__
        updated = connection.execute(
            table.update().where(table.c.username == username, table.c.address == address).values(until=until)
        )
        if updated.rowcount == 0:
            try:
                with connection.begin_nested():
                    connection.execute(table.insert().values(username=username, address=address, until=until))
            except IntegrityError:
                pass  # another worker recorded the same lockout a moment earlier


def active_lockouts():
    """The lockouts still in force, latest ending first."""
    now = datetime.now(timezone.utc)
    return db.session.scalars(
        select(LoginLockout).where(LoginLockout.until > now).order_by(LoginLockout.until.desc())
    ).all()


def lift_lockout(lockout_id):
    """End a lockout now: its counter starts again from zero. Returns False when there is none."""
    lockout = db.session.get(LoginLockout, lockout_id)
    if lockout is None:
        return False
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is not None:
        limiter.clear(
            login_limit(lockout.username, lockout.address),
            NAMESPACE,
            counter_key(lockout.username, lockout.address),
        )
    db.session.delete(lockout)
    db.session.commit()
    return True


def count_reset_request(login):
    """Count one request for a reset link for ``login``, unless it is over a limit.

    The key is the login as typed (case and spaces aside), never the account it
    matches, so unknown names are limited exactly like real ones.

    :raise TooManyResetRequests: when ``login`` or the client address has used up its requests.
    """
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return
    counters = [
        (parse_limit(current_app.config["PASSWORD_RESET_ACCOUNT_LIMIT"]), f"login:{login.strip().lower()}"),
        (parse_limit(current_app.config["PASSWORD_RESET_ADDRESS_LIMIT"]), f"address:{get_remote_address()}"),
    ]
    wait = seconds_to_wait(limiter, RESET_NAMESPACE, counters)
    if wait is not None:
        raise TooManyResetRequests(retry_after=wait)
    for item, key in counters:
        limiter.hit(item, RESET_NAMESPACE, key)


def may_mail_reset_link(user_id):
    """Count one reset mail to this account; False once it has had its share of the window.

    A user is found by username or by e-mail address, two logins with counters
    of their own; this caps the mails one inbox gets however the account is named.
    The caller stays silent when it is False, so nothing tells the account exists.
    """
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return True
    item = parse_limit(current_app.config["PASSWORD_RESET_ACCOUNT_LIMIT"])
    return limiter.hit(item, RESET_MAIL_NAMESPACE, f"account:{user_id}")


def init_app(app):
    """Give the app its own limiter, so apps built side by side (tests) never share counts."""
    app.config.setdefault("LOGIN_FAILURE_LIMIT", "10 per minute")
    app.config.setdefault("LOGIN_ADDRESS_FAILURE_LIMIT", "50 per minute")
    app.config.setdefault("RATELIMIT_KEY_PREFIX", "greenbar")
    if app.config.get("RATELIMIT_ENABLED", True):
        app.extensions[EXTENSION] = make_limiter(app)
