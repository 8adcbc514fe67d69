"""Attack: JUnit reports with impossible timestamps (issue 12, finding 6).

Such a time used to be a 500 (``OverflowError``) or was stored outside the API's
1970-2999 range. The import now drops it and says so in the reply's ``warnings``,
naming the file and the suite; the results are stored and the build's times
stay in range.
"""

from datetime import datetime
from datetime import timezone

import pytest
from sqlalchemy import select

from tests.factories import make_instance
from webapp.extensions import db
from webapp.models import TestBuild
from webapp.models import TestSuite

XML = {"Content-Type": "application/xml"}
OUTSIDE = "is outside the years 1970 to 2999; it was dropped"


def report(timestamp, time="1.5"):
    """A one-suite, one-case report with the given suite timestamp and time."""
    return (
        f'<testsuite name="S" timestamp="{timestamp}" time="{time}">'
        f'<testcase classname="S" name="t" time="1.5"/></testsuite>'
    ).encode()


@pytest.mark.parametrize(
    ("timestamp", "time", "warning"),
    [
        ("0001-01-01T00:00:00", "1.5", f"timestamp '0001-01-01T00:00:00' {OUTSIDE}"),
        ("0001-01-01T00:00:00+23:59", "1.5", f"timestamp '0001-01-01T00:00:00+23:59' {OUTSIDE}"),
        (
            "9999-12-31T23:59:59.999999-23:59",
            "1.5",
            f"timestamp '9999-12-31T23:59:59.999999-23:59' {OUTSIDE}",
        ),
        ("1969-12-31T23:59:59Z", "1.5", f"timestamp '1969-12-31T23:59:59Z' {OUTSIDE}"),
        (
            "2024-05-01T10:00:00+99:00",
            "1.5",
            "timestamp '2024-05-01T10:00:00+99:00' is not an ISO 8601 time; it was dropped",
        ),
        (
            "2999-12-31T23:00:00Z",
            "7200",
            "timestamp 2999-12-31T23:00:00+00:00 plus the suite's time (7200 s) ends after 2999;"
            " the time was dropped",
        ),
    ],
)
def test_impossible_timestamp_is_dropped_with_a_warning(app, api, timestamp, time, warning):
    """Is the report stored without the impossible time, and does the reply name the file and suite?"""
    with app.app_context():
        instance_id = make_instance().id
    response = api.post(
        f"/api/test-instance/{instance_id}/import/", data=report(timestamp, time), headers=XML
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["warnings"] == [f"body: suite 'S': {warning}"]
    assert body["cases"]["total"] == 1
    with app.app_context():
        suite = db.session.scalar(select(TestSuite))
        build = db.session.get(TestBuild, body["build"]["id"])
        assert (suite.started, suite.finished) == (None, None)
        low, high = datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(3000, 1, 1, tzinfo=timezone.utc)
        assert low <= build.started <= build.finished < high


def test_a_readable_timestamp_brings_no_warning(app, api):
    """Does a normal report's reply carry no warnings at all?"""
    with app.app_context():
        instance_id = make_instance().id
    response = api.post(
        f"/api/test-instance/{instance_id}/import/", data=report("2024-05-01T10:00:00Z"), headers=XML
    )
    assert response.status_code == 201
    assert "warnings" not in response.get_json()
