"""Who is calling: users from the session or HTTP Basic auth, API tokens, roles.

A Basic-auth password is either the user's password or one of the user's API
tokens. Tokens are checked by one indexed digest lookup, whose answer each
process keeps for a few seconds (:class:`TokenCache`). Passwords need a slow hash, so
a successful check is remembered for a few minutes as a keyed digest of the
password, bound to the stored hash: a CI job that sends its password on every
request pays the slow hash once, and changing the password ends the memory.
"""

import functools
import hashlib
import hmac
import secrets
import threading
import time

from flask import abort
from flask import current_app
from flask import g
from flask import redirect
from flask import request
from flask import url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user
from sqlalchemy import bindparam
from sqlalchemy import event
from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.extensions import db
from webapp.extensions import login_manager
from webapp.limits import attempt_login
from webapp.models import ApiToken
from webapp.models import User
from webapp.models import utcnow

TOKEN_PREFIX = "gb_"  # noqa: S105 (a public marker, not a secret)
PASSWORD_MEMORY_SECONDS = 300
PASSWORD_MEMORY_SIZE = 1024
# how long a process trusts what it read about a token: the most a revocation can lag
TOKEN_CACHE_SECONDS = 5
TOKEN_CACHE_SIZE = 4096
API_LOGIN_HINT = "log in with HTTP Basic auth: your username and your password or an API token"


def token_digest(token):
    """Return the stored form of an API token: its SHA-256 hex digest."""
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(user, name=""):
    """Create an API token for ``user`` and return ``(record, secret)``.

    The secret is returned once and never stored.
    """
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    record = ApiToken(user_id=user.id, name=name, digest=token_digest(secret), hint=secret[:8])
    db.session.add(record)
    db.session.flush()
    return record, secret


def revoke_token(record):
    """Revoke a token: refused from the next call to this process, and by others within seconds."""
    if record.revoked is None:
        record.revoked = utcnow()


class PasswordMemory:
    """Remembers recent successful password checks as keyed digests, with a time limit."""

    def __init__(self, seconds=PASSWORD_MEMORY_SECONDS, size=PASSWORD_MEMORY_SIZE):
        self.seconds = seconds
        self.size = size
        self.entries = {}
        self.lock = threading.Lock()

    def fingerprint(self, user, password):
        """Digest of the password keyed by the app secret and bound to the current hash."""
        key = current_app.config["SECRET_KEY"].encode()
        message = f"{user.id}\x1f{user.password_hash}\x1f{password}".encode()
        return hmac.new(key, message, hashlib.sha256).digest()

    def check(self, user, password):
        """Return whether ``password`` is right, hashing slowly only when not remembered."""
        fingerprint = self.fingerprint(user, password)
        now = time.monotonic()
        with self.lock:
            expires = self.entries.get(fingerprint)
        if expires is not None and expires > now:
            return True
        if not user.check_password(password):
            return False
        with self.lock:
            if len(self.entries) >= self.size:
                self.entries.clear()
            self.entries[fingerprint] = now + self.seconds
        return True


password_memory = PasswordMemory()


class TokenCache:
    """Who owns a token, remembered in this process for ``seconds`` after a database lookup.

    A CI job sends its token with every request; the lookup is one indexed read,
    but skipping it is what lets the API keep up with its clients. Entries hold
    plain values (never ORM rows, which belong to one session) and expire
    soon, so a token revoked or a user deactivated by another process (another
    worker, another host, the CLI) loses access within ``seconds``; a change
    made in this process clears the cache at once (:func:`forget_changed_tokens`).
    Only active owners are kept, so a reactivation counts at once too.
    """

    def __init__(self, seconds=TOKEN_CACHE_SECONDS, size=TOKEN_CACHE_SIZE):
        self.seconds = seconds
        self.size = size
        self.entries = {}
        self.lock = threading.Lock()

    def get(self, digest):
        """The cached owner fields of this token digest, or None when unknown or expired."""
        entry = self.entries.get(digest)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, digest, owner):
        """Remember ``owner`` (id, username, role, active) for this digest."""
        with self.lock:
            if len(self.entries) >= self.size:
                self.entries.clear()
            self.entries[digest] = (time.monotonic() + self.seconds, owner)

    def clear(self):
        """Forget every token."""
        with self.lock:
            self.entries.clear()


