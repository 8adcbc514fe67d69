"""The machine side with real processes: nginx in front of two gunicorns on MariaDB.

Laid out the way an instance runs it: nginx (Debian's package) serves the site
rendered from the nginx role's templates/greenbar.conf.j2 with its defaults, proxying
over unix sockets to two gunicorn processes started with gunicorn.conf.py, on a
scratch MariaDB database made by ``flask db upgrade``. Everything lives in a
temp dir (nginx -p prefix, pid, temp paths) and listens on 127.0.0.1 only.

The gunicorns reach MariaDB through a TCP proxy the tests can cut
(tests/infra/tcp_proxy.py): that is how "the database is stopped" is shown
without stopping the machine's shared MariaDB under other tests.
"""

import os
import re
import secrets
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import mysql_unavailable_reason
from tests.infra.conftest import IN_CI
from tests.infra.conftest import REPO
from tests.infra.conftest import VENV_BIN
from tests.infra.conftest import free_port
from tests.infra.conftest import render_nginx_site
from tests.infra.conftest import require_program
from tests.infra.conftest import stop_process
from tests.infra.conftest import tail
from tests.infra.conftest import wait_until
from tests.infra.tcp_proxy import TcpProxy

pytestmark = pytest.mark.infra

# small, so the over-limit upload stays cheap; nginx and the app get the same.
UPLOAD_LIMIT_MB = 1
ADMIN_PASSWORD = "correct horse battery staple"
MAIN_CONF = """\
{user}
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/logs/error.log warn;
events {{ worker_connections 512; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    # Debian's nginx.conf turns gzip on here too; the site must live with that.
    gzip on;
    client_body_temp_path {root}/temp/body;
    proxy_temp_path {root}/temp/proxy;
    fastcgi_temp_path {root}/temp/fastcgi;
    uwsgi_temp_path {root}/temp/uwsgi;
    scgi_temp_path {root}/temp/scgi;
    include {root}/greenbar.conf;
}}
"""


def junit_report(name, cases=3, padding=0):
    """A small JUnit XML report with one suite of ``cases`` cases (one failing)."""
    body = "".join(
        f'<testcase classname="infra.{name}" name="case_{n}" time="0.01">'
        + ('<failure message="boom">trace</failure>' if n == 0 else "")
        + "</testcase>"
        for n in range(cases)
    )
    comment = f"<!-- {'x' * padding} -->" if padding else ""
    return (
        f'<?xml version="1.0"?>{comment}<testsuite name="{name}" tests="{cases}" failures="1">'
        f"{body}</testsuite>"
    ).encode()


def app_environment(database_url, **extra):
    """Environment of the app's processes: one database, one secret key, the small upload limit."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GREENBAR_", "FLASK_"))}
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY=secrets.token_hex(32),
        GREENBAR_MAX_UPLOAD_MB=str(UPLOAD_LIMIT_MB),
        GREENBAR_PROXY_HOPS="1",
        GREENBAR_EXTERNAL_URL="http://greenbar.test",
        **extra,
    )
    return env


def flask(env, *args):
    """Run ``flask --app wsgi ARGS`` in the repository and return its stdout."""
    result = subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def database():
    """A migrated scratch MariaDB database with an admin user and an API token."""
    reason = mysql_unavailable_reason()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    url = create_scratch_mysql()
    try:
        env = app_environment(url)
        flask(env, "db", "upgrade")
        flask(env, "users", "create", "admin", "--role", "admin", "--password", ADMIN_PASSWORD)
        token = flask(env, "tokens", "create", "admin", "--name", "infra").strip().splitlines()[-1]
        yield {"url": url, "token": token}
    finally:
        drop_scratch_mysql(url)


class Gunicorn:
    """One gunicorn, started from gunicorn.conf.py on its own unix socket."""

    def __init__(self, name, root, env):
        """Start gunicorn ``name`` with sockets and logs under ``root``."""
        self.name = name
        self.socket = root / f"{name}.sock"
        self.log = root / "logs" / f"gunicorn-{name}.log"
        gunicorn_env = dict(
            env,
            GREENBAR_GUNICORN_BIND=f"unix:{self.socket}",
            GREENBAR_GUNICORN_WORKERS="2",
            GREENBAR_GUNICORN_THREADS="4",
            GREENBAR_GUNICORN_NAME=f"greenbar-{name}",
            GREENBAR_GUNICORN_ACCESS_LOG=str(self.log),
            GREENBAR_GUNICORN_ERROR_LOG=str(self.log),
            # the "machine" is the home folder too, where gunicorn's control socket would go
            HOME=str(root),
        )
        self.process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
            cwd=REPO,
            env=gunicorn_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(
            lambda: self.socket.exists() or self.process.poll() is not None,
            60,
            f"gunicorn {name} to bind its socket",
        )
        assert self.process.poll() is None, tail(self.log)

    def stop(self):
        """Stop it gracefully (SIGTERM, as systemd does) and wait until it has exited."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(60)


