"""Finding 2: one build with a huge number must not break numbering for its instance."""

from sqlalchemy import update

from tests.factories import make_build
from tests.factories import make_instance
from webapp.extensions import db
from webapp.models import MAX_BUILD_NUMBER
from webapp.models import TestBuild

JUNIT = b'<testsuite name="s" tests="1"><testcase name="c"/></testsuite>'


def test_a_number_at_the_column_limit_is_refused(app, api):
    """The attack: POST a build numbered 2147483647. Is it a 400 naming the field?"""
    with app.app_context():
        instance_id = make_instance().id
    response = api.post(f"/api/test-instance/{instance_id}/test-build/", json={"number": 2**31 - 1})
    assert response.status_code == 400
    assert response.get_json()["error"]["fields"] == {"number": f"must be at most {MAX_BUILD_NUMBER}"}


def test_the_next_auto_number_after_the_highest_allowed_one_is_a_409(app, api):
    """After a build numbered at the top of the range, is the next auto-numbered build a clear 409?"""
    with app.app_context():
        instance_id = make_instance().id
    builds = f"/api/test-instance/{instance_id}/test-build/"
    assert api.post(builds, json={"number": MAX_BUILD_NUMBER}).status_code == 201
    response = api.post(builds, json={})
    assert response.status_code == 409
    assert "give the new build a free number" in response.get_json()["error"]["message"]
    # a number below the range's end still works
    assert api.post(builds, json={"number": 7}).status_code == 201


def test_an_import_into_an_instance_with_a_stored_column_limit_number_is_a_409(app, api):
    """A number stored before the range existed (2147483647): is an auto-numbered import a 409, not a 500?"""
    with app.app_context():
        instance = make_instance()
        build = make_build(instance)
        db.session.execute(update(TestBuild).where(TestBuild.id == build.id).values(number=2**31 - 1))
        db.session.commit()
        instance_id = instance.id
    response = api.post(
        f"/api/test-instance/{instance_id}/import/", data=JUNIT, headers={"Content-Type": "application/xml"}
    )
    assert response.status_code == 409
    with app.app_context():
        assert db.session.query(TestBuild).count() == 1
