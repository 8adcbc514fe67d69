"""Storing a batch of case results into a build: the server side of live streaming from CI.

A batch is ``{"results": [...]}`` with up to :data:`MAX_RESULTS` results, each
naming its suite and case. It is validated in one pass by pydantic (a few
microseconds per result, where the per-field checkers of the JSON API would
cost tens), with the same limits as the per-case API, and then written
through the JUnit import's write path (:class:`webapp.imports.ReportWriter`):
suites are created on demand, cases go in with multi-row INSERTs, and the
counters move in the caller's transaction.

Re-runs follow the import's rules: a case reported again, in this batch or
an earlier one, is one case whose status is the last attempt's; its attempts
add up; and a case that failed (or errored) and then passed is flaky, keeping
the message and details of its last failed attempt.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from typing import Literal

import pydantic
from pydantic import AfterValidator
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PlainValidator
from sqlalchemy import select

from webapp import junit
from webapp.api.payload import MAX_SECONDS
from webapp.api.payload import NAME_BLANKS
from webapp.api.payload import ValidationError
from webapp.api.payload import parse_time
from webapp.extensions import db
from webapp.imports import FAILING
from webapp.imports import ReportWriter
from webapp.models import TestCase

MAX_RESULTS = 1000
SUITE_NAME_LIMIT = 255
CASE_NAME_LIMIT = 512
# a refused batch lists this many bad fields at most: enough to fix a client, not a 1,000-line reply
MAX_REPORTED_ERRORS = 20


def named(value):
    """A name holds a character other than whitespace; the blanks around it are dropped."""
    stripped = value.strip(NAME_BLANKS)
    if not stripped:
        raise ValueError("must not be empty")
    return stripped


Name = Annotated[str, AfterValidator(named)]
Time = Annotated[datetime | None, PlainValidator(parse_time)]
Text = str | None


class Result(BaseModel):
    """One case result of a batch (the JSON parser already refuses lone surrogates)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    suite: Annotated[Name, Field(max_length=SUITE_NAME_LIMIT)]
    name: Annotated[Name, Field(max_length=CASE_NAME_LIMIT)]
    result_status: Literal["SUCCESS", "FAILED", "ERROR", "SKIPPED"]
    started: Time = None
    finished: Time = None
    duration: Annotated[float | None, Field(ge=0, le=MAX_SECONDS, allow_inf_nan=False)] = None
    message: Text = None
    details: Text = None
    system_out: Text = None
    system_err: Text = None


class Batch(BaseModel):
    """The request body: ``{"results": [...]}``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    results: Annotated[list[Result], Field(max_length=MAX_RESULTS)]


def parse(body):
    """Validate a batch's raw JSON body; return its results in order.

    :raise ValidationError: naming each bad field by its dotted path, such as ``results.3.name``.
    """
    try:
        return Batch.model_validate_json(body or b"{}").results
    except pydantic.ValidationError as error:
        problems = error.errors(include_url=False, include_context=False, include_input=False)
        fields = {}
        for problem in problems[:MAX_REPORTED_ERRORS]:
            where = ".".join(str(part) for part in problem["loc"]) or "body"
            fields[where] = problem["msg"]
        if problems and problems[0]["type"] == "json_invalid":
            raise ValidationError("the request body is not valid JSON (UTF-8)", fields) from None
        raise ValidationError(f"{len(problems)} fields of the batch are not valid", fields) from None


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
        """The first attempt of a case."""
        return cls(
            result.name,
            result.result_status,
            result.started,
            result.finished,
            result.duration,
            result.message,
            result.details,
            result.system_out,
            result.system_err,
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
        cases = suites.setdefault(result.suite, {})
        earlier = cases.get(result.name)
        cases[result.name] = Attempts.of(result) if earlier is None else earlier.then(result)
    return suites


class BatchWriter(ReportWriter):
    """The import's writer, reading back only the batch's own names and keeping each result's times."""

    def __init__(self, build, wanted):
        super().__init__(build)
        self.wanted = wanted

    def stored_names(self, suite):
        """Which of this batch's cases the suite already holds: only those can be re-runs."""
        names = self.wanted[suite.name]
        return set(
            db.session.scalars(
                select(TestCase.name).where(TestCase.suite_id == suite.id, TestCase.name.in_(names))
            )
        )

    def row(self, name, case):
        """The import's row, with the result's own start and finish times when it gave them."""
        fields = super().row(name, case)
        fields["started"] = case.started
        if case.finished is not None:
            fields["finished"] = case.finished
        return fields


def store(build, results):
    """Store validated results (from :func:`parse`) into ``build``; return what was stored.

    Suites are written in name order, so two batches into one build lock their
    suites in the same order. The caller commits.
    """
    suites = by_suite(results)
    writer = BatchWriter(build, {name: list(cases) for name, cases in suites.items()})
    try:
        for name in sorted(suites):
            writer.add_suite(junit.ParsedSuite(name=name), list(suites[name].values()))
    except BaseException:
        # the helper thread must be done with the connection before the rollback
        writer.pipe.drain(quietly=True)
        raise
    writer.pipe.drain()
    # no build in the reply: reading its counters back would cost every batch a round trip
    return dict(writer.reply(), build_id=build.id, results=len(results))
