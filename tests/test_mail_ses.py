"""Mail through Amazon SES (a local moto server), delivered by the worker from the outbox."""

import re

import pytest
from sqlalchemy import select

from tests.aws_local import aws_environment
from tests.aws_local import reset
from tests.aws_local import sent_emails
from tests.factories import make_user
from webapp import mail
from webapp import worker
from webapp.extensions import db
from webapp.models_messages import OutboxMessage

SENDER = "greenbar@example.test"
RESET_PATH = re.compile(r"http://localhost(/auth/reset/[^\s]+)")


@pytest.fixture
def ses_app(app, moto_url, monkeypatch):
    """The app with GREENBAR_MAIL_BACKEND=ses against moto, its sender verified."""
    reset(moto_url)
    aws_environment(monkeypatch, moto_url)
    app.config.update(MAIL_BACKEND="ses", MAIL_SENDER=SENDER)
    mail.init_app(app)
    app.extensions["greenbar_mail"].client.verify_email_identity(EmailAddress=SENDER)
    return app


def test_password_reset_mail_goes_out_through_ses(ses_app, moto_url, client):
    """Does a reset request queue a mail that the worker sends through SES, with a working link?"""
    with ses_app.app_context():
        user = make_user("alice")
        user.email = "alice@example.test"
        db.session.commit()
    response = client.post("/auth/reset", data={"login": "alice@example.test"})
    assert response.status_code == 302
    assert sent_emails(moto_url) == []
    with ses_app.app_context():
        assert worker.drain() == 1
    [sent] = sent_emails(moto_url)
    assert sent["source"] == SENDER
    assert sent["destinations"]["ToAddresses"] == ["alice@example.test"]
    assert sent["subject"] == "Reset your Greenbar password"
    path = RESET_PATH.search(sent["body"]).group(1)
    assert client.get(path).status_code == 200


def test_failing_ses_never_fails_the_request(ses_app, moto_url, client):
    """With SES refusing (an unverified sender), does the request still succeed, the mail kept for a retry?"""
    ses_app.config["MAIL_SENDER"] = "unverified@example.test"
    with ses_app.app_context():
        user = make_user("bob")
        user.email = "bob@example.test"
        db.session.commit()
    assert client.post("/auth/reset", data={"login": "bob"}).status_code == 302
    with ses_app.app_context():
        worker.drain()
        message = db.session.scalar(select(OutboxMessage))
        assert (message.state, message.attempts) == ("ready", 1)
        assert "MessageRejected" in message.last_error
    assert sent_emails(moto_url) == []
