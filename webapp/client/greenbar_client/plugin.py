"""The pytest plugin: each session is one Greenbar build, filled while the tests run.

It stays inactive (and costs nothing) until a URL and an instance are set.
Then the session's build is created (or found, by ``GREENBAR_BUILD_NUMBER``)
when the session starts, each finished test goes on a queue, and a
background thread sends the queue in batches at least once a second. Under
pytest-xdist the controller creates the build and hands it to the workers,
which each stream their own results; the controller finishes the build.

It never harms the test run: any trouble is a warning line, never an error
or a changed exit status. When Greenbar stays down past the retry budget,
what could not be sent is written to a JUnit XML file, with the
``greenbar upload`` command that sends it later.

Mapping: the suite is the node id up to the first ``::`` (the file), the case
the rest. Passed is SUCCESS, a failed call FAILED, a failed setup or
teardown ERROR, skipped SKIPPED; xfail is SKIPPED with its reason, a
non-strict xpass SUCCESS, a strict xpass FAILED. Each pytest-rerunfailures
attempt is sent as a result of its own, so the server folds them as re-runs.
"""

import hashlib
import os
import queue
import shlex
import sys
import threading
import time
import uuid

import pytest

from greenbar_client.config import SETTINGS
from greenbar_client.config import ConfigError
from greenbar_client.config import resolve

# --greenbar-quarantine and --greenbar-shard (act_plugin.py) come with this plugin
pytest_plugins = ["greenbar_client.act_plugin"]
BATCH_SIZE = 500
SUITE_NAME_LIMIT = 255
CASE_NAME_LIMIT = 512
SEND_EVERY_SECONDS = 1.0
DEFAULT_RETRY_SECONDS = 60.0
STOP = object()


def pytest_addoption(parser):
    """One flag and one ini option per setting, plus the retry budget and the spool file."""
    group = parser.getgroup("greenbar", "stream results to Greenbar")
    for setting in SETTINGS:
        group.addoption(
            "--greenbar-" + setting.flag[2:],
            dest="greenbar_" + setting.name,
            metavar=setting.variable,
            help=f"{setting.help} (default: ${setting.variable})",
        )
        parser.addini("greenbar_" + setting.name, f"Greenbar: {setting.help}", default=None)
    group.addoption(
        "--greenbar-retry-seconds",
        dest="greenbar_retry_seconds",
        type=float,
        help=f"how long to retry while Greenbar is down (default: {DEFAULT_RETRY_SECONDS:.0f})",
    )
    parser.addini("greenbar_retry_seconds", "Greenbar: how long to retry while it is down", default=None)
    group.addoption(
        "--greenbar-spool",
        dest="greenbar_spool",
        metavar="PATH",
        help="where to write results that could not be sent (default: greenbar-unsent*.xml)",
    )


def pytest_configure(config):
    """Register the reporter when Greenbar is configured; a bad setting is one warning line."""
    if config.option.collectonly or getattr(config.option, "help", False):
        return
    try:
        settings = resolve(
            flags={s.name: config.getoption("greenbar_" + s.name) for s in SETTINGS},
            ini={s.name: config.getini("greenbar_" + s.name) for s in SETTINGS},
            flag_prefix="--greenbar-",
        )
        if settings.url is None or settings.instance is None:
            return
        settings.require()
    except ConfigError as error:
        warn(config, f"{error}; results are not sent")
        return
    config.pluginmanager.register(Reporter(config, settings), "greenbar-reporter")


def warn(config, message):
    """One line on the terminal (stderr before the terminal exists), never an error."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"greenbar: {message}", yellow=True)
    else:
        print(f"greenbar: {message}", file=sys.stderr)


def fit(name, limit):
    """``name`` cut to ``limit`` characters, kept distinct by a digest of the whole (as the import does)."""
    if len(name) <= limit:
        return name
    digest = hashlib.blake2b(name.encode(), digest_size=6).hexdigest()
    return name[: limit - len(digest) - 2] + "…~" + digest


def suite_and_name(nodeid):
    """The suite (the file) and the case name (the rest) of a node id, cut to Greenbar's limits."""
    suite, _, name = nodeid.partition("::")
    return fit(suite, SUITE_NAME_LIMIT), fit(name or suite, CASE_NAME_LIMIT)


