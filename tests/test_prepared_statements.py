"""The live API's statements run straight on PyMySQL (mysql_writes.Prepared) as SQLAlchemy would run them."""

from datetime import datetime
from datetime import timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.exc import OperationalError

from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite
from webapp import mysql_writes
from webapp import results
from webapp.api.resources import case_record_query
from webapp.extensions import db
from webapp.models import TestCase


def stored_case():
    """A finished, flaky case with properties, times and a duration: every kind of value a record holds."""
    suite = make_suite(make_build(make_instance()))
    return make_case(
        suite,
        "test_login[ünïcode]",
        result_status="FAILED",
        started=datetime(2026, 1, 2, 3, 4, 5, 123456),
        finished=datetime(2026, 1, 2, 3, 4, 7, 654321),
        duration=2.53,
        message="AssertionError: 'x' != 'y'",
        is_flaky=True,
        properties=[("browser", "chromium"), ("tag", "smoke")],
    )


def test_a_prepared_read_gives_the_values_and_types_sqlalchemy_gives(mysql_app):
    with mysql_app.app_context():
        case_id = stored_case().id
        db.session.remove()
        core = db.session.connection().execute(case_record_query(), {"case_id": case_id}).one()._asdict()
        prepared = results.run(case_record_query(), {"case_id": case_id}).one()._asdict()
        assert prepared == core
        assert {name: type(value) for name, value in prepared.items()} == {
            name: type(value) for name, value in core.items()
        }
        assert prepared["is_flaky"] is True
        assert prepared["properties"] == [("browser", "chromium"), ("tag", "smoke")]
        assert prepared["started"] == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc)


def test_a_prepared_insert_of_a_taken_name_raises_sqlalchemys_integrity_error(mysql_app):
    with mysql_app.app_context():
        case = stored_case()
        row = {column: getattr(case, column) for column in results.CASE_COLUMNS}
        db.session.remove()
        with pytest.raises(IntegrityError) as raised:
            results.run(results.CASE_INSERT, row)
        assert raised.value.orig.args[0] == mysql_writes.MYSQL_DUPLICATE_KEY
        # the failed statement left the transaction usable, as the create path relies on
        assert results.run(case_record_query(), {"case_id": case.id}).one().name == case.name
        db.session.rollback()
        assert db.session.query(TestCase).count() == 1


def test_a_prepared_statement_on_a_killed_connection_invalidates_it(mysql_app):
    with mysql_app.app_context():
        case_id = stored_case().id
        db.session.remove()
        connection_id = db.session.execute(text("SELECT CONNECTION_ID()")).scalar()
        with db.engine.connect() as other:
            other.execute(text(f"KILL CONNECTION {connection_id}"))
        with pytest.raises(DBAPIError) as raised:
            results.run(case_record_query(), {"case_id": case_id})
        assert raised.value.connection_invalidated is True
        db.session.remove()
        # the pool hands out a working connection next
        assert results.run(case_record_query(), {"case_id": case_id}).one().id == case_id


def test_a_prepared_statement_that_waits_too_long_raises_sqlalchemys_operational_error(mysql_app):
    # the race retry (api.declare.retried) catches SQLAlchemy's OperationalError and reads the MySQL code
    with mysql_app.app_context():
        case = stored_case()
        suite_id = case.suite_id
        db.session.remove()
        with db.engine.connect() as holder:
            holder.execute(text("SELECT id FROM test_suites WHERE id = :id FOR UPDATE"), {"id": suite_id})
            db.session.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
            with pytest.raises(OperationalError) as raised:
                results.bump_counters(suite_id, case.build_id, {"passed": 1})
            assert raised.value.orig.args[0] == mysql_writes.MYSQL_LOCK_WAIT
            holder.rollback()
        db.session.rollback()
