"""Every error status the API promises, in its JSON shape, and no malformed input ever a 500.

Errors look like ``{"error": {"status": N, "message": "...", "fields": {...}}}``.
"""

import json

import pytest

from tests.conftest import settings_for
from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite
from webapp import create_app
from webapp.domain import DETAILS_LIMIT
from webapp.domain import MESSAGE_LIMIT
from webapp.domain import clip


def assert_error(response, status):
    """The response is a JSON error with this status; return its ``error`` object."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert error["status"] == status
    assert isinstance(error["message"], str)
    assert error["message"]
    assert isinstance(error["fields"], dict)
    return error


@pytest.fixture
def tree(app):
    """Two instances, each with a build, a suite and a case: their URLs."""
    urls = {}
    with app.app_context():
        for name in ("one", "two"):
            case = make_case(make_suite(make_build(make_instance(name)), "suite"), "case")
            suite, build = case.suite, case.suite.build
            instance = f"/api/test-instance/{build.instance_id}/"
            urls[name] = {
                "instance": instance,
                "build": f"{instance}test-build/{build.id}/",
                "suite": f"{instance}test-build/{build.id}/test-suite/{suite.id}/",
                "case": f"{instance}test-build/{build.id}/test-suite/{suite.id}/test-case/{case.id}/",
                "ids": (build.instance_id, build.id, suite.id, case.id),
            }
    return urls


@pytest.fixture
def admin(token_auth):
    """An admin's token headers."""
    return token_auth("admin")


# (what is sent, where): every one of these must be a 400 naming the problem
BAD_BODIES = {
    "bad JSON": ("instances", b'{"name": "unterminated'),
    "bad UTF-8": ("instances", b'{"name": "caf\xe9"}'),
    "UTF-16 garbage": ("instances", b"\xff\xfe\x00\x00{"),
    "deeply nested": ("instances", b"[" * 100_000 + b"]" * 100_000),
    "a list": ("instances", b"[1, 2]"),
    "a string": ("instances", b'"name"'),
    "JSON null": ("instances", b"null"),
    "name not a string": ("instances", {"name": 5}),
    "name is a list": ("instances", {"name": ["a"]}),
    "name is null": ("instances", {"name": None}),
    "name is blank": ("instances", {"name": "   "}),
    "name missing": ("instances", {"description": "no name"}),
    "huge name": ("instances", {"name": "x" * 100_000}),
    "description beyond 64 KB of UTF-8": ("instances", {"name": "e", "description": "\U0001f600" * 20_000}),
    "lone surrogate": ("instances", b'{"name": "\\ud800"}'),
    "unknown field": ("instances", {"name": "ok", "colour": "red"}),
    "boolean for a number": ("builds", {"number": True}),
    "string for a number": ("builds", {"number": "7"}),
    "float for a number": ("builds", {"number": 1.5}),
    "number zero": ("builds", {"number": 0}),
    "number beyond 32 bits": ("builds", {"number": 2**31}),
    "number with 400 digits": ("builds", b'{"number": 1' + b"0" * 400 + b"}"),
    "number as 1e400": ("builds", b'{"number": 1e400}'),
    "epoch out of range": ("builds", {"started": 1e20}),
    "negative epoch": ("builds", {"started": -1}),
    "epoch NaN": ("builds", b'{"started": NaN}'),
    "epoch Infinity": ("builds", b'{"started": Infinity}'),
    "boolean for a time": ("builds", {"started": True}),
    "object for a time": ("builds", {"started": {"at": 1}}),
    "unparseable time": ("builds", {"started": "yesterday"}),
    "year 1 (MySQL cannot store it)": ("builds", {"started": "0001-01-01T00:00:00+14:00"}),
    "year 9999 (beyond 3000)": ("builds", {"started": "9999-12-31T23:59:59-14:00"}),
    "huge ci_url": ("builds", {"ci_url": "https://ci/" + "x" * 5000}),
    "unknown status": ("finish", {"result_status": "PASSED"}),
    "lowercase status": ("finish", {"result_status": "success"}),
    "status missing": ("finish", {"duration": 1}),
    "status null": ("finish", {"result_status": None}),
    "status as a list": ("finish", {"result_status": ["SUCCESS"]}),
    "negative duration": ("finish", {"result_status": "SUCCESS", "duration": -1}),
    "string duration": ("finish", {"result_status": "SUCCESS", "duration": "1.5"}),
    "boolean duration": ("finish", {"result_status": "SUCCESS", "duration": True}),
    "infinite duration": ("finish", b'{"result_status": "SUCCESS", "duration": 1e400}'),
    "message not text": ("finish", {"result_status": "FAILED", "message": {"text": "x"}}),
    "finish with unknown field": ("finish", {"result_status": "FAILED", "trace": "x"}),
    "start with a bad time": ("start", {"started": "2021-13-45"}),
    "start with unknown field": ("start", {"when": 1}),
    "case finished without a status": ("cases", {"name": "half", "finished": 1640000000}),
    "case with bad status": ("cases", {"name": "bad", "result_status": "OK"}),
    "PUT without the name": ("put case", {"message": "no name"}),
    "PATCH a null suite name": ("patch suite", {"name": None}),
    "PATCH a null instance name": ("patch instance", {"name": None}),
}


