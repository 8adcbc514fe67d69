"""Logging in and out, safe redirects, one's own password, password reset and self-registration."""

import logging
import re
import time
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.conftest import AuthActions
from tests.conftest import empty_all_tables
from tests.conftest import settings_for
from tests.factories import make_user
from webapp import accounts
from webapp import create_app
from webapp import worker
from webapp.extensions import db
from webapp.models import User

CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
RESET_LINK = re.compile(r"http://localhost(/auth/reset/[A-Za-z0-9_.\-]+)")


def stored_user(app, username):
    """Read a user afresh from the database."""
    with app.app_context():
        return db.session.scalar(sa.select(User).where(User.username == username))


def set_cookie_headers(response, name):
    """The ``Set-Cookie`` headers that set cookie ``name``."""
    return [value for value in response.headers.getlist("Set-Cookie") if value.startswith(name + "=")]


def is_logged_in(client):
    """Whether the client's session is logged in (the password page is for users only)."""
    return client.get("/auth/password").status_code == 200


def test_login_page_shows_the_form(client):
    """Can anyone open the login page, and does it ask for what the contract says?"""
    response = client.get("/auth/login")
    assert response.status_code == 200
    for field in ('name="username"', 'name="password"', 'name="remember"', 'name="next"'):
        assert field in response.text
    # the empty username has the focus, as a bare attribute; no other field has one
    assert re.findall(r"<input[^>]*autofocus[^>]*>", response.text) == [
        re.search(r'<input[^>]*name="username"[^>]*>', response.text).group(0)
    ]
    assert 'autofocus="' not in response.text


def test_login_succeeds_and_lands_home(app, client, auth):
    """Does a right password log the user in and send them to the home page?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    response = auth.login("alice", "alice-password")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert is_logged_in(client)


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong-password"), ("nobody", "alice-password"), ("ALICE ", "x")]
)
def test_login_fails_with_one_message(app, client, auth, username, password):
    """Do a wrong password and an unknown user get the same answer and no session?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    response = auth.login(username, password)
    assert response.status_code == 200
    assert "Wrong username or password." in response.text
    assert not is_logged_in(client)


def test_deactivated_user_cannot_log_in(app, client, auth):
    """Is a deactivated account refused even with its right password?"""
    with app.app_context():
        make_user("gone", password="gone-password", active=False)
    response = auth.login("gone", "gone-password")
    assert "deactivated" in response.text
    assert not is_logged_in(client)


def test_session_cookie_is_httponly_and_samesite_lax(app, auth):
    """Is the session cookie hidden from scripts and held back from cross-site requests?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    response = auth.login("alice", "alice-password")
    (cookie,) = set_cookie_headers(response, "session")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie


def test_remember_me_sets_a_lasting_cookie(app, auth):
    """Does "remember me" set a long-lived HttpOnly cookie, and only when ticked?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    plain = auth.login("alice", "alice-password")
    assert set_cookie_headers(plain, "remember_token") == []
    auth.logout()
    remembered = auth.login("alice", "alice-password", remember="y")
    (cookie,) = set_cookie_headers(remembered, "remember_token")
    assert "Expires=" in cookie
    assert "HttpOnly" in cookie


def test_remember_cookie_logs_in_a_new_session(app, client, auth):
    """Does the remember cookie alone bring a user back after the session is gone?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    auth.login("alice", "alice-password", remember="y")
    client.delete_cookie("session")
    assert is_logged_in(client)


def test_anonymous_page_visit_goes_to_login_and_comes_back(app, client, auth):
    """Is an anonymous visitor sent to log in, and returned to the page they asked for?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    response = client.get("/auth/password?tab=1")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/login"
    assert parse_qs(location.query) == {"next": ["/auth/password?tab=1"]}
    form = client.get(response.headers["Location"])
    assert 'value="/auth/password?tab=1"' in form.text
    back = auth.login("alice", "alice-password", next="/auth/password?tab=1")
    assert back.headers["Location"] == "/auth/password?tab=1"


@pytest.mark.parametrize("path", ["/", "/no/such/page", "/admin/", "/auth/password"])
def test_every_page_needs_login(client, path):
    """Does any page outside the public few send anonymous visitors to the login page?"""
    response = client.get(path)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"


@pytest.mark.parametrize("path", ["/auth/login", "/auth/reset", "/healthz"])
def test_public_pages_need_no_login(client, path):
    """Are the login page, the reset page and the health check open to anonymous visitors?"""
    assert client.get(path).status_code == 200


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "evil.example",
        "",
    ],
)
def test_login_refuses_open_redirects(app, auth, target):
    """Does a ``next`` that leaves the site send the user home instead?"""
    with app.app_context():
        make_user("alice", password="alice-password")
    response = auth.login("alice", "alice-password", next=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/instances/3?page=2", "/instances/3?page=2"),
        ("/", "/"),
        ("//evil.example", None),
        ("/\\evil.example", None),
        ("https://evil.example/x", None),
        ("/ok\r\nSet-Cookie: x=1", None),
        (None, None),
    ],
)
def test_safe_next(target, expected):
    """Does the redirect check keep local paths and refuse everything else?"""
    assert accounts.safe_next(target) == expected


