"""The migrations are the only way the schema is made: they must apply, revert and match the models."""

from datetime import datetime
from datetime import timedelta

import pytest
import sqlalchemy as sa
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
        assert (
            "(6)" in str(columns["started"]["type"]).replace(" ", "")
            or getattr(columns["started"]["type"], "fsp", None) == 6
        )


BEFORE_BIG_IDS = "748b7efd5a74"
UPLOAD = datetime(2026, 3, 2, 8, 0, 0)  # a day after the report ran: the old import finished builds here
REPORT_START = datetime(2026, 3, 1, 10, 0, 0)
BIG_ID = 2**31 + 7


def fill_old_schema(connection):
    """Rows as the schema before BIGINT ids held them: an imported build and an API build, 40 cases each."""
    tables = sa.MetaData()
    tables.reflect(connection)

    def insert(table, /, **values):
        connection.execute(tables.tables[table].insert().values(**values))

    insert("test_instances", id=1, name="product", description="", created=UPLOAD)
    # imported: started at the earliest suite timestamp, finished (like its cases) at upload time
    for build_id in (1, 2):
        insert(
            "test_builds",
            id=build_id,
            instance_id=1,
            number=build_id,
            started=REPORT_START,
            finished=UPLOAD,
            created=UPLOAD,
        )
    insert(
        "test_suites",
        id=1,
        build_id=1,
        name="timed",
        started=REPORT_START,
        finished=REPORT_START + timedelta(seconds=90),
        cases_duration=20.0,
    )
    insert("test_suites", id=2, build_id=1, name="untimed", cases_duration=300.0)
    # build 2 was recorded through the API: its cases started and finished one by one
    insert("test_suites", id=3, build_id=2, name="api", started=REPORT_START, finished=UPLOAD)
    for number in range(40):
        for build_id, suite_id, started, finished in (
            (1, 1 + number % 2, None, UPLOAD),
            (2, 3, REPORT_START, REPORT_START + timedelta(seconds=number)),
        ):
            insert(
                "test_cases",
                suite_id=suite_id,
                build_id=build_id,
                instance_id=1,
                test_key=f"{number:032x}",
                name=f"case {number}",
                started=started,
                finished=finished,
                result_status="SUCCESS",
                duration=1.0,
            )


def test_upgrade_on_filled_tables(fresh_url, tmp_path):
    """Are rows kept, ids past 2**31 storable, and only imported builds' finish moved to the report's end?"""
    app = create_app(settings_for(fresh_url, str(tmp_path)))
    with app.app_context():
        upgrade(revision=BEFORE_BIG_IDS)
        with db.engine.begin() as connection:
            fill_old_schema(connection)
        upgrade()
        with db.engine.begin() as connection:
            scalar = lambda sql, **values: connection.scalar(sa.text(sql), values)  # noqa: E731
            assert scalar("SELECT COUNT(*) FROM test_cases WHERE properties IS NULL") == 80
            assert scalar("SELECT COUNT(*) FROM test_suites WHERE properties IS NULL") == 3
            finished = dict(connection.execute(sa.text("SELECT id, finished FROM test_builds")).all())
            # the untimed suite's 300 s from the start end later than the timed suite's 90 s
            assert naive(finished[1]) == REPORT_START + timedelta(seconds=300)
            assert naive(finished[2]) == UPLOAD
            for statement in (
                "INSERT INTO test_suites (id, build_id, name) VALUES (:id, 1, 'big')",
                "INSERT INTO test_cases (id, suite_id, build_id, instance_id, test_key, name)"
                " VALUES (:id, :id, 1, 1, 'k', 'big')",
                "INSERT INTO test_cases (suite_id, build_id, instance_id, test_key, name)"
                " VALUES (:id, 1, 1, 'k', 'next')",
            ):
                connection.execute(sa.text(statement), {"id": BIG_ID})
            assert scalar("SELECT MAX(id) FROM test_cases WHERE suite_id = :id", id=BIG_ID) == BIG_ID + 1
        db.engine.dispose()


def naive(value):
    """A stored time as a naive datetime (SQLite hands back text)."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
