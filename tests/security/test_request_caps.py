"""Finding 9 (third point): oversized request lines and headers are refused in the API's JSON under /api/.

nginx, rendered from the shipped site and run alone (the refusals come before
any upstream is asked), answers a 9 KB request line or header; so does
gunicorn on its own, as under ``make run``.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.infra.conftest import render_nginx_site

REPO = Path(__file__).resolve().parents[2]

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
TOO_LONG = "a" * 9000


def free_port():
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """nginx serving the shipped site on a free port: the port."""
    root = tmp_path_factory.mktemp("nginx-caps")
    (root / "logs").mkdir()
    (root / "temp").mkdir()
    port = free_port()
    site = render_nginx_site(
        nginx_listen=f"127.0.0.1:{port}",
        nginx_upstream_sockets=[str(root / "absent.sock")],
        nginx_access_log=str(root / "logs/access.log"),
        nginx_error_log=str(root / "logs/error.log"),
        nginx_static_root=str(root),
    )
    temp = root / "temp"
    (root / "nginx.conf").write_text(
        f"pid {root}/nginx.pid;\nerror_log {root}/logs/main.log;\nevents {{}}\nhttp {{\n"
        f"client_body_temp_path {temp}; proxy_temp_path {temp}; fastcgi_temp_path {temp};\n"
        f"uwsgi_temp_path {temp}; scgi_temp_path {temp};\n{site}\n}}\n"
    )
    process = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(root),
            "-c",
            str(root / "nginx.conf"),
            "-g",
            "daemon off;",
            "-e",
            str(root / "logs/main.log"),
        ]
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    yield port
    process.terminate()
    process.wait(timeout=30)


def get(port, path, headers=None):
    """(status, content type, body) of one GET."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.getheader("Content-Type"), response.read()


def test_an_oversized_api_request_line_is_a_json_414(nginx):
    """The attack: a 9 KB query string on the API. Is the refusal the API's JSON envelope?"""
    status, content_type, body = get(nginx, f"/api/test-instance/?search={TOO_LONG}")
    assert (status, content_type) == (414, "application/json")
    assert json.loads(body) == {
        "error": {"status": 414, "message": "The request line is longer than 8 KB.", "fields": {}}
    }


def test_an_oversized_api_header_is_a_json_400(nginx):
    """A 9 KB header on the API: is the refusal the API's JSON envelope?"""
    status, content_type, body = get(nginx, "/api/test-instance/", {"X-Padding": TOO_LONG})
    assert (status, content_type) == (400, "application/json")
    assert json.loads(body)["error"]["status"] == 400


def test_an_oversized_page_request_keeps_an_html_answer(nginx):
    """Outside /api/ (a browser), is the refusal still nginx's page?"""
    status, content_type, _ = get(nginx, f"/instances/?q={TOO_LONG}")
    assert (status, content_type) == (414, "text/html")


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """gunicorn alone (as under make run) on SQLite and a free port: the port."""
    root = tmp_path_factory.mktemp("gunicorn-caps")
    port = free_port()
    env = dict(
        os.environ,
        DATABASE_URL=f"sqlite:///{root}/greenbar.sqlite3",
        SECRET_KEY="caps",
        GREENBAR_INSTANCE_PATH=str(root),
        GREENBAR_EXTERNAL_URL=f"http://127.0.0.1:{port}",
        GREENBAR_GUNICORN_BIND=f"127.0.0.1:{port}",
        GREENBAR_GUNICORN_WORKERS="1",
        GREENBAR_GUNICORN_ACCESS_LOG="/dev/null",
    )
    process = subprocess.Popen(
        [str(REPO / ".venv/bin/gunicorn"), "-c", str(REPO / "gunicorn.conf.py"), "wsgi:app"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if get(port, "/healthz")[0] == 200:
                break
        except OSError:
            time.sleep(0.3)
    yield port
    process.terminate()
    process.wait(timeout=30)


def test_gunicorn_refuses_an_oversized_request_line_in_json(gunicorn):
    """Without nginx in front: is gunicorn's own 414 the API's JSON envelope, not its HTML page?"""
    status, content_type, body = get(gunicorn, f"/api/test-instance/?search={TOO_LONG}")
    assert (status, content_type) == (414, "application/json")
    error = json.loads(body)["error"]
    assert (error["status"], error["fields"]) == (414, {})
    assert error["message"].startswith("URI Too Long: Request Line is too large")
