"""Who may call the API: Basic auth with a password or a token, browser sessions, CORS, roles, and the CLI.

Every /api/ endpoint needs credentials; viewers read, maintainers also write,
only admins delete. The exceptions, ``MAINTAINER_ENDPOINTS``, are a maintainer's
whatever the method: subscriptions (they hold people's addresses), and removing
a triage label or a quarantine entry. Tokens are stored as digests and can be revoked.
"""

import base64
import hashlib

import pytest
from flask_wtf.csrf import generate_csrf
from sqlalchemy import select

from tests.conftest import basic_auth
from tests.conftest import make_token_user
from tests.conftest import settings_for
from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite
from tests.factories import make_user
from webapp import create_app
from webapp.api import MAINTAINER_ENDPOINTS
from webapp.extensions import db
from webapp.models import ApiToken
from webapp.models import User
from webapp.security import revoke_token

LIST = "/api/test-instance/"
# the string arguments of the API's rules, at their converters' lengths
STRINGS = {"test_key": "0" * 32, "signature": "0" * 16}


@pytest.fixture
def ids(app):
    """An instance → build → suite → case chain: the ids the API's URL rules take."""
    with app.app_context():
        case = make_case(make_suite(make_build(make_instance()), "suite"), "case")
        return {
            "instance_id": case.instance_id,
            "build_id": case.build_id,
            "suite_id": case.suite_id,
            "case_id": case.id,
        }


def api_rules(app):
    """(rule, method) for every method of every rule in the API blueprint."""
    return [
        (rule, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.")
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"})
    ]


def url_for_rule(app, rule, ids):
    """Fill a rule's arguments with existing ids (and a dummy test key or failure signature)."""
    values = {name: ids[name] if name in ids else STRINGS.get(name, 0) for name in rule.arguments}
    with app.test_request_context():
        return app.url_for(rule.endpoint, **values)


def set_active(app, username, active):
    """Activate or deactivate a user."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        user.active = active
        db.session.commit()


# Basic auth


def test_password_works_and_wrong_ones_do_not(app, client):
    """The right password reads the API; a wrong one, an empty one or an unknown user is a 401."""
    with app.app_context():
        make_user("ci", role="maintainer", password="right-pass")
    assert client.get(LIST, headers=basic_auth("ci", "right-pass")).status_code == 200
    for username, password in [("ci", "wrong-pass"), ("ci", ""), ("nobody", "right-pass"), ("", "")]:
        response = client.get(LIST, headers=basic_auth(username, password))
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Greenbar"'


def test_token_works_only_with_its_own_username(app, client, token_auth):
    """A token is the password of its owner only."""
    headers = token_auth("maintainer", username="ci")
    assert client.get(LIST, headers=headers).status_code == 200
    token = headers["Authorization"]
    with app.app_context():
        make_user("someone-else", role="admin")
    secret = base64.b64decode(token.split()[1]).decode().split(":", 1)[1]
    assert client.get(LIST, headers=basic_auth("someone-else", secret)).status_code == 401
    assert client.get(LIST, headers=basic_auth("ci", secret + "x")).status_code == 401


def test_revoked_token_is_refused(app, client, token_auth):
    """After revocation the token is a 401 on the very next call."""
    headers = token_auth("maintainer", username="ci")
    assert client.get(LIST, headers=headers).status_code == 200
    with app.app_context():
        revoke_token(db.session.scalar(select(ApiToken)))
        db.session.commit()
    assert client.get(LIST, headers=headers).status_code == 401


def test_deactivated_user_is_refused_with_password_and_token(app, client, token_auth):
    """A deactivated user's password and tokens stop working; reactivating restores them."""
    with app.app_context():
        make_user("ci", role="maintainer", password="right-pass")
    token = make_token_user(app, "maintainer", username="ci-token")
    assert client.get(LIST, headers=basic_auth("ci", "right-pass")).status_code == 200
    set_active(app, "ci", False)
    set_active(app, "ci-token", False)
    assert client.get(LIST, headers=basic_auth("ci", "right-pass")).status_code == 401
    assert client.get(LIST, headers=token).status_code == 401
    set_active(app, "ci-token", True)
    assert client.get(LIST, headers=token).status_code == 200


def test_tokens_are_stored_only_as_digests(app, token_auth):
    """The database holds the token's SHA-256 digest and a short hint, never the secret."""
    header = token_auth("maintainer")["Authorization"]
    secret = base64.b64decode(header.split()[1]).decode().split(":", 1)[1]
    with app.app_context():
        record = db.session.scalar(select(ApiToken))
        assert record.digest == hashlib.sha256(secret.encode()).hexdigest()
        stored = " ".join(str(getattr(record, column.key)) for column in ApiToken.__table__.columns)
        assert secret not in stored
        assert len(record.hint) < len(secret) // 4


def test_password_is_hashed_slowly_once_then_remembered(app, client, monkeypatch):
    """A CI sending its password on every call pays the slow hash once; a new password ends the memory."""
    with app.app_context():
        make_user("ci", role="maintainer", password="first-pass")
    checks = []
    real_check = User.check_password
    monkeypatch.setattr(User, "check_password", lambda user, pw: checks.append(pw) or real_check(user, pw))
    for _ in range(5):
        assert client.get(LIST, headers=basic_auth("ci", "first-pass")).status_code == 200
    assert checks == ["first-pass"]
    assert client.get(LIST, headers=basic_auth("ci", "wrong")).status_code == 401
    assert client.get(LIST, headers=basic_auth("ci", "wrong")).status_code == 401
    assert checks == ["first-pass", "wrong", "wrong"]
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == "ci"))
        user.set_password("second-pass")
        db.session.commit()
    assert client.get(LIST, headers=basic_auth("ci", "first-pass")).status_code == 401
    assert client.get(LIST, headers=basic_auth("ci", "second-pass")).status_code == 200
    assert client.get(LIST, headers=basic_auth("ci", "second-pass")).status_code == 200
    assert checks.count("second-pass") == 1


