"""Browser-test fixtures: Greenbar under gunicorn on a scratch MariaDB database, and Debian's chromium.

The server is made the way an operator makes one: ``flask db upgrade``,
``flask demo-data`` and ``flask users create`` against a fresh database,
then gunicorn with the repository's ``gunicorn.conf.py`` bound to 127.0.0.1.
Outside CI the tests skip when MariaDB or chromium is missing; under
``CI=true`` they fail instead.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import IN_CI
from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import mysql_unavailable_reason

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"
# as root chromium needs --no-sandbox; the rest keep it from calling home
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USERS = {"admin": "admin-browser-pw", "viewer": "viewer-browser-pw"}


def unavailable(reason):
    """Skip outside CI, fail under CI: the browser tests are part of ``make test``."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def flask_command(env, *args):
    """Run ``flask --app wsgi ARGS`` in the repository, failing loudly on error."""
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def wait_until_healthy(url, process, seconds=30):
    """Poll ``/healthz`` until it answers 200, or fail with the server's log."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:  # refused, reset or timed out while it starts
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not become healthy in time")


def stop(process):
    """Stop gunicorn: gracefully, and by force if a request outlives the grace period."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def end_queries(database_url):
    """End the queries a stopped server left running on its database, so dropping it need not wait."""
    url = sa.make_url(database_url)
    engine = sa.create_engine(url.set(database=None, query={}))
    with engine.begin() as connection:
        running = (
            connection.execute(
                sa.text(
                    "SELECT id FROM information_schema.processlist WHERE db = :db AND id <> CONNECTION_ID()"
                ),
                {"db": url.database},
            )
            .scalars()
            .all()
        )
        for thread_id in running:
            connection.execute(sa.text(f"KILL {int(thread_id)}"))
    engine.dispose()


def server_environment(database_url, instance_path, port):
    """The environment gunicorn and the flask commands run with."""
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        SECRET_KEY="browser-tests-secret",
        GREENBAR_INSTANCE_PATH=str(instance_path),
        GREENBAR_PROXY_HOPS="0",
        GREENBAR_EXTERNAL_URL=f"http://127.0.0.1:{port}",
        GREENBAR_GUNICORN_BIND=f"127.0.0.1:{port}",
        GREENBAR_GUNICORN_WORKERS="2",
        GREENBAR_GUNICORN_GRACEFUL_TIMEOUT="5",
        GREENBAR_GUNICORN_ACCESS_LOG=str(instance_path / "access.log"),
    )
    return env


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """Greenbar under gunicorn on a migrated, demo-filled scratch database: its base URL."""
    reason = mysql_unavailable_reason()
    if reason:
        unavailable(reason)
    database_url = create_scratch_mysql()
    instance_path = tmp_path_factory.mktemp("browser-instance")
    port = free_port()
    env = server_environment(database_url, instance_path, port)
    log = open(instance_path / "gunicorn.log", "w")  # noqa: SIM115 (closed at teardown)
    process = None
    try:
        flask_command(env, "db", "upgrade")
        flask_command(env, "demo-data")
        for role, password in USERS.items():
            flask_command(env, "users", "create", role, "--role", role, "--password", password)
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_until_healthy(base_url, process)
        yield base_url
    finally:
        if process is not None:
            stop(process)
        log.close()
        end_queries(database_url)
        drop_scratch_mysql(database_url)


@pytest.fixture(scope="session")
def browser():
    """Debian's chromium driven by Playwright (never a downloaded browser)."""
    if not Path(CHROMIUM).exists():
        unavailable(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts():
    """The folder screenshots go to (git-ignored), emptied once per session."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture
def page(browser, server):
    """A fresh browser tab (own cookies) in a desktop-sized window, in a time zone other than UTC."""
    context = browser.new_context(
        base_url=server, viewport={"width": 1280, "height": 900}, timezone_id="America/New_York"
    )
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()


def log_in(tab, role):
    """Log in through the form as the seeded user of ``role``; land on the instances page."""
    tab.goto("/auth/login")
    tab.fill("input[name=username]", role)
    tab.fill("input[name=password]", USERS[role])
    with tab.expect_navigation():
        tab.click("form [type=submit]")
