"""Every path of Greenbar's API, in both spellings, with every method.

The API's paths are hyphenated (``/api/test-instance/…``); Greenbar's first
clients used them with underscores (``/api/test_instance/…``). Both must work,
for every method a path supports, and the others must be a 405.
"""

import pytest

from tests.conftest import make_token_user
from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite

# the API's paths (docs/api.md), plus the stop/ alias of finish/
INSTANCES = "/api/test-instance/"
INSTANCE = INSTANCES + "{instance}/"
BUILDS = INSTANCE + "test-build/"
BUILD = BUILDS + "{build}/"
SUITES = BUILD + "test-suite/"
SUITE = SUITES + "{suite}/"
CASES = SUITE + "test-case/"
CASE = CASES + "{case}/"

COLLECTIONS = {INSTANCES: "instance", BUILDS: "build", SUITES: "suite", CASES: "case"}
ITEMS = {INSTANCE: "instance", BUILD: "build", SUITE: "suite", CASE: "case"}
LIFECYCLE = [item + action for item in (BUILD, SUITE, CASE) for action in ("start/", "finish/", "stop/")]
SEED_PATHS = [*COLLECTIONS, *ITEMS, *LIFECYCLE]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")

NEW_ITEM = {
    "instance": {"name": "another product", "description": "made by the test"},
    "build": {"name": "nightly", "branch": "main", "revision": "abc123"},
    "suite": {"name": "another suite"},
    "case": {"name": "another case"},
}
CHANGED_ITEM = {
    "instance": {"name": "renamed product", "description": "changed"},
    "build": {"number": 7, "name": "renamed build"},
    "suite": {"name": "renamed suite"},
    "case": {"name": "renamed case", "message": "changed"},
}


def supported(path):
    """The methods an API path serves and the status each answers with on success."""
    if path in COLLECTIONS:
        return {"GET": 200, "POST": 201}
    if path in ITEMS:
        return {"GET": 200, "PUT": 200, "PATCH": 200, "DELETE": 204}
    return {"POST": 200}


def spell(path, spelling):
    """Write an API path in the hyphenated or the underscore spelling."""
    return path if spelling == "hyphen" else path.replace("test-", "test_")


@pytest.fixture
def tree(app):
    """One instance with a build, a suite and an unfinished case; returns their ids."""
    with app.app_context():
        instance = make_instance("product")
        build = make_build(instance)
        suite = make_suite(build, "suite")
        case = make_case(suite, "case")
        return {"instance": instance.id, "build": build.id, "suite": suite.id, "case": case.id}


def body_for(path, method):
    """A valid JSON body for a request, or None when the request needs none."""
    if path in COLLECTIONS and method == "POST":
        return NEW_ITEM[COLLECTIONS[path]]
    if path in ITEMS and method in ("PUT", "PATCH"):
        return CHANGED_ITEM[ITEMS[path]]
    if path.endswith(("finish/", "stop/")) and path.startswith(CASE):
        return {"result_status": "SUCCESS"}
    return None


def test_route_table_has_every_api_path_in_both_spellings(app):
    """The URL map holds each API path in both spellings with exactly the expected methods."""
    served = {}
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/test"):
            served.setdefault(rule.rule, set()).update(rule.methods - {"HEAD", "OPTIONS"})
    expected = {}
    for path in SEED_PATHS:
        pattern = path.format(
            instance="<int:instance_id>", build="<int:build_id>", suite="<int:suite_id>", case="<int:case_id>"
        )
        for spelling in ("hyphen", "underscore"):
            expected[spell(pattern, spelling)] = set(supported(path))
    assert {rule: served.get(rule) for rule in expected} == expected


@pytest.mark.parametrize("spelling", ["hyphen", "underscore"])
@pytest.mark.parametrize(
    ("path", "method"), [(path, method) for path in SEED_PATHS for method in supported(path)]
)
def test_supported_method_works(app, client, token_auth, tree, path, method, spelling):
    """Each method an API path serves succeeds in both spellings and does what it says."""
    headers = token_auth("admin")
    url = spell(path.format(**tree), spelling)
    response = client.open(url, method=method, json=body_for(path, method), headers=headers)
    assert response.status_code == supported(path)[method], response.get_json()
    assert response.headers["Content-Type"] == "application/json" or response.status_code == 204
    if method == "DELETE":
        assert client.get(url, headers=headers).status_code == 404
    elif method == "GET" and path in COLLECTIONS:
        assert response.get_json()["count"] == 1
        assert response.get_json()["results"][0]["id"] == tree[COLLECTIONS[path]]
    elif method == "GET":
        assert response.get_json()["id"] == response.get_json()["pk"] == tree[ITEMS[path]]
    elif method == "POST" and path in COLLECTIONS:
        created = response.get_json()
        other = "underscore" if spelling == "hyphen" else "hyphen"
        again = client.get(spell(path.format(**tree), other) + f"{created['id']}/", headers=headers)
        assert again.get_json() == created
    elif path in ITEMS:
        for field, value in CHANGED_ITEM[ITEMS[path]].items():
            assert response.get_json()[field] == value
    else:
        field = "started" if path.endswith("start/") else "finished"
        assert response.get_json()[field] is not None


@pytest.mark.parametrize("spelling", ["hyphen", "underscore"])
@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path in SEED_PATHS for method in METHODS if method not in supported(path)],
)
def test_other_methods_are_405_with_allow(sqlite_app, path, method, spelling):
    """A method an API path does not serve is a JSON 405 that lists the allowed methods."""
    headers = make_token_user(sqlite_app, "admin")
    ids = {"instance": 1, "build": 2, "suite": 3, "case": 4}
    url = spell(path.format(**ids), spelling)
    response = sqlite_app.test_client().open(url, method=method, headers=headers)
    assert response.status_code == 405
    assert response.get_json()["error"]["status"] == 405
    allowed = {item.strip() for item in response.headers["Allow"].split(",")}
    assert set(supported(path)) <= allowed
    assert method not in allowed


@pytest.mark.parametrize("spelling", ["hyphen", "underscore"])
def test_paths_without_trailing_slash_redirect_or_work(app, client, token_auth, tree, spelling):
    """Clients sometimes drop the trailing slash; GET still reaches the list."""
    headers = token_auth("viewer")
    url = spell(BUILDS.format(**tree), spelling).rstrip("/")
    response = client.get(url, headers=headers, follow_redirects=True)
    assert response.status_code == 200
    assert response.get_json()["count"] == 1