def test_logged_in_user_visiting_login_page_moves_on(app, client, auth):
    """Is a logged-in user who opens the login page sent on rather than shown the form?"""
    auth.as_role("viewer")
    response = client.get("/auth/login?next=/auth/password")
    assert response.status_code == 302
    assert response.headers["Location"] == "/auth/password"


def test_logout_needs_post(app, client, auth):
    """Is logging out refused over GET (a link cannot do it) and done over POST?"""
    auth.as_role("viewer")
    assert client.get("/auth/logout").status_code == 405
    assert is_logged_in(client)
    response = auth.logout()
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"
    assert not is_logged_in(client)


def change_password(client, current, password, confirm=None):
    """Post the change-password form."""
    form = {"current": current, "password": password, "confirm": password if confirm is None else confirm}
    return client.post("/auth/password", data=form)


def test_change_password(app, client, auth):
    """Does changing one's password need the current one, and does the new one then work?"""
    auth.as_role("viewer")
    wrong = change_password(client, "not-it", "new-password-1")
    assert "That is not your current password." in wrong.text
    assert stored_user(app, "viewer-login").check_password("s3cret-pass")
    mismatch = change_password(client, "s3cret-pass", "new-password-1", "other-one")
    assert "The two passwords differ." in mismatch.text
    assert "Use 8 to 256 characters." in change_password(client, "s3cret-pass", "short").text
    done = change_password(client, "s3cret-pass", "new-password-1")
    assert done.status_code == 302
    user = stored_user(app, "viewer-login")
    assert user.check_password("new-password-1")
    assert not user.check_password("s3cret-pass")
    assert "new-password-1" not in user.password_hash


def test_changing_password_ends_other_sessions(app, client, auth):
    """Does a password change log out the user's other browsers, remember-me cookies included?"""
    other = app.test_client()
    auth.as_role("viewer")
    assert AuthActions(app, other).login("viewer-login", remember="y").status_code == 302
    assert other.get("/").status_code == 200
    assert change_password(client, "s3cret-pass", "new-password-1").status_code == 302
    assert client.get("/").status_code == 200
    refused = other.get("/")
    assert refused.status_code == 302 and "/auth/login" in refused.headers["Location"]
    other.delete_cookie("session")
    assert other.get("/").status_code == 302


def test_change_password_needs_login(client):
    """Is the password page closed to anonymous visitors?"""
    response = client.post("/auth/password", data={"current": "x", "password": "y" * 10, "confirm": "y" * 10})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/auth/login"


class DeliveredMail:
    """caplog, read after the worker has delivered the queued mail (mail goes through the outbox)."""

    def __init__(self, app, caplog):
        self.app = app
        self.caplog = caplog

    def deliver(self):
        """Run the worker over the outbox, as ``flask worker`` would."""
        with self.app.app_context():
            worker.drain()

    @property
    def text(self):
        """The log text after delivery."""
        self.deliver()
        return self.caplog.text

    @property
    def records(self):
        """The log records after delivery."""
        self.deliver()
        return self.caplog.records


@pytest.fixture
def mail_log(app, caplog, monkeypatch):
    """Capture what the log mail backend writes once the worker has delivered the outbox.

    The session's migration runs alembic's ``fileConfig``, which disables every
    logger that existed before it, ``webapp.mail`` included; switch it back on.
    """
    monkeypatch.setattr(logging.getLogger("webapp.mail"), "disabled", False)
    return DeliveredMail(app, caplog)


def reset_link_from_log(caplog):
    """The path of the reset link in the last mail the log backend wrote, or None."""
    messages = [record.getMessage() for record in caplog.records]
    links = [match.group(1) for message in messages for match in RESET_LINK.finditer(message)]
    return links[-1] if links else None


