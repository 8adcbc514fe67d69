"""Configuration read from the environment (and an optional ``.env`` file).

Every setting has a safe default for ``make run`` on an embedded SQLite
database; production sets ``DATABASE_URL`` and ``SECRET_KEY`` at least.
"""

import ipaddress
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


def secure_cookies(external_url):
    """Whether cookies carry ``Secure``: ``GREENBAR_SECURE_COOKIES`` if set, else an https external URL."""
    return env_flag("GREENBAR_SECURE_COOKIES", default=external_url.startswith("https://"))


def from_environment(instance_path):
    """Build the configuration mapping for :func:`webapp.create_app`."""
    database_url = os.environ.get(
        "DATABASE_URL", "sqlite:///" + str(Path(instance_path) / "greenbar.sqlite3")
    )
    external_url = os.environ.get("GREENBAR_EXTERNAL_URL", "").strip().rstrip("/")
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
        # the rate-limit counters' shared store; without it MySQL's, or per process on SQLite
        "REDIS_URL": os.environ.get("GREENBAR_REDIS_URL", ""),
        # proxies in front whose X-Forwarded-* headers are believed: 0 without one (make run),
        # 1 for nginx (which overwrites X-Forwarded-For with the balancer's client address)
        "PROXY_HOPS": int(os.environ.get("GREENBAR_PROXY_HOPS", "0")),
        "MAIL_BACKEND": os.environ.get("GREENBAR_MAIL_BACKEND", "log"),
        "MAIL_SENDER": os.environ.get("GREENBAR_MAIL_SENDER", "greenbar@localhost"),
        # links in e-mails are built on this alone, so a forged Host header cannot redirect
        # them; gunicorn refuses to start without it (gunicorn.conf.py)
        "EXTERNAL_URL": external_url,
        # failed password attempts for one username at one address, and from one address
        "LOGIN_FAILURE_LIMIT": os.environ.get("GREENBAR_LOGIN_FAILURE_LIMIT", "10 per minute"),
        "LOGIN_ADDRESS_FAILURE_LIMIT": os.environ.get(
            "GREENBAR_LOGIN_ADDRESS_FAILURE_LIMIT", "50 per minute"
        ),
        # each reset request sends mail: counted per login typed and per client address
        "PASSWORD_RESET_ACCOUNT_LIMIT": os.environ.get("GREENBAR_PASSWORD_RESET_ACCOUNT_LIMIT", "5 per hour"),
        "PASSWORD_RESET_ADDRESS_LIMIT": os.environ.get(
            "GREENBAR_PASSWORD_RESET_ADDRESS_LIMIT", "20 per hour"
        ),
        "PASSWORD_RESET_MAX_AGE": int(os.environ.get("GREENBAR_PASSWORD_RESET_MAX_AGE", "3600")),
        # queued imports: SQS when a queue URL is set, else the database; uploads above the size queue
        "IMPORT_QUEUE_URL": os.environ.get("GREENBAR_IMPORT_QUEUE_URL", ""),
        "IMPORT_LEASE_SECONDS": int(os.environ.get("GREENBAR_IMPORT_LEASE_SECONDS", "120")),
        "ASYNC_IMPORT_BYTES": int(os.environ.get("GREENBAR_ASYNC_IMPORT_MB", "20")) * 1024 * 1024,
        # the worker ships the operation log to storage this often
        "OPLOG_SHIP_SECONDS": float(os.environ.get("GREENBAR_OPLOG_SHIP_SECONDS", "60")),
        "CLOUDWATCH_NAMESPACE": os.environ.get("GREENBAR_CLOUDWATCH_NAMESPACE", ""),
        # /metrics answers a bearer of this token, or a scraper at one of these addresses (CIDR allowed)
        "METRICS_TOKEN": os.environ.get("GREENBAR_METRICS_TOKEN", ""),
        "METRICS_ALLOWED_NETWORKS": [
            ipaddress.ip_network(item, strict=False)
            for item in env_list("GREENBAR_METRICS_ALLOWED_ADDRESSES")
        ],
        "S3_BUCKET": os.environ.get("GREENBAR_S3_BUCKET", ""),
        # files and messages (docs/files-and-messages.md)
        "STORAGE_URL": os.environ.get("GREENBAR_STORAGE_URL", ""),
        "MAX_ATTACHMENT_BYTES": int(os.environ.get("GREENBAR_MAX_ATTACHMENT_MB", "64")) * 1024 * 1024,
        "WEBHOOK_ALLOWED_HOSTS": env_list("GREENBAR_WEBHOOK_ALLOWED_HOSTS"),
        "OUTBOX_LEASE_SECONDS": int(os.environ.get("GREENBAR_OUTBOX_LEASE_SECONDS", "120")),
        "OUTBOX_BACKOFF_SECONDS": float(os.environ.get("GREENBAR_OUTBOX_BACKOFF_SECONDS", "16")),
        "WORKER_POLL_SECONDS": float(os.environ.get("GREENBAR_WORKER_POLL_SECONDS", "1")),
        # the longest a quarantine entry may last; entries default to 30 days
        "QUARANTINE_MAX_DAYS": int(os.environ.get("GREENBAR_QUARANTINE_MAX_DAYS", "90")),
        # the longest a gate request waits for its build (?wait=S): each wait holds a worker
        "GATE_MAX_WAIT": int(os.environ.get("GREENBAR_GATE_MAX_WAIT", "60")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": secure_cookies(external_url),
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": secure_cookies(external_url),
        "BOOTSTRAP_SERVE_LOCAL": True,
    }
