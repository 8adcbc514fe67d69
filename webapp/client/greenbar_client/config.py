"""Settings shared by ``greenbar`` and the pytest plugin: environment, flags, ini options, CI detection.

Each setting has an environment variable (``GREENBAR_URL``), a command-line
flag (``--url``; ``--greenbar-url`` in pytest) and a pytest ini option
(``greenbar_url``). A flag beats the environment, which beats the ini file;
the build fields not set anywhere are read from the CI's own variables
(GitHub Actions, GitLab CI, Jenkins). A missing or wrong setting raises
:class:`ConfigError`, whose message is one line naming the variable.
"""

import os
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_ID = 2**31 - 1


class ConfigError(Exception):
    """A setting is missing or wrong; the message names its variable."""


@dataclass(frozen=True)
class Setting:
    """One setting: its attribute, variable, help text and longest accepted value."""

    name: str
    variable: str
    help: str
    limit: int = 255

    @property
    def flag(self):
        """The command-line flag, without the pytest prefix: ``--build-number``."""
        return "--" + self.name.replace("_", "-")


SETTINGS = (
    Setting("url", "GREENBAR_URL", "Greenbar's address, such as https://greenbar.example.com", 2048),
    Setting("user", "GREENBAR_USER", "a Greenbar user with the maintainer role"),
    Setting("token", "GREENBAR_TOKEN", "that user's API token (or password)", 1024),
    Setting("instance", "GREENBAR_INSTANCE", "the test instance's name; created if missing"),
    Setting("build_number", "GREENBAR_BUILD_NUMBER", "add to this build, creating it when missing"),
    Setting("build_name", "GREENBAR_BUILD_NAME", "the build's name"),
    Setting("branch", "GREENBAR_BRANCH", "the branch built"),
    Setting("revision", "GREENBAR_REVISION", "the revision built (a commit id)"),
    Setting("ci_url", "GREENBAR_CI_URL", "the CI job's page", 2048),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}
REQUIRED = ("url", "user", "token", "instance")


@dataclass(frozen=True)
class Settings:
    """Resolved settings; every value a string or None (the build number an int)."""

    url: str | None = None
    user: str | None = None
    token: str | None = None
    instance: str | None = None
    build_number: int | None = None
    build_name: str | None = None
    branch: str | None = None
    revision: str | None = None
    ci_url: str | None = None

    def build_fields(self):
        """The build's fields as the API names them, the unset ones left out."""
        names = {
            "build_number": "number",
            "build_name": "name",
            "branch": "branch",
            "revision": "revision",
            "ci_url": "ci_url",
        }
        return {api: getattr(self, name) for name, api in names.items() if getattr(self, name) is not None}

    def require(self, names=REQUIRED):
        """Raise :class:`ConfigError` for the first of ``names`` that is not set."""
        for name in names:
            if getattr(self, name) is None:
                setting = BY_NAME[name]
                raise ConfigError(f"{setting.variable} is not set ({setting.help}; or use {setting.flag})")
        return self


def detect_ci(environ):
    """The build fields a CI's own variables give: GitHub Actions, GitLab CI or Jenkins."""
    get = environ.get
    if get("GITHUB_ACTIONS") == "true":
        run_url = None
        if get("GITHUB_SERVER_URL") and get("GITHUB_REPOSITORY") and get("GITHUB_RUN_ID"):
            repository = f"{get('GITHUB_SERVER_URL')}/{get('GITHUB_REPOSITORY')}"
            run_url = f"{repository}/actions/runs/{get('GITHUB_RUN_ID')}"
        return {
            "build_number": get("GITHUB_RUN_NUMBER"),
            "build_name": get("GITHUB_WORKFLOW"),
            "branch": get("GITHUB_HEAD_REF") or get("GITHUB_REF_NAME"),
            "revision": get("GITHUB_SHA"),
            "ci_url": run_url,
        }
    if get("GITLAB_CI") == "true":
        return {
            "build_number": get("CI_PIPELINE_IID"),
            "build_name": get("CI_PIPELINE_NAME") or get("CI_PROJECT_PATH"),
            "branch": get("CI_COMMIT_REF_NAME"),
            "revision": get("CI_COMMIT_SHA"),
            "ci_url": get("CI_PIPELINE_URL"),
        }
    if get("JENKINS_URL"):
        branch = get("BRANCH_NAME") or get("GIT_BRANCH")
        return {
            "build_number": get("BUILD_NUMBER"),
            "build_name": get("JOB_NAME"),
            "branch": branch,
            "revision": get("GIT_COMMIT"),
            "ci_url": get("BUILD_URL"),
        }
    return {}


def resolve(flags=None, ini=None, environ=None, flag_prefix="--"):
    """Settings from flags, then the environment, then ini options, then the CI's variables.

    :param flags: ``{name: value}`` given on the command line (None or "" for unset).
    :param ini: ``{name: value}`` from pytest's ini file.
    :param flag_prefix: how the flags begin (``--greenbar-`` in pytest), to name one in an error.
    :raise ConfigError: a value is not valid; the message names where it came from.
    """
    environ = os.environ if environ is None else environ
    flags, ini = flags or {}, ini or {}
    detected = detect_ci(environ)
    values = {}
    for setting in SETTINGS:
        value, origin = None, setting.variable
        for source, given in (
            (flag_prefix + setting.flag[2:], flags.get(setting.name)),
            (setting.variable, environ.get(setting.variable)),
            (f"the ini option greenbar_{setting.name}", ini.get(setting.name)),
            (f"{setting.variable} (as detected from the CI's variables)", detected.get(setting.name)),
        ):
            if given is not None and str(given).strip():
                value, origin = str(given).strip(), source
                break
        values[setting.name] = checked(setting, value, origin)
    return Settings(**values)


def checked(setting, value, origin=None):
    """Check one value; return it clean (the URL without a trailing slash, the number an int).

    :param origin: where the value came from, as an error names it (default: the variable).
    """
    origin = origin or setting.variable
    if value is None:
        return None
    if len(value) > setting.limit:
        raise ConfigError(f"{origin} is longer than {setting.limit} characters")
    if setting.name == "url":
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{origin} must be an http:// or https:// address, not {value!r}")
        return value.rstrip("/")
    if setting.name == "build_number":
        if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_ID:
            raise ConfigError(f"{origin} must be a whole number from 1 to {MAX_ID}, not {value!r}")
        return int(value)
    return value