# roles


def test_viewer_reads_everything_and_writes_nothing(app, client, token_auth, ids):
    """Every GET of the API answers a viewer (but subscriptions, a maintainer's); every write is a 403."""
    viewer = token_auth("viewer")
    rules = api_rules(app)
    assert len(rules) >= 66
    for rule, method in rules:
        response = client.open(url_for_rule(app, rule, ids), method=method, json={}, headers=viewer)
        if method == "GET" and rule.endpoint not in MAINTAINER_ENDPOINTS:
            assert response.status_code not in (401, 403), (rule.rule, response.status_code)
            assert response.status_code < 500, (rule.rule, response.get_data(as_text=True))
        else:
            assert response.status_code == 403, (rule.rule, method, response.status_code)


def test_maintainer_writes_but_never_deletes(app, client, token_auth, ids):
    """A maintainer (the CI role) posts results; every DELETE but of a maintainer's own items is a 403."""
    maintainer = token_auth("maintainer")
    deletes = [rule for rule, method in api_rules(app) if method == "DELETE"]
    admin_only = [rule for rule in deletes if rule.endpoint not in MAINTAINER_ENDPOINTS]
    assert len(admin_only) == 8
    for rule in admin_only:
        assert client.delete(url_for_rule(app, rule, ids), headers=maintainer).status_code == 403
    # a subscription, label or quarantine entry is theirs to remove: these ones do not exist
    everyday = [rule for rule in deletes if rule not in admin_only]
    assert len(everyday) == 6
    for rule in everyday:
        assert client.delete(url_for_rule(app, rule, ids), headers=maintainer).status_code == 404
    case_url = url_for_rule(app, app.url_map._rules_by_endpoint["api.finishCase"][0], ids)
    assert client.post(case_url, json={"result_status": "SUCCESS"}, headers=maintainer).status_code == 200
    instance = client.post(LIST, json={"name": "by ci"}, headers=maintainer)
    assert instance.status_code == 201


def test_admin_may_delete(app, client, token_auth, ids):
    """An admin deletes a whole instance with everything under it."""
    admin = token_auth("admin")
    url = f"{LIST}{ids['instance_id']}/"
    assert client.delete(url, headers=admin).status_code == 204
    assert client.get(url, headers=admin).status_code == 404


# browser sessions


@pytest.fixture
def session_client(app):
    """A client logged in through the login form as a maintainer, plus a way to get its CSRF token."""

    @app.get("/_test/csrf-token")
    def csrf_token_for_tests():
        """Hand the test the session's CSRF token, as a page's meta tag would."""
        return {"token": generate_csrf()}

    with app.app_context():
        make_user("browser", role="maintainer", password="browser-pass")
    client = app.test_client()
    response = client.post("/auth/login", data={"username": "browser", "password": "browser-pass"})
    assert response.status_code == 302
    return client


def test_logged_in_browser_reads_the_api_without_a_password(session_client):
    """The session cookie is enough to read, so a same-origin front end needs no second login."""
    response = session_client.get(LIST)
    assert response.status_code == 200
    assert response.get_json()["count"] == 0


def test_browser_writes_need_the_csrf_header(app, session_client):
    """A session may write only with X-CSRFToken: another site cannot post with the user's cookie."""
    response = session_client.post(LIST, json={"name": "from the browser"})
    assert response.status_code == 403
    assert "X-CSRFToken" in response.get_json()["error"]["message"]
    response = session_client.post(LIST, json={"name": "from the browser"}, headers={"X-CSRFToken": "forged"})
    assert response.status_code == 403
    token = session_client.get("/_test/csrf-token").get_json()["token"]
    response = session_client.post(LIST, json={"name": "from the browser"}, headers={"X-CSRFToken": token})
    assert response.status_code == 201


def test_deactivated_browser_session_is_refused(app, session_client):
    """Deactivating a user ends their session's access to the API too."""
    set_active(app, "browser", False)
    assert session_client.get(LIST).status_code == 401


# CORS


@pytest.fixture
def cors_client(database_urls, tmp_path, monkeypatch):
    """A client of an app that allows one other origin, with an admin token."""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    settings = settings_for(database_urls["sqlite"], str(tmp_path))
    app = create_app({**settings, "CORS_ORIGINS": ["https://dash.example.com"]})
    from tests.conftest import empty_all_tables

    with app.app_context():
        empty_all_tables()
    yield app.test_client(), make_token_user(app, "admin")
    with app.app_context():
        empty_all_tables()


