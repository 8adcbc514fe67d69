"""The pytest plugin for real: pytest runs a sample project in a subprocess against gunicorn on MariaDB.

What Greenbar stored is compared, case by case, with pytest's own
``--junitxml`` of the same run, read by Greenbar's JUnit parser (which folds
pytest-rerunfailures' attempts the same way).
"""

import itertools
import re
import subprocess
import sys
import threading
import time

import pytest

from tests.clients.conftest import greenbar
from webapp import junit
from webapp.imports import fit_name

SAMPLE = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": """
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup broke")

@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown broke")
""",
    "test_basic.py": """
import sys
import pytest

def test_passes():
    print("to stdout")
    print("to stderr", file=sys.stderr)

def test_fails():
    assert 1 + 1 == 3, "arithmetic"

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass

def test_fails_and_teardown_error(broken_teardown):
    assert False

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

def test_skips_inside():
    pytest.skip("decided at run time")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass

@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict():
    pass

@pytest.mark.parametrize("value", [1, 2, "\u00fc \u00df"])
def test_param(value):
    assert value != 2

@pytest.mark.parametrize("text", ["x" * 600])
def test_long_id(text):
    pass

class TestGroup:
    def test_method(self):
        pass
""",
    "test_flaky.py": """
ATTEMPTS = {}

def test_flaky():
    ATTEMPTS["flaky"] = ATTEMPTS.get("flaky", 0) + 1
    assert ATTEMPTS["flaky"] > 1, "the first attempt fails"

def test_always_fails():
    assert False, "always"
""",
    "sub/test_many.py": """
import os
import time
import pytest

@pytest.mark.parametrize("n", range(int(os.environ.get("SAMPLE_MANY", "40"))))
def test_many(n):
    time.sleep(float(os.environ.get("SAMPLE_SLEEP", "0")))
