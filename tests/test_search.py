"""Searches ignore letter case, in every script, on SQLite and on MySQL (whose names compare exactly)."""

import re

import pytest
from sqlalchemy import select

from tests.factories import make_instance
from tests.factories import make_run
from webapp.extensions import db
from webapp.models import TestSuite


def linked_case_names(html):
    """The case names the page links to, in order."""
    return re.findall(r'href="/cases/\d+">([^<]+)</a>', html)


@pytest.fixture
def suite_path(app):
    """The page of a suite holding cases named in two scripts and letter cases."""
    with app.app_context():
        make_run(
            make_instance(), {"Unit": {"test_Login": "SUCCESS", "test_Ёлка": "FAILED", "other": "SUCCESS"}}
        )
        return f"/suites/{db.session.scalar(select(TestSuite.id))}"


@pytest.mark.parametrize(
    ("term", "found"),
    [
        ("LOGIN", ["test_Login"]),
        ("login", ["test_Login"]),
        ("ёЛКА", ["test_Ёлка"]),
        ("TEST_", ["test_Ёлка", "test_Login"]),
    ],
)
def test_suite_page_search_ignores_letter_case(client, auth, suite_path, term, found):
    """Does the suite page's case search find names written in another letter case?"""
    auth.as_role("viewer")
    assert linked_case_names(client.get(f"{suite_path}?q={term}").text) == found


def test_instance_search_ignores_letter_case(app, client, auth):
    """Does the home page's search find instances by name and description in another letter case?"""
    auth.as_role("viewer")
    with app.app_context():
        make_instance("Mobile Ёжик", "iOS client")
        make_instance("desktop", "Windows client")
    assert "Mobile Ёжик" in client.get("/?q=mobile ЁЖИК").text
    page = client.get("/?q=IOS").text
    assert "Mobile Ёжик" in page and "desktop" not in page
