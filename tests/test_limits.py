"""Failed logins and reset-link requests are limited per username (or e-mail) and per address."""

import logging
import time

import pytest

from tests.conftest import basic_auth
from tests.conftest import empty_all_tables
from tests.conftest import settings_for
from tests.factories import make_user
from webapp import create_app
from webapp import worker
from webapp.extensions import db

LIMIT = 10
ADDRESS_LIMIT = 50
RESET_ACCOUNT_LIMIT = 5
RESET_ADDRESS_LIMIT = 20
API = "/api/test-instance/"


@pytest.fixture
def limited_app(database_urls, tmp_path, monkeypatch):
    """The app on SQLite with rate limits on (memory storage, fresh for each app)."""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    settings = dict(settings_for(database_urls["sqlite"], str(tmp_path)), RATELIMIT_ENABLED=True)
    application = create_app(settings)
    with application.app_context():
        empty_all_tables()
        make_user("alice", role="maintainer", password="alice-password")
        make_user("bob", role="maintainer", password="bob-password")
        make_user("carol", password="carol-password").email = "carol@example.test"
        db.session.commit()
    yield application
    with application.app_context():
        empty_all_tables()
        db.engine.dispose()


def form_login(client, username, password, address="10.0.0.1"):
    """Post the login form from a given client address."""
    return client.post(
        "/auth/login",
        data={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )


def api_get(client, username, password, address="10.0.0.1"):
    """Call the API with Basic credentials from a given client address."""
    return client.get(API, headers=basic_auth(username, password), environ_base={"REMOTE_ADDR": address})


def test_form_login_failures_per_username_at_an_address_are_limited(limited_app):
    """After ten failures for one account from one address, is the eleventh from there refused?"""
    client = limited_app.test_client()
    for attempt in range(LIMIT):
        response = form_login(client, "alice", "wrong")
        assert response.status_code == 200, attempt
    blocked = form_login(client, "alice", "wrong")
    assert blocked.status_code == 429
    assert "Too many failed login attempts" in blocked.text
    assert int(blocked.headers["Retry-After"]) >= 1
    # the right password is refused too: a guess made while blocked must not be confirmed
    assert form_login(client, "alice", "alice-password").status_code == 429
    # a stranger's failures elsewhere lock nobody out, and other accounts here still log in
    assert form_login(client, "alice", "alice-password", address="10.0.2.2").status_code == 302
    assert form_login(client, "bob", "bob-password").status_code == 302


def test_form_login_failures_per_address_are_limited(limited_app):
    """After the address limit's failures from one address, spread over many names, is it refused?"""
    client = limited_app.test_client()
    for attempt in range(ADDRESS_LIMIT):
        assert form_login(client, f"user{attempt}", "wrong").status_code == 200
    assert form_login(client, "bob", "bob-password").status_code == 429
    assert form_login(client, "bob", "bob-password", address="10.9.9.9").status_code == 302


def test_successful_logins_are_not_counted(limited_app):
    """Do many right logins stay allowed (only failures count)?"""
    client = limited_app.test_client()
    for _ in range(LIMIT + 3):
        assert form_login(client, "alice", "alice-password").status_code == 302
        client.post("/auth/logout")


def test_username_counter_ignores_case_and_spaces(limited_app):
    """Do "Alice" and " alice" count against the same account?"""
    client = limited_app.test_client()
    for attempt in range(LIMIT):
        name = ["alice", "ALICE", " Alice "][attempt % 3]
        form_login(client, name, "wrong")
    assert form_login(client, "alice", "alice-password").status_code == 429


def test_api_basic_auth_failures_are_limited_with_json(limited_app):
    """Does Basic auth on the API get a JSON 429 in the standard error shape after ten failures?"""
    client = limited_app.test_client()
    for attempt in range(LIMIT):
        response = api_get(client, "alice", "wrong")
        assert response.status_code == 401, attempt
    blocked = api_get(client, "alice", "alice-password")
    assert blocked.status_code == 429
    assert blocked.is_json
    error = blocked.get_json()["error"]
    assert error["status"] == 429
    assert "Too many failed login attempts" in error["message"]
    assert error["fields"] == {}
    assert int(blocked.headers["Retry-After"]) >= 1
    assert api_get(client, "bob", "bob-password").status_code == 200


def test_api_failures_per_address_are_limited(limited_app):
    """Is one address that tries many names refused on the API as well?"""
    client = limited_app.test_client()
    for attempt in range(ADDRESS_LIMIT):
        assert api_get(client, f"ci{attempt}", "wrong").status_code == 401
    assert api_get(client, "bob", "bob-password").status_code == 429


def test_bad_api_tokens_count_as_failures(limited_app):
    """Are guessed API tokens counted like guessed passwords?"""
    client = limited_app.test_client()
    for attempt in range(LIMIT):
        assert api_get(client, "alice", f"gb_guess{attempt}").status_code == 401
    assert api_get(client, "alice", "alice-password").status_code == 429


def test_form_and_api_share_the_counters(limited_app):
    """Does splitting guesses between the form and the API gain nothing?"""
    client = limited_app.test_client()
    for _ in range(LIMIT // 2):
        form_login(client, "alice", "wrong")
        api_get(client, "alice", "wrong")
    assert api_get(client, "alice", "alice-password").status_code == 429
    assert form_login(client, "alice", "alice-password").status_code == 429


def test_api_calls_without_credentials_are_not_counted(limited_app):
    """Do plain 401s without credentials (a client's first, unauthenticated try) stay uncounted?"""
    client = limited_app.test_client()
    for _ in range(LIMIT + 3):
        assert client.get(API).status_code == 401
    assert api_get(client, "alice", "alice-password").status_code == 200


def test_failures_are_forgotten_after_the_window(limited_app, monkeypatch):
    """A minute after being blocked, may the account log in again?"""
    client = limited_app.test_client()
    for _ in range(LIMIT):
        form_login(client, "alice", "wrong")
    assert form_login(client, "alice", "alice-password").status_code == 429
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 61)
    assert form_login(client, "alice", "alice-password").status_code == 302


def test_limits_off_when_disabled(app):
    """With RATELIMIT_ENABLED False (the test default), are failures never refused?"""
    client = app.test_client()
    with app.app_context():
        make_user("alice", password="alice-password")
    for _ in range(LIMIT + 3):
        assert form_login(client, "alice", "wrong").status_code == 200
    assert form_login(client, "alice", "alice-password").status_code == 302


@pytest.fixture
def mails_to(caplog, monkeypatch, request):
    """Return ``count(address)``: how many mails the log backend wrote to that address so far.

    Mail leaves through the outbox, so each count lets the worker send what is
    waiting first. The session's migration runs alembic's ``fileConfig``, which
    disables ``webapp.mail``'s logger; switch it back on.
    """
    monkeypatch.setattr(logging.getLogger("webapp.mail"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="webapp.mail")
    app = request.getfixturevalue("limited_app" if "limited_app" in request.fixturenames else "app")

    def count(address):
        with app.app_context():
            worker.drain()
        return sum(f"To: {address}\n" in record.getMessage() for record in caplog.records)

    return count


def ask_reset(client, login, address="10.1.0.1"):
    """Post the reset-request form from a given client address."""
    return client.post("/auth/reset", data={"login": login}, environ_base={"REMOTE_ADDR": address})


def test_reset_requests_per_login_are_limited(limited_app, mails_to):
    """After five reset requests for one login, even from many addresses, is the sixth a 429 with no mail?"""
    client = limited_app.test_client()
    for attempt in range(RESET_ACCOUNT_LIMIT):
        assert ask_reset(client, "carol", address=f"10.1.1.{attempt}").status_code == 302, attempt
    assert mails_to("carol@example.test") == RESET_ACCOUNT_LIMIT
    blocked = ask_reset(client, " CAROL ", address="10.1.2.1")
    assert blocked.status_code == 429
    assert "Too many password-reset requests" in blocked.text
    assert "No e-mail was sent. Try again in 60 minutes." in blocked.text
    assert 1 <= int(blocked.headers["Retry-After"]) <= 3600
    assert 'name="login"' in blocked.text  # the form again, not a bare error
    assert mails_to("carol@example.test") == RESET_ACCOUNT_LIMIT
    assert ask_reset(client, "bob", address="10.1.2.2").status_code == 302


def test_reset_limit_does_not_tell_whether_the_account_exists(limited_app, mails_to):
    """Do a real account and an unknown name get the same answers, 429 included, word for word?"""
    client = limited_app.test_client()
    answers = {}
    for index, login in enumerate(["carol@example.test", "nobody@example.test"]):
        responses = [
            ask_reset(client, login, address=f"10.1.{3 + index}.{attempt}")
            for attempt in range(RESET_ACCOUNT_LIMIT + 2)
        ]
        answers[login] = [(r.status_code, r.text.replace(login, "LOGIN")) for r in responses]
    assert [status for status, _ in answers["carol@example.test"]] == [302] * 5 + [429] * 2
    assert answers["carol@example.test"] == answers["nobody@example.test"]
    assert mails_to("carol@example.test") == RESET_ACCOUNT_LIMIT


def test_reset_requests_per_address_are_limited(limited_app, mails_to):
    """After twenty requests from one address, spread over many names, is that address refused?"""
    client = limited_app.test_client()
    for attempt in range(RESET_ADDRESS_LIMIT):
        assert ask_reset(client, f"someone{attempt}").status_code == 302, attempt
    assert ask_reset(client, "carol").status_code == 429
    assert mails_to("carol@example.test") == 0
    assert ask_reset(client, "carol", address="10.1.9.9").status_code == 302
    assert mails_to("carol@example.test") == 1


def test_reset_mails_per_account_are_capped_across_its_names(limited_app, mails_to):
    """Asking by username and by e-mail in turn: does the inbox still get at most five mails?"""
    client = limited_app.test_client()
    for attempt in range(RESET_ACCOUNT_LIMIT):
        for login in ("carol", "carol@example.test"):
            response = ask_reset(client, login, address=f"10.1.10.{attempt}")
            assert response.status_code == 302, (attempt, login)
    assert mails_to("carol@example.test") == RESET_ACCOUNT_LIMIT


def test_reset_requests_are_allowed_again_after_the_window(limited_app, mails_to, monkeypatch):
    """An hour after being refused, may one ask for a link again, and is it sent?"""
    client = limited_app.test_client()
    for attempt in range(RESET_ACCOUNT_LIMIT):
        ask_reset(client, "carol", address=f"10.1.11.{attempt}")
    assert ask_reset(client, "carol", address="10.1.12.1").status_code == 429
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3601)
    assert ask_reset(client, "carol", address="10.1.12.2").status_code == 302
    assert mails_to("carol@example.test") == RESET_ACCOUNT_LIMIT + 1


def test_reset_requests_unlimited_when_disabled(app, mails_to):
    """With RATELIMIT_ENABLED False (the test default), is every request answered and mailed?"""
    client = app.test_client()
    with app.app_context():
        make_user("carol").email = "carol@example.test"
        db.session.commit()
    for _ in range(RESET_ACCOUNT_LIMIT + 2):
        assert ask_reset(client, "carol").status_code == 302
    assert mails_to("carol@example.test") == RESET_ACCOUNT_LIMIT + 2