""",
}
SUMMARY = re.compile(r"^greenbar: (\d+) results sent to build #(\d+) of .*: (http\S+/builds/\d+)$", re.M)
numbers = itertools.count(1)
WRITTEN_TWICE = {("test_basic.py", "test_fails_and_teardown_error")}


@pytest.fixture
def sample(tmp_path):
    """The sample project."""
    for name, text in SAMPLE.items():
        path = tmp_path / "sample" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path / "sample"


def run_pytest(sample, env, *args, wait=True):
    """Run pytest on the sample with its own --junitxml; return the process (finished when ``wait``)."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        f"--junitxml={sample / 'junit.xml'}",
        *args,
    ]
    process = subprocess.Popen(
        command, cwd=sample, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if wait:
        process.output = process.communicate(timeout=300)[0]
    return process


def from_junitxml(path, sample):
    """{(suite, case): (status, attempts, flaky)} of pytest's own report.

    pytest's --junitxml writes a test whose call failed and whose teardown then
    errored as two ``<testcase>`` elements; it ran once, so one is taken off.
    """
    cases = {}
    with open(path, "rb") as stream:
        for _, parsed in junit.iter_suites(stream):
            for case in parsed:
                node = node_of(sample, case.classname, case.name)
                attempts = case.attempts - (node in WRITTEN_TWICE)
                cases[node] = (case.status, attempts, case.flaky)
    return cases


def node_of(sample, classname, name):
    """Our (suite, case) for pytest's junitxml classname and name: the module is the longest file prefix."""
    parts = classname.split(".")
    for length in range(len(parts), 0, -1):
        module = "/".join(parts[:length]) + ".py"
        if (sample / module).exists():
            # names longer than Greenbar's columns are stored cut, with a digest (as the import does)
            return fit_name(module, 255), fit_name("::".join([*parts[length:], name]), 512)
    raise AssertionError(f"no module for {classname}")


def stored(server, instance, number):
    """{(suite, case): (status, attempts, flaky)} and the build row of what Greenbar stored."""
    rows = server.query(
        "SELECT s.name, c.name, c.result_status, c.attempts, c.is_flaky FROM test_cases c"
        " JOIN test_suites s ON s.id = c.suite_id JOIN test_builds b ON b.id = c.build_id"
        " JOIN test_instances i ON i.id = b.instance_id WHERE i.name = %s AND b.number = %s",
        instance,
        number,
    )
    cases = {(suite, name): (status, attempts, bool(flaky)) for suite, name, status, attempts, flaky in rows}
    build = server.query(
        "SELECT b.cases_total, b.passed, b.failed, b.errored, b.skipped, b.flaky, b.finished"
        " FROM test_builds b JOIN test_instances i ON i.id = b.instance_id"
        " WHERE i.name = %s AND b.number = %s",
        instance,
        number,
    )
    return cases, build[0] if build else None


def assert_counters(cases, build):
    """The build's counters are exactly what its cases add up to."""
    statuses = [status for status, _, _ in cases.values()]
    expected = (
        len(cases),
        statuses.count("SUCCESS"),
        statuses.count("FAILED"),
        statuses.count("ERROR"),
        statuses.count("SKIPPED"),
        sum(flaky for _, _, flaky in cases.values()),
    )
    assert build[:6] == expected


VARIANTS = {
    "plain": [],
    "xdist": ["-n", "2"],
    "reruns": ["--reruns", "1"],
    "xdist-reruns": ["-n", "2", "--reruns", "1"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_stored_results_match_pytest_junitxml(server, sample, variant):
    """Every case pytest reported is stored with the same status, attempts and flakiness, and nothing else."""
    instance = f"plugin-{variant}"
    number = next(numbers)
    run = run_pytest(sample, server.client_env(instance, build_number=number), *VARIANTS[variant])
    assert run.returncode == 1, run.output
    summary = SUMMARY.findall(run.output)
    assert len(summary) == 1, run.output
    expected = from_junitxml(sample / "junit.xml", sample)
    cases, build = stored(server, instance, number)
    assert cases == expected
    assert int(summary[0][0]) == sum(attempts for _, attempts, _ in expected.values())
    assert summary[0][1] == str(number)
    assert_counters(cases, build)
    assert build[6] is not None, "the build is finished when the session ends"
    assert not list(sample.glob("greenbar-unsent*.xml"))
    if "reruns" in variant:
        assert cases[("test_flaky.py", "test_flaky")] == ("SUCCESS", 2, True)
        assert cases[("test_flaky.py", "test_always_fails")] == ("FAILED", 2, False)


def test_mapping_messages_and_output(server, sample):
    """Messages are the crash line or the skip/xfail reason; captured output is kept."""
    instance, number = "plugin-mapping", next(numbers)
    run = run_pytest(sample, server.client_env(instance, build_number=number), "test_basic.py")
    assert run.returncode == 1, run.output
    rows = server.query(
        "SELECT c.name, c.result_status, c.message, c.system_out, c.system_err, c.details, c.duration"
        " FROM test_cases c JOIN test_builds b ON b.id = c.build_id JOIN test_instances i"
        " ON i.id = b.instance_id WHERE i.name = %s AND b.number = %s",
        instance,
        number,
    )
    by_name = {row[0]: row[1:] for row in rows}
    assert by_name["test_passes"][:4] == ("SUCCESS", None, "to stdout\n", "to stderr\n")
    assert by_name["test_fails"][:2] == ("FAILED", "AssertionError: arithmetic\nassert (1 + 1) == 3")
    assert "def test_fails():" in by_name["test_fails"][4]
    assert by_name["test_setup_error"][:2] == ("ERROR", "RuntimeError: setup broke")
    assert by_name["test_teardown_error"][:2] == ("ERROR", "RuntimeError: teardown broke")
    assert by_name["test_skipped"][:2] == ("SKIPPED", "not today")
    assert by_name["test_skips_inside"][:2] == ("SKIPPED", "decided at run time")
    assert by_name["test_xfail"][:2] == ("SKIPPED", "known bug")
    assert by_name["test_xpass"][0] == "SUCCESS"
    assert by_name["test_xpass_strict"][0] == "FAILED"
    assert by_name["TestGroup::test_method"][0] == "SUCCESS"
    assert all(row[6] is not None and row[6] >= 0 for row in rows)


def test_exit_status_and_output_unchanged(server, sample):
    """With the plugin, pytest exits the same and says the same, plus one line naming the build's page."""
    without = run_pytest(
        sample, {k: v for k, v in server.client_env("x").items() if not k.startswith("GREENBAR_")}
    )
    with_plugin = run_pytest(sample, server.client_env("plugin-output", build_number=next(numbers)))
    assert with_plugin.returncode == without.returncode == 1
    extra = [line for line in with_plugin.output.splitlines() if line.startswith("greenbar:")]
    assert len(extra) == 1 and SUMMARY.match(extra[0]), with_plugin.output

    def outcomes(output):
        return re.sub(r" in [0-9.]+s.*", "", output.strip().splitlines()[-1])

    assert outcomes(with_plugin.output) == outcomes(without.output)


def test_server_killed_and_restarted_mid_run(server, sample):
    """Greenbar crashes while results stream and comes back: nothing is lost, nothing stored twice."""
    instance, number = "plugin-restart", next(numbers)
    env = dict(server.client_env(instance, build_number=number), SAMPLE_MANY="600", SAMPLE_SLEEP="0.01")
    process = run_pytest(sample, env, "sub", wait=False)
    output = []
    reader = threading.Thread(target=lambda: output.append(process.stdout.read()), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while not stored(server, instance, number)[0] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert process.poll() is None, "the run ended before the server could be killed"
    server.kill()
    time.sleep(3)
    server.start()
    assert process.wait(timeout=300) == 0
    reader.join(10)
    assert len(SUMMARY.findall(output[0])) == 1, output[0]
    cases, build = stored(server, instance, number)
    assert cases == from_junitxml(sample / "junit.xml", sample)
    assert len(cases) == 600
    assert {attempts for _, attempts, _ in cases.values()} == {1}
    assert_counters(cases, build)


def test_greenbar_down_spools_for_upload(server, sample, tmp_path):
    """With Greenbar unreachable the run is unharmed, and the spool file uploads what pytest saw."""
    number = next(numbers)
    env = server.client_env("plugin-spool", build_number=number)
    down = dict(env, GREENBAR_URL="http://127.0.0.1:9")
    run = run_pytest(sample, down, "--greenbar-retry-seconds", "1", "--reruns", "1")
    assert run.returncode == 1, run.output
    spooled = list(sample.glob("greenbar-unsent*.xml"))
    assert len(spooled) == 1
    hint = f"later with: greenbar upload {spooled[0]} --instance plugin-spool --build-number {number}"
    assert hint in run.output
    upload = greenbar("upload", spooled[0], env=env)
    assert upload.returncode == 0, upload.stderr
    cases, build = stored(server, "plugin-spool", number)
    assert cases == from_junitxml(sample / "junit.xml", sample)
    assert_counters(cases, build)


def test_bad_setting_is_one_line_and_harmless(server, sample):
    """A wrong setting names its variable in one line; the tests run as they would without the plugin."""
    env = dict(server.client_env("plugin-bad"), GREENBAR_BUILD_NUMBER="seven")
    run = run_pytest(sample, env, "test_flaky.py")
    assert run.returncode == 1
    lines = [line for line in run.output.splitlines() if line.startswith("greenbar")]
    assert lines == [
        "greenbar: GREENBAR_BUILD_NUMBER must be a whole number from 1 to 2147483647,"
        " not 'seven'; results are not sent"
    ]
