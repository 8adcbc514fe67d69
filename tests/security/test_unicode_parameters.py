"""Finding 5: Unicode text in any parameter that reaches SQL is an answer, never a 500.

The history key column is ASCII on MySQL; before the fix, 32 x "Ж" as a key
met it in a comparison MySQL refuses (error 1267). Every text parameter is
sent a sample of scripts and emoji, on SQLite and on MariaDB.
"""

from urllib.parse import quote

import pytest

from tests.factories import make_build
from tests.factories import make_case
from tests.factories import make_instance
from tests.factories import make_suite

SAMPLES = [
    "Ж" * 32,  # Cyrillic: the reported key
    "日本語のテスト名",  # CJK
    "اختبار الوحدة",  # Arabic, right to left
    "בדיקה",  # Hebrew
    "परीक्षण",  # Devanagari with combining marks
    "😀🚀🧪",  # emoji outside the BMP (4 bytes in UTF-8)
    "🏳️‍🌈",  # an emoji ZWJ sequence
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",  # mathematical letters (4 bytes each)
    "e\u0301",  # a combining accent
]


@pytest.fixture
def tree(app):
    """An instance with a build, a suite and a case: the ids the URLs need."""
    with app.app_context():
        instance = make_instance()
        build = make_build(instance, branch="main")
        suite = make_suite(build)
        make_case(suite, result_status="SUCCESS")
        return {"instance": instance.id, "build": build.id, "suite": suite.id}


@pytest.mark.parametrize("text", SAMPLES)
def test_a_history_key_that_is_not_a_test_key_is_not_found(api, tree, text):
    """The attack: GET test-history/<32 characters of any script>/. Is it a JSON 404?"""
    key = (text * 32)[:32]
    response = api.get(f"/api/test-instance/{tree['instance']}/test-history/{quote(key)}/")
    assert response.status_code == 404
    assert response.get_json()["error"]["status"] == 404


@pytest.mark.parametrize("text", SAMPLES)
def test_text_query_parameters_answer_without_a_server_error(api, client, auth, tree, text):
    """Searches, branch filters and test look-ups with the sample: each the one right answer."""
    instance = f"/api/test-instance/{tree['instance']}/"
    build = f"{instance}test-build/{tree['build']}/"
    searches = [
        "/api/test-instance/",
        f"{instance}test-build/",
        f"{build}test-suite/",
        f"{build}test-suite/{tree['suite']}/test-case/",
    ]
    for path in searches:
        response = api.get(path, query_string={"search": text})
        assert (path, response.status_code, response.get_json()["count"]) == (path, 200, 0)
    for path in ("trend/", "top-failing/", "flaky/", "slowest/"):
        response = api.get(instance + path, query_string={"branch": text})
        assert (path, response.status_code) == (path, 200)
    found = api.get(f"{instance}test-history/", query_string={"suite": text, "name": text})
    assert found.status_code == 404
    auth.as_role("viewer")
    pages = (("/", "q"), (f"/instances/{tree['instance']}", "branch"), (f"/suites/{tree['suite']}", "q"))
    for page, name in pages:
        assert (page, client.get(page, query_string={name: text}).status_code) == (page, 200)
