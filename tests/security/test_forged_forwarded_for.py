"""Finding 8: forged X-Forwarded-For headers and several gunicorn workers must not loosen the login limit.

Real gunicorn, two workers, on a scratch MariaDB database: each attempt comes on
a new connection, so the workers share them out, and carries a new forged
X-Forwarded-For. With no proxy configured the header is ignored, and the
counters live in Redis or in the database, so the limit holds as configured.
"""

import base64
import http.client
import os
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from flask_migrate import upgrade

from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import mysql_unavailable_reason
from tests.factories import make_user
from webapp import create_app
from webapp.extensions import db

REPO = Path(__file__).resolve().parents[2]
LIMIT = 4
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module")
def database():
    """A migrated scratch MariaDB database with one user: its URL."""
    reason = mysql_unavailable_reason()
    if reason and os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}")
    if reason:
        pytest.skip(reason)
    url = create_scratch_mysql()
    application = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "x"})
    with application.app_context():
        upgrade()
        make_user("ci", role="maintainer", password="ci-password")
        db.engine.dispose()
    yield url
    drop_scratch_mysql(url)


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(params=["redis", "database"])
def server(request, database, tmp_path):
    """gunicorn with two workers and the login limit at LIMIT a minute: its port."""
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=database,
        SECRET_KEY="shared-limits",
        GREENBAR_EXTERNAL_URL=f"http://127.0.0.1:{port}",
        GREENBAR_INSTANCE_PATH=str(tmp_path),
        GREENBAR_GUNICORN_BIND=f"127.0.0.1:{port}",
        GREENBAR_GUNICORN_WORKERS="2",
        GREENBAR_GUNICORN_THREADS="2",
        GREENBAR_GUNICORN_ACCESS_LOG="/dev/null",
        GREENBAR_LOGIN_FAILURE_LIMIT=f"{LIMIT} per minute",
        GREENBAR_REDIS_URL=REDIS_URL if request.param == "redis" else "",
    )
    env.pop("GREENBAR_PROXY_HOPS", None)
    process = subprocess.Popen(
        [str(REPO / ".venv/bin/gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                break
        except OSError:
            time.sleep(0.3)
    else:
        process.terminate()
        pytest.fail("gunicorn did not start")
    yield port
    process.terminate()
    process.wait(timeout=30)


def attempt(port, username, password, forged_address):
    """One Basic-auth API call on a connection of its own, with a forged X-Forwarded-For."""
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request(
        "GET",
        "/api/test-instance/",
        headers={
            "Authorization": f"Basic {credentials}",
            "X-Forwarded-For": forged_address,
            "Connection": "close",
        },
    )
    status = connection.getresponse().status
    connection.close()
    return status


def test_the_limit_holds_across_workers_and_forged_addresses(server):
    """Twice the limit of wrong passwords, each from a new forged address: are exactly LIMIT let through?"""
    # a name of its own per run: Redis outlives the test, and other runs share it
    username = f"ci-{uuid.uuid4().hex[:8]}"
    statuses = [attempt(server, username, "guess", f"203.0.113.{n}") for n in range(2 * LIMIT)]
    assert statuses == [401] * LIMIT + [429] * LIMIT
