"""Checking pooled MySQL connections before use, but only those that sat idle.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip
for every request. A connection that answered a moment ago needs no ping, so
only one idle for longer than :data:`IDLE_PING_SECONDS` is pinged, and a
dead one (MariaDB restarted, an RDS failover, a dropped network) is replaced
before a request uses it.

No ping finds a connection that died while busy, or less than
:data:`IDLE_PING_SECONDS` after its last use: a failover right after a request
leaves the worker's next request a dead connection. SQLAlchemy then renews the
whole pool, and the request that met the dead connection is either run once
more or answered with a 503 (see :mod:`webapp.errors`): a read (GET, HEAD) that
committed nothing runs once more, from the start, on a fresh connection
(:func:`dispatch_running_lost_reads_again`); anything else gets the 503, since
running it again could store twice what it already committed (a write's client
retries, with its Idempotency-Key).
"""

import time

from flask import g
from flask import has_app_context
from flask import request
from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from webapp.extensions import db

IDLE_PING_SECONDS = 2.0
# requests that only read: run once more after losing their connection, unless they committed
READ_METHODS = frozenset({"GET", "HEAD"})


class RunAgain(Exception):  # noqa: N818 (an instruction to the dispatcher, not an error)
    """Raised by the 503 handler for a read that lost its connection and committed nothing."""


def note_idle_since(dbapi_connection, connection_record):
    """Remember when the connection went back to the pool."""
    connection_record.info["idle_since"] = time.monotonic()


def ping_if_idle(dbapi_connection, connection_record, connection_proxy):
    """Ping a connection that has been idle for a while; a dead one is swapped for a new one."""
    idle_since = connection_record.info.get("idle_since")
    if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
        return
    try:
        dbapi_connection.ping(reconnect=False)
    except Exception as error:  # any failure means this connection cannot be trusted
        raise DisconnectionError(f"idle connection failed its ping: {error}") from error


def note_commit(connection):
    """Remember that this request committed: running it again could store twice."""
    if has_app_context():
        g.database_committed = True


def may_run_again():
    """Whether the request that just lost its connection is a read that may run once more.

    Only once, and only while it has committed nothing: a COMMIT lost on the way
    may have been applied. What it wrote without committing died with the
    connection, so running it again stores it once.
    """
    return (
        request.method in READ_METHODS and not g.get("database_committed") and not g.get("database_ran_again")
    )


def ran_again():
    """Whether this request is the second run of a read that lost its connection."""
    return bool(g.get("database_ran_again"))


def dispatch_running_lost_reads_again(dispatch):
    """Call ``dispatch`` (Flask's full dispatch); when a read asks to (:class:`RunAgain`), once more.

    The second run starts as the first did: a new database session (whose
    connection comes from the renewed pool) and ``g`` as it was before the first
    run, so nothing the first one loaded (the logged-in user, cached rows) is reused.
    """
    before = dict(vars(g))
    try:
        return dispatch()
    except RunAgain:
        db.session.remove()
        vars(g).clear()
        vars(g).update(before)
        g.database_ran_again = True
        return dispatch()


def init_app(app):
    """Watch the pools of the app's MySQL engines (SQLite's connections are local files), and commits."""
    with app.app_context():
        for engine in db.engines.values():
            event.listen(engine, "commit", note_commit)
            if engine.dialect.name == "mysql":
                event.listen(engine, "checkin", note_idle_since)
                event.listen(engine, "checkout", ping_if_idle)
