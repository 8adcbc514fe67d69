"""Checking pooled MySQL connections before use, but only those that sat idle.

SQLAlchemy's ``pool_pre_ping`` pings on every checkout: one more round trip
for every request. A connection that answered a moment ago needs no ping, so
only one idle for longer than :data:`IDLE_PING_SECONDS` is pinged, and a
dead one (MariaDB restarted, an RDS failover, a dropped network) is replaced
before a request uses it. A connection that dies while busy fails that one
request, which is answered with a 503 (see :mod:`webapp.errors`), and
SQLAlchemy then renews the whole pool.
"""

import time

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError

from webapp.extensions import db

IDLE_PING_SECONDS = 2.0


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


def init_app(app):
    """Watch the pools of the app's MySQL engines (SQLite's connections are local files)."""
    with app.app_context():
        for engine in db.engines.values():
            if engine.dialect.name == "mysql":
                event.listen(engine, "checkin", note_idle_since)
                event.listen(engine, "checkout", ping_if_idle)
