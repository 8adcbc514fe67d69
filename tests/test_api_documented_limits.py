"""docs/api.md's rules for times and descriptions: stated with the code's figures, and true."""

import re
from pathlib import Path

import pytest

from webapp import domain

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
BUILDS = "/api/test-instance/{}/test-build/"


def api_section():
    """docs/api.md's rules, from its start up to its first section heading."""
    text = API_DOC.read_text(encoding="utf-8")
    return re.search(r"^# The API\n(.*?)^## ", text, re.S | re.M).group(1)


def test_readme_states_the_codes_limits():
    """Does the API section give the description limit, the years and the epoch bound the code uses?"""
    section = " ".join(api_section().split())
    assert f"`description` holds at most {domain.DESCRIPTION_LIMIT:,} characters" in section
    assert f"from 0 to {domain.MAX_EPOCH}" in section
    assert "with a year from 1970 to 2999" in section
    assert f'"must be at most {domain.DESCRIPTION_LIMIT} characters"' in section


@pytest.fixture
def instance_id(api):
    """A test instance made through the API."""
    return api.post("/api/test-instance/", json={"name": "limits"}).get_json()["id"]


@pytest.mark.parametrize(
    "started, stored",
    [
        ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"),
        ("2999-12-31T23:59:59.999999Z", "2999-12-31T23:59:59.999Z"),
        ("2021-12-24 18:58:07", "2021-12-24T18:58:07.000Z"),
        ("1970-01-01T00:30:00+01:00", "1969-12-31T23:30:00.000Z"),
        (0, "1970-01-01T00:00:00.000Z"),
        (domain.MAX_EPOCH, "3000-01-01T00:00:00.000Z"),
        (1640372287.123, "2021-12-24T18:58:07.123Z"),
    ],
)
def test_documented_times_are_accepted(api, instance_id, started, stored):
    """Is every time form docs/api.md allows stored, at the edges of the range too?"""
    response = api.post(BUILDS.format(instance_id), json={"started": started})
    assert response.status_code == 201, response.text
    assert response.get_json()["started"] == stored


@pytest.mark.parametrize(
    "started",
    [
        "1969-12-31T23:59:59Z",
        "3000-01-01T00:00:00Z",
        "2021-12-24",
        "2021-12-24T18:58Z",
        "2021-12-24t18:58:07Z",
        "2021-12-24T18:58:07z",
        "2021-12-24T18:58:07+0100",
        "2021-12-24T24:00:00Z",
        "2021-02-30T00:00:00Z",
        "2021-12-24T18:58:07.1234567Z",
        -1,
        domain.MAX_EPOCH + 1,
        True,
    ],
)
def test_times_outside_the_documented_forms_are_400(api, instance_id, started):
    """Is every form docs/api.md rules out a 400 that names the field?"""
    response = api.post(BUILDS.format(instance_id), json={"started": started})
    assert response.status_code == 400, response.text
    assert set(response.get_json()["error"]["fields"]) == {"started"}


def test_description_limit_counts_characters(api):
    """Do 16,000 four-byte characters fit (MySQL's TEXT included), and is one more a 400?"""
    longest = "😀" * domain.DESCRIPTION_LIMIT
    created = api.post("/api/test-instance/", json={"name": "wide", "description": longest})
    assert created.status_code == 201, created.text
    assert api.get(f"/api/test-instance/{created.get_json()['id']}/").get_json()["description"] == longest
    refused = api.post("/api/test-instance/", json={"name": "wider", "description": longest + "x"})
    assert refused.status_code == 400
    assert refused.get_json()["error"]["fields"] == {
        "description": f"must be at most {domain.DESCRIPTION_LIMIT} characters"
    }


def test_null_description_is_stored_empty(api):
    """Does a null description store an empty one, as docs/api.md says?"""
    created = api.post("/api/test-instance/", json={"name": "plain", "description": None})
    assert created.status_code == 201
    assert created.get_json()["description"] == ""