token_cache = TokenCache()


@event.listens_for(Session, "after_flush")
def forget_changed_tokens(session, flush_context):
    """Any user or token changed through this process (revoked, deactivated, demoted) counts at once."""
    if any(isinstance(item, (User, ApiToken)) for item in (*session.dirty, *session.deleted)):
        token_cache.clear()


@functools.cache
def token_owner_query():
    """The owner of an unrevoked token: one read through the unique digest index, built once.

    Building a statement and its cache key costs more than running it; this
    one is built once and then only run with a new digest.
    """
    return (
        select(User.id, User.username, User.role, User.active)
        .join(ApiToken, ApiToken.user_id == User.id)
        .where(ApiToken.digest == bindparam("digest"), ApiToken.revoked.is_(None))
    )


def user_from_token(username, secret):
    """Return the active user named ``username`` owning this unrevoked token, or None.

    The user is a transient object built from the cached fields: enough for
    roles and ids, and never tied to a session it could outlive.
    """
    digest = token_digest(secret)
    owner = token_cache.get(digest)
    if owner is None:
        row = db.session.execute(token_owner_query(), {"digest": digest}).one_or_none()
        if row is None:
            return None
        owner = tuple(row)
        if not row.active:
            return None
        token_cache.put(digest, owner)
    user_id, name, role, active = owner
    if name != username:
        return None
    return User(id=user_id, username=name, role=role, active=active)


def user_from_password(username, password):
    """Return the active user whose password this is, or None."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not password_memory.check(user, password):
        return None
    return user


@login_manager.user_loader
def load_user(user_id):
    """Load the session's user; a deactivated user, or one whose password changed, is logged out."""
    number = str(user_id).partition("-")[0]
    if not number.isdigit():
        return None
    user = db.session.get(User, int(number))
    if user is None or not user.active or not hmac.compare_digest(user.get_id(), str(user_id)):
        return None
    return user


@login_manager.request_loader
def load_user_from_request(req):
    """Authenticate API calls that carry HTTP Basic credentials.

    A valid token always gets in: lockouts (see :mod:`webapp.limits`) stop
    password guessing, and must never let a stranger who knows the CI user's
    name stop its uploads. Wrong tokens and all password attempts are counted.
    """
    authorization = req.authorization
    if not req.path.startswith("/api/") or authorization is None or authorization.type != "basic":
        return None
    username = authorization.username or ""
    password = authorization.password or ""
    if password.startswith(TOKEN_PREFIX):
        user = user_from_token(username, password)
        if user is None:
            # a wrong token counts as a failed attempt (and is refused while blocked)
            attempt_login(username, lambda: None)
    else:
        user = attempt_login(username, lambda: user_from_password(username, password))
    if user is not None:
        g.auth_method = "basic"
    return user


def role_required(role):
    """Decorate a view so only users with at least ``role`` may call it (else 401/403)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(role):
                abort(403, description=f"this needs the {role} role")
            return view(*args, **kwargs)

        return wrapped

    return decorator


def write_role_for(method):
    """Return the role a request method needs on the API: reads, writes or deletes."""
    if method in ("GET", "HEAD", "OPTIONS"):
        return "viewer"
    if method == "DELETE":
        return "admin"
    return "maintainer"


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building a signer for a request that brings no cookie.

    Every CI call is such a request; Flask would build the signer (a
    serializer and its key derivation) for each of them only to find nothing to read.
    """

    def open_session(self, app, request):
        """An empty session when there is no cookie; else Flask's own reading of it."""
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_app(app):
    """Answer unauthenticated API calls with a JSON 401 challenge, pages with the login page."""
    app.session_interface = CookieSessions()
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.login_message_category = "info"

    @login_manager.unauthorized_handler
    def unauthorized():
        """Send API clients a Basic challenge and people to the login page."""
        if request.path.startswith("/api/") or "auth.login" not in app.view_functions:
            abort(401, description=API_LOGIN_HINT)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
