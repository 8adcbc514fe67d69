"""A real Greenbar for the client's tests: gunicorn on a scratch MariaDB, with a maintainer's token.

The server can be killed (its whole process group, at once) and started
again on the same port and database, to test what the client does meanwhile.
"""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pymysql
import pytest
import requests
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.conftest import IN_CI
from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import mysql_unavailable_reason
from tests.infra.conftest import free_port
from tests.infra.conftest import tail
from tests.infra.conftest import wait_until
from webapp import create_app
from webapp.extensions import db
from webapp.models import User
from webapp.security import issue_token

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
# the CI variables the client would read: a test run inside CI must not pick them up
CI_VARIABLES = ("GITHUB_ACTIONS", "GITLAB_CI", "JENKINS_URL")


class Server:
    """gunicorn serving Greenbar on 127.0.0.1:port from a scratch database."""

    def __init__(self, database_url, root):
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "gunicorn.log"
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url,
            SECRET_KEY="client-tests",
            GREENBAR_INSTANCE_PATH=str(root),
            GREENBAR_EXTERNAL_URL=self.url,
            GREENBAR_GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GREENBAR_GUNICORN_WORKERS="2",
            GREENBAR_GUNICORN_THREADS="4",
            GREENBAR_GUNICORN_ACCESS_LOG=str(self.log),
            GREENBAR_GUNICORN_ERROR_LOG=str(self.log),
            GREENBAR_GUNICORN_MAX_REQUESTS="0",
        )
        self.process = None
        self.user = "ci"
        self.token = None

    def start(self):
        """Start gunicorn (in a process group of its own) and wait until it answers."""
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_until(self.answers, 60, f"gunicorn on {self.url}\n{tail(self.log)}")

    def answers(self):
        """Whether /healthz answers 200."""
        assert self.process.poll() is None, tail(self.log)
        try:
            return requests.get(self.url + "/healthz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def kill(self):
        """SIGKILL the master and its workers at once, as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self):
        """Stop gracefully."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(60)

    def query(self, sql, *parameters):
        """Rows of a query on the server's database."""
        url = sa.make_url(self.database_url)
        connection = pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            database=url.database,
            charset="utf8mb4",
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
        finally:
            connection.close()

    def client_env(self, instance, **settings):
        """The environment of a client process: this server, its token, no CI or outer pytest variables."""
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in CI_VARIABLES and not name.startswith(("GREENBAR_", "PYTEST_"))
        }
        env.update(
            GREENBAR_URL=self.url,
            GREENBAR_USER=self.user,
            GREENBAR_TOKEN=self.token,
            GREENBAR_INSTANCE=instance,
        )
        env.update({f"GREENBAR_{name.upper()}": str(value) for name, value in settings.items()})
        return env


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running Greenbar with user ``ci`` (maintainer) and its API token."""
    reason = mysql_unavailable_reason()
    if reason is not None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    database_url = create_scratch_mysql()
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "client-tests"})
    with app.app_context():
        upgrade()
        user = User(username="ci", role="maintainer", active=True)
        user.set_password(uuid.uuid4().hex)
        db.session.add(user)
        db.session.flush()
        token = issue_token(user, "client tests")[1]
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    instance = Server(database_url, tmp_path_factory.mktemp("greenbar-server"))
    instance.token = token
    try:
        instance.start()
        yield instance
    finally:
        instance.stop()
        drop_scratch_mysql(database_url)


def greenbar(*args, env, cwd=None, timeout=300):
    """Run the ``greenbar`` command; return the finished process (text output)."""
    return subprocess.run(
        [str(VENV_BIN / "greenbar"), *map(str, args)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
