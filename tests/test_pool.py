"""Pooled MySQL connections: pinged only after sitting idle; a read that lost one runs again, a write 503s."""

import functools

import pymysql
import pytest
import sqlalchemy as sa
from flask import request

from tests.conftest import app_on
from tests.conftest import database_url
from tests.conftest import make_token_user
from tests.factories import make_user
from tests.infra.tcp_proxy import TcpProxy
from webapp import pool
from webapp import security
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


def test_write_on_a_lost_connection_is_a_503_and_stores_nothing(mysql_app, monkeypatch):
    """Unpinged (used recently), is a write on a lost connection a JSON 503 with Retry-After, then fine?"""
    writer = make_token_user(mysql_app, "maintainer")
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 3600.0)
    with mysql_app.app_context():
        db.engine.dispose()
    kill(mysql_app, pooled_connection_id(mysql_app))
    client = mysql_app.test_client()
    response = client.post("/api/test-instance/", json={"name": "lost"}, headers=writer)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "database" in response.json["error"]["message"]
    assert client.get("/api/test-instance/", headers=writer).json["results"] == []
    assert client.post("/api/test-instance/", json={"name": "lost"}, headers=writer).status_code == 201


def log_in_on_the_page(app, client):
    """Log ``client`` in through the form; return the page to read."""
    with app.app_context():
        make_user("page-reader", role="viewer")
    response = client.post("/auth/login", data={"username": "page-reader", "password": "s3cret-pass"})
    assert response.status_code == 302, response.text
    return "/"


def read_the_api(app, client, warm_token_cache):
    """Send a viewer's token from now on, known to the token cache or not; return the API path to read."""
    client.environ_base["HTTP_AUTHORIZATION"] = make_token_user(app, "viewer")["Authorization"]
    assert client.get("/api/test-instance/").status_code == 200
    if not warm_token_cache:
        security.token_cache.clear()
    return "/api/test-instance/"


READS = {
    "page, session login": log_in_on_the_page,
    "API, token cached": functools.partial(read_the_api, warm_token_cache=True),
    "API, token looked up": functools.partial(read_the_api, warm_token_cache=False),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("read", READS.values(), ids=READS.keys())
def test_read_on_a_connection_lost_since_its_last_use_answers(mysql_app, monkeypatch, caplog, read, method):
    """A connection killed a moment after going back to the pool (too soon for a ping): does a read answer?

    What a database failover does to a worker between two requests: the read's first
    query, wherever it is (the login's user, the token's owner, the view's rows), finds
    the connection gone, and the read runs once more on a fresh one instead of a 503.
    """
    client = mysql_app.test_client()
    path = read(mysql_app, client)
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 3600.0)
    with mysql_app.app_context():
        db.engine.dispose()
    dead = pooled_connection_id(mysql_app)
    kill(mysql_app, dead)
    response = client.open(path, method=method)
    assert response.status_code == 200, response.text
    assert "database connection lost" in caplog.text
    assert pooled_connection_id(mysql_app) != dead


@pytest.fixture
def proxied(database_urls, tmp_path, monkeypatch):
    """An app on MySQL through a TCP proxy the test can stop (cutting the database off): ``(app, proxy)``."""
    url = sa.make_url(database_url(database_urls, "mysql"))
    proxy = TcpProxy(url.host, url.port or 3306)
    proxy.start()
    through = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    try:
        with app_on(through, tmp_path, monkeypatch) as app:
            yield app, proxy
    finally:
        proxy.stop()


def test_read_with_the_database_down_is_still_a_503(proxied, monkeypatch):
    """With the database cut off, is a read that ran once more a 503 (its reconnect refused), not a 500?"""
    app, proxy = proxied
    reader = make_token_user(app, "viewer")
    monkeypatch.setattr(pool, "IDLE_PING_SECONDS", 3600.0)
    client = app.test_client()
    assert client.get("/api/test-instance/", headers=reader).status_code == 200
    proxy.stop()
    try:
        response = client.get("/api/test-instance/", headers=reader)
    finally:
        proxy.start()
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "1"
    assert client.get("/api/test-instance/", headers=reader).status_code == 200


@pytest.fixture
def losing_route(mysql_app):
    """A route that loses its own connection mid-request, after committing when asked; counts its runs."""
    runs = []

    @mysql_app.route("/api/test-only/lose-connection", methods=["GET", "HEAD", "POST"])
    def lose_connection():
        runs.append(request.method)
        if request.args.get("commit"):
            db.session.execute(sa.text("SELECT 1"))
            db.session.commit()
        kill(mysql_app, db.session.scalar(sa.text("SELECT CONNECTION_ID()")))
        db.session.execute(sa.text("SELECT 1"))
        return "not reached"

    return runs


@pytest.mark.parametrize(
    ("method", "query", "runs"),
    [
        ("GET", "", 2),  # run once more, lost again: one retry only, then the 503
        ("HEAD", "", 2),
        ("GET", "?commit=1", 1),  # it committed: running it again could repeat that
        ("POST", "", 1),  # a write is never run twice by the app; its client retries
    ],
)
def test_only_a_read_that_committed_nothing_runs_again_once(mysql_app, losing_route, method, query, runs):
    """Does a request losing its connection mid-way run once more only if a read that committed nothing?"""
    response = mysql_app.test_client().open(f"/api/test-only/lose-connection{query}", method=method)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert losing_route == [method] * runs


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


def test_the_database_refusing_connections_is_a_503(proxied):
    """With no pooled connection and the server refusing new ones (MySQL error 2003), a 503, not a 500?"""
    app, proxy = proxied
    reader = make_token_user(app, "viewer")
    with app.app_context():
        db.engine.dispose()
    proxy.stop()
    try:
        read = app.test_client().get("/api/test-instance/", headers=reader)
        write = app.test_client().post("/api/test-instance/", json={"name": "x"}, headers=reader)
    finally:
        proxy.start()
    assert (read.status_code, write.status_code) == (503, 503), read.text
    assert read.get_json()["error"]["message"].startswith("the database cannot be reached")