def target(tree, where):
    """The method and URL a BAD_BODIES entry is sent to."""
    one = tree["one"]
    return {
        "instances": ("POST", "/api/test-instance/"),
        "builds": ("POST", one["instance"] + "test-build/"),
        "cases": ("POST", one["suite"] + "test-case/"),
        "finish": ("POST", one["case"] + "finish/"),
        "start": ("POST", one["build"] + "start/"),
        "put case": ("PUT", one["case"]),
        "patch suite": ("PATCH", one["suite"]),
        "patch instance": ("PATCH", one["instance"]),
    }[where]


@pytest.mark.parametrize("label", list(BAD_BODIES))
def test_malformed_input_is_a_400_never_a_500(app, client, tree, admin, label):
    """Each malformed body is refused with a 400 that says what is wrong, and nothing changes."""
    where, body = BAD_BODIES[label]
    method, url = target(tree, where)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.open(url, method=method, data=raw, content_type="application/json", headers=admin)
    error = assert_error(response, 400)
    if isinstance(body, dict):
        assert set(error["fields"]) & (set(body) | {"name", "result_status"}), error
    case = client.get(tree["one"]["case"], headers=admin).get_json()
    assert (case["finished"], case["result_status"]) == (None, None)
    assert client.get("/api/test-instance/", headers=admin).get_json()["count"] == 2


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=1001",
        "limit=abc",
        "limit=1.5",
        "limit=1_0",
        "limit=%EF%BC%91",
        "offset=-1",
        "offset=abc",
        "offset=99999999999999999999999",
        "search=" + "x" * 300,
    ],
)
def test_bad_list_parameters_are_400(client, tree, admin, query):
    """limit outside 1..1000, a negative or non-numeric offset, an overlong search: 400 naming it."""
    lists = ("/api/test-instance/", tree["one"]["build"] + "test-suite/", tree["one"]["suite"] + "test-case/")
    for url in lists:
        error = assert_error(client.get(f"{url}?{query}", headers=admin), 400)
        assert query.split("=")[0] in error["fields"]


def test_huge_text_is_stored_truncated_at_the_documented_size(client, tree, admin):
    """A megabyte of traceback is kept as DETAILS_LIMIT characters (head, marker, tail), not refused."""
    details = "frame\n" * 200_000
    message = "m" * 10_000
    body = {"result_status": "FAILED", "message": message, "details": details}
    stored = client.post(tree["one"]["case"] + "finish/", json=body, headers=admin).get_json()
    assert stored["details"] == clip(details, DETAILS_LIMIT)
    assert stored["message"] == clip(message, MESSAGE_LIMIT)
    assert client.get(tree["one"]["case"], headers=admin).get_json()["details"] == stored["details"]


