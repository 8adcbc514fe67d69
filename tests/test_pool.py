"""Pooled MySQL connections: pinged only after sitting idle; a lost one is a 503, then healed."""

import pymysql
import pytest
import sqlalchemy as sa

from tests.conftest import make_token_user
from webapp import pool
from webapp.extensions import db


def pooled_connection_id(app):
    """Check a connection out of the app's pool, note its server id, and put it back."""
    with app.app_context():
        connection_id = db.session.scalar(sa.text("SELECT CONNECTION_ID()"))
        db.session.commit()
    return connection_id


def kill(app, connection_id):
    """End a server connection from outside, as a database restart or failover would."""
    url = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    admin = pymysql.connect(
        host=url.host, port=url.port or 3306, user=url.username, password=url.password or ""
    )
    try:
        admin.cursor().execute(f"KILL {int(connection_id)}")
    finally:
        admin.close()


@pytest.fixture
def reader(mysql_app):
    """Basic-auth headers of a viewer with a token, on the MySQL app."""
    return make_token_user(mysql_app, "viewer")


def test_idle_connection_is_pinged_and_replaced(mysql_app, reader, monkeypatch):
    """Is a pooled connection that died while idle found by the ping and swapped before use?"""
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 0.0)
    with mysql_app.app_context():
        db.engine.dispose()  # one pooled connection: the one about to be killed
    dead = pooled_connection_id(mysql_app)
    kill(mysql_app, dead)
    response = mysql_app.test_client().get("/api/test-instance/", headers=reader)
    assert response.status_code == 200, response.text
    assert pooled_connection_id(mysql_app) != dead


def test_busy_connection_lost_is_a_503_then_healed(mysql_app, reader, monkeypatch):
    """Unpinged (used recently), is a lost connection a JSON 503 with Retry-After, and the next call fine?"""
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 3600.0)
    with mysql_app.app_context():
        db.engine.dispose()
    kill(mysql_app, pooled_connection_id(mysql_app))
    client = mysql_app.test_client()
    response = client.get("/api/test-instance/", headers=reader)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "database" in response.json["error"]["message"]
    assert client.get("/api/test-instance/", headers=reader).status_code == 200


def test_recently_used_connection_is_not_pinged(mysql_app, reader, monkeypatch):
    """Does a request on a connection used a moment ago skip the ping round trip?"""
    pings = []
    monkeypatch.setattr(pymysql.connections.Connection, "ping", lambda self, reconnect=True: pings.append(1))
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 60.0)  # "a moment" even on a crowded CI machine
    client = mysql_app.test_client()
    for _ in range(5):
        assert client.get("/api/test-instance/", headers=reader).status_code == 200
    assert pings == []
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 0.0)
    assert client.get("/api/test-instance/", headers=reader).status_code == 200
    assert pings == [1]