def test_password_reset_end_to_end(app, client, auth, mail_log):
    """Does a mailed reset link set a new password once, and then stop working?"""
    with app.app_context():
        user = make_user("alice", password="old-password")
        user.email = "alice@example.test"
        db.session.commit()
    response = client.post("/auth/reset", data={"login": "Alice@Example.test"})
    assert response.status_code == 302
    assert "To: alice@example.test" in mail_log.text
    link = reset_link_from_log(mail_log)
    assert link is not None
    page = client.get(link)
    assert page.status_code == 200
    assert page.headers["Referrer-Policy"] == "no-referrer"
    done = client.post(link, data={"password": "brand-new-password", "confirm": "brand-new-password"})
    assert done.status_code == 302
    assert urlsplit(done.headers["Location"]).path == "/auth/login"
    assert auth.login("alice", "old-password").status_code == 200
    assert auth.login("alice", "brand-new-password").status_code == 302
    auth.logout()
    again = client.post(link, data={"password": "third-password", "confirm": "third-password"})
    assert again.status_code == 400
    assert "This link does not work" in again.text
    assert stored_user(app, "alice").check_password("brand-new-password")


def test_password_reset_by_username(app, client, mail_log):
    """Can the reset be asked for by username as well as by e-mail address?"""
    with app.app_context():
        user = make_user("bob")
        user.email = "bob@example.test"
        db.session.commit()
    client.post("/auth/reset", data={"login": "bob"})
    assert reset_link_from_log(mail_log) is not None


def test_reset_link_ignores_a_forged_host_when_external_url_is_set(app, client, mail_log):
    """With EXTERNAL_URL set, does a forged Host header stay out of the mailed link?"""
    app.config["EXTERNAL_URL"] = "https://greenbar.example.test/"
    with app.app_context():
        user = make_user("carol")
        user.email = "carol@example.test"
        db.session.commit()
    client.post("/auth/reset", data={"login": "carol"}, headers={"Host": "evil.example"})
    assert "https://greenbar.example.test/auth/reset/" in mail_log.text
    assert "evil.example" not in mail_log.text


@pytest.mark.parametrize("login", ["nobody", "noemail", "inactive"])
def test_password_reset_answers_the_same_without_mail(app, client, mail_log, login):
    """Do unknown, mail-less and deactivated accounts get the same answer, with nothing sent?"""
    with app.app_context():
        make_user("noemail")
        inactive = make_user("inactive", active=False)
        inactive.email = "inactive@example.test"
        db.session.commit()
    response = client.post("/auth/reset", data={"login": login}, follow_redirects=True)
    assert "If that matches an account with an e-mail address" in response.text
    assert reset_link_from_log(mail_log) is None


def test_password_reset_link_expires(app, client, monkeypatch):
    """Is a reset link refused once it is older than PASSWORD_RESET_MAX_AGE?"""
    with app.app_context():
        user = make_user("alice")
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() - app.config["PASSWORD_RESET_MAX_AGE"] - 5)
        token = accounts.make_reset_token(user)
        monkeypatch.setattr(time, "time", real_time)
        fresh = accounts.make_reset_token(user)
    assert client.get(f"/auth/reset/{token}").status_code == 400
    assert client.get(f"/auth/reset/{fresh}").status_code == 200


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "x" * 3000, "%00", "eyJ1c2VyIjoiMSJ9.aaaa.bbbb"])
def test_password_reset_rejects_bad_tokens(client, token):
    """Do forged or mangled tokens get a friendly 400 rather than an error?"""
    response = client.get(f"/auth/reset/{token}")
    assert response.status_code in (400, 404)
    assert "Traceback" not in response.text


def test_password_reset_token_from_another_key_is_refused(app, client):
    """Is a token signed with another secret key refused?"""
    with app.app_context():
        user = make_user("alice")
        app.config["SECRET_KEY"] = "another-secret"
        token = accounts.make_reset_token(user)
        app.config["SECRET_KEY"] = "test-secret"
    assert client.get(f"/auth/reset/{token}").status_code == 400


def test_registration_is_off_by_default(client):
    """Is self-registration a 404 unless switched on?"""
    assert client.get("/user/register").status_code == 404
    form = {"username": "newbie", "password": "newbie-password", "confirm": "newbie-password"}
    assert client.post("/user/register", data=form).status_code == 404


def test_registration_creates_a_viewer(app, client, auth):
    """With registration on, does signing up create a viewer who can log in?"""
    app.config["REGISTRATION_ENABLED"] = True
    form = {"username": "newbie", "email": "", "password": "newbie-password", "confirm": "newbie-password"}
    response = client.post("/user/register", data=form)
    assert response.status_code == 302
    user = stored_user(app, "newbie")
    assert user.role == "viewer"
    assert user.active
    assert user.check_password("newbie-password")
    assert auth.login("newbie", "newbie-password").status_code == 302


def test_registration_refuses_a_taken_name(app, client):
    """Is a name already in use (in any letter case) refused with the seed's message?"""
    app.config["REGISTRATION_ENABLED"] = True
    with app.app_context():
        make_user("Taken", role="admin")
    form = {"username": "taken", "password": "newbie-password", "confirm": "newbie-password"}
    response = client.post("/user/register", data=form)
    assert response.status_code == 200
    assert "User already exists." in response.text
    assert stored_user(app, "Taken").role == "admin"


