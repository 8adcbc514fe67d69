"""Accounts: logging in and out, one's own password, password reset by e-mail, self-registration.

Every page needs a logged-in user except the few in :data:`PUBLIC_ENDPOINTS`;
:func:`require_login` enforces that for the whole app, so a page that forgets
``login_required`` is still closed. The API answers 401 itself.

A reset link carries a token signed with the app secret and a salt of its own,
which expires after ``PASSWORD_RESET_MAX_AGE`` seconds and holds a keyed
fingerprint of the password hash it was issued against: once the password
changes, every link issued before stops working, so each link works once.
Links are built on ``EXTERNAL_URL`` alone (see :func:`reset_link`).
"""

import functools
import hashlib
import hmac
import math
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import make_response
from flask import redirect
from flask import render_template
from flask import request
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from flask_login.config import COOKIE_NAME
from itsdangerous import BadSignature
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash
from werkzeug.security import generate_password_hash

from webapp import forms
from webapp import limits
from webapp import mail
from webapp.extensions import db
from webapp.extensions import login_manager
from webapp.models import User

bp = Blueprint("auth", __name__, url_prefix="/auth")
# seed 001 put self-registration at /user/register, outside /auth
registration_bp = Blueprint("user", __name__, url_prefix="/user")

PUBLIC_ENDPOINTS = frozenset(
    {
        "auth.login",
        "auth.reset_request",
        "auth.reset_confirm",
        "user.register",
        "health.healthz",
        "static",
        # guarded by the instance's secret badge token instead (webapp/badge_routes.py)
        "badges.badge",
        # /metrics checks its own bearer token or the scraper's address
        "metrics.metrics",
    }
)
RESET_SALT = "greenbar-password-reset"
RESET_MAX_AGE = 3600
RESET_MAIL_LIMIT = 5  # accounts mailed for one request that matches a shared address


def safe_next(target):
    """Return ``target`` if it is a path on this site, else None (no open redirects).

    Browsers read ``\\`` as ``/`` and drop tabs and newlines, so ``/\\evil.example``
    or ``/\\t/evil.example`` would leave the site: anything that is not a plain
    local path is refused.
    """
    if not target or "\\" in target or any(ord(char) < 32 or ord(char) == 127 for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def home_url():
    """Where people land after logging in without a ``next``."""
    return "/"


@functools.cache
def decoy_hash():
    """A hash to check unknown usernames against, so they take as long as known ones."""
    return generate_password_hash(secrets.token_hex(16), method=current_app.config["PASSWORD_HASH_METHOD"])


def authenticate(username, password):
    """Return the user whose password this is (active or not), or None."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        check_password_hash(decoy_hash(), password)
        return None
    return user if user.check_password(password) else None


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form; log the user in and send them on to a safe ``next``."""
    form = forms.LoginForm()
    if request.method == "GET":
        form.next.data = request.args.get("next", "")
    target = safe_next(form.next.data) or home_url()
    if current_user.is_authenticated:
        return redirect(target)
    if not form.validate_on_submit():
        return render_template("auth/login.html", form=form)
    username = form.username.data.strip()
    try:
        user = limits.attempt_login(username, lambda: authenticate(username, form.password.data))
    except limits.TooManyAttempts as error:
        response = make_response(render_template("auth/login.html", form=form, error=error.description), 429)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if user is None:
        return render_template("auth/login.html", form=form, error="Wrong username or password.")
    if not login_user(user, remember=form.remember.data):
        return render_template(
            "auth/login.html", form=form, error="This account is deactivated. Ask an admin to reactivate it."
        )
    return redirect(target)


@bp.post("/logout")
def logout():
    """Log out (POST only, so a link or image on another site cannot log anyone out)."""
    logout_user()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@login_required
def change_password():
    """Let the logged-in user change their own password after proving the current one."""
    form = forms.ChangePasswordForm()
    if form.validate_on_submit():
        if current_user.check_password(form.current.data):
            current_user.set_password(form.password.data)
            db.session.commit()
            # the new password ends every other session; this one carries on under the new id
            remembered = current_app.config.get("REMEMBER_COOKIE_NAME", COOKIE_NAME) in request.cookies
            login_user(current_user._get_current_object(), remember=remembered)
            flash("Your password is changed. Other sessions have been logged out.", "success")
            return redirect(home_url())
        form.current.errors.append("That is not your current password.")
    return render_template("auth/change_password.html", form=form)


def reset_serializer():
    """The signer of reset tokens: the app secret plus a salt used for nothing else."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=RESET_SALT)


def password_fingerprint(user):
    """A keyed digest of the user's password hash; it changes whenever the password does."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, user.password_hash.encode(), hashlib.sha256).hexdigest()[:32]


def make_reset_token(user):
    """Return a token that lets ``user`` set a new password, once, for a limited time."""
    return reset_serializer().dumps({"user": user.id, "password": password_fingerprint(user)})


def user_for_reset_token(token):
    """Return the active user a valid, unexpired, unused token was issued to, or None."""
    try:
        data = reset_serializer().loads(token, max_age=current_app.config["PASSWORD_RESET_MAX_AGE"])
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int):
        return None
    user = db.session.get(User, data["user"])
    if user is None or not user.active:
        return None
    if not hmac.compare_digest(str(data.get("password")), password_fingerprint(user)):
        return None
    return user


