"""Helpers shared by the infrastructure tests: tools, ports and child processes.

These tests drive real programs (nginx, gunicorn, ansible-playbook,
moto_server). A missing program skips them with the reason, except under
CI=true, where it fails them: CI must run everything.
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

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
VENV_BIN = Path(sys.executable).parent
IN_CI = os.environ.get("CI", "").lower() == "true"


def require_program(name):
    """Return the path of program ``name`` (venv first), or skip (fail under CI) without it."""
    candidate = VENV_BIN / name
    path = str(candidate) if candidate.exists() else shutil.which(name)
    if path is None:
        message = f"{name} is not installed (see docs/testing.md: make test installs it)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


def free_port():
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check, timeout, what):
    """Call ``check`` until it returns a true value; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def moto_answers(url):
    """Return True once a moto server answers on ``url``."""
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def stop_process(process, timeout=15):
    """Stop a child process we started (SIGTERM, then SIGKILL) and reap it."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


def tail(path, lines=60):
    """Return the last ``lines`` lines of a log file, for failure messages."""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} unreadable)"


def render_nginx_site(**overrides):
    """Render the nginx role's site template as the role does: role defaults, then ``overrides``."""
    import jinja2
    import yaml

    defaults = yaml.safe_load((ANSIBLE_DIR / "roles/nginx/defaults/main.yml").read_text())
    site_vars = {name: value for name, value in defaults.items() if name.startswith("nginx_")}
    site_vars.update(overrides)
    # Ansible's template module renders with trim_blocks on, and so do we; an
    # nginx config is not HTML, so there is nothing to escape.
    environment = jinja2.Environment(  # noqa: S701
        loader=jinja2.FileSystemLoader(str(ANSIBLE_DIR / "roles/nginx/templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("greenbar.conf.j2").render(**site_vars)
