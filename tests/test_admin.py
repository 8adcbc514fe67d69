"""The admin panel: admins only, exact counters through the results layer, users and tokens."""

import csv
import io
import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from tests.conftest import app_on
from tests.conftest import basic_auth
from tests.factories import make_instance
from tests.factories import make_run
from tests.factories import make_user
from webapp.extensions import db
from webapp.models import ApiToken
from webapp.models import TestBuild
from webapp.models import TestCase
from webapp.models import TestInstance
from webapp.models import TestSuite
from webapp.models import User
from webapp.security import token_digest

ADMIN_PAGES = [
    "/admin/",
    "/admin/instances/",
    "/admin/builds/",
    "/admin/suites/",
    "/admin/cases/",
    "/admin/users/",
    "/admin/tokens/",
    "/admin/users/new/",
    "/admin/cases/edit/?id=1",
    "/admin/builds/details/?id=1",
    "/admin/users/export/csv/",
    "/admin/suites/ajax/lookup/?name=build&query=1",
]
ADMIN_WRITES = [
    ("/admin/users/new/", {"username": "mallory", "role": "admin", "active": "y", "password": "mallory-pw"}),
    ("/admin/instances/delete/", {"id": "1"}),
    ("/admin/tokens/action/", {"action": "revoke", "rowid": "1"}),
]
TOKEN_IN_FLASH = re.compile(r"(gb_[A-Za-z0-9_\-]{20,})")


class FormReader(HTMLParser):
    """Collects what a browser would submit from the first form with a given action prefix."""

    def __init__(self, action_prefix):
        super().__init__()
        self.action_prefix = action_prefix
        self.inside = False
        self.done = False
        self.fields = {}
        self.select = None
        self.textarea = None

    def handle_starttag(self, tag, attrs):
        """Track the form and read its inputs, selects and text areas."""
        attrs = dict(attrs)
        action = attrs.get("action") or ""
        # Flask-Admin's edit and create forms post back to their own URL (action="")
        if tag == "form" and not self.done and (action == "" or action.startswith(self.action_prefix)):
            self.inside = True
        if not self.inside:
            return
        if tag == "input" and attrs.get("name") and attrs.get("type") not in ("submit", "button"):
            checkbox = attrs.get("type") == "checkbox"
            if not checkbox or "checked" in attrs:
                self.fields[attrs["name"]] = attrs.get("value") or ("y" if checkbox else "")
        elif tag == "select":
            self.select = attrs.get("name")
        elif tag == "option" and self.select and "selected" in attrs:
            self.fields[self.select] = attrs.get("value", "")
        elif tag == "textarea":
            self.textarea = attrs.get("name")
            self.fields[self.textarea] = ""

    def handle_data(self, data):
        """Text-area content is the field's value."""
        if self.inside and self.textarea:
            self.fields[self.textarea] += data

    def handle_endtag(self, tag):
        """Close selects, text areas and the form."""
        if tag == "select":
            self.select = None
        elif tag == "textarea":
            if self.textarea:
                self.fields[self.textarea] = self.fields[self.textarea].removeprefix("\n")
            self.textarea = None
        elif tag == "form" and self.inside:
            self.inside, self.done = False, True


def form_fields(client, path, action_prefix=None):
    """Open a page and return the fields its form would submit, as a browser fills them."""
    response = client.get(path)
    assert response.status_code == 200, response.text
    reader = FormReader(action_prefix or urlsplit(path).path)
    reader.feed(response.text)
    assert reader.done, f"no form on {path}"
    return reader.fields


def counters(app, model, item_id):
    """Read an item's aggregate counters afresh."""
    with app.app_context():
        item = db.session.get(model, item_id)
        names = ("cases_total", "passed", "failed", "errored", "skipped")
        result = {name: getattr(item, name) for name in names}
        if model is TestBuild:
            result["suites_total"] = item.suites_total
        return result


@pytest.fixture
def run(app):
    """An instance with one finished build: suite s1 (a FAILED, b SUCCESS), suite s2 (c ERROR)."""
    with app.app_context():
        instance = make_instance("alpha")
        build = make_run(instance, {"s1": {"a": "FAILED", "b": "SUCCESS"}, "s2": {"c": "ERROR"}})
        cases = {case.name: case.id for case in db.session.scalars(sa.select(TestCase))}
        suites = {suite.name: suite.id for suite in db.session.scalars(sa.select(TestSuite))}
        return {"instance": instance.id, "build": build.id, "suites": suites, "cases": cases}


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_anonymous_users_are_sent_to_login(client, path):
    """Is every admin page, the index included, a login redirect for anonymous visitors?"""
    response = client.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/auth/login"
    assert "next=" in location.query


