"""Who is calling: users from the session or HTTP Basic auth, API tokens, roles.

A Basic-auth password is either the user's password or one of the user's API
tokens. Tokens are checked by a digest lookup. Passwords need a slow hash, so
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
from flask_login import current_user
from sqlalchemy import bindparam
from sqlalchemy import func
from sqlalchemy import select

from webapp.extensions import db
from webapp.extensions import login_manager
from webapp.limits import attempt_login
from webapp.models import ApiToken
from webapp.models import User
from webapp.models import utcnow

TOKEN_PREFIX = "gb_"  # noqa: S105 (a public marker, not a secret)
PASSWORD_MEMORY_SECONDS = 300
PASSWORD_MEMORY_SIZE = 1024
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
    """Revoke a token; the next API call that uses it is refused."""
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


def with_prefetch(statement, models):
    """Outer-join one row of each model, its id a bound parameter ``prefetch_<n>``."""
    for number, model in enumerate(models):
        # coalesce(id, users.id) is just the id; naming users there tells SQLAlchemy's
        # linter that this one-row join is meant, not an accidental cartesian product
        row_id = bindparam(f"prefetch_{number}", type_=model.id.type)
        statement = statement.add_columns(model).outerjoin(model, model.id == func.coalesce(row_id, User.id))
    return statement


@functools.cache
def user_query(by_token, models):
    """The user lookup (by token digest or by username) with ``models`` joined, built once per shape.

    Building a statement and its cache key costs more than running it; this
    one is built once and then only run with new parameters.
    """
    if by_token:
        statement = with_prefetch(select(User).join(ApiToken, ApiToken.user_id == User.id), models)
        return statement.where(ApiToken.digest == bindparam("key"), ApiToken.revoked.is_(None))
    return with_prefetch(select(User), models).where(User.username == bindparam("key"))


def find_user(by_token, key):
    """The user a token digest or a username names, or None, with the rows in ``g.prefetch``.

    The API view will look those rows up by id (``g.prefetch``: model, id
    pairs): they arrive in the same round trip as the user, and the view's
    ``session.get()`` finds them in the identity map. The whole row is read
    (not ``scalar()``) so they enter the session, and ``g`` holds them, since
    the session only keeps weak references.
    """
    prefetch = g.get("prefetch", ())
    parameters = {f"prefetch_{number}": row_id for number, (_, row_id) in enumerate(prefetch)}
    statement = user_query(by_token, tuple(model for model, _ in prefetch))
    row = db.session.execute(statement, {"key": key, **parameters}).one_or_none()
    if row is None:
        return None
    g.prefetched = row[1:]
    return row[0]


def user_from_token(secret):
    """Return the active user owning an unrevoked token, or None."""
    user = find_user(True, token_digest(secret))
    return user if user is not None and user.active else None


def user_from_basic_auth(authorization):
    """Return the user that Basic credentials identify, or None."""
    if authorization is None or authorization.type != "basic":
        return None
    username = authorization.username or ""
    password = authorization.password or ""
    if password.startswith(TOKEN_PREFIX):
        user = user_from_token(password)
        return user if user is not None and user.username == username else None
    user = find_user(False, username)
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
    """Authenticate API calls that carry HTTP Basic credentials; failures are rate limited."""
    if not req.path.startswith("/api/") or req.authorization is None:
        return None
    username = req.authorization.username or ""
    user = attempt_login(username, lambda: user_from_basic_auth(req.authorization))
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


def init_app(app):
    """Answer unauthenticated API calls with a JSON 401 challenge, pages with the login page."""
    login_manager.init_app(app)
    login_manager.session_protection = "strong"
    login_manager.login_message_category = "info"

    @login_manager.unauthorized_handler
    def unauthorized():
        """Send API clients a Basic challenge and people to the login page."""
        if request.path.startswith("/api/") or "auth.login" not in app.view_functions:
            abort(401, description=API_LOGIN_HINT)
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
