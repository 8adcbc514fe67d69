"""Finding 3: a stranger who knows the CI user's name must not lock CI out."""

import pytest

from tests.conftest import basic_auth
from tests.conftest import empty_all_tables
from tests.conftest import make_token_user
from tests.conftest import settings_for
from tests.factories import make_user
from webapp import create_app
from webapp.extensions import db
from webapp.models import LoginLockout
from webapp.models import User

API = "/api/test-instance/"
ATTACKER = "198.51.100.66"
CI_RUNNER = "10.0.0.5"


@pytest.fixture(params=["sqlite", "mysql"])
def limited_app(request, database_urls, tmp_path, monkeypatch):
    """The app with login limits on: per process on SQLite, in the database's rate_counters on MySQL."""
    url = database_urls[request.param]
    if url is None:
        pytest.skip(database_urls.get("mysql_skip_reason", "MySQL not configured"))
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    application = create_app(dict(settings_for(url, str(tmp_path)), RATELIMIT_ENABLED=True))
    with application.app_context():
        empty_all_tables()
        make_user("admin", role="admin", password="admin-password")
    yield application
    with application.app_context():
        empty_all_tables()
        db.engine.dispose()


def call(client, headers, address):
    """GET the API from ``address``."""
    return client.get(API, headers=headers, environ_base={"REMOTE_ADDR": address})


def test_wrong_passwords_from_a_stranger_leave_ci_working(limited_app):
    """Thirty wrong passwords for "ci" from elsewhere: does CI's token (and its password) still work?"""
    client = limited_app.test_client()
    token = make_token_user(limited_app, "maintainer", username="ci")
    with limited_app.app_context():
        db.session.query(User).filter_by(username="ci").one().set_password("ci-password")
        db.session.commit()
    for _ in range(30):
        call(client, basic_auth("ci", "guess"), ATTACKER)
    assert call(client, basic_auth("ci", "guess"), ATTACKER).status_code == 429
    # a valid token always gets in, even from the attacker's own address
    assert call(client, token, CI_RUNNER).status_code == 200
    assert call(client, token, ATTACKER).status_code == 200
    # and CI's password works from CI's address
    assert call(client, basic_auth("ci", "ci-password"), CI_RUNNER).status_code == 200


def test_admin_sees_the_lockout_and_lifts_it(limited_app):
    """Is the attacker's lockout listed for admins, and does lifting it let that address try again?"""
    client = limited_app.test_client()
    make_token_user(limited_app, "maintainer", username="ci")
    for _ in range(10):
        call(client, basic_auth("ci", "guess"), ATTACKER)
    assert call(client, basic_auth("ci", "guess"), ATTACKER).status_code == 429
    admin = limited_app.test_client()
    login = {"username": "admin", "password": "admin-password"}
    assert admin.post("/auth/login", data=login).status_code == 302
    page = admin.get("/admin/lockouts/")
    assert page.status_code == 200
    assert f"<td>ci</td>\n      <td>{ATTACKER}</td>" in page.text
    with limited_app.app_context():
        lockout_id = db.session.query(LoginLockout).filter_by(username="ci").one().id
    lifted = admin.post(f"/admin/lockouts/{lockout_id}/lift", follow_redirects=True)
    assert "Lockout lifted." in lifted.text
    assert call(client, basic_auth("ci", "guess"), ATTACKER).status_code == 401