@pytest.mark.parametrize("role", ["viewer", "maintainer"])
def test_non_admins_get_403_everywhere(client, auth, role):
    """Are viewers and maintainers refused every admin page with a 403?"""
    auth.as_role(role)
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 403, path


@pytest.mark.parametrize("role", ["viewer", "maintainer"])
def test_non_admins_cannot_write(app, client, auth, run, role):
    """Are admin writes by non-admins refused, with nothing changed?"""
    auth.as_role(role)
    for path, form in ADMIN_WRITES:
        assert client.post(path, data=form).status_code == 403, path
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.username == "mallory")) is None
        assert db.session.get(TestInstance, run["instance"]) is not None


def test_admin_sees_every_view(client, auth, run):
    """Can an admin open the index and every list, create and edit page?"""
    auth.as_role("admin")
    index = client.get("/admin/")
    assert index.status_code == 200
    for name in ("Instances", "Builds", "Suites", "Cases", "Users", "API tokens"):
        assert name in index.text
    for view in ("instances", "builds", "suites", "cases", "users", "tokens"):
        listed = client.get(f"/admin/{view}/")
        assert listed.status_code == 200, view
        # the admin's pages name Greenbar's icon, so a browser does not ask for a missing /favicon.ico
        assert '<link rel="icon" href="/static/favicon.svg"' in listed.text, view
        assert client.get(f"/admin/{view}/new/").status_code == 200, view
    items = (("instances", run["instance"]), ("builds", run["build"]), ("cases", run["cases"]["a"]))
    for view, item_id in items:
        assert client.get(f"/admin/{view}/edit/?id={item_id}").status_code == 200, view
        assert client.get(f"/admin/{view}/details/?id={item_id}").status_code == 200, view


def test_admin_search_and_filter(app, client, auth, run):
    """Do search and filters narrow the lists?"""
    with app.app_context():
        make_instance("beta-product")
    auth.as_role("admin")
    found = client.get("/admin/instances/?search=beta")
    assert "beta-product" in found.text
    assert "alpha" not in found.text
    # the status filter's first operation is "equals"
    failed = client.get("/admin/cases/?flt0_0=FAILED")
    assert failed.status_code == 200
    assert f'value="{run["cases"]["a"]}"' in failed.text
    assert f'value="{run["cases"]["b"]}"' not in failed.text


def test_admin_lists_are_paginated(app, client, auth):
    """Do long lists come in pages with a way to the next one?"""
    with app.app_context():
        for number in range(55):
            make_instance(f"product-{number:02d}")
    auth.as_role("admin")
    first = client.get("/admin/instances/")
    assert "product-54" in first.text
    assert "product-00" not in first.text
    second = client.get("/admin/instances/?page=1")
    assert "product-00" in second.text


def test_admin_exports_csv(client, auth, run):
    """Does CSV export give a header and one row per build, counters included?"""
    auth.as_role("admin")
    response = client.get("/admin/builds/export/csv/")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    assert rows[0]["Instance"] == "alpha"
    assert (rows[0]["Passed"], rows[0]["Failed"], rows[0]["Errored"]) == ("1", "1", "1")


def test_csv_export_defuses_formulas(app, client, auth):
    """Is text that a spreadsheet would run as a formula quoted in the export?"""
    with app.app_context():
        make_instance('=HYPERLINK("http://evil.example")')
    auth.as_role("admin")
    rows = list(csv.DictReader(io.StringIO(client.get("/admin/instances/export/csv/").text)))
    assert rows[0]["Name"].startswith("'=")


def test_changing_a_case_status_moves_the_counters(app, client, auth, run):
    """Does FAILED → SUCCESS in the admin move one count on the suite and the build?"""
    auth.as_role("admin")
    case_id = run["cases"]["a"]
    path = f"/admin/cases/edit/?id={case_id}"
    fields = form_fields(client, path, "/admin/cases/edit/")
    assert fields["result_status"] == "FAILED"
    fields["result_status"] = "SUCCESS"
    response = client.post(path, data=fields)
    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(TestCase, case_id).result_status == "SUCCESS"
    build = counters(app, TestBuild, run["build"])
    assert (build["passed"], build["failed"], build["errored"], build["cases_total"]) == (2, 0, 1, 3)
    suite = counters(app, TestSuite, run["suites"]["s1"])
    assert (suite["passed"], suite["failed"], suite["cases_total"]) == (2, 0, 2)


