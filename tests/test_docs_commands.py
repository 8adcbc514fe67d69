"""Every command block of README.md and docs/*.md runs as written, or says why not.

The blocks of one document run in order in one ``bash -euo pipefail`` session,
from a scratch workspace that looks like the reader's checkout (the project's
``.venv`` and every other top-level entry of the checkout, linked),
on a fresh SQLite database named by ``DATABASE_URL``, with the JUnit reports a
CI job would have. A document whose blocks talk to ``http://127.0.0.1:5000``
gets ``make run`` serving first, on a free port that the blocks' address is
pointed at. docs/testing.md describes this for the documents' authors.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.request

import pytest

from tests.docs_blocks import MOTO_CYCLE
from tests.docs_blocks import NOT_RUN
from tests.docs_blocks import REPO
from tests.docs_blocks import all_command_blocks
from tests.docs_blocks import command_blocks
from tests.docs_blocks import documented_playbook_runs
from tests.docs_blocks import documents
from tests.docs_blocks import logical_lines
from tests.infra.conftest import free_port
from tests.infra.conftest import require_program
from tests.infra.conftest import tail
from tests.infra.conftest import wait_until

MAKE_RUN_ADDRESS = "http://127.0.0.1:5000"
CORPUS = REPO / "tests" / "junit_corpus"
# left out of the workspace's links: its own git repository and database come instead.
NOT_LINKED = {".git", "instance"}
# the reports a CI job's workspace holds where docs/junit-import.md uploads them.
CI_REPORTS = {
    "junit.xml": "pytest-xunit2.xml",
    "target/surefire-reports/TEST-CalculatorTest.xml": "surefire-TEST-CalculatorTest.xml",
    "target/surefire-reports/TEST-StringsTest.xml": "surefire-TEST-StringsTest.xml",
    "shard-2.xml": "gradle-TEST-OrderTest.xml",
}
# each block no test runs, by its first line: adding one is a deliberate change here.
EXEMPT = {
    (
        "README.md",
        "make run    # set up .venv, migrate the embedded SQLite database, serve on http://127.0.0.1:5000",
    ),
    (
        "docs/deploy-aws.md",
        "python3 -m venv ~/greenbar-ops && ~/greenbar-ops/bin/pip install -r ansible/requirements.txt",
    ),
    ("docs/deploy-aws.md", "ansible-playbook deploy.yml -e deploy_revision=<previous tag or commit>"),
    (
        "docs/clients.md",
        'pip install "https://$GREENBAR_USER:$GREENBAR_TOKEN@greenbar.example.com/api/client/'
        'greenbar_client-0.1.0-py3-none-any.whl"',
    ),
    (
        "docs/clients.md",
        'greenbar upload PATH...        # files, folders, globs ("reports/**/*.xml"); .gz allowed',
    ),
    ("docs/clients.md", "# a new build from a report (build fields as query parameters)"),
    ("docs/files-and-messages.md", "curl -u ci:TOKEN -F file=@screenshot.png -F file=@browser.log \\"),
    (
        "docs/files-and-messages.md",
        'curl -u ci:TOKEN -F file=@junit.xml -F "attachment=@shots/login.png;filename=shots/login.png" \\',
    ),
    (
        "docs/files-and-messages.md",
        "aws sesv2 put-account-details --production-access-enabled --mail-type TRANSACTIONAL \\",
    ),
    (
        "docs/testing.md",
        "ansible-playbook deploy.yml -e deploy_revision=v1.0.0 -e aws_stack_ami_id=<a moto image> \\",
    ),
}


def run_here():
    """The documents with blocks this file runs (no marker), in order."""
    return [path for path in documents() if any(block.marker is None for block in command_blocks(path))]


def test_every_block_is_run_or_says_why_not():
    """Does every command block either run here, run in the moto cycle, or carry a reason not to run?"""
    blocks = all_command_blocks()
    assert blocks, "no command blocks found"
    for block in blocks:
        assert block.marker is None or block.reason, f"{block.name}: a marker without a reason"
    exempt = {
        (str(block.path.relative_to(REPO)), block.text.splitlines()[0])
        for block in blocks
        if block.marker == NOT_RUN
    }
    assert exempt == EXEMPT


def test_moto_cycle_blocks_hold_only_playbook_runs():
    """Do the blocks left to the moto cycle hold only ansible-playbook runs of existing playbooks?"""
    moto_blocks = [block for block in all_command_blocks() if block.marker == MOTO_CYCLE]
    assert moto_blocks
    for block in moto_blocks:
        for line in logical_lines(block.text):
            assert line == "cd ansible" or line.startswith("ansible-playbook "), f"{block.name}: {line}"
    playbooks = [playbook for playbook, _assignments in documented_playbook_runs()]
    assert playbooks == ["provision.yml", "deploy.yml", "teardown.yml"]
    assert all((REPO / "ansible" / playbook).is_file() for playbook in playbooks)
    assert "documented_playbook_runs" in (REPO / "tests/infra/test_provision_moto.py").read_text()


def workspace_for(tmp_path):
    """A scratch checkout: the project linked in, a git commit, the CI reports; return (path, env)."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in NOT_LINKED:
            (workspace / entry.name).symlink_to(entry)
    for target, source in CI_REPORTS.items():
        (workspace / target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(CORPUS / source, workspace / target)
    git = ["git", "-C", str(workspace), "-c", "user.name=Docs", "-c", "user.email=docs@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "the job's commit"], check=True)
    instance = tmp_path / "instance"
    env = {name: value for name, value in os.environ.items() if not name.startswith(("GREENBAR_", "FLASK_"))}
    env.update(
        DATABASE_URL=f"sqlite:///{instance / 'greenbar.sqlite3'}", GREENBAR_INSTANCE_PATH=str(instance)
    )
    return workspace, env


def answers(url):
    """Return True once ``url`` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture
def served(tmp_path):
    """A factory: ``make run`` in the workspace on a free port, stopped (its process group) afterwards."""
    started = []

    def serve(workspace, env):
        port = free_port()
        log = tmp_path / "make-run.log"
        # -o: the shared venv is installed already; make must not pip install into it.
        command = [
            require_program("make"),
            "-o",
            ".venv/.runtime-installed",
            "run",
            f"RUN_BIND=127.0.0.1:{port}",
        ]
        with open(log, "w") as output:
            process = subprocess.Popen(
                command,
                cwd=workspace,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: process.poll() is not None or answers(f"{url}/healthz"), 120, "make run to serve")
        assert process.poll() is None, tail(log)
        return url

    yield serve
    for process in started:
        # make and the gunicorn it started share the session we gave them.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


@pytest.mark.parametrize("path", run_here(), ids=lambda path: str(path.relative_to(REPO)))
def test_document_blocks_run(path, tmp_path, served):
    """Do a document's command blocks all succeed, in order, as a reader would run them?"""
    blocks = [block for block in command_blocks(path) if block.marker is None]
    script = "\n".join(f"# {block.name}\n{block.text}" for block in blocks)
    workspace, env = workspace_for(tmp_path)
    if MAKE_RUN_ADDRESS in script:
        script = script.replace(MAKE_RUN_ADDRESS, served(workspace, env))
    result = subprocess.run(
        [require_program("bash"), "-euo", "pipefail", "-c", script],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{path.name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    if path.name == "README.md":
        check_walk_through_reply(path, result.stdout)


def check_walk_through_reply(path, output):
    """Is the walk-through's last reply the build the README shows: its fields, and its two cases' counts?"""
    shown = re.search(
        r"The last call answers with the build and its counters:\n\n```json\n(.*?)```",
        path.read_text(encoding="utf-8"),
        re.S,
    )
    documented = json.loads(shown.group(1))
    reply = json.loads(output.strip().splitlines()[-1])
    assert sorted(reply) == sorted(documented)
    counts = ("suites_total", "cases_total", "passed", "failed", "errored", "skipped", "pass_rate", "status")
    assert {key: reply[key] for key in counts} == {key: documented[key] for key in counts}
