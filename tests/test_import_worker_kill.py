"""A worker killed with SIGKILL mid-import: the next worker finishes the job, storing nothing twice."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy import select

from tests.conftest import IN_CI
from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import make_token_user
from tests.conftest import mysql_unavailable_reason
from tests.conftest import settings_for
from tests.test_import import XML
from tests.test_import import counters_match_rows
from tests.test_import import synthetic_report
from webapp import create_app
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models_imports import ImportJob

REPO = Path(__file__).resolve().parent.parent
FLASK = str(Path(sys.executable).parent / "flask")
SUITES, CASES_PER_SUITE = 20, 5000


@pytest.fixture
def database():
    """A migrated scratch MariaDB database."""
    reason = mysql_unavailable_reason()
    if reason:
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    url = create_scratch_mysql()
    yield url
    drop_scratch_mysql(url)


def worker_environment(url, tmp_path):
    """What ``flask worker`` needs: the database, the storage folder, a short lease."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GREENBAR_", "FLASK_"))}
    env.update(
        DATABASE_URL=url,
        SECRET_KEY="kill-test",
        GREENBAR_EXTERNAL_URL="http://127.0.0.1:5000",
        GREENBAR_INSTANCE_PATH=str(tmp_path),
        GREENBAR_STORAGE_URL=f"file://{tmp_path / 'storage'}",
        GREENBAR_IMPORT_LEASE_SECONDS="3",
        GREENBAR_WORKER_POLL_SECONDS="0.2",
    )
    return env


def start_worker(env, log):
    """Start ``flask worker`` in the repository."""
    return subprocess.Popen([FLASK, "--app", "wsgi", "worker"], cwd=REPO, env=env, stdout=log, stderr=log)


def job_state(app, job_id):
    """(state, bytes read, cases stored, attempts) of a job, read now."""
    with app.app_context():
        db.session.remove()
        job = db.session.get(ImportJob, job_id)
        return job.state, job.bytes_read, job.cases_stored, job.attempts


def wait_for(check, timeout, what):
    """Poll ``check`` until true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


def test_a_killed_worker_leaves_the_job_to_the_next_one(database, tmp_path):
    env = worker_environment(database, tmp_path)
    subprocess.run(
        [FLASK, "--app", "wsgi", "db", "upgrade"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    app = create_app(dict(settings_for(database, str(tmp_path)), STORAGE_URL=env["GREENBAR_STORAGE_URL"]))
    headers = make_token_user(app, "maintainer")
    report, expected = synthetic_report(SUITES, CASES_PER_SUITE)
    client = app.test_client()
    instance = client.post("/api/test-instance/", json={"name": "killed"}, headers=headers).get_json()["id"]
    queued = client.post(
        f"/api/test-instance/{instance}/import/?async=true", data=report, headers={**XML, **headers}
    )
    assert queued.status_code == 202, queued.get_json()
    job_id, build_id = queued.get_json()["id"], queued.get_json()["build_id"]
    log = (tmp_path / "worker.log").open("w")
    first = start_worker(env, log)
    try:
        wait_for(
            lambda: job_state(app, job_id)[0] == "running" and job_state(app, job_id)[1] > 0,
            120,
            "the first worker to be importing",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        state, _read, _stored, attempts = job_state(app, job_id)
        assert (state, attempts) == ("running", 1)
        with app.app_context():
            # the killed import's transaction died with it
            assert db.session.scalar(select(func.count()).select_from(TestCase)) == 0
        second = start_worker(env, log)
        try:
            wait_for(lambda: job_state(app, job_id)[0] == "done", 300, "the second worker to finish the job")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(60)
    finally:
        if first.poll() is None:
            first.kill()
        log.close()
    state, _read, stored, attempts = job_state(app, job_id)
    assert (state, stored, attempts) == ("done", SUITES * CASES_PER_SUITE, 2)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TestCase)) == SUITES * CASES_PER_SUITE
        assert db.session.scalar(select(func.count()).select_from(TestBuild)) == 1
        assert counters_match_rows(build_id)
        build = db.session.get(TestBuild, build_id)
        assert (build.passed, build.failed, build.errored, build.skipped) == (
            expected["SUCCESS"],
            expected["FAILED"],
            expected["ERROR"],
            expected["SKIPPED"],
        )
        db.engine.dispose()
