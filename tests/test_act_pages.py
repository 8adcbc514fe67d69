"""The pages for acting on results: gate and failure causes, top causes, quarantine, gate rules, badges.

On the history of tests/act_history.py; changes are form posts that need the maintainer role.
"""
# ruff: noqa: F811 (the history fixture, imported, is the tests' argument)

import re

import pytest
from sqlalchemy import select

from tests.act_history import SIG_A
from tests.act_history import SIG_B
from tests.act_history import history  # noqa: F401 (a fixture)
from tests.factories import make_user
from webapp.extensions import db
from webapp.models import TestCase
from webapp.models_actions import FailureLabel
from webapp.models_actions import GateRules
from webapp.models_actions import QuarantineEntry


def login(app, client, role):
    """Log ``client`` in as a new user of ``role``."""
    with app.app_context():
        make_user(f"{role}-page", role=role)
    response = client.post("/auth/login", data={"username": f"{role}-page", "password": "s3cret-pass"})
    assert response.status_code == 302
    return client


def case_id(app, build_id, name):
    """The id of a case of a build by name."""
    with app.app_context():
        return db.session.query(TestCase.id).filter_by(build_id=build_id, name=name).scalar()


def test_build_page_loads_the_failure_groups(app, client, history):
    """Does the build page point at its gate-and-causes fragment, which shows the gate and the groups?"""
    _, builds = history
    login(app, client, "viewer")
    page = client.get(f"/builds/{builds[1]}").get_data(as_text=True)
    assert f'data-fragment="/builds/{builds[1]}/failures?partial=1"' in page
    fragment = client.get(f"/builds/{builds[1]}/failures?partial=1").get_data(as_text=True)
    assert "gate failed" in fragment
    assert "1 new failure (against build #1): s::t4" in fragment
    assert "AssertionError: expected &lt;n&gt; got &lt;n&gt;" in fragment
    assert re.search(r"4 failures from 3 causes:\s*<strong>4</strong> from 3 new", fragment)
    assert "gb-triage-form" not in fragment
    whole = client.get(f"/builds/{builds[1]}/failures")
    assert whole.status_code == 200
    assert "<html" in whole.get_data(as_text=True)


def test_one_failure_and_one_cause_read_in_the_singular(app, client, history):
    """With causes A and B labelled, does the split say "1 from 1 new (unlabelled) cause"?"""
    instance_id, builds = history
    login(app, client, "maintainer")
    for signature in (SIG_A, SIG_B):
        client.post(f"/instances/{instance_id}/failure-groups/{signature}/label", data={"label": "test_bug"})
    fragment = client.get(f"/builds/{builds[1]}/failures?partial=1").get_data(as_text=True)
    split = re.sub(r"\s+", " ", re.search(r'id="causes-split">(.*?)</p>', fragment, re.S).group(1)).strip()
    assert split == (
        "4 failures from 3 causes: <strong>1</strong> from 1 new (unlabelled) cause, "
        "<strong>3</strong> from 2 known (labelled) ones."
    )


def test_instance_page_loads_causes_and_actions(app, client, history):
    """Does the instance page point at the top causes and the actions, and do they show?"""
    instance_id, _ = history
    login(app, client, "viewer")
    page = client.get(f"/instances/{instance_id}").get_data(as_text=True)
    assert f"/instances/{instance_id}/causes?" in page
    assert f'data-fragment="/instances/{instance_id}/actions?partial=1"' in page
    causes = client.get(f"/instances/{instance_id}/causes?partial=1").get_data(as_text=True)
    assert causes.index(SIG_A) < causes.index("ConnectionError")
    actions = client.get(f"/instances/{instance_id}/actions?partial=1").get_data(as_text=True)
    assert "No test is quarantined." in actions
    assert 'id="quarantine-form"' not in actions


