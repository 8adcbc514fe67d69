"""Attack: NUL bytes and other control characters in names, which break logs, exports and terminals."""

import pytest

from tests.factories import make_build
from tests.factories import make_instance
from tests.factories import make_suite

SNEAKY = ["nul\x00byte", "bell\x07", "escape\x1b[31mred", "tab\tinside", "del\x7f", "c1\x85control"]


@pytest.fixture
def suite_path(app):
    """The path of an empty suite."""
    with app.app_context():
        build = make_build(make_instance())
        suite = make_suite(build)
        return f"/api/test-instance/{build.instance_id}/test-build/{build.id}/test-suite/{suite.id}/"


@pytest.mark.parametrize("name", SNEAKY)
def test_control_characters_in_names_are_a_400(app, api, suite_path, name):
    """An instance, build, suite or case named with a control character is refused, naming the field."""
    build_path = suite_path.split("test-suite/")[0]
    attempts = {
        "/api/test-instance/": {"name": name},
        build_path.split("test-build/")[0] + "test-build/": {"name": name},
        build_path + "test-suite/": {"name": name},
        suite_path + "test-case/": {"name": name},
    }
    for path, body in attempts.items():
        response = api.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.get_json()["error"]["fields"] == {"name": "must not hold control characters"}


def test_control_characters_in_a_message_are_kept(app, api, suite_path):
    """Messages and output are not names: a failure message with a NUL byte and an escape is stored."""
    message = "expected\x00 got \x1b[31mred\x1b[0m"
    response = api.post(
        suite_path + "test-case/", json={"name": "test_x", "result_status": "FAILED", "message": message}
    )
    assert response.status_code == 201, response.text
    assert response.get_json()["message"] == message
