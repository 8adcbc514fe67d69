"""pytest options for acting on results: ``--greenbar-quarantine`` and ``--greenbar-shard I/N``.

Loaded with the main plugin (its ``pytest_plugins``), reading the same
settings. Each option is off until asked for, and trouble reaching Greenbar is
a warning line, after which the run goes on as if the option were not given:
every test runs, and every failure counts.

- ``--greenbar-quarantine`` (or ``GREENBAR_QUARANTINE=1``): the instance's
  quarantined tests still run and are still recorded, but when they are the
  only failures the session passes. The terminal summary lists them.
- ``--greenbar-shard I/N``: run only shard I of N (counted from 1), as
  ``greenbar split`` would print it; tests Greenbar has not seen yet are
  spread over the shards by a hash of their node id.
"""

import os

import pytest

from greenbar_client import act
from greenbar_client.config import SETTINGS
from greenbar_client.config import ConfigError
from greenbar_client.config import resolve

TRUE = {"1", "true", "yes", "on"}
RETRY_SECONDS = 30.0


def pytest_addoption(parser):
    """The two options."""
    group = parser.getgroup("greenbar", "stream results to Greenbar")
    group.addoption(
        "--greenbar-quarantine",
        dest="greenbar_quarantine",
        action="store_true",
        default=None,
        help="failures of tests quarantined in Greenbar do not fail the session (GREENBAR_QUARANTINE=1)",
    )
    group.addoption(
        "--greenbar-shard",
        dest="greenbar_shard",
        metavar="I/N",
        help="run only shard I of N (from 1), balanced by Greenbar's recorded durations",
    )


def connect(config):
    """A Greenbar session and the instance id from the settings (ConfigError, act.NotFound, ...)."""
    from greenbar_client.server import Greenbar

    settings = resolve(
        flags={s.name: config.getoption("greenbar_" + s.name, None) for s in SETTINGS},
        ini={s.name: config.getini("greenbar_" + s.name) for s in SETTINGS},
        flag_prefix="--greenbar-",
    ).require(("url", "user", "token", "instance"))
    greenbar = Greenbar(settings, RETRY_SECONDS)
    return greenbar, act.instance_id(greenbar, settings.instance), settings


def failure(error):
    """One line for a problem reaching Greenbar."""
    return f"{type(error).__name__}: {error}" if not isinstance(error, ConfigError) else str(error)


def pytest_configure(config):
    """Register the quarantine and shard helpers that were asked for."""
    if config.option.collectonly and not config.getoption("greenbar_shard", None):
        return
    wanted = (
        config.getoption("greenbar_quarantine", None)
        or os.environ.get("GREENBAR_QUARANTINE", "").lower() in TRUE
    )
    if wanted:
        config.pluginmanager.register(Quarantine(config), "greenbar-quarantine")
    shard = config.getoption("greenbar_shard", None)
    if shard:
        try:
            index, total = act.parse_shard(shard)
        except ValueError as error:
            raise pytest.UsageError(f"--greenbar-shard: {error}") from None
        config.pluginmanager.register(Shard(config, index, total), "greenbar-shard")


def warn(config, message):
    """One warning line on the terminal."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"greenbar: {message}", yellow=True)


class Quarantine:
    """Lets the session pass when its only failures are quarantined tests."""

    def __init__(self, config):
        self.config = config
        self.node_ids = None
        self.failed = set()

    def pytest_sessionstart(self, session):
        """Fetch the quarantine list once."""
        try:
            greenbar, instance, _ = connect(self.config)
            self.node_ids = act.quarantined(greenbar, instance)
        except Exception as error:  # noqa: BLE001 (never harm the run: every failure keeps counting)
            warn(self.config, f"the quarantine list could not be read ({failure(error)}); failures all count")

    def pytest_runtest_logreport(self, report):
        """Remember every test that failed in any phase."""
        if report.failed:
            self.failed.add(report.nodeid)

    def quarantined_failures(self):
        """The failed tests that are quarantined."""
        return sorted(self.failed & (self.node_ids or set()))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session, exitstatus):
        """Pass a session whose failures are all quarantined."""
        if self.node_ids is None or exitstatus != pytest.ExitCode.TESTS_FAILED:
            return
        if self.failed and self.failed <= self.node_ids:
            session.exitstatus = pytest.ExitCode.OK

    def pytest_terminal_summary(self, terminalreporter):
        """List the quarantined tests that failed."""
        names = self.quarantined_failures()
        if names:
            terminalreporter.write_line(
                f"greenbar: {len(names)} quarantined test(s) failed and do not fail the session:", yellow=True
            )
            for name in names:
                terminalreporter.write_line(f"  {name}")


class Shard:
    """Deselects the tests of the other shards."""

    def __init__(self, config, index, total):
        self.config = config
        self.index = index
        self.total = total

    def pytest_collection_modifyitems(self, session, config, items):
        """Keep this shard's tests only; without Greenbar, keep every test."""
        try:
            greenbar, instance, settings = connect(config)
            mine, known = act.shard_tests(
                greenbar, instance, self.index, self.total, before=settings.build_number
            )
        except Exception as error:  # noqa: BLE001 (never harm the run: then every test runs)
            warn(config, f"the shards could not be read ({failure(error)}); running every test")
            return
        mine = set(mine)
        kept, dropped = [], []
        for item in items:
            chosen = act.in_shard(item.nodeid, self.index, self.total, mine, known)
            (kept if chosen else dropped).append(item)
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept
