"""The migrations are the only way the schema is made: they must apply, revert and match the models."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade
from flask_migrate import upgrade
from sqlalchemy import inspect

from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import settings_for
from webapp import create_app
from webapp.extensions import db


@pytest.fixture(params=["sqlite", "mysql"])
def fresh_url(request, tmp_path, database_urls):
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "fresh.sqlite3")
        return
    if database_urls["mysql"] is None:
        pytest.skip(database_urls.get("mysql_skip_reason", "MySQL not configured"))
    url = create_scratch_mysql()
    yield url
    drop_scratch_mysql(url)


def test_upgrade_downgrade_upgrade(fresh_url, tmp_path):
    """Do the migrations apply to an empty database, revert fully and apply again?"""
    app = create_app(settings_for(fresh_url, str(tmp_path)))
    with app.app_context():
        upgrade()
        assert "test_cases" in inspect(db.engine).get_table_names()
        downgrade(revision="base")
        assert "test_cases" not in inspect(db.engine).get_table_names()
        upgrade()
        assert "test_cases" in inspect(db.engine).get_table_names()
        db.engine.dispose()


def test_models_match_migrations(app):
    """Would autogenerate find nothing to add or retype? Then models and migrations agree."""
    with app.app_context(), db.engine.connect() as connection:
        # types too: a model moved to DOUBLE without a migration leaves MySQL on FLOAT
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_mysql_keeps_microseconds(mysql_app):
    """Are times stored as DATETIME(6) on MySQL, so milliseconds survive?"""
    with mysql_app.app_context():
        columns = {c["name"]: c for c in inspect(db.engine).get_columns("test_cases")}
        assert "(6)" in str(columns["started"]["type"]).replace(" ", "") or getattr(
            columns["started"]["type"], "fsp", None
        ) == 6
