"""``greenbar gate``, ``greenbar split`` and the plugin's quarantine and shard options, for real.

Against gunicorn on MariaDB (tests/clients/conftest.py). The history: build 1
passes t1..t4; build 2 fails t1 (a new failure). The client runs from this
checkout (PYTHONPATH), whatever greenbar-client the environment has installed.
"""

import subprocess
import sys

import requests

from tests.clients.conftest import REPO
from tests.clients.conftest import greenbar

CLIENT = str(REPO / "webapp" / "client")
REPORT = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="test_s.py">
  <testcase classname="test_s.py" name="test_1" time="4">{failure}</testcase>
  <testcase classname="test_s.py" name="test_2" time="3"/>
  <testcase classname="test_s.py" name="test_3" time="2"/>
  <testcase classname="test_s.py" name="test_4" time="1"/>
</testsuite>
"""
SAMPLE = """
def test_1():
    assert False, "quarantined and failing"

def test_2():
    pass

def test_3():
    pass

def test_4():
    pass

def test_new():
    pass
"""


def client_env(server, instance, **settings):
    """The client's environment, running this checkout's client."""
    return dict(server.client_env(instance, **settings), PYTHONPATH=CLIENT)


def history(server, tmp_path, instance):
    """Upload and finish builds 1 (all pass) and 2 (test_1 fails); return the instance id."""
    for number, failure in ((1, ""), (2, '<failure message="boom 42">trace</failure>')):
        report = tmp_path / f"report-{number}.xml"
        report.write_text(REPORT.format(failure=failure))
        run = greenbar("upload", report, env=client_env(server, instance, build_number=number))
        assert run.returncode == 0, run.stderr
    instance_id = server.query("SELECT id FROM test_instances WHERE name = %s", instance)[0][0]
    for (build_id,) in server.query("SELECT id FROM test_builds WHERE instance_id = %s", instance_id):
        reply = requests.post(
            f"{server.url}/api/test-instance/{instance_id}/test-build/{build_id}/finish/",
            json={},
            auth=(server.user, server.token),
            timeout=30,
        )
        assert reply.status_code == 200, reply.text
    return instance_id


def quarantine(server, instance_id, name):
    """Quarantine one test of suite test_s.py through the API."""
    reply = requests.post(
        f"{server.url}/api/test-instance/{instance_id}/quarantine/",
        json={"suite": "test_s.py", "name": name, "reason": "known bad"},
        auth=(server.user, server.token),
        timeout=30,
    )
    assert reply.status_code == 201, reply.text


def run_pytest(sample, env, *args):
    """pytest on the sample project, with the plugin from this checkout; the finished process."""
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:randomly", "-rA", *args]
    return subprocess.run(
        command, cwd=sample, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_gate_fails_then_passes_once_quarantined(server, tmp_path):
    """Does ``greenbar gate`` print the rule and exit 1 on the new failure, and 0 once it is quarantined?"""
    instance_id = history(server, tmp_path, "gate-cli")
    env = client_env(server, "gate-cli", build_number=2)
    failed = greenbar("gate", env=env)
    assert failed.returncode == 1, failed.stderr
    assert failed.stdout.splitlines() == [
        "FAIL no_new_failures: 1 new failure (against build #1): test_s.py::test_1",
        "gate failed for build #2",
    ]
    quarantine(server, instance_id, "test_1")
    passed = greenbar("gate", "--wait", "0", env=env)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.splitlines()[-1] == "gate passed for build #2"
    unknown = greenbar("gate", env=client_env(server, "no-such-instance"))
    assert unknown.returncode == 2
    assert (
        unknown.stderr.strip()
        == "greenbar: Greenbar has no test instance named 'no-such-instance' (GREENBAR_INSTANCE)"
    )


def test_split_prints_balanced_shards(server, tmp_path):
    """4, 3, 2, 1 s in two shards: shard 1 gets test_1 and test_4 (5 s), shard 2 test_2 and test_3 (5 s)."""
    history(server, tmp_path, "split-cli")
    env = client_env(server, "split-cli")
    first = greenbar("split", "--shards", "2", "--index", "1", env=env)
    second = greenbar("split", "--shards", "2", "--index", "2", env=env)
    assert first.stdout.split() == ["test_s.py::test_1", "test_s.py::test_4"]
    assert second.stdout.split() == ["test_s.py::test_2", "test_s.py::test_3"]
    assert greenbar("split", "--shards", "2", "--index", "3", env=env).returncode == 2


def test_plugin_quarantine_and_shards(server, tmp_path):
    """Does --greenbar-quarantine pass a run whose one failure is quarantined; do shards run tests once?"""
    instance_id = history(server, tmp_path, "plugin-act")
    quarantine(server, instance_id, "test_1")
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "test_s.py").write_text(SAMPLE)
    env = client_env(server, "plugin-act")
    plain = run_pytest(sample, env)
    assert plain.returncode == 1, plain.stdout
    forgiven = run_pytest(sample, dict(env, GREENBAR_QUARANTINE="1"))
    assert forgiven.returncode == 0, forgiven.stdout
    assert "greenbar: 1 quarantined test(s) failed and do not fail the session:" in forgiven.stdout
    ran = []
    # the shards of one CI run share its build number (GITHUB_RUN_NUMBER, CI_PIPELINE_IID, BUILD_NUMBER);
    # the first to end finishes that build with only its own tests, and the second must split as it did
    sharded = dict(env, GREENBAR_BUILD_NUMBER="90")
    for shard in ("1/2", "2/2"):
        run = run_pytest(sample, sharded, f"--greenbar-shard={shard}")
        ran.append(
            {line.split()[1] for line in run.stdout.splitlines() if line.startswith(("PASSED", "FAILED"))}
        )
    assert ran[0] & ran[1] == set()
    assert ran[0] | ran[1] == {f"test_s.py::test_{n}" for n in (1, 2, 3, 4, "new")}
