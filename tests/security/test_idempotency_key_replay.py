"""Attack: replay an Idempotency-Key with a different report, hoping for the first reply or a silent merge."""

from sqlalchemy import func
from sqlalchemy import select

from tests.factories import make_instance
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestCase

XML = {"Content-Type": "application/xml"}
FIRST = b'<testsuite name="api"><testcase name="test_list"/></testsuite>'
SECOND = b'<testsuite name="api"><testcase name="test_list"><failure message="boom"/></testcase></testsuite>'


def test_same_key_with_another_body_is_a_409_that_says_why(app, api):
    """The second report, sent under the first one's key, is refused: nothing stored, nothing replayed."""
    with app.app_context():
        path = f"/api/test-instance/{make_instance().id}/import/"
    headers = dict(XML, **{"Idempotency-Key": "ci-run-1"})
    first = api.post(path, data=FIRST, headers=headers)
    assert first.status_code == 201
    replay = api.post(path, data=SECOND, headers=headers)
    assert replay.status_code == 409
    assert "Idempotent-Replayed" not in replay.headers
    error = replay.get_json()["error"]
    assert error["status"] == 409
    assert "already used for a different request" in error["message"]
    assert "body" in error["message"]
    with app.app_context():
        db.session.expire_all()
        assert db.session.scalar(select(func.count()).select_from(TestBuild)) == 1
        assert db.session.scalars(select(TestCase.result_status)).all() == ["SUCCESS"]