def test_cors_headers_only_for_configured_origins(cors_client):
    """A listed origin gets Access-Control-Allow-Origin; any other origin gets nothing."""
    client, admin = cors_client
    allowed = client.get(LIST, headers={**admin, "Origin": "https://dash.example.com"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert allowed.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in allowed.headers["Vary"]
    other = client.get(LIST, headers={**admin, "Origin": "https://evil.example.com"})
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers


def test_cors_preflight_answers_without_credentials(cors_client):
    """Browsers send the preflight without credentials: it is answered, for the listed origin only."""
    client, _ = cors_client
    headers = {
        "Origin": "https://dash.example.com",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "Authorization, Content-Type",
    }
    preflight = client.options(LIST, headers=headers)
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://dash.example.com"
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = client.options(LIST, headers={**headers, "Origin": "https://evil.example.com"})
    assert "Access-Control-Allow-Origin" not in refused.headers


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),  # CI clients send no Origin
        ("http://localhost", True),  # our own pages
        ("https://localhost", True),  # our own pages, TLS ended at the load balancer
        ("https://dash.example.com", True),  # listed in CORS_ORIGINS
        ("https://evil.example.com", False),
        ("null", False),  # a sandboxed frame or a file: page
        ("http://localhost:8080", False),  # another port is another origin
    ],
)
def test_writes_from_other_sites_are_refused(cors_client, origin, allowed):
    """Is a write carrying another site's Origin refused (cached Basic credentials), and nothing stored?"""
    client, admin = cors_client
    headers = dict(admin, **({"Origin": origin} if origin else {}))
    response = client.post(LIST, json={"name": f"from {origin}"}, headers=headers)
    assert response.status_code == (201 if allowed else 403), response.text
    if not allowed:
        assert "another site" in response.json["error"]["message"]
    names = [item["name"] for item in client.get(LIST, headers=admin).json["results"]]
    assert (f"from {origin}" in names) is allowed


def test_reads_from_other_sites_still_answer(cors_client):
    """A GET with a foreign Origin is answered (the browser keeps the body from that page without CORS)."""
    client, admin = cors_client
    assert client.get(LIST, headers={**admin, "Origin": "https://evil.example.com"}).status_code == 200


def test_no_cors_by_default(client, token_auth):
    """With no origins configured, no origin is allowed."""
    response = client.get(LIST, headers={**token_auth("viewer"), "Origin": "https://dash.example.com"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers


# command line


def test_users_create_with_password_option(app, runner, client):
    """flask users create NAME --role R --password PW makes a user who can use the API at once."""
    with app.app_context():
        command = ["users", "create", "ci", "--role", "maintainer", "--password", "cli-pass"]
        result = runner.invoke(args=command)
        assert result.exit_code == 0, result.output
        assert db.session.scalar(select(User.role).where(User.username == "ci")) == "maintainer"
        again = runner.invoke(args=["users", "create", "ci", "--password", "x"])
        assert again.exit_code != 0
        assert "already exists" in again.output
    assert client.post(LIST, json={"name": "x"}, headers=basic_auth("ci", "cli-pass")).status_code == 201


def test_users_create_asks_for_the_password_twice(app, runner, client):
    """Without --password the password is asked twice; a mismatch stores nothing."""
    with app.app_context():
        command = ["users", "create", "amy", "--role", "viewer"]
        result = runner.invoke(args=command, input="typed-pass\ntyped-pass\n")
        assert result.exit_code == 0, result.output
        assert "Password:" in result.output
        assert "Repeat for confirmation:" in result.output
        mismatch = runner.invoke(args=["users", "create", "bob"], input="one-pass\nother-pass\n")
        assert mismatch.exit_code != 0
        assert "match" in mismatch.output
        assert db.session.scalar(select(User).where(User.username == "bob")) is None
    assert client.get(LIST, headers=basic_auth("amy", "typed-pass")).status_code == 200


def test_tokens_create_and_revoke(app, runner, client):
    """flask tokens create prints a working token once; flask tokens revoke ends it."""
    with app.app_context():
        make_user("ci", role="maintainer")
        created = runner.invoke(args=["tokens", "create", "ci", "--name", "nightly"])
        assert created.exit_code == 0, created.output
        secret = created.output.strip().splitlines()[-1]
        token_id = db.session.scalar(select(ApiToken.id))
        listed = runner.invoke(args=["tokens", "list", "ci"])
        assert "nightly" in listed.output
        assert secret not in listed.output
    assert client.get(LIST, headers=basic_auth("ci", secret)).status_code == 200
    with app.app_context():
        revoked = runner.invoke(args=["tokens", "revoke", str(token_id)])
        assert revoked.exit_code == 0, revoked.output
        missing = runner.invoke(args=["tokens", "revoke", "999999"])
        assert missing.exit_code != 0
    assert client.get(LIST, headers=basic_auth("ci", secret)).status_code == 401
