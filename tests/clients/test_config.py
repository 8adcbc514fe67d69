"""The client's settings: flags over environment over ini, CI detection, one clear line per bad value."""

import pytest
from greenbar_client.config import ConfigError
from greenbar_client.config import resolve

BASE = {
    "GREENBAR_URL": "https://greenbar.example.com/",
    "GREENBAR_USER": "ci",
    "GREENBAR_TOKEN": "gb_x",
    "GREENBAR_INSTANCE": "shop",
}


def test_flags_beat_environment_beat_ini():
    """Each setting comes from the first source that sets it."""
    settings = resolve(
        flags={"instance": "from-flag"},
        ini={"instance": "from-ini", "branch": "ini-branch"},
        environ=dict(BASE, GREENBAR_BRANCH=""),
    )
    assert (settings.url, settings.instance, settings.branch) == (
        "https://greenbar.example.com",
        "from-flag",
        "ini-branch",
    )


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_RUN_NUMBER": "17",
                "GITHUB_WORKFLOW": "tests",
                "GITHUB_REF_NAME": "main",
                "GITHUB_SHA": "abc",
                "GITHUB_SERVER_URL": "https://github.com",
                "GITHUB_REPOSITORY": "acme/shop",
                "GITHUB_RUN_ID": "99",
            },
            {
                "number": 17,
                "name": "tests",
                "branch": "main",
                "revision": "abc",
                "ci_url": "https://github.com/acme/shop/actions/runs/99",
            },
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_RUN_NUMBER": "3",
                "GITHUB_HEAD_REF": "feature",
                "GITHUB_REF_NAME": "12/merge",
            },
            {"number": 3, "branch": "feature"},
        ),
        (
            {
                "GITLAB_CI": "true",
                "CI_PIPELINE_IID": "8",
                "CI_PROJECT_PATH": "acme/shop",
                "CI_COMMIT_REF_NAME": "main",
                "CI_COMMIT_SHA": "def",
                "CI_PIPELINE_URL": "https://gitlab/p/8",
            },
            {
                "number": 8,
                "name": "acme/shop",
                "branch": "main",
                "revision": "def",
                "ci_url": "https://gitlab/p/8",
            },
        ),
        (
            {
                "JENKINS_URL": "https://jenkins/",
                "BUILD_NUMBER": "41",
                "JOB_NAME": "shop/main",
                "GIT_BRANCH": "origin/main",
                "GIT_COMMIT": "123",
                "BUILD_URL": "https://jenkins/job/41/",
            },
            {
                "number": 41,
                "name": "shop/main",
                "branch": "origin/main",
                "revision": "123",
                "ci_url": "https://jenkins/job/41/",
            },
        ),
        ({}, {}),
    ],
)
def test_build_fields_from_the_ci(environ, expected):
    """GitHub Actions, GitLab CI and Jenkins fill in the build fields left unset."""
    assert resolve(environ=dict(BASE, **environ)).build_fields() == expected


def test_own_settings_beat_the_ci():
    """A GREENBAR_ variable wins over the CI's."""
    environ = dict(BASE, GITHUB_ACTIONS="true", GITHUB_RUN_NUMBER="5", GREENBAR_BUILD_NUMBER="6")
    assert resolve(environ=environ).build_number == 6


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"GREENBAR_URL": "greenbar.example.com"},
            "GREENBAR_URL must be an http:// or https:// address, not 'greenbar.example.com'",
        ),
        (
            {"GREENBAR_BUILD_NUMBER": "-1"},
            "GREENBAR_BUILD_NUMBER must be a whole number from 1 to 2147483647",
        ),
        (
            {"GREENBAR_BUILD_NUMBER": "١٢"},
            "GREENBAR_BUILD_NUMBER must be a whole number from 1 to 2147483647",
        ),
        ({"GREENBAR_INSTANCE": "x" * 256}, "GREENBAR_INSTANCE is longer than 255 characters"),
    ],
)
def test_wrong_values_name_their_variable(changes, message):
    """A wrong value is one line naming the variable."""
    with pytest.raises(ConfigError) as raised:
        resolve(environ=dict(BASE, **changes))
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ({"flags": {"build_number": "seven"}}, "--build-number"),
        ({"flags": {"build_number": "seven"}, "flag_prefix": "--greenbar-"}, "--greenbar-build-number"),
        ({"ini": {"build_number": "seven"}}, "the ini option greenbar_build_number"),
        (
            {"environ": dict(BASE, GITHUB_ACTIONS="true", GITHUB_RUN_NUMBER="seven")},
            "GREENBAR_BUILD_NUMBER (as detected from the CI's variables)",
        ),
    ],
)
def test_wrong_values_name_where_they_came_from(given, origin):
    """A wrong value given as a flag or an ini option, or found in the CI's variables, names that."""
    given.setdefault("environ", BASE)
    with pytest.raises(ConfigError) as raised:
        resolve(**given)
    assert str(raised.value) == f"{origin} must be a whole number from 1 to 2147483647, not 'seven'"


def test_missing_required_setting_names_its_variable():
    """The first missing required setting is named, with its flag."""
    environ = {k: v for k, v in BASE.items() if k != "GREENBAR_TOKEN"}
    with pytest.raises(ConfigError) as raised:
        resolve(environ=environ).require()
    assert (
        str(raised.value) == "GREENBAR_TOKEN is not set (that user's API token (or password); or use --token)"
    )
