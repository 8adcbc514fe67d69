"""Outgoing mail through one small interface: ``send(to, subject, body)``.

``send`` only writes the message to the outbox (:mod:`webapp.outbox`), in the
caller's transaction: a slow or failing mail service never slows or fails a
request, and nothing is mailed for a write that rolled back. ``flask worker``
delivers it through the backend ``MAIL_BACKEND`` names:

- ``log`` writes the message to the app log instead of delivering it;
- ``ses`` sends it through Amazon SES (``ses:SendEmail``) from ``MAIL_SENDER``.

A backend is a class with a ``send(message)`` method registered in :data:`BACKENDS`.
"""

import logging
from dataclasses import dataclass

from flask import current_app

from webapp import outbox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Message:
    """One plain-text e-mail."""

    sender: str
    to: str
    subject: str
    body: str


class LogBackend:
    """Writes each message to the log; for development and until real delivery is set up."""

    def __init__(self, config):
        self.config = config

    def send(self, message):
        """Log the whole message so an operator can still pass a reset link on by hand."""
        # a warning, not info: the message was not delivered, and default log
        # levels must not hide that from whoever reads the log
        log.warning(
            "mail not delivered (MAIL_BACKEND=log)\nFrom: %s\nTo: %s\nSubject: %s\n\n%s",
            message.sender,
            message.to,
            message.subject,
            message.body,
        )


class SesBackend:
    """Sends through Amazon SES; boto3 reads the region, credentials and ``AWS_ENDPOINT_URL``."""

    def __init__(self, config):
        import boto3

        self.client = boto3.client("ses")

    def send(self, message):
        """Send one plain-text message; SES errors propagate, so the outbox retries them."""
        self.client.send_email(
            Source=message.sender,
            Destination={"ToAddresses": message.to.split(",")},
            Message={
                "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": message.body, "Charset": "UTF-8"}},
            },
        )


BACKENDS = {"log": LogBackend, "ses": SesBackend}


def backend_for(config):
    """Build the backend ``config["MAIL_BACKEND"]`` names, or fail loudly on a typo."""
    name = config.get("MAIL_BACKEND", "log")
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise RuntimeError(f"unknown MAIL_BACKEND {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return backend_class(config)


def send(to, subject, body):
    """Queue a plain-text e-mail from ``MAIL_SENDER`` in the caller's transaction (the caller commits).

    :param to: one address, or a list of addresses that all receive the same message.
    """
    recipients = [to] if isinstance(to, str) else list(to)
    outbox.enqueue("mail", {"to": recipients, "subject": subject, "body": body})


@outbox.job("mail")
def deliver(claimed):
    """Deliver a queued message through the backend (run by ``flask worker``)."""
    sender = current_app.config.get("MAIL_SENDER", "greenbar@localhost")
    payload = claimed.payload
    message = Message(sender, ",".join(payload["to"]), payload["subject"], payload["body"])
    current_app.extensions["greenbar_mail"].send(message)


def init_app(app):
    """Build the mail backend once, so a wrong ``MAIL_BACKEND`` stops the app at start-up."""
    app.extensions["greenbar_mail"] = backend_for(app.config)
