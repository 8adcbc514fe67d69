"""Finding 1: a password-reset link must never point at a host the requester chose."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import empty_all_tables
from tests.conftest import settings_for
from tests.factories import make_user
from tests.infra.conftest import render_nginx_site
from webapp import create_app
from webapp import worker
from webapp.extensions import db

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"https?://[^\s/]+/auth/reset/\S+")


@pytest.fixture
def proxied_app(database_urls, tmp_path, monkeypatch):
    """The app behind one trusted proxy hop (as behind nginx), with its external address set."""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    settings = dict(
        settings_for(database_urls["sqlite"], str(tmp_path)),
        PROXY_HOPS=1,
        EXTERNAL_URL="https://greenbar.example.test",
    )
    application = create_app(settings)
    with application.app_context():
        make_user("victim").email = "victim@example.test"
        db.session.commit()
    yield application
    with application.app_context():
        empty_all_tables()
        db.engine.dispose()


def test_forged_host_headers_stay_out_of_the_mailed_link(proxied_app, caplog):
    """The attacker asks for the victim's reset with forged Host headers: whose link is mailed?"""
    caplog.set_level("WARNING", logger="webapp.mail")
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    response = proxied_app.test_client().post("/auth/reset", data={"login": "victim"}, headers=forged)
    assert response.status_code == 302
    # the mail waits in the outbox; the worker sends it, with no request in sight
    with proxied_app.app_context():
        assert worker.drain() == 1
    links = LINK.findall(caplog.text)
    assert len(links) == 1
    assert links[0].startswith("https://greenbar.example.test/auth/reset/")


def test_gunicorn_refuses_to_start_without_an_external_url(tmp_path):
    """Production without GREENBAR_EXTERNAL_URL: does gunicorn stop at once with one line saying why?"""
    env = {key: value for key, value in os.environ.items() if key != "GREENBAR_EXTERNAL_URL"}
    result = subprocess.run(
        [
            str(REPO / ".venv/bin/gunicorn"),
            "--check-config",
            "-c",
            str(REPO / "gunicorn.conf.py"),
            "wsgi:app",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "greenbar: GREENBAR_EXTERNAL_URL is not set: set it to the address users open "
        "(e.g. https://greenbar.example.com); mailed links are built on it, never on a request's Host"
    ]


def test_nginx_drops_a_client_x_forwarded_host():
    """Does the shipped nginx site overwrite a client's X-Forwarded-Host with nothing?"""
    site = render_nginx_site()
    assert 'proxy_set_header X-Forwarded-Host "";' in site
