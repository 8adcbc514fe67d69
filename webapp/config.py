"""Configuration read from the environment (and an optional ``.env`` file).

Every setting has a safe default for ``make run`` on an embedded SQLite
database; production sets ``DATABASE_URL`` and ``SECRET_KEY`` at least.
"""

import os
import secrets
from pathlib import Path


def env_flag(name, default=False):
    """Read a boolean environment variable such as ``1``, ``true`` or ``yes``."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name):
    """Read a comma-separated environment variable as a list of stripped items."""
    return [item.strip() for item in os.environ.get(name, "").split(",") if item.strip()]


def load_secret_key(instance_path):
    """Return ``SECRET_KEY`` from the environment, or one kept in the instance folder.

    ``make run`` must survive restarts without logging everyone out, so a key
    generated once is stored beside the SQLite database with owner-only access.
    """
    key = os.environ.get("SECRET_KEY")
    if key:
        return key
    path = Path(instance_path) / "secret_key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


def engine_options(url):
    """Pool settings that let MySQL connections heal after idle drops or failover.

    The pool's own ROLLBACK on check-in is left out: every request's session
    ends its transaction before it returns the connection, so that second
    ROLLBACK was one more round trip per request for nothing. For the same
    reason there is no ``pool_pre_ping``: :mod:`webapp.pool` pings only
    connections that sat idle.
    """
    if url.startswith("mysql"):
        return {"pool_recycle": 280, "pool_size": 10, "max_overflow": 10, "pool_reset_on_return": None}
    return {}


def from_environment(instance_path):
    """Build the configuration mapping for :func:`webapp.create_app`."""
    database_url = os.environ.get(
        "DATABASE_URL", "sqlite:///" + str(Path(instance_path) / "greenbar.sqlite3")
    )
    max_upload_mb = int(os.environ.get("GREENBAR_MAX_UPLOAD_MB", "100"))
    return {
        "SECRET_KEY": load_secret_key(instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": engine_options(database_url),
        "MAX_CONTENT_LENGTH": max_upload_mb * 1024 * 1024,
        # a gzip upload may expand this far; larger is a 413, found while it streams
        "MAX_REPORT_BYTES": int(os.environ.get("GREENBAR_MAX_REPORT_MB", "512")) * 1024 * 1024,
        # werkzeug's scrypt at full cost (n=2**15): slow on purpose, against offline guessing
        "PASSWORD_HASH_METHOD": "scrypt:32768:8:1",
        "CORS_ORIGINS": env_list("GREENBAR_CORS_ORIGINS"),
        "REGISTRATION_ENABLED": env_flag("GREENBAR_REGISTRATION"),
        "RATELIMIT_STORAGE_URI": os.environ.get("GREENBAR_RATELIMIT_STORAGE_URI", "memory://"),
        "PROXY_HOPS": int(os.environ.get("GREENBAR_PROXY_HOPS", "1")),
        "MAIL_BACKEND": os.environ.get("GREENBAR_MAIL_BACKEND", "log"),
        "MAIL_SENDER": os.environ.get("GREENBAR_MAIL_SENDER", "greenbar@localhost"),
        # links in e-mails are built on this, so a forged Host header cannot redirect them
        "EXTERNAL_URL": os.environ.get("GREENBAR_EXTERNAL_URL", ""),
        "LOGIN_FAILURE_LIMIT": os.environ.get("GREENBAR_LOGIN_FAILURE_LIMIT", "10 per minute"),
        # each reset request sends mail: counted per login typed and per client address
        "PASSWORD_RESET_ACCOUNT_LIMIT": os.environ.get(
            "GREENBAR_PASSWORD_RESET_ACCOUNT_LIMIT", "5 per hour"
        ),
        "PASSWORD_RESET_ADDRESS_LIMIT": os.environ.get(
            "GREENBAR_PASSWORD_RESET_ADDRESS_LIMIT", "20 per hour"
        ),
        "PASSWORD_RESET_MAX_AGE": int(os.environ.get("GREENBAR_PASSWORD_RESET_MAX_AGE", "3600")),
        "S3_BUCKET": os.environ.get("GREENBAR_S3_BUCKET", ""),
        # the longest a quarantine entry may last; entries default to 30 days
        "QUARANTINE_MAX_DAYS": int(os.environ.get("GREENBAR_QUARANTINE_MAX_DAYS", "90")),
        # the longest a gate request waits for its build (?wait=S): each wait holds a worker
        "GATE_MAX_WAIT": int(os.environ.get("GREENBAR_GATE_MAX_WAIT", "60")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": env_flag("GREENBAR_SECURE_COOKIES"),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": env_flag("GREENBAR_SECURE_COOKIES"),
        "BOOTSTRAP_SERVE_LOCAL": True,
    }
