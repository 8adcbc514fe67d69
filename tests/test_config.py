"""Configuration from the environment, and the factory's wiring."""

import pytest
from flask import request

from tests.conftest import settings_for
from webapp import create_app
from webapp.config import engine_options
from webapp.models import User


def test_secret_key_is_generated_once_and_kept(tmp_path, monkeypatch):
    """Does make run keep one generated key across restarts, readable only by its owner?"""
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    first = create_app().config["SECRET_KEY"]
    second = create_app().config["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_environment_overrides(tmp_path, monkeypatch):
    """Do DATABASE_URL, SECRET_KEY and the upload limit come from the environment?"""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("DATABASE_URL", "mysql+pymysql://u:p@db.example/greenbar")
    monkeypatch.setenv("GREENBAR_MAX_UPLOAD_MB", "7")
    monkeypatch.setenv("GREENBAR_EXTERNAL_URL", "https://greenbar.example.com")
    monkeypatch.setenv("GREENBAR_LOGIN_FAILURE_LIMIT", "5 per minute")
    config = create_app().config
    assert config["EXTERNAL_URL"] == "https://greenbar.example.com"
    assert config["LOGIN_FAILURE_LIMIT"] == "5 per minute"
    assert config["SECRET_KEY"] == "from-env"
    assert config["SQLALCHEMY_DATABASE_URI"].startswith("mysql+pymysql://")
    # MySQL connections are recycled before the server drops them, and pinged only after idling
    assert config["SQLALCHEMY_ENGINE_OPTIONS"]["pool_recycle"] < 28800
    assert "pool_pre_ping" not in config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert config["MAX_CONTENT_LENGTH"] == 7 * 1024 * 1024


def test_sqlite_is_the_default(tmp_path, monkeypatch):
    """Without DATABASE_URL, is the database a SQLite file in the instance folder?"""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    assert create_app().config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/greenbar.sqlite3"
    assert engine_options("sqlite:///x") == {}


@pytest.mark.parametrize(
    ("hops", "seen"),
    [(1, {"scheme": "https", "remote": "203.0.113.9"}), (0, {"scheme": "http", "remote": "127.0.0.1"})],
)
def test_proxy_headers_are_trusted_only_through_configured_hops(database_urls, tmp_path, hops, seen):
    """Does the app believe forwarded scheme and address through nginx (one hop), and never without?"""
    app = create_app(dict(settings_for(database_urls["sqlite"], str(tmp_path)), PROXY_HOPS=hops))
    observed = {}

    @app.after_request
    def observe(response):
        observed.update(scheme=request.scheme, remote=request.remote_addr)
        return response

    app.test_client().get(
        "/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    )
    assert observed == seen


def test_passwords_are_hashed_slowly_in_production(tmp_path, monkeypatch):
    """Is the production hash full-cost scrypt, never a fast digest?"""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    app = create_app()
    with app.app_context():
        user = User(username="u")
        user.set_password("correct horse")
        assert user.password_hash.startswith("scrypt:32768:8:1$")
        assert user.check_password("correct horse") and not user.check_password("wrong")