def test_maintainer_quarantines_from_the_case_page_and_it_is_marked(app, client, history):
    """Does a maintainer's form post quarantine t4, mark it in the lists, pass the gate, and remove it?"""
    instance_id, builds = history
    login(app, client, "maintainer")
    t4 = case_id(app, builds[1], "t4")
    form = client.get(f"/cases/{t4}/quarantine?partial=1").get_data(as_text=True)
    assert 'id="case-quarantine-form"' in form
    reply = client.post(
        f"/instances/{instance_id}/quarantine",
        data={"suite": "s", "name": "t4", "reason": "DB move", "next": f"/cases/{t4}"},
    )
    assert reply.status_code == 302
    assert reply.headers["Location"] == f"/cases/{t4}"
    assert "quarantined" in client.get(f"/cases/{t4}/quarantine?partial=1").get_data(as_text=True)
    assert "gb-quarantined" in client.get(f"/builds/{builds[1]}").get_data(as_text=True)
    assert "gate passed" in client.get(f"/builds/{builds[1]}/failures?partial=1").get_data(as_text=True)
    with app.app_context():
        entry_id = db.session.query(QuarantineEntry.id).scalar()
    client.post(f"/instances/{instance_id}/quarantine/{entry_id}/remove", data={"next": "/"})
    assert "not quarantined" in client.get(f"/cases/{t4}/quarantine?partial=1").get_data(as_text=True)


def test_bad_quarantine_form_says_why_and_stores_nothing(app, client, history):
    """Is an unknown owner a friendly message, with no entry stored?"""
    instance_id, _ = history
    login(app, client, "maintainer")
    reply = client.post(
        f"/instances/{instance_id}/quarantine",
        data={"suite": "s", "name": "t4", "reason": "r", "owner": "ghost"},
        follow_redirects=True,
    )
    assert "There is no active user named" in reply.get_data(as_text=True)
    with app.app_context():
        assert db.session.query(QuarantineEntry).count() == 0


@pytest.mark.parametrize(
    ("path", "data"),
    [
        ("quarantine", {"suite": "s", "name": "t4", "reason": "r"}),
        ("gate", {"min_pass_rate": "50"}),
        ("badge-token", {}),
        (f"failure-groups/{SIG_A}/label", {"label": "test_bug"}),
    ],
)
def test_viewers_cannot_change(app, client, history, path, data):
    """Does every change refuse a viewer with a 403?"""
    instance_id, _ = history
    login(app, client, "viewer")
    assert client.post(f"/instances/{instance_id}/{path}", data=data).status_code == 403


def test_maintainer_labels_sets_rules_and_rotates_the_badge(app, client, history):
    """Do the triage, gate and badge forms store what they say?"""
    instance_id, builds = history
    login(app, client, "maintainer")
    client.post(
        f"/instances/{instance_id}/failure-groups/{SIG_A}/label",
        data={"label": "environment", "note": "flaky network", "issue_url": ""},
    )
    fragment = client.get(f"/builds/{builds[1]}/failures?partial=1").get_data(as_text=True)
    assert re.search(r"<strong>2</strong> from 1 known", fragment)
    client.post(f"/instances/{instance_id}/gate", data={"min_pass_rate": "10", "max_flaky": ""})
    bad = client.post(f"/instances/{instance_id}/gate", data={"min_pass_rate": "lots"}, follow_redirects=True)
    assert "min pass rate must be a number" in bad.get_data(as_text=True)
    client.post(f"/instances/{instance_id}/badge-token", data={})
    actions = client.get(f"/instances/{instance_id}/actions?partial=1").get_data(as_text=True)
    with app.app_context():
        # the one label, whatever its id: MySQL keeps counting ids after a table is emptied
        [label] = db.session.scalars(select(FailureLabel)).all()
        assert (label.instance_id, label.signature, label.label) == (instance_id, SIG_A, "environment")
        rules = db.session.get(GateRules, instance_id)
        assert (rules.min_pass_rate, rules.no_new_failures, rules.max_flaky) == (10.0, False, None)
    assert "![status](http://localhost/badges/" in actions


def test_forms_come_back_to_the_page_they_were_on(app, client, history):
    """The actions and failure-causes forms return to their own page, or to the page that loaded them."""
    instance_id, builds = history
    login(app, client, "maintainer")
    for whole, part, holder in (
        (
            f"/instances/{instance_id}/actions",
            f"/instances/{instance_id}/actions?partial=1",
            f"/instances/{instance_id}",
        ),
        (f"/builds/{builds[1]}/failures", f"/builds/{builds[1]}/failures?partial=1", f"/builds/{builds[1]}"),
    ):
        assert set(re.findall(r'name="next" value="([^"]+)"', client.get(whole).text)) == {whole}
        assert set(re.findall(r'name="next" value="([^"]+)"', client.get(part).text)) == {holder}
    response = client.post(
        f"/instances/{instance_id}/gate",
        data={"min_pass_rate": "10", "next": f"/instances/{instance_id}/actions"},
    )
    assert response.location.endswith(f"/instances/{instance_id}/actions")