@pytest.mark.parametrize("name", ["\U0001f600 emoji", "日本語のテスト", "x" * 255, "spaces  inside"])
def test_unusual_but_valid_names_are_stored_exactly(client, admin, name):
    """4-byte UTF-8, CJK, inner spaces, the longest name: stored exactly (control characters are
    refused: tests/security/test_control_characters_in_names.py)."""
    response = client.post("/api/test-instance/", json={"name": name}, headers=admin)
    assert response.status_code == 201, response.text
    stored = client.get(f"/api/test-instance/{response.get_json()['id']}/", headers=admin)
    assert stored.get_json()["name"] == name


def test_401_without_credentials_carries_the_basic_challenge(client, tree):
    """No credentials: 401 with WWW-Authenticate: Basic realm="Greenbar"."""
    for url in ("/api/test-instance/", tree["one"]["case"]):
        response = client.get(url)
        assert_error(response, 401)
        assert response.headers["WWW-Authenticate"] == 'Basic realm="Greenbar"'
    response = client.post("/api/test-instance/", json={"name": "x"})
    assert_error(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Greenbar"'


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic bm9jb2xvbg==",
        "Bearer abc",
        "Basic " + "QQ==" * 5000,
        "Basic w7xzZXI6cMOkc3M=",
        "Digest username=x",
    ],
)
def test_garbled_authorization_headers_are_401(sqlite_app, header):
    """Authorization headers that are not usable Basic credentials are a 401, never a 500."""
    response = sqlite_app.test_client().get("/api/test-instance/", headers={"Authorization": header})
    assert_error(response, 401)


def test_403_for_a_role_too_low(client, tree, token_auth):
    """A viewer may read but not write; a maintainer may not delete."""
    viewer = token_auth("viewer")
    assert client.get(tree["one"]["build"], headers=viewer).status_code == 200
    error = assert_error(client.post(tree["one"]["build"] + "start/", headers=viewer), 403)
    assert "maintainer" in error["message"]
    maintainer = token_auth("maintainer")
    error = assert_error(client.delete(tree["one"]["case"], headers=maintainer), 403)
    assert "admin" in error["message"]


def test_404_for_missing_items_and_wrong_parents(client, tree, admin):
    """Unknown ids and children addressed under another parent are 404s."""
    one, two = tree["one"], tree["two"]
    instance_one, build_one, suite_one, case_one = one["ids"]
    instance_two, build_two, suite_two, case_two = two["ids"]
    wrong = [
        "/api/test-instance/999999/",
        "/api/test-instance/2147483647/",
        "/api/test-instance/99999999999999999999/",
        f"/api/test-instance/{instance_one}/test-build/{build_two}/",
        f"/api/test-instance/{instance_one}/test-build/{build_one}/test-suite/{suite_two}/",
        f"/api/test-instance/{instance_two}/test-build/{build_one}/test-suite/{suite_one}/",
        f"/api/test-instance/{instance_one}/test-build/{build_one}/test-suite/{suite_one}/test-case/{case_two}/",
        f"/api/test-instance/{instance_two}/test-build/{build_two}/test-suite/{suite_two}/test-case/{case_one}/",
        f"/api/test-instance/{instance_one}/test-build/{build_one}/test-suite/{suite_two}/test-case/{case_two}/",
        f"/api/test-instance/{instance_two}/test-build/{build_one}/test-suite/{suite_one}/test-case/{case_one}/",
        "/api/test-instance/1/nothing-here/",
    ]
    for url in wrong:
        assert_error(client.get(url, headers=admin), 404)
    assert_error(client.post(wrong[6] + "finish/", json={"result_status": "SUCCESS"}, headers=admin), 404)
    assert_error(client.post(wrong[4] + "test-case/", json={"name": "lost"}, headers=admin), 404)
    assert_error(client.delete(wrong[3], headers=admin), 404)
    assert client.get(one["case"], headers=admin).get_json()["finished"] is None


def test_an_address_no_route_matches_says_ids_are_numbers(client, admin):
    """An instance named in the path (a name where its id goes) is a 404 that says what the path takes."""
    response = client.post("/api/test-instance/my-service/import/", data=b"<testsuite/>", headers=admin)
    assert_error(response, 404)
    assert response.get_json()["error"]["message"] == (
        "there is no API path /api/test-instance/my-service/import/: paths name instances, builds, "
        "suites and cases by their numeric ids (see /api/openapi.json)"
    )