@pytest.fixture(scope="module")
def stack(database, tmp_path_factory):
    """nginx on a free 127.0.0.1 port in front of gunicorns a and b, reaching MariaDB through a proxy."""
    nginx = require_program("nginx")
    require_program("gunicorn")
    root = tmp_path_factory.mktemp("machine")
    for sub in ("logs", "temp"):
        (root / sub).mkdir()
    url = sa.make_url(database["url"])
    proxy = TcpProxy(url.host, url.port or 3306)
    proxy.start()
    env = app_environment(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    gunicorns = {}
    nginx_process = None
    try:
        for name in ("a", "b"):
            gunicorns[name] = Gunicorn(name, root, env)
        port = free_port()
        (root / "greenbar.conf").write_text(
            render_nginx_site(
                nginx_listen=f"127.0.0.1:{port}",
                nginx_upstream_sockets=[str(g.socket) for g in gunicorns.values()],
                nginx_static_root=str(REPO / "webapp" / "static"),
                nginx_max_body_mb=UPLOAD_LIMIT_MB,
                nginx_access_log=str(root / "logs" / "access.log"),
                nginx_error_log=str(root / "logs" / "greenbar-error.log"),
            )
        )
        # workers must reach the root-owned sockets (umask 007) when we run as root.
        user = "user root;" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(MAIN_CONF.format(root=root, user=user))
        check = subprocess.run(
            [nginx, "-t", "-p", str(root), "-c", str(root / "nginx.conf")], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stderr
        nginx_process = subprocess.Popen(
            [nginx, "-p", str(root), "-c", str(root / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(base), 60, "nginx and the app to answer")
        yield {"base": base, "root": root, "gunicorns": gunicorns, "proxy": proxy, "token": database["token"]}
    finally:
        if nginx_process is not None:
            stop_process(nginx_process)
        for gunicorn in gunicorns.values():
            stop_process(gunicorn.process)
        proxy.stop()


def answers(base):
    """True once nginx answers /healthz with 200 (gunicorn's workers may still be starting)."""
    try:
        return requests.get(f"{base}/healthz", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def api(stack):
    """A requests session that authenticates to the API with the admin's token."""
    session = requests.Session()
    session.auth = ("admin", stack["token"])
    return session


@pytest.fixture(scope="module")
def instance_id(stack, api):
    """A test instance created through nginx."""
    response = api.post(f"{stack['base']}/api/test-instance/", json={"name": "infra"}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def test_two_gunicorns_on_one_host_open_no_control_socket(stack):
    """gunicorn.conf.py turns the unused control interface off, so no socket is shared in the home."""
    assert all(gunicorn.process.poll() is None for gunicorn in stack["gunicorns"].values())
    assert not (stack["root"] / ".gunicorn").exists()


def test_login_through_nginx(stack):
    """Can a person log in through nginx, with the request id reaching the app and both logs?"""
    session = requests.Session()
    login = f"{stack['base']}/auth/login"
    form = session.get(login, timeout=30)
    assert form.status_code == 200
    assert form.headers["X-Content-Type-Options"] == "nosniff"
    assert form.headers["X-Frame-Options"] == "SAMEORIGIN"
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text).group(1)
    request_id = f"login-{uuid.uuid4().hex}"
    response = session.post(
        login,
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf},
        headers={"X-Request-ID": request_id},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 302, response.text[:500]
    # the app builds its redirect from nginx's Host and X-Forwarded-* headers.
    assert response.headers["Location"] in ("/", f"{stack['base']}/")
    assert response.headers["X-Request-ID"] == request_id
    assert session.get(f"{stack['base']}/", timeout=30).status_code == 200
    logs = stack["root"] / "logs"
    assert f"rid={request_id}" in (logs / "access.log").read_text()
    gunicorn_logs = "".join((logs / f"gunicorn-{name}.log").read_text() for name in "ab")
    assert f"rid={request_id}" in gunicorn_logs


def test_import_report_through_nginx(stack, api, instance_id):
    """Does a JUnit report posted through nginx become a build with the right counts?"""
    response = api.post(
        f"{stack['base']}/api/test-instance/{instance_id}/import/?name=nightly",
        data=junit_report("nightly", cases=5),
        headers={"Content-Type": "application/xml"},
        timeout=60,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    build = api.get(
        f"{stack['base']}/api/test-instance/{instance_id}/test-build/{body['build']['id']}/", timeout=30
    ).json()
    assert build["name"] == "nightly"
    assert body["suites"] == 1
    assert (body["cases"]["total"], body["cases"]["FAILED"], body["cases"]["SUCCESS"]) == (5, 1, 4)


def test_static_files_come_from_nginx(stack):
    """Are /static/ files served by nginx itself, with long cache headers and gzip?"""
    response = requests.get(
        f"{stack['base']}/static/app.css", headers={"Accept-Encoding": "gzip"}, timeout=30
    )
    assert response.status_code == 200
    assert response.content == (REPO / "webapp/static/app.css").read_bytes()
    assert response.headers["Content-Type"] == "text/css; charset=utf-8"
    # expires 30d: Flask's own static route never sends a max-age like this.
    assert response.headers["Cache-Control"] == "max-age=2592000"
    assert "Expires" in response.headers
    assert response.headers["Content-Encoding"] == "gzip"
    logs = stack["root"] / "logs"
    assert "/static/app.css" not in "".join((logs / f"gunicorn-{name}.log").read_text() for name in "ab")


def test_upload_over_the_limit_gets_413(stack, api, instance_id):
    """Does a report above the upload limit get a clear JSON 413 from nginx, never reaching the app?"""
    too_big = junit_report("huge", padding=UPLOAD_LIMIT_MB * 1024 * 1024 + 1)
    response = api.post(
        f"{stack['base']}/api/test-instance/{instance_id}/import/",
        data=too_big,
        headers={"Content-Type": "application/xml"},
        timeout=60,
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["status"] == 413 and f"{UPLOAD_LIMIT_MB} MB" in error["message"]
    # just under nginx's limit, the app's equal limit lets the same report through.
    fits = junit_report("fits", padding=UPLOAD_LIMIT_MB * 1024 * 1024 - 4096)
    response = api.post(
        f"{stack['base']}/api/test-instance/{instance_id}/import/",
        data=fits,
        headers={"Content-Type": "application/xml"},
        timeout=60,
    )
    assert response.status_code == 201, response.text[:500]


def healthz_statuses(base, count=6):
    """The status codes of ``count`` /healthz calls (spread over both gunicorns)."""
    return {requests.get(f"{base}/healthz", timeout=30).status_code for _ in range(count)}


def test_healthz_follows_the_database(stack):
    """Is /healthz 200 while the database answers, 503 while it is cut off, and 200 again after?"""
    base = stack["base"]
    response = requests.get(f"{base}/healthz", timeout=30)
    assert response.status_code == 200 and response.json()["status"] == "ok"
    stack["proxy"].stop()
    try:
        assert healthz_statuses(base) == {503}
    finally:
        stack["proxy"].start()
    wait_until(lambda: healthz_statuses(base) == {200}, 30, "/healthz to recover")


class Client:
    """A client that keeps reading and writing through nginx, counting what happens."""

    def __init__(self, stack, instance_id):
        """Prepare counters and an authenticated session per thread."""
        self.base = f"{stack['base']}/api/test-instance/{instance_id}"
        self.auth = ("admin", stack["token"])
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.figures = {
            "reads": 0,
            "failed reads": 0,
            "writes": 0,
            "write attempts": 0,
            "retried writes": 0,
            "failed writes": 0,
            "replayed writes": 0,
            "wrong replays": 0,
        }
        self.acknowledged = []
        self.errors = []

    def count(self, name, amount=1):
        """Add to one figure."""
        with self.lock:
            self.figures[name] += amount

    def reader(self):
        """Read the instance over and over; a read is never retried, so any failure counts."""
        session = requests.Session()
        session.auth = self.auth
        while not self.stop.is_set():
            try:
                status = session.get(f"{self.base}/", timeout=30).status_code
            except requests.RequestException as error:
                status = repr(error)
            self.count("reads")
            if status != 200:
                self.count("failed reads")
                self.errors.append(f"read: {status}")

    def send(self, session, key):
        """POST one import with ``key``; return the response, or None when the request failed."""
        self.count("write attempts")
        headers = {"Content-Type": "application/xml", "Idempotency-Key": key}
        try:
            response = session.post(
                f"{self.base}/import/?name={key}", data=junit_report(key), headers=headers, timeout=30
            )
        except requests.RequestException as error:
            self.errors.append(f"write: {error!r}")
            return None
        if response.status_code != 201:
            self.errors.append(f"write: {response.status_code}")
            return None
        return response

    def write(self, session, key):
        """Send one write, retrying with the same key until acknowledged; return its build id or None."""
        for attempt in range(6):
            if attempt:
                self.count("retried writes")
                time.sleep(0.2)
            response = self.send(session, key)
            if response is not None:
                return response.json()["build"]["id"]
        self.count("failed writes")
        return None

    def writer(self):
        """Import reports with an Idempotency-Key each; every third is sent again as after a lost reply."""
        session = requests.Session()
        session.auth = self.auth
        while not self.stop.is_set():
            key = uuid.uuid4().hex
            self.count("writes")
            build_id = self.write(session, key)
            if build_id is None:
                continue
            with self.lock:
                self.acknowledged.append(key)
            if self.figures["writes"] % 3 == 0:
                self.count("replayed writes")
                replay = self.send(session, key)
                if (
                    replay is None
                    or replay.headers.get("Idempotent-Replayed") != "true"
                    or replay.json()["build"]["id"] != build_id
                ):
                    self.count("wrong replays")


def build_names(api, base, instance_id):
    """The names of all builds of the instance, following the API's pages."""
    names = []
    url = f"{base}/api/test-instance/{instance_id}/test-build/?limit=1000"
    while url:
        page = api.get(url, timeout=60).json()
        names += [build["name"] for build in page["results"]]
        url = page["next"]
    return names


def test_failover_loses_no_read_and_duplicates_no_write(stack, api, instance_id, capsys):
    """With one gunicorn stopped mid-traffic, does every read succeed and every retried write land once?"""
    before = set(build_names(api, stack["base"], instance_id))
    client = Client(stack, instance_id)
    threads = [threading.Thread(target=client.reader) for _ in range(2)]
    threads += [threading.Thread(target=client.writer) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(3)
        stack["gunicorns"]["a"].stop()
        time.sleep(4)
    finally:
        client.stop.set()
        for thread in threads:
            thread.join(60)
    names = [name for name in build_names(api, stack["base"], instance_id) if name not in before]
    duplicated = len(names) - len(set(names))
    figures = dict(client.figures, duplicated=duplicated)
    with capsys.disabled():
        print("\nfailover: " + ", ".join(f"{name} {value}" for name, value in figures.items()))
    assert client.figures["reads"] > 20 and client.figures["writes"] > 5
    assert client.figures["failed reads"] == 0, client.errors[:10]
    assert client.figures["failed writes"] == 0, client.errors[:10]
    assert client.figures["replayed writes"] > 0 and client.figures["wrong replays"] == 0, client.errors[:10]
    assert duplicated == 0
    assert sorted(set(names)) == sorted(client.acknowledged)
    # traffic went on through b alone once a had gone.
    assert stack["gunicorns"]["a"].process.poll() is not None
    assert Path(stack["gunicorns"]["b"].socket).exists()