def crash_line(report):
    """The one-line reason of a failed or skipped phase."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
        return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return crash.message
    text = str(longrepr or "").strip()
    return text.splitlines()[-1] if text else None


class Attempt:
    """One run of one test, built from its phase reports (setup, call, teardown)."""

    __slots__ = ("nodeid", "status", "message", "details", "duration", "started", "finished", "report")

    def __init__(self, nodeid):
        self.nodeid = nodeid
        self.status = None
        self.message = None
        self.details = []
        self.duration = 0.0
        self.started = None
        self.finished = None
        self.report = None

    def add(self, report):
        """Fold one phase's report in."""
        self.report = report
        self.duration += report.duration
        start = getattr(report, "start", None)
        if self.started is None and start is not None:
            self.started = start
        self.finished = getattr(report, "stop", None)
        outcome = report.outcome
        xfail = getattr(report, "wasxfail", None)
        if outcome in ("failed", "rerun"):
            status = "FAILED" if report.when == "call" else "ERROR"
            if self.status != "ERROR":
                self.status, self.message = status, crash_line(report)
            self.details.append(report.longreprtext)
        elif outcome == "skipped":
            if self.status is None:
                self.status = "SKIPPED"
                self.message = xfail if xfail is not None else crash_line(report)
        elif report.when == "call" and self.status is None:
            self.status = "SUCCESS"

    def result(self):
        """The result as the batch endpoint takes it."""
        suite, name = suite_and_name(self.nodeid)
        report = self.report
        return {
            "suite": suite,
            "name": name,
            "result_status": self.status or "SUCCESS",
            "duration": self.duration,
            "started": self.started,
            "finished": self.finished,
            "message": self.message,
            "details": "\n\n".join(self.details) or None,
            "system_out": (report.capstdout or None) if report is not None else None,
            "system_err": (report.capstderr or None) if report is not None else None,
        }


