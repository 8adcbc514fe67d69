"""Finding 4: behind HTTPS, the session and remember cookies go over HTTPS only."""

import pytest

from tests.conftest import empty_all_tables
from tests.conftest import settings_for
from tests.factories import make_user
from webapp import create_app
from webapp.extensions import db


@pytest.fixture
def app_at(database_urls, tmp_path, monkeypatch):
    """Build the app as production would for a given GREENBAR_EXTERNAL_URL."""
    built = []

    def build(external_url):
        monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
        monkeypatch.setenv("GREENBAR_EXTERNAL_URL", external_url)
        monkeypatch.delenv("GREENBAR_SECURE_COOKIES", raising=False)
        application = create_app(settings_for(database_urls["sqlite"], str(tmp_path)))
        with application.app_context():
            empty_all_tables()
            make_user("alice", password="alice-password")
        built.append(application)
        return application

    yield build
    for application in built:
        with application.app_context():
            empty_all_tables()
            db.engine.dispose()


def login_cookies(application):
    """The Set-Cookie headers of a remembered login."""
    response = application.test_client().post(
        "/auth/login", data={"username": "alice", "password": "alice-password", "remember": "y"}
    )
    assert response.status_code == 302
    return response.headers.getlist("Set-Cookie")


def test_cookies_are_secure_at_an_https_address(app_at):
    """Deployed at https://: do both the session and the remember cookie carry Secure?"""
    cookies = login_cookies(app_at("https://greenbar.example.test"))
    assert sorted(cookie.split("=", 1)[0] for cookie in cookies) == ["remember_token", "session"]
    assert all("; Secure" in cookie for cookie in cookies), cookies


def test_cookies_work_at_a_plain_http_address(app_at):
    """At http:// (make run), is Secure left off, so logging in still works?"""
    cookies = login_cookies(app_at("http://127.0.0.1:5000"))
    assert cookies and not any("; Secure" in cookie for cookie in cookies), cookies
