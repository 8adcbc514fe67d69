"""Slowing down password guessing and reset-mail floods: counters per username and per address.

The login form and HTTP Basic auth on the API share the counters, so splitting
guesses between them gains nothing. After ``LOGIN_FAILURE_LIMIT`` failures
(default 10 a minute) for one username or from one client address, further
attempts are refused with a 429 *before* the password is checked, so a right
guess made while blocked reveals nothing.

Requests for password-reset links are limited too, since each one sends an
e-mail: ``PASSWORD_RESET_ACCOUNT_LIMIT`` (default 5 an hour) per username or
e-mail address asked for and ``PASSWORD_RESET_ADDRESS_LIMIT`` (default 20 an
hour) per client address. Every request counts, and by what was typed, so
whether a request is refused never depends on whether the account exists.

The ``limits`` library supplies the storage (``RATELIMIT_STORAGE_URI``:
``memory://`` per process, or a shared store such as ``redis://`` when several
app servers must agree) and the strategy (``RATELIMIT_STRATEGY``, moving window
unless set). ``RATELIMIT_ENABLED = False`` switches the counting off. It is
used directly, not through Flask-Limiter: no route has a declared limit, and
that extension's checks around every request would only cost time.
"""

import math
import time

from flask import current_app
from flask import make_response
from flask import request
from limits import parse as parse_limit
from limits.storage import storage_from_string
from limits.strategies import STRATEGIES
from werkzeug.exceptions import TooManyRequests

EXTENSION = "greenbar_login_limiter"
NAMESPACE = "greenbar-failed-login"
RESET_NAMESPACE = "greenbar-reset-request"
RESET_MAIL_NAMESPACE = "greenbar-reset-mail"


class RetryLater(TooManyRequests):
    """A 429 that knows when to try again (the ``Retry-After`` seconds)."""

    def __init__(self, retry_after):
        super().__init__()
        self.retry_after = retry_after


class TooManyAttempts(RetryLater):
    """Too many failed logins for a username or from an address."""

    description = (
        "Too many failed login attempts for this account or from this address. "
        "Wait a minute, then try again."
    )


class TooManyResetRequests(RetryLater):
    """Too many reset links asked for one username or e-mail address, or from one client address."""

    description = (
        "Too many password-reset requests for this username or e-mail address, or from this "
        "address. No e-mail was sent."
    )


def get_remote_address():
    """The client's address (the proxy's forwarded one, through ProxyFix)."""
    return request.remote_addr or "127.0.0.1"


def attempt_keys(username):
    """The counters one login attempt touches: its username and its client address."""
    return (f"user:{username.strip().lower()}", f"address:{get_remote_address()}")


def seconds_to_wait(limiter, namespace, counters):
    """Seconds until the first used-up counter frees up, or None when none is used up.

    :param counters: ``(limit item, key)`` pairs.
    """
    for item, key in counters:
        if not limiter.test(item, namespace, key):
            reset_at = limiter.get_window_stats(item, namespace, key).reset_time
            return max(1, math.ceil(reset_at - time.time()))
    return None


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
    wait = seconds_to_wait(limiter, NAMESPACE, [(item, key) for key in keys])
    if wait is not None:
        raise TooManyAttempts(retry_after=wait)
    user = check()
    if user is None:
        for key in keys:
            limiter.hit(item, NAMESPACE, key)
    return user


def count_reset_request(login):
    """Count one request for a reset link for ``login``, unless it is over a limit.

    The key is the login as typed (case and spaces aside), never the account it
    matches, so unknown names are limited exactly like real ones.

    :raise TooManyResetRequests: when ``login`` or the client address has used up its requests.
    """
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return
    counters = [
        (parse_limit(current_app.config["PASSWORD_RESET_ACCOUNT_LIMIT"]), f"login:{login.strip().lower()}"),
        (parse_limit(current_app.config["PASSWORD_RESET_ADDRESS_LIMIT"]), f"address:{get_remote_address()}"),
    ]
    wait = seconds_to_wait(limiter, RESET_NAMESPACE, counters)
    if wait is not None:
        raise TooManyResetRequests(retry_after=wait)
    for item, key in counters:
        limiter.hit(item, RESET_NAMESPACE, key)


def may_mail_reset_link(user_id):
    """Count one reset mail to this account; False once it has had its share of the window.

    A user is found by username or by e-mail address, two logins with counters
    of their own; this caps the mails one inbox gets however the account is named.
    The caller stays silent when it is False, so nothing tells the account exists.
    """
    limiter = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return True
    item = parse_limit(current_app.config["PASSWORD_RESET_ACCOUNT_LIMIT"])
    return limiter.hit(item, RESET_MAIL_NAMESPACE, f"account:{user_id}")


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
    storage = storage_from_string(app.config.get("RATELIMIT_STORAGE_URI", "memory://"))
    app.extensions[EXTENSION] = STRATEGIES[app.config["RATELIMIT_STRATEGY"]](storage)
