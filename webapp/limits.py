"""Slowing down password guessing: failed logins are counted per username and per address.

The login form and HTTP Basic auth on the API share the counters, so splitting
guesses between them gains nothing. After ``LOGIN_FAILURE_LIMIT`` failures
(default 10 a minute) for one username or from one client address, further
attempts are refused with a 429 *before* the password is checked, so a right
guess made while blocked reveals nothing.

Flask-Limiter supplies the storage (``RATELIMIT_STORAGE_URI``: ``memory://``
per process, or a shared store such as ``redis://`` when several app servers
must agree) and the strategy (``RATELIMIT_STRATEGY``, moving window unless
set). ``RATELIMIT_ENABLED = False`` switches the counting off.
"""

import math
import time

from flask import current_app
from flask import make_response
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from limits import parse as parse_limit
from werkzeug.exceptions import TooManyRequests

EXTENSION = "greenbar_login_limiter"
NAMESPACE = "failed-login"


class TooManyAttempts(TooManyRequests):
    """Too many failed logins for a username or from an address; says when to try again."""

    description = (
        "Too many failed login attempts for this account or from this address. "
        "Wait a minute, then try again."
    )

    def __init__(self, retry_after):
        super().__init__()
        self.retry_after = retry_after


def attempt_keys(username):
    """The counters one login attempt touches: its username and its client address."""
    return (f"user:{username.strip().lower()}", f"address:{get_remote_address()}")


def attempt_login(username, check):
    """Run ``check()`` (which returns a user or None) unless this attempt is blocked.

    :param username: the name the client claims, counted even when no such user exists.
    :param check: verifies the credentials; a None result counts as a failure.
    :raise TooManyAttempts: when the username or the address has used up its failures.
    """
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return check()
    item = parse_limit(current_app.config["LOGIN_FAILURE_LIMIT"])
    keys = attempt_keys(username)
    for key in keys:
        if not limiter.limiter.test(item, NAMESPACE, key):
            reset_at = limiter.limiter.get_window_stats(item, NAMESPACE, key).reset_time
            raise TooManyAttempts(retry_after=max(1, math.ceil(reset_at - time.time())))
    user = check()
    if user is None:
        for key in keys:
            limiter.limiter.hit(item, NAMESPACE, key)
    return user


def handle_too_many_attempts(error):
    """Answer in the caller's format (JSON under /api/) with a ``Retry-After`` header."""
    from webapp.errors import render_error

    response = make_response(render_error(429, error.description))
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def init_app(app):
    """Give the app its own limiter, so apps built side by side (tests) never share counts."""
    app.config.setdefault("LOGIN_FAILURE_LIMIT", "10 per minute")
    app.config.setdefault("RATELIMIT_STRATEGY", "moving-window")
    app.register_error_handler(TooManyAttempts, handle_too_many_attempts)
    if not app.config.get("RATELIMIT_ENABLED", True):
        return
    app.extensions[EXTENSION] = Limiter(get_remote_address, app=app, key_prefix="greenbar")