def test_clearing_a_case_status_uncounts_it(app, client, auth, run):
    """Does setting a case back to "not finished" take it off the status counts but not the total?"""
    auth.as_role("admin")
    path = f"/admin/cases/edit/?id={run['cases']['a']}"
    fields = form_fields(client, path, "/admin/cases/edit/")
    fields["result_status"] = ""
    assert client.post(path, data=fields).status_code == 302
    build = counters(app, TestBuild, run["build"])
    assert (build["failed"], build["cases_total"]) == (0, 3)
    with app.app_context():
        assert db.session.get(TestCase, run["cases"]["a"]).result_status is None


def test_unknown_status_is_refused(app, client, auth, run):
    """Is a status outside the four refused with the form back?"""
    auth.as_role("admin")
    path = f"/admin/cases/edit/?id={run['cases']['a']}"
    fields = form_fields(client, path, "/admin/cases/edit/")
    fields["result_status"] = "PASSED"
    response = client.post(path, data=fields)
    assert response.status_code == 200
    assert "Not a valid choice" in response.text
    assert counters(app, TestBuild, run["build"])["failed"] == 1


def test_saving_a_case_unchanged_keeps_the_counters(app, client, auth, run):
    """Does saving an edit form without changes leave every count as it was?"""
    auth.as_role("admin")
    before = counters(app, TestBuild, run["build"])
    path = f"/admin/cases/edit/?id={run['cases']['b']}"
    assert client.post(path, data=form_fields(client, path, "/admin/cases/edit/")).status_code == 302
    assert counters(app, TestBuild, run["build"]) == before


def test_bad_case_edit_is_refused_politely(app, client, auth, run):
    """Does a non-number duration give the form back with an error and no change?"""
    auth.as_role("admin")
    path = f"/admin/cases/edit/?id={run['cases']['a']}"
    fields = form_fields(client, path, "/admin/cases/edit/")
    fields.update(duration="fast", result_status="SUCCESS")
    response = client.post(path, data=fields)
    assert response.status_code == 200
    assert counters(app, TestBuild, run["build"])["failed"] == 1
    for odd in (
        "/admin/cases/edit/?id=abc",
        "/admin/cases/edit/?id=999999",
        "/admin/cases/details/?id=-1",
        "/admin/cases/?page=abc&sort=99",
        "/admin/builds/?flt0_0=abc",
        "/admin/cases/?search=%00%27",
    ):
        assert client.get(odd).status_code in (200, 302), odd
    odd_posts = [
        ("/admin/tokens/action/", {"action": "revoke", "rowid": "abc"}),
        ("/admin/cases/action/", {"action": "delete", "rowid": "abc"}),
        ("/admin/cases/delete/", {"id": "abc"}),
        ("/admin/cases/new/", {"suite": "abc", "name": "x"}),
        ("/admin/users/new/", {"username": "u", "password": "long-enough", "role": "god"}),
    ]
    for path, form in odd_posts:
        assert client.post(path, data=form).status_code in (200, 302), path
    assert counters(app, TestBuild, run["build"])["cases_total"] == 3


def test_deleting_a_case_takes_its_counts_off(app, client, auth, run):
    """Does deleting a case lower the suite's and build's counts?"""
    auth.as_role("admin")
    response = client.post("/admin/cases/delete/", data={"id": str(run["cases"]["c"])})
    assert response.status_code == 302
    build = counters(app, TestBuild, run["build"])
    assert (build["errored"], build["cases_total"]) == (0, 2)
    assert counters(app, TestSuite, run["suites"]["s2"])["cases_total"] == 0


def test_deleting_a_suite_takes_its_counts_off_the_build(app, client, auth, run):
    """Does deleting a suite remove its cases and lower the build's counts?"""
    auth.as_role("admin")
    response = client.post("/admin/suites/delete/", data={"id": str(run["suites"]["s1"])})
    assert response.status_code == 302
    build = counters(app, TestBuild, run["build"])
    expected = {"cases_total": 1, "passed": 0, "failed": 0, "errored": 1, "skipped": 0}
    assert build == dict(expected, suites_total=1)
    with app.app_context():
        assert db.session.get(TestCase, run["cases"]["a"]) is None


def test_bulk_delete_action_keeps_counters_exact(app, client, auth, run):
    """Does the list's "delete selected" action go through the same path?"""
    auth.as_role("admin")
    rowids = [str(run["cases"]["a"]), str(run["cases"]["b"])]
    response = client.post("/admin/cases/action/", data={"action": "delete", "rowid": rowids})
    assert response.status_code == 302
    build = counters(app, TestBuild, run["build"])
    assert (build["passed"], build["failed"], build["cases_total"]) == (0, 0, 1)