def test_405_is_json_with_allow(client, tree, admin):
    """A method a path does not serve is a JSON 405 listing the ones it does."""
    response = client.delete("/api/test-instance/", headers=admin)
    assert_error(response, 405)
    assert {"GET", "POST"} <= {method.strip() for method in response.headers["Allow"].split(",")}


@pytest.mark.parametrize("kind", ["build", "suite", "case"])
def test_409_finishing_twice_and_starting_after_finishing(client, tree, admin, kind):
    """Finish twice: 409 with a clear message; start after finish: 409."""
    url = tree["one"][kind]
    body = {"result_status": "FAILED"} if kind == "case" else {}
    assert client.post(url + "finish/", json=body, headers=admin).status_code == 200
    error = assert_error(client.post(url + "stop/", json=body, headers=admin), 409)
    assert "already finished" in error["message"]
    error = assert_error(client.post(url + "start/", headers=admin), 409)
    assert "already finished" in error["message"]
    counters_url = tree["one"]["suite"]
    assert client.get(counters_url, headers=admin).get_json()["failed"] == (1 if kind == "case" else 0)


def test_409_duplicates_carry_the_existing_item(client, tree, admin):
    """Creating a name (or build number) that exists is a 409 whose body holds the stored item."""
    one = tree["one"]
    instance_id, build_id, suite_id, case_id = one["ids"]
    duplicates = [
        ("/api/test-instance/", {"name": "one"}, instance_id),
        (one["instance"] + "test-build/", {"number": 1}, build_id),
        (one["build"] + "test-suite/", {"name": "suite"}, suite_id),
        (one["suite"] + "test-case/", {"name": "case"}, case_id),
    ]
    for url, body, existing_id in duplicates:
        error = assert_error(client.post(url, json=body, headers=admin), 409)
        assert error["existing"]["id"] == existing_id
        assert error["existing"] == client.get(f"{url}{existing_id}/", headers=admin).get_json()


def test_409_renaming_onto_a_taken_name(app, client, tree, admin):
    """Renaming an item to a sibling's name is a 409 with that sibling."""
    with app.app_context():
        instance_id, build_id, suite_id, _ = tree["one"]["ids"]
        from webapp.extensions import db
        from webapp.models import TestBuild

        build = db.session.get(TestBuild, build_id)
        other_suite = make_suite(build, "other suite")
        make_build(build.instance, number=5)
        other_suite_id = other_suite.id
    error = assert_error(client.patch(tree["one"]["suite"], json={"name": "other suite"}, headers=admin), 409)
    assert error["existing"]["id"] == other_suite_id
    error = assert_error(client.patch(tree["one"]["build"], json={"number": 5}, headers=admin), 409)
    assert error["existing"]["number"] == 5
    error = assert_error(client.patch(tree["one"]["instance"], json={"name": "two"}, headers=admin), 409)
    assert error["existing"]["id"] == tree["two"]["ids"][0]


def test_413_above_the_configured_body_size(database_urls, tmp_path, monkeypatch):
    """A body above MAX_CONTENT_LENGTH is a JSON 413, and nothing is stored."""
    monkeypatch.setenv("GREENBAR_INSTANCE_PATH", str(tmp_path))
    settings = settings_for(database_urls["sqlite"], str(tmp_path))
    small = create_app({**settings, "MAX_CONTENT_LENGTH": 1024})
    from tests.conftest import empty_all_tables
    from tests.conftest import make_token_user

    with small.app_context():
        empty_all_tables()
    headers = make_token_user(small, "admin")
    client = small.test_client()
    body = {"name": "big", "description": "x" * 2000}
    assert_error(client.post("/api/test-instance/", json=body, headers=headers), 413)
    assert client.get("/api/test-instance/", headers=headers).get_json()["count"] == 0
    assert client.post("/api/test-instance/", json={"name": "small"}, headers=headers).status_code == 201
    with small.app_context():
        empty_all_tables()
