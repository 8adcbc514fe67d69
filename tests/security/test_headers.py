"""Finding 7: the app sends its own security headers, behind any proxy or none."""

import re
from pathlib import Path

import pytest

from tests.conftest import empty_all_tables
from tests.conftest import settings_for
from webapp import create_app
from webapp.extensions import db

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
INLINE = re.compile(r"<script(?![^>]*\b(src|type=\"application/json\"))[^>]*>|\sstyle=|\son[a-z]+=", re.I)


@pytest.fixture
def https_app(database_urls, tmp_path, monkeypatch):
    """The app behind one proxy hop, which may say the client used HTTPS."""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    application = create_app(dict(settings_for(database_urls["sqlite"], str(tmp_path)), PROXY_HOPS=1))
    yield application
    with application.app_context():
        empty_all_tables()
        db.engine.dispose()


def test_pages_carry_a_strict_policy_without_any_proxy(client):
    """A page served straight by the app (make run): CSP without inline script, nosniff, no framing."""
    headers = client.get("/auth/login").headers
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self'"
    assert policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'self'"
    assert "unsafe" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in headers


def test_hsts_only_over_https(https_app):
    """Does HSTS come with HTTPS (as the proxy reports it), and never over plain HTTP?"""
    client = https_app.test_client()
    secure = client.get("/auth/login", headers={"X-Forwarded-Proto": "https"})
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in client.get("/auth/login").headers


def test_authenticated_api_replies_are_not_stored(api):
    """An API reply with results: may no browser or proxy cache keep it?"""
    response = api.get("/api/test-instance/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_no_template_carries_inline_script_or_style():
    """Is every script and style in a static file, as the policy demands?"""
    offenders = {
        str(path.relative_to(TEMPLATES)): match.group(0)
        for path in TEMPLATES.rglob("*.html")
        for match in [INLINE.search(path.read_text())]
        if match
    }
    assert offenders == {}
