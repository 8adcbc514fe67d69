"""Greenbar: a self-hosted home for automated-test results."""

import os
from pathlib import Path

from dotenv import load_dotenv
from flask import Flask
from flask import g
from flask import request
from sqlalchemy import event
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from webapp import config
from webapp import pool
from webapp.extensions import csrf
from webapp.extensions import db
from webapp.extensions import migrate

ROOT = Path(__file__).resolve().parent.parent


class Greenbar(Flask):
    """Flask, running once more a read that lost its database connection (:mod:`webapp.pool`)."""

    def full_dispatch_request(self):
        """Dispatch the request; a read that lost its connection and committed nothing runs again."""
        return pool.dispatch_running_lost_reads_again(super().full_dispatch_request)


def create_app(test_config=None):
    """Create and configure the app.

    :param test_config: a mapping that replaces settings read from the environment.
    """
    load_dotenv(ROOT / ".env")
    app = Greenbar(
        __name__,
        instance_path=os.environ.get("GREENBAR_INSTANCE_PATH", str(ROOT / "instance")),
        template_folder=str(ROOT / "templates"),
    )
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.from_mapping(config.from_environment(app.instance_path))
    if test_config is not None:
        app.config.from_mapping(test_config)
    # JSON keeps the order it was built in: the error envelope and the OpenAPI document read top-down
    app.json.sort_keys = False
    # the client address and scheme from PROXY_HOPS proxies (0: believe no forwarded header);
    # never the host, which a client could choose (mailed links use EXTERNAL_URL)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=app.config["PROXY_HOPS"], x_proto=app.config["PROXY_HOPS"])
    register_extensions(app)
    register_blueprints(app)
    register_request_id(app)
    return app


def register_extensions(app):
    """Bind the extensions to the app."""
    from webapp import headers
    from webapp import limits
    from webapp import mail
    from webapp import pool
    from webapp import security
    from webapp import storage
    from webapp import templating

    db.init_app(app)
    pool.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    security.init_app(app)
    templating.init_app(app)
    headers.init_app(app)
    limits.init_app(app)
    mail.init_app(app)
    storage.init_app(app)


def register_blueprints(app):
    """Register the blueprints, error handlers and command-line commands."""
    from webapp import accounts
    from webapp import action_views
    from webapp import admin
    from webapp import api
    from webapp import badge_routes
    from webapp import cli
    from webapp import connect
    from webapp import errors
    from webapp import health
    from webapp import messages_views
    from webapp import metrics
    from webapp import retention_cli
    from webapp import storage_cli
    from webapp import views
    from webapp import worker

    # first, so its timer starts before any other hook can answer
    metrics.init_app(app)
    health.init_app(app)
    views.init_app(app)
    action_views.init_app(app)
    connect.init_app(app)
    api.init_app(app)
    badge_routes.init_app(app)
    accounts.init_app(app)
    admin.init_app(app)
    errors.init_app(app)
    cli.init_app(app)
    messages_views.init_app(app)
    storage_cli.init_app(app)
    retention_cli.init_app(app)
    worker.init_app(app)


def register_request_id(app):
    """Echo the proxy's ``X-Request-ID`` so a reply can be matched to nginx's log line."""

    @app.before_request
    def remember_request_id():
        g.request_id = request.headers.get("X-Request-ID", "")[:64]

    @app.after_request
    def echo_request_id(response):
        if g.get("request_id"):
            response.headers["X-Request-ID"] = g.request_id
        return response


@event.listens_for(Engine, "connect")
def enforce_sqlite_foreign_keys(dbapi_connection, connection_record):
    """Set up each SQLite connection: foreign keys (else no ON DELETE CASCADE), WAL, a lock wait, lower()."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
        # SQLite's own lower() folds ASCII letters only; searches lower both sides (queries.contains)
        dbapi_connection.create_function("lower", 1, unicode_lower, deterministic=True)


def unicode_lower(text):
    """Python's lower(), for SQLite: every script's letters, not only ASCII."""
    return text.lower() if isinstance(text, str) else text