def test_deleting_builds_and_instances(app, client, auth, run):
    """Do builds and instances go with everything below them?"""
    auth.as_role("admin")
    assert client.post("/admin/builds/delete/", data={"id": str(run["build"])}).status_code == 302
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(TestCase)) == 0
    assert client.post("/admin/instances/delete/", data={"id": str(run["instance"])}).status_code == 302
    with app.app_context():
        assert db.session.get(TestInstance, run["instance"]) is None


def test_creating_a_case_and_a_suite_counts_them(app, client, auth, run):
    """Are a suite and a case created in the admin counted in their build?"""
    auth.as_role("admin")
    suite_form = {"build": str(run["build"]), "name": "s3"}
    assert client.post("/admin/suites/new/", data=suite_form).status_code == 302
    with app.app_context():
        suite_id = db.session.scalar(sa.select(TestSuite.id).where(TestSuite.name == "s3"))
    case_form = {"suite": str(suite_id), "name": "d", "result_status": "SKIPPED", "attempts": "1"}
    assert client.post("/admin/cases/new/", data=case_form).status_code == 302
    build = counters(app, TestBuild, run["build"])
    assert (build["suites_total"], build["cases_total"], build["skipped"]) == (3, 4, 1)
    assert counters(app, TestSuite, suite_id)["skipped"] == 1


def test_duplicate_names_are_refused_with_a_message(app, client, auth, run):
    """Does a taken case name give a message rather than an error, with counts unchanged?"""
    auth.as_role("admin")
    form = {"suite": str(run["suites"]["s1"]), "name": "a", "result_status": "FAILED", "attempts": "1"}
    response = client.post("/admin/cases/new/", data=form)
    assert response.status_code == 200
    assert "already exists" in response.text
    assert counters(app, TestBuild, run["build"])["cases_total"] == 3


def test_creating_a_build_numbers_it(app, client, auth, run):
    """Does a build created in the admin get the next free number?"""
    auth.as_role("admin")
    response = client.post("/admin/builds/new/", data={"instance": str(run["instance"]), "branch": "main"})
    assert response.status_code == 302
    with app.app_context():
        numbers = db.session.scalars(sa.select(TestBuild.number).order_by(TestBuild.number)).all()
    assert numbers == [1, 2]


def test_counters_are_not_in_the_forms(client, auth, run):
    """Are counters absent from build and suite forms, so they cannot be typed over?"""
    auth.as_role("admin")
    fields = form_fields(client, f"/admin/builds/edit/?id={run['build']}", "/admin/builds/edit/")
    assert not {"cases_total", "passed", "failed", "errored", "skipped", "suites_total"} & set(fields)
    fields = form_fields(client, f"/admin/suites/edit/?id={run['suites']['s1']}", "/admin/suites/edit/")
    assert not {"cases_total", "passed", "failed"} & set(fields)


def test_token_is_shown_once_and_revoking_works_at_once(app, client, auth):
    """Is a new token shown once, usable by the API, and refused right after revoking?"""
    with app.app_context():
        ci = make_user("ci-bot", role="maintainer")
        ci_id = ci.id
    auth.as_role("admin")
    form = {"user": str(ci_id), "name": "nightly"}
    created = client.post("/admin/tokens/new/", data=form, follow_redirects=True)
    match = TOKEN_IN_FLASH.search(created.text)
    assert match, "the new token is not shown"
    secret = match.group(1)
    assert secret not in client.get("/admin/tokens/").text
    with app.app_context():
        record = db.session.scalar(sa.select(ApiToken).where(ApiToken.user_id == ci_id))
        assert record.digest == token_digest(secret)
        assert secret not in (record.name, record.hint)
        record_id = record.id
    api = app.test_client()
    assert api.get("/api/test-instance/", headers=basic_auth("ci-bot", secret)).status_code == 200
    revoked = client.post("/admin/tokens/action/", data={"action": "revoke", "rowid": str(record_id)})
    assert revoked.status_code == 302
    assert api.get("/api/test-instance/", headers=basic_auth("ci-bot", secret)).status_code == 401


