"""Storing a batch of case results into a build: the server side of live streaming from CI.

A batch is up to :data:`MAX_RESULTS` checked results (``webapp.api.batch``
declares and checks them), each naming its suite and case and carrying its
status, optional times and texts. They are written through the JUnit
import's write path (:class:`webapp.imports.ReportWriter`): suites are created
on demand, cases go in with multi-row INSERTs, and the counters move in the
caller's transaction.

Re-runs follow the import's rules: a case reported again, in this batch or
an earlier one, is one case whose status is the last attempt's; its attempts
add up; and a case that failed (or errored) and then passed is flaky, keeping
the message and details of its last failed attempt.
"""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp import junit
from webapp import mysql_writes
from webapp.extensions import db
from webapp.imports import FAILING
from webapp.imports import ReportWriter
from webapp.models import TestCase
from webapp.mysql_writes import InsertPipe

MAX_RESULTS = 1000


@dataclass(slots=True)
class Attempts:
    """A case of the batch with its attempts folded in, as :class:`ReportWriter` stores it."""

    name: str
    status: str
    started: datetime | None
    finished: datetime | None
    duration: float | None
    message: str | None
    details: str | None
    system_out: str | None
    system_err: str | None
    attempts: int = 1
    flaky: bool = False
    # the rest of junit.ParsedCase's fields, which a batch never carries
    error_type: str | None = None
    properties: list[tuple[str, str]] | None = None

    @classmethod
    def of(cls, result):
        """The first attempt of a case (a checked result: a dict without the fields it left out)."""
        get = result.get
        return cls(
            result["name"],
            result["result_status"],
            get("started"),
            get("finished"),
            get("duration"),
            get("message"),
            get("details"),
            get("system_out"),
            get("system_err"),
        )

    def then(self, result):
        """The case after a later attempt: its result wins; a pass after a failure is flaky."""
        later = Attempts.of(result)
        later.attempts = self.attempts + 1
        if later.status == junit.SUCCESS and (self.flaky or self.status in FAILING):
            later.flaky = True
            later.message = later.message or self.message
            later.details = later.details or self.details
        return later


def by_suite(results):
    """Fold the batch's repeated cases into their attempts; ``{suite name: {case name: Attempts}}``."""
    suites = {}
    for result in results:
        cases = suites.setdefault(result["suite"], {})
        earlier = cases.get(result["name"])
        cases[result["name"]] = Attempts.of(result) if earlier is None else earlier.then(result)
    return suites


class BatchWriter(ReportWriter):
    """The import's writer for one batch: one INSERT per suite, sent in the request thread.

    Re-runs of stored cases are rare in a stream, and reading a batch's 500
    names back costs about as much as storing them, so on MySQL the cases of
    an existing suite go in as new, inside a savepoint: when the suite's unique
    key finds a stored name, the savepoint undoes the attempt (rows and
    counters) and the cases go again with the stored names read back, re-runs
    merged. SQLite reads the names first.
    """

    def __init__(self, build, wanted):
        super().__init__(build)
        self.wanted = wanted
        self.pipe = InsertPipe(threaded=False, unchecked=True)

    def stored_names(self, suite):
        """The names an existing suite holds of this batch; None on MySQL: found when inserting."""
        return None if mysql_writes.on_mysql() else self.names_in(suite)

    def names_in(self, suite):
        """Which of this batch's cases the suite already holds: only those can be re-runs."""
        names = self.wanted[suite.name]
        return set(
            db.session.scalars(
                select(TestCase.name).where(TestCase.suite_id == suite.id, TestCase.name.in_(names))
            )
        )

    def add_suite(self, parsed, cases):
        """Store a suite's cases; with its stored names unknown, try them all as new first."""
        suite, names = self.suite_for(parsed)
        if names is not None:
            self.add_cases_to(suite, names, cases)
            return
        before = self.tally()
        try:
            with db.session.begin_nested():
                self.add_cases_to(suite, set(), cases)
        except IntegrityError as error:
            if not mysql_writes.duplicate_key(error):
                raise
            self.counts, self.flaky, self.merged = before
            self.add_cases_to(suite, self.names_in(suite), cases)

    def tally(self):
        """The reply's counts so far, to go back to when an attempt is undone."""
        return dict(self.counts), self.flaky, self.merged

    def row(self, name, case):
        """The import's row, with the result's own start and finish times when it gave them."""
        fields = super().row(name, case)
        fields["started"] = case.started
        if case.finished is not None:
            fields["finished"] = case.finished
        return fields


def store(build, results):
    """Store validated results into ``build`` (anything with its ``id`` and ``instance_id``); return
    what was stored.

    Suites are written in name order, so two batches into one build lock their
    suites in the same order. The caller commits.
    """
    suites = by_suite(results)
    writer = BatchWriter(build, {name: list(cases) for name, cases in suites.items()})
    for name in sorted(suites):
        writer.add_suite(junit.ParsedSuite(name=name), list(suites[name].values()))
    # no build in the reply: reading its counters back would cost every batch a round trip
    return dict(writer.reply(), build_id=build.id, results=len(results))
