"""Shared fixtures: the app on SQLite and on MySQL, clients, users and auth helpers.

Each database is made once per session by the migrations (so a broken
migration fails the suite) and emptied after every test. ``app`` runs each
test that uses it on both databases.
"""

import base64
import collections
import contextlib
import functools
import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pymysql
import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from werkzeug.routing.rules import Rule
from werkzeug.security import generate_password_hash

from tests.factories import make_user
from webapp import create_app
from webapp.config import engine_options
from webapp.extensions import db
from webapp.models import User
from webapp.security import issue_token

MYSQL_SERVER = os.environ.get("TEST_DATABASE_URL", "mysql+pymysql://root@127.0.0.1:3306/")
IN_CI = os.environ.get("CI", "").lower() == "true"
# The suite's longest files (the moto cycle, then schemathesis): they start first, one on each
# xdist worker, so the other files fill in around them instead of one worker running them alone
# at the end while the other idles.
LONGEST_FILES = ("tests/infra/test_provision_moto.py", "tests/test_openapi.py")


def pytest_collection_modifyitems(config, items):
    """Order the files for xdist's ``--dist loadfile --no-loadscope-reorder``: longest first, then fullest.

    xdist's own reordering (by the number of tests in a file) would put the
    two longest files, which hold few tests, near the end.
    """
    counts = collections.Counter(item.nodeid.partition("::")[0] for item in items)

    def rank(item):
        path = item.nodeid.partition("::")[0]
        first = LONGEST_FILES.index(path) if path in LONGEST_FILES else len(LONGEST_FILES)
        return first, -counts[path], path

    items.sort(key=rank)


def share_url_builders():
    """Compile each URL rule's builder once per process, not once per app.

    Most tests make an app of their own, and werkzeug writes and compiles two
    Python functions for each of its ~240 URL rules: two thirds of the cost of
    ``create_app``. The function depends only on the rule's parsed parts (and
    defaults, whose rules are left alone), never on the app, so rules of the
    same shape share one; each is still bound to its own rule.
    """
    compile_builder = Rule._compile_builder
    builders = {}

    def shared(self, append_unknown=True):
        if self.defaults:
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(self._trace), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(self, append_unknown)
        return builders[key]

    Rule._compile_builder = shared


share_url_builders()


def mysql_unavailable_reason():
    """Return why MySQL cannot be used, or None when it answers."""
    url = sa.make_url(MYSQL_SERVER)
    try:
        pymysql.connect(
            host=url.host,
            port=url.port or 3306,
            user=url.username,
            password=url.password or "",
            connect_timeout=3,
        ).close()
    except pymysql.MySQLError as error:
        return f"MySQL at {url.host}:{url.port} is not reachable ({error})"
    return None


def create_scratch_mysql():
    """Create an empty utf8mb4 database and return its SQLAlchemy URL."""
    url = sa.make_url(MYSQL_SERVER)
    name = f"greenbar_test_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url.set(database=None))
    with engine.begin() as connection:
        connection.execute(
            sa.text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        )
    engine.dispose()
    return url.set(database=name, query={"charset": "utf8mb4"}).render_as_string(hide_password=False)


def drop_scratch_mysql(database_url):
    """Drop a database made by :func:`create_scratch_mysql`."""
    url = sa.make_url(database_url)
    engine = sa.create_engine(url.set(database=None, query={}))
    with engine.begin() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {url.database}"))
    engine.dispose()


def settings_for(database_url, instance_path):
    """Settings for a test app on ``database_url``; CSRF is off for the test client."""
    return {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test-secret",
        # mailed links are built on this alone (never on a request's Host)
        "EXTERNAL_URL": "http://localhost",
        "RATELIMIT_ENABLED": False,
        # still scrypt, at a cost that lets hundreds of logins run in seconds;
        # test_config pins the full cost that production uses
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    }


@pytest.fixture(scope="session")
def database_urls(tmp_path_factory):
    """One migrated database per backend for the whole session: ``{"sqlite": url, "mysql": url|None}``.

    The SQLite file lives in /dev/shm where there is one: SQLite behaves the
    same, but its commits need no fsync, which most tests pay for many times.
    """
    # in memory-backed /dev/shm where there is one: a commit there costs ~0.02 ms, not ~1 ms of fsync
    memory = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="greenbar-tests-", dir=memory)) if memory.is_dir() else None
    sqlite_url = "sqlite:///" + str((folder or tmp_path_factory.mktemp("db")) / "greenbar.sqlite3")
    urls = {"sqlite": sqlite_url, "mysql": None}
    reason = mysql_unavailable_reason()
    if reason is None:
        urls["mysql"] = create_scratch_mysql()
    elif IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    else:
        urls["mysql_skip_reason"] = reason
    for url in (urls["sqlite"], urls["mysql"]):
        if url:
            migrated = create_app(settings_for(url, str(tmp_path_factory.getbasetemp())))
            with migrated.app_context():
                upgrade()
                db.engine.dispose()
    yield urls
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
    if urls["mysql"]:
        drop_scratch_mysql(urls["mysql"])


def empty_all_tables():
    """Delete every row, children first, so the next test starts clean."""
    db.session.remove()
    with db.engine.begin() as connection:
        for table in reversed(db.metadata.sorted_tables):
            connection.execute(table.delete())