def test_admin_sets_a_password_that_is_stored_hashed_and_never_shown(app, client, auth):
    """Is a password typed in the admin stored as a hash, and never rendered back?"""
    auth.as_role("admin")
    form = {"username": "dora", "email": "", "role": "maintainer", "active": "y", "password": "dora-password"}
    assert client.post("/admin/users/new/", data=form).status_code == 302
    with app.app_context():
        dora = db.session.scalar(sa.select(User).where(User.username == "dora"))
        assert dora.role == "maintainer"
        assert dora.password_hash.startswith("scrypt:")
        assert dora.check_password("dora-password")
        old_hash, dora_id = dora.password_hash, dora.id
    for path in (f"/admin/users/edit/?id={dora_id}", f"/admin/users/details/?id={dora_id}", "/admin/users/"):
        page = client.get(path).text
        assert old_hash not in page
        assert "dora-password" not in page
    assert old_hash not in client.get("/admin/users/export/csv/").text
    fields = form_fields(client, f"/admin/users/edit/?id={dora_id}", "/admin/users/edit/")
    assert fields["password"] == ""
    fields["password"] = "dora-new-password"
    assert client.post(f"/admin/users/edit/?id={dora_id}", data=fields).status_code == 302
    with app.app_context():
        assert db.session.get(User, dora_id).check_password("dora-new-password")


def test_editing_a_user_without_a_password_keeps_it(app, client, auth):
    """Does leaving the password empty on edit keep the current one?"""
    with app.app_context():
        user_id = make_user("erin", password="erin-password").id
    auth.as_role("admin")
    path = f"/admin/users/edit/?id={user_id}"
    fields = form_fields(client, path, "/admin/users/edit/")
    fields["role"] = "maintainer"
    assert client.post(path, data=fields).status_code == 302
    with app.app_context():
        erin = db.session.get(User, user_id)
        assert erin.role == "maintainer"
        assert erin.check_password("erin-password")


def test_new_user_needs_a_password(app, client, auth):
    """Is a user created without a password refused?"""
    auth.as_role("admin")
    form = {"username": "nopass", "role": "viewer", "active": "y", "password": ""}
    response = client.post("/admin/users/new/", data=form)
    assert response.status_code == 200
    assert "Give the new user a password." in response.text
    with app.app_context():
        assert db.session.scalar(sa.select(User).where(User.username == "nopass")) is None


def test_deactivated_user_loses_the_api_and_the_login(app, client, auth):
    """Once an admin deactivates a user, are their login and their API access refused?"""
    with app.app_context():
        user_id = make_user("frank", role="maintainer", password="frank-password").id
    other = app.test_client()
    assert other.get("/api/test-instance/", headers=basic_auth("frank", "frank-password")).status_code == 200
    auth.as_role("admin")
    path = f"/admin/users/edit/?id={user_id}"
    fields = form_fields(client, path, "/admin/users/edit/")
    del fields["active"]
    assert client.post(path, data=fields).status_code == 302
    with app.app_context():
        assert db.session.get(User, user_id).active is False
    assert other.get("/api/test-instance/", headers=basic_auth("frank", "frank-password")).status_code == 401
    refused = other.post("/auth/login", data={"username": "frank", "password": "frank-password"})
    assert "deactivated" in refused.text


def test_admin_cannot_lock_themselves_out(app, client, auth):
    """Is an admin kept from deactivating, demoting or deleting their own account?"""
    username = auth.as_role("admin")
    with app.app_context():
        admin_id = db.session.scalar(sa.select(User.id).where(User.username == username))
    path = f"/admin/users/edit/?id={admin_id}"
    fields = form_fields(client, path, "/admin/users/edit/")
    fields["role"] = "viewer"
    assert "You cannot deactivate yourself" in client.post(path, data=fields).text
    client.post("/admin/users/delete/", data={"id": str(admin_id)})
    with app.app_context():
        admin = db.session.get(User, admin_id)
        assert admin is not None
        assert admin.role == "admin"


@pytest.fixture
def csrf_admin_app(database_urls, tmp_path, monkeypatch):
    """The app on SQLite with CSRF on, and an admin account."""
    with app_on(database_urls["sqlite"], tmp_path, monkeypatch, WTF_CSRF_ENABLED=True) as application:
        with application.app_context():
            make_user("root", role="admin", password="root-password")
            make_instance("alpha")
        yield application


def test_admin_forms_need_the_csrf_token(csrf_admin_app):
    """With CSRF on, are admin creates and deletes refused without the form's token?"""
    client = csrf_admin_app.test_client()
    login = form_fields(client, "/auth/login")
    login.update(username="root", password="root-password")
    assert client.post("/auth/login", data=login).status_code == 302
    assert client.post("/admin/instances/new/", data={"name": "forged"}).status_code == 400
    assert client.post("/admin/instances/delete/", data={"id": "1"}).status_code == 400
    fields = form_fields(client, "/admin/instances/new/")
    assert fields.get("csrf_token")
    fields.update(name="genuine", description="")
    assert client.post("/admin/instances/new/", data=fields).status_code == 302
    with csrf_admin_app.app_context():
        names = set(db.session.scalars(sa.select(TestInstance.name)))
    assert names == {"alpha", "genuine"}
