"""The cheaper auth path: a token costs one indexed lookup, then none for seconds; revocation still holds."""

import time

import pytest
from sqlalchemy import event
from sqlalchemy import update

from webapp import security
from webapp.extensions import db
from webapp.models import ApiToken
from webapp.security import revoke_token

LIST = "/api/test-instance/"


@pytest.fixture
def token_lookups(app):
    """The reads of api_tokens, recorded as the app runs them."""
    seen = []

    def record(connection, cursor, statement, parameters, context, executemany):
        if statement.startswith("SELECT") and "api_tokens" in statement:
            seen.append(statement)

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_a_token_is_looked_up_once_then_remembered(client, token_auth, token_lookups):
    """Does the first call cost one lookup through the digest index, and the next calls none?"""
    headers = token_auth("maintainer")
    assert client.get(LIST, headers=headers).status_code == 200
    assert len(token_lookups) == 1
    assert "api_tokens.digest = " in token_lookups[0]
    for _ in range(3):
        assert client.get(LIST, headers=headers).status_code == 200
    assert len(token_lookups) == 1


def test_a_revocation_by_another_process_holds_within_the_cache_time(app, client, token_auth, monkeypatch):
    """Revoked behind this process's back (another worker): is the token refused once the cache expires?"""
    headers = token_auth("maintainer")
    assert client.get(LIST, headers=headers).status_code == 200
    with app.app_context(), db.engine.begin() as connection:
        # a plain UPDATE, as another process would make it: nothing in this process hears of it
        connection.execute(update(ApiToken).values(revoked=db.func.now()))
    real = time.monotonic
    monkeypatch.setattr(security.time, "monotonic", lambda: real() + security.TOKEN_CACHE_SECONDS + 0.1)
    assert client.get(LIST, headers=headers).status_code == 401


def test_a_revocation_in_this_process_holds_at_once(app, client, token_auth):
    """Revoked through this process (the admin panel): is it refused on the very next call?"""
    headers = token_auth("maintainer")
    assert client.get(LIST, headers=headers).status_code == 200
    with app.app_context():
        revoke_token(db.session.scalar(db.select(ApiToken)))
        db.session.commit()
    assert client.get(LIST, headers=headers).status_code == 401
