"""Outgoing mail through one small interface: ``send(to, subject, body)``.

``MAIL_BACKEND`` names the backend. The only one today is ``log``, which writes
the message to the app log instead of delivering it. A backend is a class with
a ``send(message)`` method registered in :data:`BACKENDS`, so an SES backend is
one more class (built from the app config, holding its boto3 client) and one
more entry, with no change to the callers.
"""

import logging
from dataclasses import dataclass

from flask import current_app

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


BACKENDS = {"log": LogBackend}


def backend_for(config):
    """Build the backend ``config["MAIL_BACKEND"]`` names, or fail loudly on a typo."""
    name = config.get("MAIL_BACKEND", "log")
    try:
        backend_class = BACKENDS[name]
    except KeyError:
        raise RuntimeError(f"unknown MAIL_BACKEND {name!r}; known: {', '.join(sorted(BACKENDS))}") from None
    return backend_class(config)


def send(to, subject, body):
    """Send a plain-text e-mail from ``MAIL_SENDER`` through the app's backend."""
    sender = current_app.config.get("MAIL_SENDER", "greenbar@localhost")
    current_app.extensions["greenbar_mail"].send(Message(sender, to, subject, body))


def init_app(app):
    """Build the mail backend once, so a wrong ``MAIL_BACKEND`` stops the app at start-up."""
    app.extensions["greenbar_mail"] = backend_for(app.config)
