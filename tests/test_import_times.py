"""A build made from a report takes its times from the report, and keeps the report's <properties>."""

import re
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pytest
from sqlalchemy import select

from tests.factories import make_instance
from webapp.extensions import db
from webapp.models import TestCase
from webapp.models import TestSuite

XML = {"Content-Type": "application/xml"}
START = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)


def report(*suites):
    """A report of ``(name, timestamp or None, time)`` suites, one passing case each."""
    parts = []
    for name, timestamp, time in suites:
        stamp = f' timestamp="{timestamp}"' if timestamp else ""
        parts.append(
            f'<testsuite name="{name}"{stamp} time="{time}">'
            f'<testcase classname="{name}" name="t" time="{time}"/></testsuite>'
        )
    return f"<testsuites>{''.join(parts)}</testsuites>".encode()


@pytest.fixture
def post_report(app, api):
    """Post a report as a new build; return the stored build's start and finish."""
    with app.app_context():
        instance_id = make_instance().id

    def post(body):
        response = api.post(f"/api/test-instance/{instance_id}/import/", data=body, headers=XML)
        assert response.status_code == 201, response.get_json()
        build = response.get_json()["build"]
        return parse(build["started"]), parse(build["finished"])

    return post


def parse(text):
    """An API time as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_build_finishes_at_the_latest_suite_end(post_report):
    """Does a build uploaded long after its run finish when its last suite ended, not at upload?"""
    started, finished = post_report(
        report(
            ("a", "2024-05-01T10:00:00Z", 30),
            ("b", "2024-05-01T10:00:10Z", 45),
            ("c", "2024-05-01T10:00:05Z", 1),
        )
    )
    assert (started, finished) == (START, START + timedelta(seconds=55))


def test_suites_without_timestamps_add_their_times_to_the_start(post_report):
    """Where suites have no timestamp, does the build end at its start plus their summed times, if later?"""
    started, finished = post_report(
        report(("a", "2024-05-01T10:00:00Z", 10), ("b", None, 40), ("c", None, 50))
    )
    assert (started, finished) == (START, START + timedelta(seconds=90))


def test_report_without_timestamps_ends_at_upload(post_report):
    """With no timestamp at all, does the build end at upload and start its summed suite times before?"""
    before = datetime.now(timezone.utc)
    started, finished = post_report(report(("a", None, 20), ("b", None, 40)))
    assert before <= finished <= datetime.now(timezone.utc)
    assert finished - started == timedelta(seconds=60)


PROPERTIES_REPORT = b"""<testsuite name="shop" timestamp="2024-05-01T10:00:00">
  <properties><property name="browser" value="firefox"/><property name="tag">smoke</property></properties>
  <testcase classname="shop" name="test_cart" time="1">
    <properties>
      <property name="ticket" value="GB-7"/><property name="xss" value="&lt;b&gt;bold&lt;/b&gt;"/>
    </properties>
  </testcase>
  <testcase classname="shop" name="test_plain" time="1"/>
</testsuite>"""


def test_properties_are_stored_and_shown_on_the_case_page(app, api, client, auth):
    """Are suite and case <properties> stored in order, and listed (escaped) on the case page?"""
    with app.app_context():
        instance_id = make_instance().id
    response = api.post(f"/api/test-instance/{instance_id}/import/", data=PROPERTIES_REPORT, headers=XML)
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        suite = db.session.scalar(select(TestSuite))
        cases = {case.name: case for case in db.session.scalars(select(TestCase))}
        assert suite.properties == [("browser", "firefox"), ("tag", "smoke")]
        assert cases["test_cart"].properties == [("ticket", "GB-7"), ("xss", "<b>bold</b>")]
        assert cases["test_plain"].properties is None
        case_id = cases["test_cart"].id
    auth.as_role("viewer")
    page = client.get(f"/cases/{case_id}").text
    rows = page.split('id="properties-table"')[1].split("</table>")[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", rows)
    assert cells == [
        "ticket",
        "GB-7",
        "case",
        "xss",
        "&lt;b&gt;bold&lt;/b&gt;",
        "case",
        "browser",
        "firefox",
        "suite",
        "tag",
        "smoke",
        "suite",
    ]
    assert "<b>bold" not in rows


def test_properties_are_in_the_api_case_and_suite_json(app, api):
    """Does the API return a case's and a suite's properties as name/value objects, and null without?"""
    with app.app_context():
        instance_id = make_instance().id
    build = api.post(
        f"/api/test-instance/{instance_id}/import/", data=PROPERTIES_REPORT, headers=XML
    ).get_json()
    suites_url = f"/api/test-instance/{instance_id}/test-build/{build['build']['id']}/test-suite/"
    suite = api.get(suites_url).get_json()["results"][0]
    assert suite["properties"] == [{"name": "browser", "value": "firefox"}, {"name": "tag", "value": "smoke"}]
    cases = {
        case["name"]: case for case in api.get(f"{suites_url}{suite['id']}/test-case/").get_json()["results"]
    }
    assert cases["test_cart"]["properties"] == [
        {"name": "ticket", "value": "GB-7"},
        {"name": "xss", "value": "<b>bold</b>"},
    ]
    assert cases["test_plain"]["properties"] is None
