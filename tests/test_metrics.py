"""``/metrics``: who may read it, what it counts, and that gunicorn's workers add up."""

import ipaddress
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.test_import import REPORT
from tests.test_import import XML
from webapp import telemetry

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
TOKEN = "scrape-me-0123456789"


def samples(text):
    """``{(sample name, frozenset(labels)): value}`` from Prometheus' text format."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def figure(text, name, **labels):
    """One sample's value, 0 when the series does not exist yet."""
    return samples(text).get((name, frozenset(labels.items())), 0)


@pytest.fixture
def scrape(app, client):
    """GET /metrics with the bearer token and return its text."""
    app.config["METRICS_TOKEN"] = TOKEN

    def read():
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        return response.text

    return read


def test_metrics_refuse_a_caller_without_the_token(app, client):
    app.config["METRICS_TOKEN"] = TOKEN
    response = client.get("/metrics", headers={"Authorization": "Bearer wrong"})
    assert response.status_code == 401
    assert "greenbar_" not in response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_refuse_everyone_when_nothing_is_configured(app, client):
    response = client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status_code == 401


def test_metrics_answer_an_allowed_address_without_a_token(app, client):
    app.config["METRICS_ALLOWED_NETWORKS"] = [ipaddress.ip_network("127.0.0.0/8")]
    response = client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 200
    refused = client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert refused.status_code == 401


def test_requests_are_counted_once_for_both_spellings(app, api, scrape):
    before = scrape()
    [endpoint] = [
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.rule == "/api/test-instance/" and "GET" in rule.methods
    ]
    api.get("/api/test-instance/")
    api.get("/api/test_instance/")
    after = scrape()
    counted = figure(after, "greenbar_http_requests_total", endpoint=endpoint, status="200")
    assert counted - figure(before, "greenbar_http_requests_total", endpoint=endpoint, status="200") == 2
    latency = figure(after, "greenbar_http_request_duration_seconds_count", endpoint=endpoint)
    assert latency - figure(before, "greenbar_http_request_duration_seconds_count", endpoint=endpoint) == 2


def test_cases_are_counted_by_path_after_commit(app, api, scrape):
    instance_id = api.post("/api/test-instance/", json={"name": "counted"}).json["id"]
    before = scrape()
    imported = api.post(f"/api/test-instance/{instance_id}/import/", data=REPORT, headers=XML)
    assert imported.status_code == 201, imported.text
    build_id = imported.json["build"]["id"]
    build = f"/api/test-instance/{instance_id}/test-build/{build_id}/"
    suite = api.post(build + "test-suite/", json={"name": "live"})
    cases = f"{build}test-suite/{suite.json['id']}/test-case/"
    assert api.post(cases, json={"name": "one", "result_status": "SUCCESS"}).status_code == 201
    # a duplicate name is refused and rolled back: it must not count
    assert api.post(cases, json={"name": "one", "result_status": "SUCCESS"}).status_code == 409
    after = scrape()
    for path, stored in {"import": 5, "api": 1}.items():
        grown = figure(after, "greenbar_cases_stored_total", path=path) - figure(
            before, "greenbar_cases_stored_total", path=path
        )
        assert grown == stored, path


def test_depth_probes_are_read_at_scrape_time(app, scrape, monkeypatch):
    depth = {"value": 3}
    monkeypatch.setattr(
        telemetry, "DEPTH_PROBES", [lambda: [("greenbar_probe_depth", "A probe.", depth["value"])]]
    )
    assert figure(scrape(), "greenbar_probe_depth") == 3
    depth["value"] = 7
    assert figure(scrape(), "greenbar_probe_depth") == 7


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn_with_two_workers(tmp_path):
    """gunicorn.conf.py with two sync workers on a migrated SQLite database, in multiprocess mode."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("GREENBAR_", "FLASK_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'greenbar.sqlite3'}",
        SECRET_KEY="metrics-test",
        GREENBAR_INSTANCE_PATH=str(tmp_path),
        GREENBAR_EXTERNAL_URL=f"http://127.0.0.1:{port}",
        GREENBAR_METRICS_TOKEN=TOKEN,
        GREENBAR_GUNICORN_BIND=f"127.0.0.1:{port}",
        GREENBAR_GUNICORN_WORKERS="2",
        GREENBAR_GUNICORN_WORKER_CLASS="sync",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    subprocess.run(
        [str(VENV_BIN / "flask"), "--app", "wsgi", "db", "upgrade"],
        cwd=REPO,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    log = tmp_path / "gunicorn.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "--config", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=output,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            requests.get(base + "/healthz", timeout=10)
            break
        except requests.RequestException:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
    yield base, process
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def worker_pids(master_pid):
    """The pids of gunicorn's workers: the master's children, read from /proc."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master_pid:
            pids.append(int(stat.parent.name))
    return pids


def login_pages(base, count):
    """GET the login page ``count`` times, each on a new connection (sync workers take turns)."""
    for _ in range(count):
        assert requests.get(base + "/auth/login", timeout=30).status_code == 200


def scraped_logins(base):
    """How many login-page GETs /metrics has counted."""
    scraped = requests.get(base + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert scraped.status_code == 200
    return figure(scraped.text, "greenbar_http_requests_total", endpoint="auth.login", status="200")


def test_two_gunicorn_workers_add_up_across_a_killed_worker(gunicorn_with_two_workers):
    base, master = gunicorn_with_two_workers
    login_pages(base, 20)
    assert scraped_logins(base) == 20
    # a worker that dies takes its memory with it, but not its figures
    first = worker_pids(master.pid)
    assert len(first) == 2
    for pid in first:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while not (len(worker_pids(master.pid)) == 2 and not set(first) & set(worker_pids(master.pid))):
        assert time.monotonic() < deadline, "gunicorn did not replace its workers"
        time.sleep(0.2)
    login_pages(base, 20)
    assert scraped_logins(base) == 40