def reset_link(user):
    """The absolute reset link for ``user``, built on ``EXTERNAL_URL`` only.

    Never on the request's Host or X-Forwarded-Host headers, which a client
    chooses: anyone could have a victim mailed a genuine token inside a link to
    their own site. None without ``EXTERNAL_URL`` (gunicorn refuses to start
    without it; only a development server can lack it).
    """
    base = current_app.config.get("EXTERNAL_URL")
    if not base:
        return None
    return base.rstrip("/") + url_for("auth.reset_confirm", token=make_reset_token(user))


def send_reset_mail(user):
    """Mail ``user`` a link that sets a new password."""
    link = reset_link(user)
    if link is None:
        current_app.logger.error("no reset link mailed: GREENBAR_EXTERNAL_URL is not set")
        return
    minutes = current_app.config["PASSWORD_RESET_MAX_AGE"] // 60
    body = render_template("auth/email/reset.txt", user=user, link=link, minutes=minutes)
    mail.send(user.email, "Reset your Greenbar password", body)


def too_many_reset_requests(form, error):
    """The reset form again with a 429 that says when to retry (it says nothing of the account)."""
    minutes = math.ceil(error.retry_after / 60)
    flash(f"{error.description} Try again in {minutes} minute{'s' if minutes != 1 else ''}.", "warning")
    response = make_response(render_template("auth/reset_request.html", form=form), 429)
    response.headers["Retry-After"] = str(error.retry_after)
    return response


@bp.route("/reset", methods=["GET", "POST"])
def reset_request():
    """Ask for a reset link; the answer is the same whether or not the account exists."""
    form = forms.ResetRequestForm()
    if form.validate_on_submit():
        login = form.login.data.strip()
        try:
            limits.count_reset_request(login)
        except limits.TooManyResetRequests as error:
            return too_many_reset_requests(form, error)
        matches = db.session.scalars(
            select(User)
            .where(or_(User.username == login, func.lower(User.email) == login.lower()))
            .limit(RESET_MAIL_LIMIT)
        )
        for user in matches:
            if user.active and user.email and limits.may_mail_reset_link(user.id):
                send_reset_mail(user)
        # the mail is queued in the outbox: committing is what sends it
        db.session.commit()
        flash("If that matches an account with an e-mail address, a reset link is on its way.", "info")
        return redirect(url_for("auth.login"))
    return render_template("auth/reset_request.html", form=form)


@bp.route("/reset/<token>", methods=["GET", "POST"])
def reset_confirm(token):
    """Set a new password through a reset link."""
    user = user_for_reset_token(token)
    if user is None:
        response = make_response(render_template("auth/reset_confirm.html", form=None), 400)
    else:
        form = forms.ResetPasswordForm()
        if form.validate_on_submit():
            user.set_password(form.password.data)
            db.session.commit()
            flash("Your password is changed. Log in with the new one.", "success")
            return redirect(url_for("auth.login"))
        response = make_response(render_template("auth/reset_confirm.html", form=form))
    # the token is in the URL: never hand it to another site in a Referer header
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@registration_bp.route("/register", methods=["GET", "POST"])
def register():
    """Create a viewer account, when ``REGISTRATION_ENABLED`` is on (404 otherwise)."""
    if not current_app.config.get("REGISTRATION_ENABLED"):
        abort(404)
    form = forms.RegistrationForm()
    if form.validate_on_submit():
        if create_viewer(form.username.data, form.email.data or None, form.password.data):
            flash("User registered. Log in with your new account.", "success")
            return redirect(url_for("auth.login"))
        form.username.errors.append("User already exists.")
    return render_template("auth/register.html", form=form)


def create_viewer(username, email, password):
    """Store a new viewer and return it, or None when the name is taken (in any letter case)."""
    taken = db.session.scalar(select(User.id).where(func.lower(User.username) == username.lower()))
    if taken is not None:
        return None
    user = User(username=username, email=email, role="viewer", active=True)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # someone registered the same name a moment earlier
        db.session.rollback()
        return None
    return user


def require_login():
    """Send anonymous visitors of any page but the public ones to the login page."""
    if request.path.startswith("/api/") or current_user.is_authenticated:
        return None
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC_ENDPOINTS or endpoint.endswith(".static"):
        return None
    return login_manager.unauthorized()


def init_app(app):
    """Register the account pages and the app-wide login requirement."""
    app.config.setdefault("PASSWORD_RESET_MAX_AGE", RESET_MAX_AGE)
    app.config.setdefault("REMEMBER_COOKIE_DURATION", timedelta(days=30))
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Log in to see that page."
    app.register_blueprint(bp)
    app.register_blueprint(registration_bp)
    app.before_request(require_login)
