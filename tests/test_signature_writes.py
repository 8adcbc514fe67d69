"""Failure signatures reach every stored failing case: the JUnit import, re-runs, and the migration."""

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from sqlalchemy import select

from tests.conftest import create_scratch_mysql
from tests.conftest import drop_scratch_mysql
from tests.conftest import settings_for
from tests.factories import make_instance
from webapp import create_app
from webapp.extensions import db
from webapp.models import TestCase
from webapp.signatures import signature_for

XML = {"Content-Type": "application/xml"}
REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="api">
  <testcase classname="api" name="a" time="1">
    <failure message="expected 201, got 500">trace 1</failure></testcase>
  <testcase classname="api" name="b" time="1">
    <failure message="expected 200, got 404">trace 2</failure></testcase>
  <testcase classname="api" name="c" time="1"><error message="TimeoutError: 30s">t</error></testcase>
  <testcase classname="api" name="d" time="1"/>
  <testcase classname="api" name="a" time="1"/>
</testsuite>
"""


def stored_signatures(app):
    """``{case name: (signature, signature text)}`` of every stored case."""
    with app.app_context():
        rows = db.session.execute(select(TestCase.name, TestCase.signature, TestCase.signature_text)).all()
        return {name: (signature, text) for name, signature, text in rows}


def test_import_signs_failures_and_rerun_clears(app, api):
    """Do imported failures get signatures, and does a passing re-run (of a) clear its signature?"""
    with app.app_context():
        instance_id = make_instance().id
    reply = api.post(f"/api/test-instance/{instance_id}/import/", data=REPORT, headers=XML)
    assert reply.status_code == 201
    found = stored_signatures(app)
    assert found["a"] == (None, None)
    assert found["d"] == (None, None)
    assert found["b"] == signature_for("expected 200, got 404", "trace 2")
    assert found["b"][1] == "expected <n>, got <n>\ntrace <n>"
    assert found["c"][1] == "TimeoutError: <n>s\nt"


@pytest.fixture(params=["sqlite", "mysql"])
def old_database(request, tmp_path, database_urls):
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield "sqlite:///" + str(tmp_path / "old.sqlite3")
        return
    url = create_scratch_mysql()
    yield url
    drop_scratch_mysql(url)


def test_migration_signs_existing_failures(old_database, tmp_path):
    """Are failing cases stored before the migration signed by it, in batches, and the others left alone?"""
    app = create_app(settings_for(old_database, str(tmp_path)))
    with app.app_context():
        upgrade(revision="748b7efd5a74")
        with db.engine.begin() as connection:
            connection.execute(
                sa.text(
                    "INSERT INTO test_instances (id, name, description, created) "
                    "VALUES (1, 'p', '', '2026-01-01 00:00:00')"
                )
            )
            connection.execute(
                sa.text(
                    "INSERT INTO test_builds (id, instance_id, number, created) "
                    "VALUES (1, 1, 1, '2026-01-01 00:00:00')"
                )
            )
            connection.execute(sa.text("INSERT INTO test_suites (id, build_id, name) VALUES (1, 1, 's')"))
            rows = [
                {
                    "id": n,
                    "name": f"t{n}",
                    "status": "FAILED" if n % 3 else "SUCCESS",
                    "message": f"expected {n}",
                }
                for n in range(1, 4502)
            ]
            connection.execute(
                sa.text(
                    "INSERT INTO test_cases (id, suite_id, build_id, instance_id, test_key, name, "
                    "result_status, message) VALUES (:id, 1, 1, 1, 'k', :name, :status, :message)"
                ),
                rows,
            )
        upgrade()
        signed = db.session.execute(
            select(TestCase.signature, sa.func.count()).group_by(TestCase.signature)
        ).all()
        db.engine.dispose()
    assert dict(signed) == {signature_for("expected 1", None)[0]: 3001, None: 1500}