def database_url(database_urls, backend):
    """The session's database of ``backend`` ("sqlite" or "mysql"); skip when MySQL is not there."""
    url = database_urls[backend]
    if url is None:
        pytest.skip(database_urls.get("mysql_skip_reason", "MySQL not configured"))
    return url


@contextlib.contextmanager
def app_on(url, tmp_path, monkeypatch, **settings):
    """An app on ``url`` with ``settings`` over the test ones, every table emptied before and after.

    The one way tests make an app on the session's databases: the fixtures below,
    and any test that needs other settings (CSRF on, rate limits, ...).
    """
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    application = create_app({**settings_for(url, str(tmp_path)), **settings})
    with application.app_context():
        empty_all_tables()
    yield application
    with application.app_context():
        empty_all_tables()
        db.engine.dispose()


@pytest.fixture(params=["sqlite", "mysql"])
def app(request, database_urls, tmp_path, monkeypatch):
    """The app on a freshly emptied database; runs once per backend."""
    with app_on(database_url(database_urls, request.param), tmp_path, monkeypatch) as application:
        yield application


@pytest.fixture
def sqlite_app(database_urls, tmp_path, monkeypatch):
    """The app on SQLite only, for tests whose subject is not the database."""
    with app_on(database_url(database_urls, "sqlite"), tmp_path, monkeypatch) as application:
        yield application


@pytest.fixture
def mysql_app(database_urls, tmp_path, monkeypatch):
    """The app on MySQL only, for concurrency tests SQLite cannot express."""
    with app_on(database_url(database_urls, "mysql"), tmp_path, monkeypatch) as application:
        yield application


@pytest.fixture
def client(app):
    """A test client for the app."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A runner for the app's command-line commands."""
    return app.test_cli_runner()


def basic_auth(username, password):
    """An ``Authorization`` header for HTTP Basic auth."""
    raw = base64.b64encode(f"{username}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


class ApiActions:
    """Calls the API as a user of a given role (the flaskr ``AuthActions`` idea)."""

    def __init__(self, app, client):
        self.app = app
        self.client = client
        self.headers = {}

    def as_role(self, role, password="s3cret-pass"):
        """Create a user with ``role`` and send its credentials from now on."""
        with self.app.app_context():
            make_user(f"{role}-user", role=role, password=password)
        self.headers = basic_auth(f"{role}-user", password)
        return self

    def call(self, method, path, **kwargs):
        """Send a request with the current credentials."""
        headers = dict(self.headers, **kwargs.pop("headers", {}))
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        """GET with credentials."""
        return self.call("GET", path, **kwargs)

    def post(self, path, **kwargs):
        """POST with credentials."""
        return self.call("POST", path, **kwargs)


@pytest.fixture
def api(app, client):
    """API helper acting as a maintainer (the CI role) unless told otherwise."""
    return ApiActions(app, client).as_role("maintainer")


@functools.cache
def slow_hash_once(password):
    """A password hash computed once per session: scrypt takes ~0.2 s, too slow for every test."""
    return generate_password_hash(password)


def make_token_user(app, role, username=None, active=True):
    """Create a user of ``role`` with an API token; return Basic-auth headers that use the token."""
    with app.app_context():
        user = User(
            username=username or f"{role}-token-user",
            role=role,
            active=active,
            password_hash=slow_hash_once("s3cret-pass"),
        )
        db.session.add(user)
        db.session.flush()
        secret = issue_token(user, "tests")[1]
        db.session.commit()
        return basic_auth(user.username, secret)


@pytest.fixture
def token_auth(app):
    """Return ``make(role, username=None, active=True)`` → Basic-auth headers with a new user's token."""
    return functools.partial(make_token_user, app)


class AuthActions:
    """Logs in and out through the login form (the flaskr helper)."""

    def __init__(self, app, client):
        self.app = app
        self.client = client

    def login(self, username, password="s3cret-pass", **fields):
        """Post the login form; extra fields (``remember``, ``next``) go along."""
        return self.client.post("/auth/login", data=dict(fields, username=username, password=password))

    def as_role(self, role, password="s3cret-pass"):
        """Create (once) a user with ``role`` named ``<role>-login`` and log in as it."""
        username = f"{role}-login"
        with self.app.app_context():
            if db.session.scalar(sa.select(User).where(User.username == username)) is None:
                make_user(username, role=role, password=password)
        response = self.login(username, password)
        assert response.status_code == 302, response.text
        return username

    def logout(self):
        """Post the logout form."""
        return self.client.post("/auth/logout")


@pytest.fixture
def auth(app, client):
    """Log in through the form as a user of some role: ``auth.as_role("admin")``."""
    return AuthActions(app, client)


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory):
    """One local moto server on 127.0.0.1 for S3, SES, SQS and CloudWatch; boto3 is pointed at it."""
    from tests.aws_local import FAKE_CREDENTIALS
    from tests.aws_local import moto_server

    with moto_server(tmp_path_factory.mktemp("moto") / "moto.log") as url:
        aws = dict(FAKE_CREDENTIALS, AWS_ENDPOINT_URL=url)
        saved = {name: os.environ.get(name) for name in aws}
        os.environ.update(aws)
        yield url
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