@pytest.mark.parametrize(
    "form",
    [
        {"username": "bad name!", "password": "newbie-password", "confirm": "newbie-password"},
        {"username": "x" * 81, "password": "newbie-password", "confirm": "newbie-password"},
        {"username": "ok", "email": "not-an-address", "password": "newbie-pass", "confirm": "newbie-pass"},
        {"username": "ok", "password": "short", "confirm": "short"},
        {"username": "ok"},
    ],
)
def test_registration_rejects_bad_input(app, client, form):
    """Does bad registration input get the form back with errors, and no account?"""
    app.config["REGISTRATION_ENABLED"] = True
    response = client.post("/user/register", data=form)
    assert response.status_code == 200
    assert "invalid-feedback" in response.text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0


@pytest.mark.parametrize(
    "form",
    [
        {},
        {"username": "a"},
        {"username": "a" * 5000, "password": "b" * 5000},
        {"username": "\u00ff\x00\u202e", "password": "\x00"},
        {"username": "alice", "password": "x", "remember": "maybe", "next": "\x00//evil"},
    ],
)
def test_login_survives_bad_input(client, form):
    """Does odd login input give the form back rather than an error?"""
    response = client.post("/auth/login", data=form)
    assert response.status_code == 200


def test_unknown_mail_backend_stops_start_up(database_urls, tmp_path, monkeypatch):
    """Does a mistyped MAIL_BACKEND fail at start-up instead of at the first reset?"""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    settings = dict(settings_for(database_urls["sqlite"], str(tmp_path)), MAIL_BACKEND="carrier-pigeon")
    with pytest.raises(RuntimeError, match="carrier-pigeon"):
        create_app(settings)


@pytest.fixture
def csrf_app(database_urls, tmp_path, monkeypatch):
    """The app on SQLite with CSRF protection on, as in production."""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    settings = dict(settings_for(database_urls["sqlite"], str(tmp_path)), WTF_CSRF_ENABLED=True)
    application = create_app(settings)
    with application.app_context():
        empty_all_tables()
        make_user("alice", password="alice-password")
    yield application
    with application.app_context():
        empty_all_tables()
        db.engine.dispose()


def csrf_token_from(client, path):
    """Open a page and return the CSRF token its form carries."""
    match = CSRF_INPUT.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def test_login_form_needs_csrf_token(csrf_app):
    """With CSRF on, is a login post without the form's token refused?"""
    client = csrf_app.test_client()
    refused = client.post("/auth/login", data={"username": "alice", "password": "alice-password"})
    assert refused.status_code == 400
    token = csrf_token_from(client, "/auth/login")
    accepted = client.post(
        "/auth/login", data={"username": "alice", "password": "alice-password", "csrf_token": token}
    )
    assert accepted.status_code == 302


def log_in_with_csrf(client):
    """Log alice in through the form, token and all."""
    token = csrf_token_from(client, "/auth/login")
    client.post("/auth/login", data={"username": "alice", "password": "alice-password", "csrf_token": token})
    return token


def test_logout_needs_csrf_token(csrf_app):
    """With CSRF on, can another site's form fail to log the user out?"""
    client = csrf_app.test_client()
    log_in_with_csrf(client)
    assert client.post("/auth/logout").status_code == 400
    assert is_logged_in(client)
    token = csrf_token_from(client, "/auth/password")
    assert client.post("/auth/logout", data={"csrf_token": token}).status_code == 302
    assert not is_logged_in(client)


def test_change_password_needs_csrf_token(csrf_app):
    """With CSRF on, is a password change without the token refused and harmless?"""
    client = csrf_app.test_client()
    log_in_with_csrf(client)
    form = {"current": "alice-password", "password": "changed-password", "confirm": "changed-password"}
    assert client.post("/auth/password", data=form).status_code == 400
    assert stored_user(csrf_app, "alice").check_password("alice-password")
    form["csrf_token"] = csrf_token_from(client, "/auth/password")
    assert client.post("/auth/password", data=form).status_code == 302
    assert stored_user(csrf_app, "alice").check_password("changed-password")


@pytest.mark.parametrize(
    ("path", "form"),
    [
        ("/auth/reset", {"login": "alice"}),
        ("/user/register", {"username": "eve", "password": "eve-password", "confirm": "eve-password"}),
    ],
)
def test_public_forms_need_csrf_token(csrf_app, path, form):
    """With CSRF on, are the reset and registration forms refused without their token?"""
    csrf_app.config["REGISTRATION_ENABLED"] = True
    client = csrf_app.test_client()
    assert client.post(path, data=form).status_code == 400
    assert stored_user(csrf_app, "eve") is None