class Reporter:
    """Creates or joins the session's build, records each test and streams the results."""

    def __init__(self, config, settings):
        self.config = config
        self.settings = settings
        retry = config.getoption("greenbar_retry_seconds") or config.getini("greenbar_retry_seconds")
        self.retry_seconds = float(retry) if retry else DEFAULT_RETRY_SECONDS
        self.worker = getattr(config, "workerinput", None)
        # the xdist controller only hands the build out: its workers record and send
        self.controller = self.worker is None and getattr(config.option, "dist", "no") != "no"
        self.build = None
        self.instance_id = None
        self.running = {}
        self.queue = queue.SimpleQueue()
        # the sender sleeps until a batch is full or a second has passed: waking it for every
        # result would cost the test run a thread switch per test
        self.wake = threading.Event()
        self.sender = None
        self.sent = 0
        self.unsent = []
        self.given_up = False
        self.refused = []
        self.spooled = []
        self.greenbar = None

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session):
        """Create or find the build (the workers get it from the controller), then start sending."""
        from greenbar_client.server import Greenbar

        self.greenbar = Greenbar(self.settings, self.retry_seconds)
        if self.worker is not None:
            handed = self.worker.get("greenbar") or {}
            self.instance_id, self.build = handed.get("instance_id"), handed.get("build")
        else:
            try:
                self.instance_id = self.greenbar.ensure_instance(self.settings.instance)
                fields = self.settings.build_fields()
                fields.setdefault("started", time.time())
                self.build = self.greenbar.ensure_build(self.instance_id, fields)
            except Exception as error:  # never harm the run: results go to the spool file instead
                warn(self.config, f"could not create the build ({error}); results will be written to a file")
        if not self.controller:
            self.sender = threading.Thread(target=self.send_loop, name="greenbar-sender", daemon=True)
            self.sender.start()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node):
        """xdist: hand the build to each worker."""
        node.workerinput["greenbar"] = {"instance_id": self.instance_id, "build": self.build}

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node, error):
        """xdist: add up what each worker sent and spooled."""
        output = getattr(node, "workeroutput", {}).get("greenbar") or {}
        self.sent += output.get("sent", 0)
        self.spooled.extend(output.get("spooled", []))
        self.refused.extend(output.get("refused", []))

    def pytest_runtest_logreport(self, report):
        """Fold each phase into its attempt; a finished attempt goes on the queue."""
        if self.controller or report.when is None:
            return
        attempt = self.running.get(report.nodeid)
        if attempt is None or report.when == "setup":
            if attempt is not None:
                self.enqueue(attempt.result())
            attempt = self.running[report.nodeid] = Attempt(report.nodeid)
        attempt.add(report)
        if report.when == "teardown":
            del self.running[report.nodeid]
            self.enqueue(attempt.result())

    def enqueue(self, item):
        """Queue a result (or :data:`STOP`); wake the sender when a batch is full or the run ends."""
        self.queue.put(item)
        if item is STOP or self.queue.qsize() >= BATCH_SIZE:
            self.wake.set()

    def send_loop(self):
        """Send what the queue holds at least once a second, in batches; stop at :data:`STOP`."""
        stopping = False
        while not stopping:
            self.wake.wait(SEND_EVERY_SECONDS)
            self.wake.clear()
            pending = []
            while True:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is STOP:
                    stopping = True
                    break
                pending.append(item)
            for start in range(0, len(pending), BATCH_SIZE):
                self.send(pending[start : start + BATCH_SIZE])

    def send(self, batch):
        """Send one batch under its own key (kept across retries); keep it for the spool on failure."""
        if self.build is None or self.given_up:
            # Greenbar was given up on: keep the order, everything after goes to the file too
            self.unsent.extend(batch)
            return
        from greenbar_client.server import Refused

        key = f"greenbar-pytest-{uuid.uuid4().hex}"
        try:
            self.greenbar.send_results(self.instance_id, self.build["id"], batch, key)
            self.sent += len(batch)
        except Refused as error:
            # this batch only (the spool file keeps it); the ones after it may well be stored
            self.refused.append(str(error))
            self.unsent.extend(batch)
            self.given_up = False
        except Exception:  # never harm the run: what is left goes to the spool file at the end
            self.unsent.extend(batch)
            self.given_up = True

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session):
        """Flush the queue, spool what could not be sent, and (not in a worker) finish the build."""
        if self.sender is not None:
            for attempt in self.running.values():
                self.enqueue(attempt.result())
            self.running.clear()
            self.enqueue(STOP)
            self.sender.join()
        if self.unsent:
            self.spooled.append(self.spool())
        if self.worker is not None:
            self.config.workeroutput["greenbar"] = {
                "sent": self.sent,
                "spooled": self.spooled,
                "refused": self.refused,
            }
        elif self.build is not None:
            try:
                self.greenbar.finish_build(self.instance_id, self.build["id"])
            except Exception as error:  # the results are stored; only the end time is missing
                warn(self.config, f"could not mark the build finished ({error})")

    def build_number(self):
        """The session's build number: the build's, or the configured one when the build was never made."""
        return self.build["number"] if self.build is not None else self.settings.build_number

    def spool(self):
        """Write the unsent results to a JUnit XML file; return (path, count)."""
        from greenbar_client import spool

        number = f"-{self.build_number()}" if self.build_number() is not None else ""
        stem, suffix = os.path.splitext(
            self.config.getoption("greenbar_spool") or f"greenbar-unsent{number}.xml"
        )
        if self.worker is not None:
            # one file per xdist worker: they write at the same time
            stem += f"-{self.worker['workerid']}"
        path = os.path.join(str(self.config.invocation_params.dir), stem + suffix)
        spool.write(path, self.unsent)
        return path, len(self.unsent)

    def pytest_terminal_summary(self, terminalreporter):
        """One line naming the build's page; and how to upload what could not be sent."""
        if self.worker is not None:
            return
        if self.build is not None:
            terminalreporter.write_line(
                f"greenbar: {self.sent} results sent to build #{self.build['number']} of"
                f" {self.settings.instance}: {self.greenbar.build_page(self.build['id'])}"
            )
        for message in self.refused[:3]:
            terminalreporter.write_line(f"greenbar: Greenbar refused a batch: {message}", yellow=True)
        number = self.build_number()
        for path, count in self.spooled:
            command = ["greenbar", "upload", path, "--instance", self.settings.instance]
            if number is not None:
                command += ["--build-number", str(number)]
            terminalreporter.write_line(
                f"greenbar: {count} results could not be sent; upload them later with: {shlex.join(command)}",
                yellow=True,
            )
